//! Relational accuracy (SPEC §6): chains of random valid relations applied by the ReL to codes
//! drawn from the prior; the final code is classified under the α rule.

use std::collections::BTreeMap;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use super::classification::row_at;
use super::judge::PixelJudge;
use super::probe::{NuisanceProbe, ProbedFactor, nuisance_classes};
use super::{ALPHAS, DEPTHS};
use crate::inference::{AbsAeModel, Run};
use crate::prior::{AlphaRule, argmax};
use crate::rel::chains::{Walk, run_chains, walk_chains};
use crate::rng::{Stream, stream};

/// Relational accuracy at one depth and α. The image-level rows at α = 0 also say how often
/// the nuisances survived and how close the decoded result is to the true counterfactual.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RelationalRow {
    pub depth: usize,
    pub alpha: f64,
    pub accuracy: Option<f64>,
    pub accepted_ratio: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nuisance_kept: Option<f64>,
    /// The same share for each probed nuisance factor alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nuisance_kept_by_factor: BTreeMap<String, f64>,
    /// Pixel IoU at 0.5 with the counterfactual (grey images, tasks with a renderer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iou: Option<f64>,
    /// Mean squared error per pixel against the counterfactual (colour images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mse: Option<f64>,
    /// Share of results the pixel judge reads as the intended component: the nearest of
    /// 5 000 real training images is of that component (see [`super::judge`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judged_accuracy: Option<f64>,
    /// The image-level depth-1 row at α = 0 split by the relation each chain applied: which
    /// relations hold on real images and keep their nuisances, and which do not.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_relation: BTreeMap<String, RelationalRow>,
    /// How many chains a `by_relation` row has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chains: Option<usize>,
    /// Share of chains whose start image the model reads as its own component (its code's
    /// most likely component): a chain that starts from a misread image moves the wrong code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_read_right: Option<f64>,
    /// The accuracy of those chains alone: what the ReL and decoder do from a start read right.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_when_start_read_right: Option<f64>,
    /// Share of chains whose moved codes themselves, before decoding, the model reads as the
    /// intended components: where `accuracy` falls below it, decoding and re-encoding lost
    /// what the ReL got right; where it is low, the ReL moved the real code wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_accuracy: Option<f64>,
}

/// The same measures for a plain reconstruction of the test images: the ceiling of the
/// image-level rows (re-encoded reconstructions classified, nuisances read, pixels compared
/// with the input).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageCeiling {
    pub accuracy: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nuisance_kept: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nuisance_kept_by_factor: BTreeMap<String, f64>,
    /// How well the nuisance probe reads each nuisance factor in these test images' own codes
    /// (against their labels): what its verdicts are worth.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nuisance_probe: Vec<ProbedFactor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iou: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mse: Option<f64>,
    /// The pixel judge's reading of the reconstructions, and of the test images themselves
    /// (what it is worth).
    pub judged_accuracy: f64,
    pub judge_on_inputs: f64,
}

/// Relational accuracy for every depth of [`DEPTHS`] and α of [`ALPHAS`], from `chains`
/// chains per depth that start at codes drawn from the prior. Further operands and operator
/// codes are drawn from the prior too.
pub fn relational_accuracy(
    run: &Run,
    model: &AbsAeModel,
    rule: AlphaRule,
    chains: usize,
) -> Vec<RelationalRow> {
    let mut rows = Vec::new();
    for &depth in &DEPTHS {
        let mut rng = stream(run.ctx.config.seed, Stream::Eval, depth as u64);
        let walk = run_chains(&model.learner, &model.mixture, depth, chains, &mut rng);
        rows.extend(score_rows(depth, &scored_chains(model, rule, &walk.codes, &walk.truth)));
    }
    rows
}

