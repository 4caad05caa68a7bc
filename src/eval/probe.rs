//! The nuisance probe: a classifier on codes that reads each nuisance factor, so evaluation can
//! say whether a relation kept an image's nuisances. It is an instrument of evaluation only:
//! it takes the dataset's nuisance labels of [`PROBE_IMAGES`] training images, which training
//! never sees, and reads a code by its [`NEIGHBOURS`] nearest reference codes. A linear probe
//! fitted to the τ labelled images read dSprites' scale at chance (0.35 over three classes)
//! where this one reads it at 0.85–0.90: a nuisance lies along a different direction in every
//! component, which no single hyperplane follows.

use serde::{Deserialize, Serialize};

use crate::inference::Run;

/// Nuisance factors probed have at most this many classes among the reference images (HWF's
/// thousand writers cannot be read from a few thousand codes).
const MAX_CLASSES: usize = 50;
/// Training images whose codes and nuisance labels the probe reads by.
pub const PROBE_IMAGES: usize = 5000;
/// Neighbours that vote on a code's nuisance classes.
pub const NEIGHBOURS: usize = 5;

/// A probe of every readable nuisance factor: reference codes and their nuisance classes.
pub struct NuisanceProbe {
    /// Dataset factor indices probed.
    pub factors: Vec<usize>,
    /// Reference codes, row-major n×`dim`.
    codes: Vec<f32>,
    /// Each reference code's class of every probed factor.
    labels: Vec<Vec<usize>>,
    dim: usize,
}

/// How well the probe reads one nuisance factor in the codes of test images.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProbedFactor {
    pub factor: String,
    /// Share of test images whose class the probe reads right.
    pub accuracy: f64,
    /// Share of the test images' most common class: what reading nothing scores.
    pub chance: f64,
}

impl NuisanceProbe {
    /// The probe of `run`: the codes of the first [`PROBE_IMAGES`] training images with their
    /// nuisance labels; None when the task has no nuisance factor those images vary in.
    pub fn fit(run: &Run) -> Option<NuisanceProbe> {
        let train = &run.ctx.split.train;
        let items = &train[..train.len().min(PROBE_IMAGES)];
        let classes = nuisance_classes(run, items);
        let nuisances = (0..run.ctx.data.task.factor_names.len())
            .filter(|f| is_nuisance(run, *f))
            .map(|f| (f, classes.iter().map(|c| c[f]).collect()));
        NuisanceProbe::fit_factors(run.encode_items(items), run.model.latent(), nuisances)
    }

    /// A probe of every `(factor, labels)` whose labels take 2 to [`MAX_CLASSES`] values, on
    /// reference `codes` (row-major n×`dim`); None when no factor qualifies.
    pub fn fit_factors(
        codes: Vec<f32>,
        dim: usize,
        factors: impl IntoIterator<Item = (usize, Vec<usize>)>,
    ) -> Option<NuisanceProbe> {
        let rows = codes.len() / dim;
        let (mut probed, mut labels) = (Vec::new(), vec![Vec::new(); rows]);
        for (f, values) in factors {
            let mut distinct = values.clone();
            distinct.sort_unstable();
            distinct.dedup();
            if !(2..=MAX_CLASSES).contains(&distinct.len()) {
                continue;
            }
            probed.push(f);
            for (row, v) in labels.iter_mut().zip(values) {
                row.push(v);
            }
        }
        (!probed.is_empty()).then_some(NuisanceProbe { factors: probed, codes, labels, dim })
    }

    /// The class of every probed nuisance factor (in [`NuisanceProbe::factors`] order) that the
    /// probe reads in each code (row-major n×d): the majority among the nearest reference
    /// codes, a tie going to the class of the nearer neighbour.
    pub fn read(&self, codes: &[f32]) -> Vec<Vec<usize>> {
        use rayon::prelude::*;
        codes.par_chunks_exact(self.dim).map(|z| self.vote(&self.nearest(z))).collect()
    }

    /// For each code and probed factor, whether the probe reads it as it reads the code of the
    /// same row in `reference` (the image the result came from). Comparing two readings, not
    /// a reading with the labels, keeps the probe's own errors out of the measure: a nuisance
    /// the probe misreads in the start image but reads the same way in the result was kept.
    pub fn kept_by_factor(&self, codes: &[f32], reference: &[f32]) -> Vec<Vec<bool>> {
        let (read, reference) = (self.read(codes), self.read(reference));
        read.iter()
            .zip(&reference)
            .map(|(a, b)| a.iter().zip(b).map(|(x, y)| x == y).collect())
            .collect()
    }

    /// How well the probe reads each factor in `codes`, whose true classes (of every dataset
    /// factor) are `truth`; `names` are the dataset's factor names.
    pub fn accuracy(
        &self,
        codes: &[f32],
        truth: &[Vec<usize>],
        names: &[String],
    ) -> Vec<ProbedFactor> {
        let read = self.read(codes);
        let n = truth.len().max(1) as f64;
        self.factors
            .iter()
            .enumerate()
            .map(|(j, &f)| {
                let right = read.iter().zip(truth).filter(|(r, t)| r[j] == t[f]).count();
                let mut counts = std::collections::BTreeMap::new();
                for t in truth {
                    *counts.entry(t[f]).or_insert(0usize) += 1;
                }
                ProbedFactor {
                    factor: names[f].clone(),
                    accuracy: right as f64 / n,
                    chance: counts.values().copied().max().unwrap_or(0) as f64 / n,
                }
            })
            .collect()
    }

