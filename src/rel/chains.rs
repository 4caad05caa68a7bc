//! Relation chains: `depth` random valid relations applied in a row by the ReL, each output
//! fed back in as the next step's first input, with the true component tracked alongside.

use rand::Rng;

use super::{Application, RelationalLearner};
use crate::prior::Mixture;

/// Where chains end: every output of each chain's last step (n·outputs × d codes and
/// n·outputs true components), and each chain's steps.
pub struct Walk {
    pub codes: Vec<f32>,
    pub truth: Vec<usize>,
    pub steps: Vec<Vec<Application>>,
}

/// Starts `n` chains at codes drawn from uniformly chosen components where a relation starts
/// and walks `depth` random steps, further operands drawn from the prior.
pub fn run_chains(
    learner: &RelationalLearner,
    mixture: &Mixture,
    depth: usize,
    n: usize,
    rng: &mut impl Rng,
) -> Walk {
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
/// last output; a chain whose carried component starts no relation stops there. Every chain
/// must start a relation.
pub fn walk_chains<R: Rng>(
    learner: &RelationalLearner,
    mut codes: Vec<f32>,
    mut truth: Vec<usize>,
    depth: usize,
    draw: &mut impl FnMut(usize, &mut R) -> Vec<f32>,
    rng: &mut R,
) -> Walk {
    assert!(depth >= 1, "a chain applies at least one relation");
    let (d, outputs) = (learner.dim, learner.relations.outputs());
    let n = truth.len();
    let (mut last, mut last_truth) = (vec![0.0; n * outputs * d], vec![0; n * outputs]);
    let mut steps = vec![Vec::new(); n];
    for step in 1..=depth {
        let next: Vec<Option<Application>> =
            truth.iter().map(|&c| learner.relations.continue_from(c, rng)).collect();
        let moving: Vec<usize> = (0..n).filter(|&i| next[i].is_some()).collect();
        assert!(step > 1 || moving.len() == n, "every chain starts a relation");
        if moving.is_empty() {
            break;
        }
        let applications: Vec<Application> =
            moving.iter().map(|&i| next[i].clone().expect("moving")).collect();
        let first: Vec<f32> =
            moving.iter().flat_map(|&i| codes[i * d..(i + 1) * d].iter().copied()).collect();
        let out = learner.apply(&applications, &first, draw, rng);
        for ((&i, row), application) in
            moving.iter().zip(out.chunks_exact(outputs * d)).zip(&applications)
        {
            last[i * outputs * d..(i + 1) * outputs * d].copy_from_slice(row);
            last_truth[i * outputs..(i + 1) * outputs].copy_from_slice(&application.outputs);
            codes[i * d..(i + 1) * d].copy_from_slice(&row[(outputs - 1) * d..]);
            truth[i] = application.carried();
            steps[i].push(application.clone());
        }
    }
    Walk { codes: last, truth: last_truth, steps }
}
