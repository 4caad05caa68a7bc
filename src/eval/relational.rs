//! Relational accuracy (SPEC §6): chains of random valid relations applied by the ReL to codes
//! drawn from the prior; the final code is classified under the α rule.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use super::classification::row_at;
use super::{ALPHAS, DEPTHS};
use crate::inference::{AbsAeModel, Run};
use crate::prior::{AlphaRule, argmax};
use crate::rel::chains::{run_chains, walk_chains};
use crate::rng::{Stream, stream};

/// Relational accuracy at one depth and α.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RelationalRow {
    pub depth: usize,
    pub alpha: f64,
    pub accuracy: Option<f64>,
    pub accepted_ratio: f64,
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
        let (codes, truth) = run_chains(&model.learner, &model.mixture, depth, chains, &mut rng);
        rows.extend(score_rows(model, rule, depth, &codes, &truth));
    }
    rows
}

/// The image-level check (SPEC §6): chains start at encoded test images, further operands
/// and operator codes are encoded test images of their components, and every final code is
/// decoded, the decoded image re-encoded, and that code classified.
pub fn relational_image_accuracy(
    run: &Run,
    model: &AbsAeModel,
    rule: AlphaRule,
    chains: usize,
) -> Vec<RelationalRow> {
    let components = &run.ctx.data.components;
    let relations = model.relations();
    let starts: Vec<usize> = run
        .test()
        .iter()
        .copied()
        .filter(|&i| !relations.valid_at(components[i]).is_empty())
        .collect();
    let mut pool = CodePool::of_test_images(run, model);
    let mut rows = Vec::new();
    for &depth in &DEPTHS {
        // Offset the step so these chains do not replay the prior-sample chains' choices.
        let mut rng = stream(run.ctx.config.seed, Stream::Eval, IMAGE_CHAIN_STREAM + depth as u64);
        let items: Vec<usize> = (0..chains)
            .map(|_| *starts.choose(&mut rng).expect("a test image starts a relation"))
            .collect();
        let truth: Vec<usize> = items.iter().map(|&i| components[i]).collect();
        let codes = run.encode_items(&items);
        let (codes, truth) = walk_chains(
            &model.learner,
            codes,
            truth,
            depth,
            &mut |c, rng| pool.draw(c, rng),
            &mut rng,
        );
        let recoded = run.encode_pixels(&run.decode(&codes));
        rows.extend(score_rows(model, rule, depth, &recoded, &truth));
    }
    rows
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

/// Rows for every α of final codes (n·outputs × d, each chain's outputs together) against
/// their true components: a chain is right when all its outputs are, and accepted when all are.
fn score_rows(
    model: &AbsAeModel,
    rule: AlphaRule,
    depth: usize,
    codes: &[f32],
    truth: &[usize],
) -> Vec<RelationalRow> {
    let outputs = model.relations().outputs();
    let per_code: Vec<(bool, f64)> = codes
        .chunks_exact(model.mixture.dim)
        .zip(truth)
        .map(|(z, &t)| {
            let ld = model.mixture.log_densities(z);
            (argmax(&ld) == t, rule.score(&ld))
        })
        .collect();
    let scored: Vec<(bool, f64)> = per_code
        .chunks_exact(outputs)
        .map(|o| (o.iter().all(|s| s.0), o.iter().map(|s| s.1).fold(f64::INFINITY, f64::min)))
        .collect();
    ALPHAS
        .iter()
        .map(|&alpha| {
            let r = row_at(alpha, &scored);
            RelationalRow { depth, alpha, accuracy: r.accuracy, accepted_ratio: r.accepted_ratio }
        })
        .collect()
}