/// The image-level check (SPEC §6): chains start at encoded test images, further operands
/// and operator codes are encoded test images of their components, and every final code is
/// decoded, the decoded image re-encoded, and that code classified. The α = 0 rows add
/// whether the nuisance probe reads the start image's nuisances in the result, and the
/// result's IoU (grey) or MSE (colour) against the true counterfactual — the start image
/// rendered with its kept factors moved as the chain moved them — where a renderer can
/// draw it. Returns the rows and the plain reconstruction's ceiling.
pub fn relational_image_accuracy(
    run: &Run,
    model: &AbsAeModel,
    rule: AlphaRule,
    chains: usize,
) -> (Vec<RelationalRow>, ImageCeiling) {
    let (data, relations) = (&run.ctx.data, model.relations());
    let starts: Vec<usize> = run
        .test()
        .iter()
        .copied()
        .filter(|&i| !relations.valid_at(data.components[i]).is_empty())
        .collect();
    let probe = NuisanceProbe::fit(run);
    let judge = PixelJudge::fit(run);
    let mut pool = CodePool::of_test_images(run, model);
    let mut rows = Vec::new();
    for &depth in &DEPTHS {
        // Offset the step so these chains do not replay the prior-sample chains' choices.
        let mut rng = stream(run.ctx.config.seed, Stream::Eval, IMAGE_CHAIN_STREAM + depth as u64);
        let items: Vec<usize> = (0..chains)
            .map(|_| *starts.choose(&mut rng).expect("a test image starts a relation"))
            .collect();
        let truth: Vec<usize> = items.iter().map(|&i| data.components[i]).collect();
        let codes = run.encode_items(&items);
        let walk = walk_chains(
            &model.learner,
            codes.clone(),
            truth,
            depth,
            &mut |c, rng| pool.draw(c, rng),
            &mut rng,
        );
        let decoded = run.decode(&walk.codes);
        let recoded = run.encode_pixels(&decoded);
        let walked = WalkedImages { items, starts: codes, walk, decoded, recoded };
        let scored = scored_chains(model, rule, &walked.recoded, &walked.walk.truth);
        let mut depth_rows = score_rows(depth, &scored);
        let measures = Measures { run, model, rule, probe: probe.as_ref(), judge: &judge };
        measures.fill(&mut depth_rows[0], &walked, &scored);
        if depth == 1 {
            depth_rows[0].by_relation = measures.by_relation(&walked);
        }
        rows.extend(depth_rows);
    }
    let ceiling_items = &starts[..starts.len().min(chains)];
    (rows, reconstruction_ceiling(run, model, probe.as_ref(), &judge, ceiling_items))
}

/// Image-level chains and what came of them: the start test images `items` and their codes
/// `starts`, the walk, its final codes decoded and those images encoded again.
struct WalkedImages {
    items: Vec<usize>,
    starts: Vec<f32>,
    walk: Walk,
    decoded: Vec<f32>,
    recoded: Vec<f32>,
}

impl WalkedImages {
    /// Outputs per chain.
    fn outputs(&self) -> usize {
        self.walk.truth.len() / self.items.len()
    }

    /// The chains `chosen` alone (each with all its outputs).
    fn select(&self, chosen: &[usize], d: usize, len: usize) -> WalkedImages {
        let outputs = self.outputs();
        let rows = |values: &[f32], width: usize| -> Vec<f32> {
            let chain = outputs * width;
            chosen.iter().flat_map(|&i| values[i * chain..(i + 1) * chain].to_vec()).collect()
        };
        let walk = Walk {
            codes: rows(&self.walk.codes, d),
            truth: chosen
                .iter()
                .flat_map(|&i| self.walk.truth[i * outputs..][..outputs].to_vec())
                .collect(),
            steps: chosen.iter().map(|&i| self.walk.steps[i].clone()).collect(),
        };
        WalkedImages {
            items: chosen.iter().map(|&i| self.items[i]).collect(),
            starts: chosen.iter().flat_map(|&i| self.starts[i * d..(i + 1) * d].to_vec()).collect(),
            walk,
            decoded: rows(&self.decoded, len),
            recoded: rows(&self.recoded, d),
        }
    }
}

/// The instruments an image-level row is measured with beyond the model's own classifier.
struct Measures<'a> {
    run: &'a Run,
    model: &'a AbsAeModel,
    rule: AlphaRule,
    probe: Option<&'a NuisanceProbe>,
    judge: &'a PixelJudge,
}

