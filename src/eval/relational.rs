//! Relational accuracy (SPEC §6): chains of random valid relations applied by the ReL to codes
//! drawn from the prior; the final code is classified under the α rule.

use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use super::classification::row_at;
use super::{ALPHAS, DEPTHS, TrainedModel};
use crate::prior::{AlphaRule, argmax};
use crate::relations::Application;
use crate::rng::{Stream, stream};
use crate::train::{draw_relation_row, relation_input};

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
    model: &TrainedModel,
    rule: AlphaRule,
    chains: usize,
) -> Vec<RelationalRow> {
    let mut rows = Vec::new();
    for &depth in &DEPTHS {
        let mut rng = stream(model.config.seed, Stream::Eval, depth as u64);
        let (codes, truth) = run_chains(model, depth, chains, &mut rng);
        rows.extend(score_rows(model, rule, depth, &codes, &truth));
    }
    rows
}

/// The image-level check (SPEC §6): chains start at encoded test images, further operands
/// and operator codes are encoded test images of their components, and every final code is
/// decoded, the decoded image re-encoded, and that code classified.
pub fn relational_image_accuracy(
    model: &TrainedModel,
    rule: AlphaRule,
    chains: usize,
) -> Vec<RelationalRow> {
    let starts: Vec<usize> = model
        .test
        .iter()
        .copied()
        .filter(|&i| !model.relations.valid_at(model.data.components[i]).is_empty())
        .collect();
    let mut pool = CodePool::of_test_images(model);
    let mut rows = Vec::new();
    for &depth in &DEPTHS {
        // Offset the step so these chains do not replay the prior-sample chains' choices.
        let mut rng = stream(model.config.seed, Stream::Eval, IMAGE_CHAIN_STREAM + depth as u64);
        let items: Vec<usize> = (0..chains)
            .map(|_| *starts.choose(&mut rng).expect("a test image starts a relation"))
            .collect();
        let truth: Vec<usize> = items.iter().map(|&i| model.data.components[i]).collect();
        let (codes, truth) = walk_chains(
            model,
            model.encode_items(&items),
            truth,
            depth,
            &mut |c, rng| pool.draw(c, rng),
            &mut rng,
        );
        let recoded = model.encode_pixels(&model.decode(&codes));
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
    model: &'a TrainedModel,
    codes: Option<Vec<Vec<Vec<f32>>>>,
}

impl<'a> CodePool<'a> {
    fn of_test_images(model: &'a TrainedModel) -> Self {
        CodePool { model, codes: None }
    }

    fn draw(&mut self, component: usize, rng: &mut impl Rng) -> Vec<f32> {
        let model = self.model;
        let codes = self.codes.get_or_insert_with(|| {
            let d = model.mixture.dim;
            let pool = |items: &[usize]| {
                model
                    .encode_items(&items[..items.len().min(POOL_PER_COMPONENT)])
                    .chunks_exact(d)
                    .map(<[f32]>::to_vec)
                    .collect()
            };
            model.test_items_by_component().iter().map(|items| pool(items)).collect()
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
    model: &TrainedModel,
    rule: AlphaRule,
    depth: usize,
    codes: &[f32],
    truth: &[usize],
) -> Vec<RelationalRow> {
    let outputs = model.relations.outputs();
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

/// Starts `n` chains at codes drawn from uniformly chosen components where a relation starts
/// and walks `depth` random steps, further operands drawn from the prior. Returns the final
/// codes and truths (see [`walk_chains`]).
pub fn run_chains(
    model: &TrainedModel,
    depth: usize,
    n: usize,
    rng: &mut impl Rng,
) -> (Vec<f32>, Vec<usize>) {
    let starts: Vec<usize> = (0..model.mixture.components())
        .filter(|&c| !model.relations.valid_at(c).is_empty())
        .collect();
    let truth: Vec<usize> = (0..n).map(|_| starts[rng.random_range(0..starts.len())]).collect();
    let codes: Vec<f32> = truth.iter().flat_map(|&c| model.mixture.sample(c, rng)).collect();
    walk_chains(model, codes, truth, depth, &mut |c, rng| model.mixture.sample(c, rng), rng)
}

/// Applies `depth` random relations to every code row, each defined at its chain's current
/// true component (a binary relation takes the chain's code as its first operand and a
/// further operand of a random digit, drawn by `draw`). Between steps a chain carries on its
/// last output; the result holds every output of the final step (n·outputs × d codes and
/// n·outputs true components).
pub fn walk_chains<R: Rng>(
    model: &TrainedModel,
    mut codes: Vec<f32>,
    mut truth: Vec<usize>,
    depth: usize,
    draw: &mut impl FnMut(usize, &mut R) -> Vec<f32>,
    rng: &mut R,
) -> (Vec<f32>, Vec<usize>) {
    assert!(depth >= 1, "a chain applies at least one relation");
    let (d, outputs) = (model.mixture.dim, model.relations.outputs());
    for step in 1..=depth {
        let applications: Vec<Application> = truth
            .iter()
            .map(|&c| {
                model
                    .relations
                    .continue_from(c, rng)
                    .expect("every carried output starts a relation")
            })
            .collect();
        let out = apply_applications(model, &applications, &codes, draw, rng);
        if step == depth {
            return (out, applications.iter().flat_map(|a| a.outputs.iter().copied()).collect());
        }
        codes = out
            .chunks_exact(outputs * d)
            .flat_map(|row| row[(outputs - 1) * d..].iter().copied())
            .collect();
        truth = applications.iter().map(Application::carried).collect();
    }
    unreachable!("the loop returns at its last step")
}

/// The ReL's outputs (n × outputs·d) for `applications`, the i-th taking code row i of
/// `first` as its first input; further inputs and operator codes come from `draw`.
pub fn apply_applications<R: Rng>(
    model: &TrainedModel,
    applications: &[Application],
    first: &[f32],
    draw: &mut impl FnMut(usize, &mut R) -> Vec<f32>,
    rng: &mut R,
) -> Vec<f32> {
    let d = model.mixture.dim;
    let mut rows = Vec::with_capacity(applications.len() * model.relations.input_width(d));
    for (a, code) in applications.iter().zip(first.chunks_exact(d)) {
        draw_relation_row(&model.relations, a, Some(code), &mut |c| draw(c, rng), &mut rows);
    }
    apply_rows(model, &rows)
}

/// The ReL applied to input rows (n × input width): n × outputs·d codes.
pub fn apply_rows(model: &TrainedModel, rows: &[f32]) -> Vec<f32> {
    let width = model.relations.input_width(model.mixture.dim);
    let mut out =
        Vec::with_capacity(rows.len() / width * model.relations.outputs() * model.mixture.dim);
    for chunk in rows.chunks(1024 * width) {
        out.extend(
            model
                .rel
                .forward(relation_input(chunk, width, &model.device))
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32 codes"),
        );
    }
    out
}
