//! Relational accuracy (SPEC §6): chains of random valid relations applied by the ReL to codes
//! drawn from the prior; the final code is classified under the α rule.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use super::classification::row_at;
use super::{ALPHAS, DEPTHS, TrainedModel};
use crate::prior::{AlphaRule, argmax};
use crate::rng::{Stream, stream};
use crate::train::relation_input;

/// Relational accuracy at one depth and α.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RelationalRow {
    pub depth: usize,
    pub alpha: f64,
    pub accuracy: Option<f64>,
    pub accepted_ratio: f64,
}

/// Relational accuracy for every depth of [`DEPTHS`] and α of [`ALPHAS`], from `chains`
/// chains per depth that start at codes drawn from the prior.
pub fn relational_accuracy(model: &TrainedModel, rule: AlphaRule, chains: usize) -> Vec<RelationalRow> {
    let mut rows = Vec::new();
    for &depth in &DEPTHS {
        let mut rng = stream(model.config.seed, Stream::Eval, depth as u64);
        let (codes, truth) = run_chains(model, depth, chains, &mut rng);
        rows.extend(score_rows(model, rule, depth, &codes, &truth));
    }
    rows
}

/// The image-level check (SPEC §6): chains start at encoded test images, and the final code
/// is decoded, the decoded image re-encoded, and that code classified.
pub fn relational_image_accuracy(model: &TrainedModel, rule: AlphaRule, chains: usize) -> Vec<RelationalRow> {
    let mut rows = Vec::new();
    for &depth in &DEPTHS {
        // Offset the step so these chains do not replay the prior-sample chains' choices.
        let mut rng = stream(model.config.seed, Stream::Eval, IMAGE_CHAIN_STREAM + depth as u64);
        let items: Vec<usize> = (0..chains).map(|_| *model.test.choose(&mut rng).expect("a test image")).collect();
        let truth: Vec<usize> = items.iter().map(|&i| model.data.components[i]).collect();
        let (codes, truth) = walk_chains(model, model.encode_items(&items), truth, depth, &mut rng);
        let recoded = model.encode_pixels(&model.decode(&codes));
        rows.extend(score_rows(model, rule, depth, &recoded, &truth));
    }
    rows
}

const IMAGE_CHAIN_STREAM: u64 = 1000;

/// Rows for every α of codes (n×d) against their true components.
fn score_rows(model: &TrainedModel, rule: AlphaRule, depth: usize, codes: &[f32], truth: &[usize]) -> Vec<RelationalRow> {
    let scored: Vec<(bool, f64)> = codes
        .chunks_exact(model.mixture.dim)
        .zip(truth)
        .map(|(z, &t)| {
            let ld = model.mixture.log_densities(z);
            (argmax(&ld) == t, rule.score(&ld))
        })
        .collect();
    ALPHAS
        .iter()
        .map(|&alpha| {
            let r = row_at(alpha, &scored);
            RelationalRow { depth, alpha, accuracy: r.accuracy, accepted_ratio: r.accepted_ratio }
        })
        .collect()
}

/// Starts `n` chains at codes drawn from uniformly chosen components and applies `depth`
/// random relations valid for each chain's true component. Returns final codes and truths.
pub fn run_chains(model: &TrainedModel, depth: usize, n: usize, rng: &mut impl Rng) -> (Vec<f32>, Vec<usize>) {
    let k = model.mixture.components();
    let truth: Vec<usize> = (0..n).map(|_| rng.random_range(0..k)).collect();
    let codes: Vec<f32> = truth.iter().flat_map(|&c| model.mixture.sample(c, rng)).collect();
    walk_chains(model, codes, truth, depth, rng)
}

/// Applies `depth` random relations, each valid for its chain's current true component, to
/// every code row; returns the final codes and true components.
pub fn walk_chains(model: &TrainedModel, mut codes: Vec<f32>, mut truth: Vec<usize>, depth: usize, rng: &mut impl Rng) -> (Vec<f32>, Vec<usize>) {
    for _ in 0..depth {
        let ids: Vec<usize> = truth.iter().map(|&c| *model.relations.valid_at(c).choose(rng).expect("a relation is valid")).collect();
        codes = apply_relations(model, &codes, &ids);
        truth = truth.iter().zip(&ids).map(|(&c, &r)| model.relations.relations[r].apply(c).expect("valid")).collect();
    }
    (codes, truth)
}

/// One ReL application per row: relation `ids[i]` to code row `i`.
pub fn apply_relations(model: &TrainedModel, codes: &[f32], ids: &[usize]) -> Vec<f32> {
    let d = model.mixture.dim;
    let mut out = Vec::with_capacity(codes.len());
    for (chunk, id_chunk) in codes.chunks(1024 * d).zip(ids.chunks(1024)) {
        let input = relation_input(chunk, id_chunk, model.relations.len(), d, &model.device);
        out.extend(model.rel.forward(input).into_data().try_into_vec::<f32>().expect("f32 codes"));
    }
    out
}