impl Measures<'_> {
    /// Adds the pixel judge's reading, the nuisances kept, the IoU or MSE against the
    /// counterfactual and the split by how the start image was read to `row` (the α = 0 row
    /// of `walked`, whose chains [`scored_chains`] scored as `scored`).
    fn fill(&self, row: &mut RelationalRow, walked: &WalkedImages, scored: &[(bool, f64)]) {
        let start_read = self.starts_read_right(walked);
        let right: Vec<bool> = scored.iter().map(|c| c.0).collect();
        let (read, right_when_read) = split_by_start(&right, &start_read);
        (row.start_read_right, row.accuracy_when_start_read_right) = (Some(read), right_when_read);
        let moved = scored_chains(self.model, self.rule, &walked.walk.codes, &walked.walk.truth);
        row.code_accuracy = Some(share(&moved.iter().map(|c| c.0).collect::<Vec<_>>()));
        let quality = chain_quality(self.run, self.probe, walked);
        (row.iou, row.mse) = (quality.iou, quality.mse);
        row.judged_accuracy =
            Some(judged_chains(self.judge, &walked.decoded, &walked.walk.truth, walked.outputs()));
        if let Some(kept) = quality.kept {
            (row.nuisance_kept, row.nuisance_kept_by_factor) = (Some(kept.all), kept.by_factor);
        }
    }

    /// Per chain, whether the model reads its start image's code as the image's component.
    fn starts_read_right(&self, walked: &WalkedImages) -> Vec<bool> {
        let components = &self.run.ctx.data.components;
        walked
            .starts
            .chunks_exact(self.model.mixture.dim)
            .zip(&walked.items)
            .map(|(z, &item)| argmax(&self.model.mixture.log_densities(z)) == components[item])
            .collect()
    }

    /// The α = 0 row of each relation's chains among `walked` (depth 1: one relation each).
    fn by_relation(&self, walked: &WalkedImages) -> BTreeMap<String, RelationalRow> {
        let model = self.model;
        let (d, len) = (model.mixture.dim, self.run.ctx.data.image_len());
        let relations = &model.relations().relations;
        let mut rows = BTreeMap::new();
        for (r, relation) in relations.iter().enumerate() {
            let chosen: Vec<usize> = (0..walked.items.len())
                .filter(|&i| walked.walk.steps[i][0].relation == r)
                .collect();
            if chosen.is_empty() {
                continue;
            }
            let alone = walked.select(&chosen, d, len);
            let scored = scored_chains(model, self.rule, &alone.recoded, &alone.walk.truth);
            let mut row = score_rows(1, &scored).remove(0);
            self.fill(&mut row, &alone, &scored);
            row.chains = Some(chosen.len());
            rows.insert(relation.name.clone(), row);
        }
        rows
    }
}

/// Share of chains whose every decoded output (`decoded`, each chain's `outputs` together) the
/// pixel judge reads as its true component.
fn judged_chains(judge: &PixelJudge, decoded: &[f32], truth: &[usize], outputs: usize) -> f64 {
    let read = judge.read(decoded);
    let right: Vec<bool> =
        read.chunks_exact(outputs).zip(truth.chunks_exact(outputs)).map(|(r, t)| r == t).collect();
    share(&right)
}

/// What the image-level chains' results keep of their start images and how they compare with
/// what the renderer draws.
struct ChainQuality {
    kept: Option<Kept>,
    iou: Option<f64>,
    mse: Option<f64>,
}

/// Nuisances kept, and IoU or MSE against the counterfactual, of the chains of `walked`; each
/// chain's last output is compared.
fn chain_quality(run: &Run, probe: Option<&NuisanceProbe>, walked: &WalkedImages) -> ChainQuality {
    let WalkedImages { items, starts, walk, decoded, recoded } = walked;
    let (data, d, outputs) = (&run.ctx.data, run.model.latent(), walked.outputs());
    let len = data.image_len();
    let last = |values: &[f32], width: usize, i: usize| {
        values[((i + 1) * outputs - 1) * width..(i + 1) * outputs * width].to_vec()
    };
    let start_classes: Vec<Vec<usize>> =
        items.iter().map(|&i| data.dataset.factor_classes(data.indices[i])).collect();
    let kept = probe.map(|p| {
        let codes: Vec<f32> = (0..items.len()).flat_map(|i| last(recoded, d, i)).collect();
        Kept::measure(p, run, &codes, starts)
    });
    let mut quality = ChainQuality { kept, iou: None, mse: None };
    let mut counterfactual = vec![0.0; len];
    let mut compared = Vec::with_capacity(items.len());
    for (i, &item) in items.iter().enumerate() {
        let classes = walk.steps[i]
            .iter()
            .fold(start_classes[i].clone(), |c, a| data.task.move_to_component(&c, a.carried()));
        if !data.dataset.render_counterfactual(data.indices[item], &classes, &mut counterfactual) {
            return quality;
        }
        compared.push(pixel_match(&last(decoded, len, i), &counterfactual));
    }
    (quality.iou, quality.mse) = pixel_measures(run, &compared);
    quality
}