    /// Indices of the [`NEIGHBOURS`] reference codes nearest to `z`, nearest first. Brute force:
    /// a few thousand reference codes make an index pointless, and a NaN in a code (which
    /// sorts last here) must not stop the evaluation, as a tree index's checks would.
    fn nearest(&self, z: &[f32]) -> Vec<usize> {
        let mut by_distance: Vec<(f32, usize)> = self
            .codes
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(i, r)| (r.iter().zip(z).map(|(a, b)| (a - b) * (a - b)).sum(), i))
            .collect();
        let k = NEIGHBOURS.min(by_distance.len());
        let order = |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        if k < by_distance.len() {
            by_distance.select_nth_unstable_by(k, order);
        }
        by_distance.truncate(k);
        by_distance.sort_by(order);
        by_distance.into_iter().map(|(_, i)| i).collect()
    }

    /// Each probed factor's majority class among the `neighbours` (nearest first).
    fn vote(&self, neighbours: &[usize]) -> Vec<usize> {
        (0..self.factors.len())
            .map(|j| {
                let classes: Vec<usize> = neighbours.iter().map(|&i| self.labels[i][j]).collect();
                let votes = |c: usize| classes.iter().filter(|&&x| x == c).count();
                // max_by_key keeps the last of equals: scan from the farthest neighbour so a
                // tie goes to the nearer one.
                classes.iter().rev().copied().max_by_key(|&c| votes(c)).unwrap_or(0)
            })
            .collect()
    }
}

/// Whether dataset factor `f` is one of the task's nuisances (not a kept factor).
fn is_nuisance(run: &Run, f: usize) -> bool {
    !run.ctx.data.task.kept.iter().any(|k| k.factor == f)
}

/// Every dataset factor's class of the task's images `items`.
pub fn nuisance_classes(run: &Run, items: &[usize]) -> Vec<Vec<usize>> {
    let data = &run.ctx.data;
    items.iter().map(|&i| data.dataset.factor_classes(data.indices[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes in three clusters (the components, along the second value) whose nuisance (two
    /// classes) lies along the first value in opposite directions in alternate clusters: no
    /// single line separates it, the neighbours do.
    fn probe() -> NuisanceProbe {
        let (mut codes, mut labels) = (Vec::new(), Vec::new());
        for i in 0..90 {
            let (nuisance, component) = (i % 2, (i / 2) % 3);
            let jitter = (i as f32 * 0.37).sin() * 0.2;
            let side =
                if nuisance == 0 { -1.0 } else { 1.0 } * if component == 1 { -1.0 } else { 1.0 };
            codes.extend([side + jitter, component as f32 * 5.0]);
            labels.push(nuisance);
        }
        let constant = (1, vec![0; 90]);
        NuisanceProbe::fit_factors(codes, 2, [constant, (4, labels)]).expect("one factor varies")
    }

    #[test]
    fn only_factors_that_vary_are_probed() {
        assert_eq!(probe().factors, [4]);
    }

    #[test]
    fn the_neighbours_read_a_nuisance_that_turns_with_the_component() {
        let probe = probe();
        // Nuisance 0 lies at −1 in components 0 and 2, at +1 in component 1.
        let codes = [-0.9, 0.0, -1.1, 5.0, 1.0, 10.0];
        assert_eq!(probe.read(&codes), [[0], [1], [1]]);
    }

    #[test]
    fn moving_the_component_keeps_the_nuisance_and_crossing_it_does_not() {
        let probe = probe();
        let start = [-0.9, 0.0, 1.1, 5.0];
        let moved = [-1.0, 10.0, -0.9, 0.0];
        assert_eq!(probe.kept_by_factor(&moved, &start), [[true], [true]]);
        let flipped = [1.0, 0.0, -1.0, 5.0];
        assert_eq!(probe.kept_by_factor(&flipped, &start), [[false], [false]]);
    }

    #[test]
    fn a_tie_goes_to_the_nearer_neighbour() {
        let codes = vec![0.0, 1.0, 2.0, 3.0];
        let probe = NuisanceProbe::fit_factors(codes, 1, [(1, vec![0, 1, 1, 0])]).unwrap();
        // Neighbours of 0.9 (nearest first): 1.0 (class 1), 0.0 (0), 2.0 (1), 3.0 (0).
        assert_eq!(probe.read(&[0.9]), [[1]]);
        assert_eq!(probe.read(&[f32::NAN]).len(), 1, "a NaN code is read, not a panic");
    }

    #[test]
    fn accuracy_against_the_labels_and_the_most_common_class() {
        let probe = probe();
        let codes = [-0.9, 0.0, -1.1, 5.0, 1.0, 10.0, 1.0, 0.0];
        let truth = vec![
            vec![0, 0, 0, 0, 0],
            vec![0, 0, 0, 0, 1],
            vec![0, 0, 0, 0, 1],
            vec![0, 0, 0, 0, 0],
        ];
        let names: Vec<String> = (0..5).map(|f| format!("f{f}")).collect();
        let acc = probe.accuracy(&codes, &truth, &names);
        // Read: 0, 1, 1, 1 against 0, 1, 1, 0.
        assert_eq!(acc, [ProbedFactor { factor: "f4".into(), accuracy: 0.75, chance: 0.5 }]);
    }
}
