//! The nuisance probe: a small classifier on codes that reads each nuisance factor, trained on
//! the labelled images' codes and their nuisance labels (all of a dataset's labels are known
//! for the images τ labels; only the kept factors' are used in training). It judges whether a
//! relation kept an image's nuisances.

use linfa::prelude::*;
use linfa_logistic::{MultiFittedLogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2};

use crate::inference::Run;

/// Nuisance factors probed have at most this many classes among the labelled images (HWF's
/// thousand writers cannot be read from τ·N codes).
const MAX_CLASSES: usize = 50;
/// Light L2 weight: the codes have few dimensions and the labelled images are few.
const ALPHA: f64 = 1e-2;

/// A fitted probe of every readable nuisance factor.
pub struct NuisanceProbe {
    /// Dataset factor indices probed.
    pub factors: Vec<usize>,
    models: Vec<MultiFittedLogisticRegression<f64, usize>>,
    dim: usize,
}

impl NuisanceProbe {
    /// Fits the probe to the codes (row-major n×d) of the run's labelled images; None when the
    /// task has no nuisance factor the labelled images vary in.
    pub fn fit(run: &Run, labelled_codes: &[f32]) -> Option<NuisanceProbe> {
        let data = &run.ctx.data;
        let task = &data.task;
        let classes: Vec<Vec<usize>> = run
            .ctx
            .split
            .labelled
            .iter()
            .map(|&i| data.dataset.factor_classes(data.indices[i]))
            .collect();
        let nuisances = (0..task.factor_names.len())
            .filter(|&f| !task.kept.iter().any(|k| k.factor == f))
            .map(|f| (f, classes.iter().map(|c| c[f]).collect()));
        NuisanceProbe::fit_factors(labelled_codes, run.model.latent(), nuisances)
    }

    /// Fits one classifier per `(factor, labels)` whose labels take 2 to [`MAX_CLASSES`]
    /// values, on `codes` (row-major n×`dim`); None when no factor qualifies.
    pub fn fit_factors(
        codes: &[f32],
        dim: usize,
        factors: impl IntoIterator<Item = (usize, Vec<usize>)>,
    ) -> Option<NuisanceProbe> {
        let x = rows(codes, dim);
        let (mut probed, mut models) = (Vec::new(), Vec::new());
        for (f, labels) in factors {
            let mut distinct = labels.clone();
            distinct.sort_unstable();
            distinct.dedup();
            if !(2..=MAX_CLASSES).contains(&distinct.len()) {
                continue;
            }
            let y = Array1::from(labels);
            if let Ok(model) =
                MultiLogisticRegression::default().alpha(ALPHA).fit(&Dataset::new(x.clone(), y))
            {
                probed.push(f);
                models.push(model);
            }
        }
        (!probed.is_empty()).then_some(NuisanceProbe { factors: probed, models, dim })
    }

    /// For each code, whether the probe reads every probed nuisance as it reads the code of
    /// the same row in `reference` (the image the result came from). Comparing two readings,
    /// not a reading with the labels, keeps the probe's own errors out of the measure: a
    /// nuisance the probe misreads in the start image but reads the same way in the result
    /// was kept.
    pub fn kept(&self, codes: &[f32], reference: &[f32]) -> Vec<bool> {
        let (x, r) = (rows(codes, self.dim), rows(reference, self.dim));
        let mut kept = vec![true; x.nrows()];
        for model in &self.models {
            for ((k, a), b) in kept.iter_mut().zip(model.predict(&x)).zip(model.predict(&r)) {
                *k &= a == b;
            }
        }
        kept
    }
}

fn rows(codes: &[f32], dim: usize) -> Array2<f64> {
    Array2::from_shape_vec((codes.len() / dim, dim), codes.iter().map(|&v| v as f64).collect())
        .expect("whole codes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes whose first value reads a two-class nuisance (±1) and whose second holds the
    /// component (0, 5 or 10).
    fn probe() -> NuisanceProbe {
        let (mut codes, mut labels) = (Vec::new(), Vec::new());
        for i in 0..60 {
            let nuisance = i % 2;
            let jitter = (i as f32 * 0.37).sin() * 0.2;
            codes.extend([if nuisance == 0 { -1.0 } else { 1.0 } + jitter, (i % 3) as f32 * 5.0]);
            labels.push(nuisance);
        }
        let constant = (1, vec![0; 60]);
        NuisanceProbe::fit_factors(&codes, 2, [constant, (4, labels)]).expect("one factor varies")
    }

    #[test]
    fn only_factors_that_vary_are_probed() {
        assert_eq!(probe().factors, [4]);
    }

    #[test]
    fn moving_the_component_keeps_the_nuisance_and_crossing_it_does_not() {
        let probe = probe();
        let start = [-0.9, 0.0, 1.1, 5.0];
        let moved = [-1.0, 10.0, 0.9, 0.0];
        assert_eq!(probe.kept(&moved, &start), [true, true]);
        let flipped = [1.0, 0.0, 0.8, 5.0];
        assert_eq!(probe.kept(&flipped, &start), [false, true]);
    }
}