/// The ceiling: test images `items` reconstructed, re-encoded, classified, probed and compared
/// with themselves.
fn reconstruction_ceiling(
    run: &Run,
    model: &AbsAeModel,
    probe: Option<&NuisanceProbe>,
    judge: &PixelJudge,
    items: &[usize],
) -> ImageCeiling {
    let data = &run.ctx.data;
    let pixels = data.render_batch(items);
    let codes = run.encode_pixels(&pixels);
    let decoded = run.decode(&codes);
    let recoded = run.encode_pixels(&decoded);
    let components: Vec<usize> = items.iter().map(|&i| data.components[i]).collect();
    let right: Vec<bool> =
        model.classify(&recoded).iter().zip(&components).map(|(p, c)| p == c).collect();
    let len = data.image_len();
    let compared: Vec<(f64, f64)> = decoded
        .chunks_exact(len)
        .zip(pixels.chunks_exact(len))
        .map(|(a, b)| pixel_match(a, b))
        .collect();
    let (iou, mse) = pixel_measures(run, &compared);
    let kept = probe.map(|p| Kept::measure(p, run, &recoded, &codes));
    let names = &data.task.factor_names;
    ImageCeiling {
        accuracy: share(&right),
        nuisance_kept: kept.as_ref().map(|k| k.all),
        nuisance_kept_by_factor: kept.map(|k| k.by_factor).unwrap_or_default(),
        nuisance_probe: probe
            .map(|p| p.accuracy(&codes, &nuisance_classes(run, items), names))
            .unwrap_or_default(),
        iou,
        mse,
        judged_accuracy: judge.accuracy(&decoded, &components),
        judge_on_inputs: judge.accuracy(&pixels, &components),
    }
}

/// Shares of results whose nuisances the probe reads as in their start images: all of them,
/// and each factor alone.
struct Kept {
    all: f64,
    by_factor: BTreeMap<String, f64>,
}

impl Kept {
    /// Of `codes` against the start images' codes `starts` (row-major, row for row).
    fn measure(probe: &NuisanceProbe, run: &Run, codes: &[f32], starts: &[f32]) -> Kept {
        let kept = probe.kept_by_factor(codes, starts);
        let all: Vec<bool> = kept.iter().map(|row| row.iter().all(|&k| k)).collect();
        let names = &run.ctx.data.task.factor_names;
        let by_factor = probe
            .factors
            .iter()
            .enumerate()
            .map(|(j, &f)| {
                let factor: Vec<bool> = kept.iter().map(|row| row[j]).collect();
                (names[f].clone(), share(&factor))
            })
            .collect();
        Kept { all: share(&all), by_factor }
    }
}

/// (IoU at 0.5, mean squared error per pixel) of two images.
pub fn pixel_match(a: &[f32], b: &[f32]) -> (f64, f64) {
    let (mut both, mut either, mut squared) = (0usize, 0usize, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x_on, y_on) = (x > 0.5, y > 0.5);
        both += (x_on && y_on) as usize;
        either += (x_on || y_on) as usize;
        squared += ((x - y) as f64).powi(2);
    }
    let iou = if either == 0 { 1.0 } else { both as f64 / either as f64 };
    (iou, squared / a.len().max(1) as f64)
}

/// The mean IoU for grey images, the mean MSE for colour ones.
fn pixel_measures(run: &Run, compared: &[(f64, f64)]) -> (Option<f64>, Option<f64>) {
    let n = compared.len().max(1) as f64;
    let mean = |f: fn(&(f64, f64)) -> f64| Some(compared.iter().map(f).sum::<f64>() / n);
    if run.image_shape()[0] == 1 { (mean(|c| c.0), None) } else { (None, mean(|c| c.1)) }
}

/// The share of chains whose start was read right (`start_read`), and the share of those
/// chains that are `right` (None when there are none).
fn split_by_start(right: &[bool], start_read: &[bool]) -> (f64, Option<f64>) {
    let right_when_read: Vec<bool> =
        right.iter().zip(start_read).filter(|(_, read)| **read).map(|(r, _)| *r).collect();
    (share(start_read), (!right_when_read.is_empty()).then(|| share(&right_when_read)))
}

fn share(flags: &[bool]) -> f64 {
    flags.iter().filter(|&&f| f).count() as f64 / flags.len().max(1) as f64
}

const IMAGE_CHAIN_STREAM: u64 = 1000;
/// Encoded test images kept per component for the image-level chains' further operands.
const POOL_PER_COMPONENT: usize = 32;

/// Codes of a few encoded test images of every component, encoded once when first needed
/// (only relations with several inputs or operator codes draw from it).
struct CodePool<'a> {
    run: &'a Run,
    model: &'a AbsAeModel,
    codes: Option<Vec<Vec<Vec<f32>>>>,
}

