//! Relation chains: `depth` random valid relations applied in a row by the ReL, each output
//! fed back in as the next step's first input, with the true component tracked alongside.

use rand::Rng;

use super::{Application, RelationalLearner};
use crate::prior::Mixture;

/// Starts `n` chains at codes drawn from uniformly chosen components where a relation starts
/// and walks `depth` random steps, further operands drawn from the prior. Returns the final
/// codes and truths (see [`walk_chains`]).
pub fn run_chains(
    learner: &RelationalLearner,
    mixture: &Mixture,
    depth: usize,
    n: usize,
    rng: &mut impl Rng,
) -> (Vec<f32>, Vec<usize>) {
    let relations = &learner.relations;
    let starts: Vec<usize> =
        (0..mixture.components()).filter(|&c| !relations.valid_at(c).is_empty()).collect();
    let truth: Vec<usize> = (0..n).map(|_| starts[rng.random_range(0..starts.len())]).collect();
    let codes: Vec<f32> = truth.iter().flat_map(|&c| mixture.sample(c, rng)).collect();
    walk_chains(learner, codes, truth, depth, &mut |c, rng| mixture.sample(c, rng), rng)
}

/// Applies `depth` random relations to every code row, each defined at its chain's current
/// true component (a binary relation takes the chain's code as its first operand and a
/// further operand of a random digit, drawn by `draw`). Between steps a chain carries on its
/// last output; the result holds every output of the final step (n·outputs × d codes and
/// n·outputs true components).
pub fn walk_chains<R: Rng>(
    learner: &RelationalLearner,
    mut codes: Vec<f32>,
    mut truth: Vec<usize>,
    depth: usize,
    draw: &mut impl FnMut(usize, &mut R) -> Vec<f32>,
    rng: &mut R,
) -> (Vec<f32>, Vec<usize>) {
    assert!(depth >= 1, "a chain applies at least one relation");
    let (d, outputs) = (learner.dim, learner.relations.outputs());
    for step in 1..=depth {
        let applications: Vec<Application> = truth
            .iter()
            .map(|&c| {
                learner
                    .relations
                    .continue_from(c, rng)
                    .expect("every carried output starts a relation")
            })
            .collect();
        let out = learner.apply(&applications, &codes, draw, rng);
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