impl<'a> CodePool<'a> {
    fn of_test_images(run: &'a Run, model: &'a AbsAeModel) -> Self {
        CodePool { run, model, codes: None }
    }

    fn draw(&mut self, component: usize, rng: &mut impl Rng) -> Vec<f32> {
        let (run, model) = (self.run, self.model);
        let codes = self.codes.get_or_insert_with(|| {
            let d = model.mixture.dim;
            let pool = |items: &[usize]| {
                run.encode_items(&items[..items.len().min(POOL_PER_COMPONENT)])
                    .chunks_exact(d)
                    .map(<[f32]>::to_vec)
                    .collect()
            };
            run.test_items_by_component().iter().map(|items| pool(items)).collect()
        });
        match codes[component].choose(rng) {
            Some(code) => code.clone(),
            // A component without test images: fall back on the prior.
            None => model.mixture.sample(component, rng),
        }
    }
}

/// Rows for every α of chains of `depth` scored by [`scored_chains`]: a chain is right when all
/// its outputs are, and accepted when all are.
fn score_rows(depth: usize, scored: &[(bool, f64)]) -> Vec<RelationalRow> {
    ALPHAS
        .iter()
        .map(|&alpha| {
            let r = row_at(alpha, scored);
            RelationalRow {
                depth,
                alpha,
                accuracy: r.accuracy,
                accepted_ratio: r.accepted_ratio,
                ..Default::default()
            }
        })
        .collect()
}

/// Per chain (each chain's outputs together in `codes`, n·outputs × d): whether the mixture
/// reads every output as its true component, and the lowest α-rule score among them.
fn scored_chains(
    model: &AbsAeModel,
    rule: AlphaRule,
    codes: &[f32],
    truth: &[usize],
) -> Vec<(bool, f64)> {
    let per_code: Vec<(bool, f64)> = codes
        .chunks_exact(model.mixture.dim)
        .zip(truth)
        .map(|(z, &t)| {
            let ld = model.mixture.log_densities(z);
            (argmax(&ld) == t, rule.score(&ld))
        })
        .collect();
    per_code
        .chunks_exact(model.relations().outputs())
        .map(|o| (o.iter().all(|s| s.0), o.iter().map(|s| s.1).fold(f64::INFINITY, f64::min)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::FactorDataset;
    use crate::data::dsprites::{DspritesRenderer, SIDE};

    #[test]
    fn chains_split_by_how_their_start_was_read() {
        let (t, f) = (true, false);
        // Two of four starts read right; one of those two chains right.
        assert_eq!(split_by_start(&[t, f, t, f], &[t, t, f, f]), (0.5, Some(0.5)));
        assert_eq!(split_by_start(&[t, t, f], &[t, t, t]), (1.0, Some(2.0 / 3.0)));
        // No start read right: nothing to condition on.
        assert_eq!(split_by_start(&[t, f], &[f, f]), (0.0, None));
    }

    #[test]
    fn pixel_match_by_hand() {
        let a = [1.0, 1.0, 0.0, 0.0];
        let b = [1.0, 0.0, 1.0, 0.0];
        let (iou, mse) = pixel_match(&a, &b);
        assert_eq!(iou, 1.0 / 3.0);
        assert_eq!(mse, 0.5);
        assert_eq!(pixel_match(&[0.0; 4], &[0.2; 4]).0, 1.0, "two empty images agree");
    }

    #[test]
    fn a_counterfactual_moved_one_band_and_back_is_the_original_image() {
        let task = crate::tasks::by_name("dsprites").unwrap();
        let classes = vec![2, 3, 1, 4, 17];
        let start = task.component_of(&classes);
        let right = task.component_from_classes(&[2, 1, 1]);
        let there = task.move_to_component(&classes, right);
        assert_eq!(
            there,
            [2, 3, 1, 15, 17],
            "same shape, scale, rotation, y and offset in the band"
        );
        let back = task.move_to_component(&there, start);
        let render = |c: &[usize]| {
            let mut out = vec![0.0; SIDE * SIDE];
            assert!(DspritesRenderer.render_counterfactual(0, c, &mut out));
            out
        };
        assert_eq!(render(&back), render(&classes));
        let (iou, _) = pixel_match(&render(&there), &render(&classes));
        assert_eq!(iou, 0.0, "a band apart, the sprites do not overlap");
    }
}
