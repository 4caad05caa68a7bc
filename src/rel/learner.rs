//! The relational learner (ReL): an MLP that takes the codes of a relation's inputs and says
//! which relation to apply (a one-hot id, or the code of an operator component), and returns
//! the codes of the outputs. Here: its input rows, its training batches, its objective, and the
//! trained learner applied to codes.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rand::Rng;
use rand::seq::IndexedRandom;

use super::{Application, RelationSet};
use crate::config::RelObjective;
use crate::model::Mlp;
use crate::objectives::one_hot;
use crate::prior::{Mixture, MixtureTensors};

/// A trained ReL and the relations it learned, on a plain (inference) device.
#[derive(Clone, Debug)]
pub struct RelationalLearner {
    pub net: Mlp,
    pub relations: RelationSet,
    /// Latent dimensions of one code.
    pub dim: usize,
    /// Whether the first input's code is added to the network's output ([`forward`]).
    pub residual: bool,
    pub device: Device,
}

/// Rows the ReL takes per forward pass outside training.
const APPLY_BATCH: usize = 1024;

impl RelationalLearner {
    /// Width of one input row.
    pub fn input_width(&self) -> usize {
        self.relations.input_width(self.dim)
    }

    /// The ReL applied to input rows (n × input width): n × outputs·d codes.
    pub fn apply_rows(&self, rows: &[f32]) -> Vec<f32> {
        let width = self.input_width();
        let mut out = Vec::with_capacity(rows.len() / width * self.relations.outputs() * self.dim);
        for chunk in rows.chunks(APPLY_BATCH * width) {
            let input = relation_input(chunk, width, &self.device);
            let outputs = forward(&self.net, input, &self.relations, self.dim, self.residual);
            out.extend(outputs.into_data().try_into_vec::<f32>().expect("f32 codes"));
        }
        out
    }

    /// The ReL's outputs (n × outputs·d) for `applications`, the i-th taking code row i of
    /// `first` as its first input; further inputs and operator codes come from `draw`.
    pub fn apply<R: Rng>(
        &self,
        applications: &[Application],
        first: &[f32],
        draw: &mut impl FnMut(usize, &mut R) -> Vec<f32>,
        rng: &mut R,
    ) -> Vec<f32> {
        let mut rows = Vec::with_capacity(applications.len() * self.input_width());
        for (a, code) in applications.iter().zip(first.chunks_exact(self.dim)) {
            draw_relation_row(&self.relations, a, Some(code), &mut |c| draw(c, rng), &mut rows);
        }
        self.apply_rows(&rows)
    }
}

/// The ReL on input rows [n, width]: [n, outputs·d] output codes, the network's output plus,
/// when `residual`, the first input's code once for every output.
pub fn forward(
    net: &Mlp,
    input: Tensor<2>,
    relations: &RelationSet,
    dim: usize,
    residual: bool,
) -> Tensor<2> {
    let n = input.dims()[0];
    let first = residual.then(|| input.clone().slice([0..n, 0..dim]));
    let out = net.forward(input);
    match first {
        Some(first) => out + first.repeat_dim(1, relations.outputs()),
        None => out,
    }
}

/// ReL inputs for training: one application per row and its input row.
pub struct RelationBatch {
    /// n × [`RelationSet::input_width`] ReL inputs.
    pub inputs: Vec<f32>,
    pub applications: Vec<Application>,
    /// Per row, the code of its true counterfactual where one is known ([`RealCodes`]).
    pub counterfactuals: Vec<Option<Vec<f32>>>,
}

impl RelationBatch {
    /// The true output components of every row, each row's outputs together.
    pub fn targets(&self) -> Vec<usize> {
        self.applications.iter().flat_map(|a| a.outputs.iter().copied()).collect()
    }

    /// Every row's first input code transported to each of its output components (row-major,
    /// one code per output, in [`RelationBatch::targets`]' order).
    pub fn transported(&self, mixture: &Mixture) -> Vec<f32> {
        let width = self.inputs.len() / self.applications.len().max(1);
        self.applications
            .iter()
            .zip(self.inputs.chunks_exact(width))
            .flat_map(|(a, row)| {
                let first = &row[..mixture.dim];
                a.outputs.iter().flat_map(move |&t| mixture.transport(first, a.inputs[0], t))
            })
            .collect()
    }
}

/// Picks a relation and valid inputs uniformly at random per row and draws the input codes
/// (and operator codes) from their components.
pub fn sample_relation_batch(
    relations: &RelationSet,
    mixture: &Mixture,
    n: usize,
    rng: &mut impl Rng,
) -> RelationBatch {
    let width = relations.input_width(mixture.dim);
    let mut batch = RelationBatch {
        inputs: Vec::with_capacity(n * width),
        applications: Vec::with_capacity(n),
        counterfactuals: vec![None; n],
    };
    for _ in 0..n {
        let application = relations.sample(rng);
        draw_relation_row(
            relations,
            &application,
            None,
            &mut |c| mixture.sample(c, rng),
            &mut batch.inputs,
        );
        batch.applications.push(application);
    }
    batch
}

/// Codes of real images and their components (the true ones of labelled images, the
/// mixture's reading of unlabelled ones), for ReL rows built from real codes.
pub struct RealCodes {
    /// Row-major n×d.
    pub codes: Vec<f32>,
    pub components: Vec<usize>,
    /// The code of image j's true counterfactual under relation r at `j·R + r` (R relations),
    /// where the task can draw it (the image moved as the relation moves its component and
    /// encoded); empty when none are computed.
    pub counterfactuals: Vec<Option<Vec<f32>>>,
}

impl RealCodes {
    /// The code of image `j`'s counterfactual under `application`, if known.
    fn counterfactual(
        &self,
        j: usize,
        application: &Application,
        relations: usize,
    ) -> Option<&[f32]> {
        self.counterfactuals.get(j * relations + application.relation)?.as_deref()
    }
}

/// Replaces the first `m` rows of `batch` by rows built from encoded real images: the first
/// operand one chosen at random, with a random relation defined at its component, and any
/// further operand or operator code another image of its component, so the ReL learns to
/// take the codes real images have in every input.
pub fn replace_with_real_codes(
    batch: &mut RelationBatch,
    relations: &RelationSet,
    real: &RealCodes,
    mixture: &Mixture,
    m: usize,
    rng: &mut impl Rng,
) {
    let d = mixture.dim;
    let code = |j: usize| &real.codes[j * d..(j + 1) * d];
    let mut by_component = vec![Vec::new(); mixture.components()];
    for (j, &c) in real.components.iter().enumerate() {
        by_component[c].push(j);
    }
    let width = relations.input_width(d);
    for row in 0..m.min(batch.applications.len()) {
        let j = rng.random_range(0..real.components.len());
        let Some(application) = relations.continue_from(real.components[j], rng) else {
            continue;
        };
        let mut draw = |c: usize| match by_component[c].choose(rng) {
            Some(&k) => code(k).to_vec(),
            None => mixture.sample(c, rng),
        };
        let mut input = Vec::with_capacity(width);
        draw_relation_row(relations, &application, Some(code(j)), &mut draw, &mut input);
        batch.inputs[row * width..(row + 1) * width].copy_from_slice(&input);
        batch.counterfactuals[row] =
            real.counterfactual(j, &application, relations.len()).map(<[f32]>::to_vec);
        batch.applications[row] = application;
    }
}

/// Appends the ReL input row of `application` to `out`: the code of each input (the given
/// `first` code, or one drawn by `draw` from the input's component), then the operator's
/// code drawn likewise, or the relation's one-hot id.
pub fn draw_relation_row(
    relations: &RelationSet,
    application: &Application,
    first: Option<&[f32]>,
    draw: &mut impl FnMut(usize) -> Vec<f32>,
    out: &mut Vec<f32>,
) {
    let mut codes = Vec::new();
    for (i, &c) in application.inputs.iter().enumerate() {
        match (i, first) {
            (0, Some(code)) => codes.extend_from_slice(code),
            _ => codes.extend(draw(c)),
        }
    }
    let operator = relations.relations[application.relation].operator.map(&mut *draw);
    relation_row(relations, application.relation, &codes, operator.as_deref(), out);
}

/// Appends a ReL input row to `out`: the input codes side by side, then the operator's code
/// (for relations selected by their operator) or relation `relation`'s one-hot id.
pub fn relation_row(
    relations: &RelationSet,
    relation: usize,
    input_codes: &[f32],
    operator_code: Option<&[f32]>,
    out: &mut Vec<f32>,
) {
    out.extend_from_slice(input_codes);
    match operator_code {
        Some(code) => out.extend_from_slice(code),
        None => out.extend((0..relations.len()).map(|r| if r == relation { 1.0 } else { 0.0 })),
    }
}

/// ReL input rows as a tensor [n, width].
pub fn relation_input(rows: &[f32], width: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [rows.len() / width, width]), device)
}

/// The ReL's loss on its output codes `out` ([n, d], one row per output of `batch`): the
/// paper's NLL under the target component, (`mse`) the squared distance to a fresh sample of
/// it drawn from `rng`, as in the authors' code, or (`transport`) the squared distance to the
/// first input carried to the target component. The outputs that carry a counterfactual code
/// are scored by `centring` × that objective + (1 − `centring`) × the posterior's
/// cross-entropy: the objectives above pull every output to its component's centre (the NLL
/// under a prior shrunk tenfold most of all), away from the counterfactual code the
/// counterfactual term pulls it to, which sits wherever the image's nuisances put it; the
/// posterior only asks it to lie in the component's region. Some centring keeps chains of
/// relations from drifting.
pub fn objective(
    objective: RelObjective,
    out: Tensor<2>,
    batch: &RelationBatch,
    mixture: &Mixture,
    tensors: &MixtureTensors,
    centring: f64,
    rng: &mut impl Rng,
) -> Tensor<1> {
    let device = out.device();
    let targets = batch.targets();
    let onehot = || one_hot(&targets, mixture.components(), &device);
    let per_output = match objective {
        RelObjective::Mse => squared_distances(
            out.clone(),
            targets.iter().flat_map(|&t| mixture.sample(t, rng)).collect(),
        ),
        RelObjective::Transport => squared_distances(out.clone(), batch.transported(mixture)),
        RelObjective::Nll => (tensors.log_densities(out.clone()) * onehot()).sum_dim(1).neg(),
    };
    // Full centring is the paper's objective, left untouched so it trains bit for bit as before;
    // so is a batch without counterfactual codes (prior samples only, as before the autoencoder
    // stops).
    if centring >= 1.0 || batch.counterfactuals.iter().all(Option::is_none) {
        return per_output.mean();
    }
    let per_row = out.dims()[0] / batch.applications.len().max(1);
    let freed = counterfactual_outputs(batch, per_row, &device).mul_scalar(1.0 - centring);
    let cross_entropy = (log_softmax(tensors.log_densities(out), 1) * onehot()).sum_dim(1).neg();
    (per_output * freed.clone().neg().add_scalar(1.0) + cross_entropy * freed).mean()
}

/// A column [n·per_row, 1] (`per_row` outputs per row of `batch`) that is 1 at the outputs
/// carrying a counterfactual code (each such row's first, as [`counterfactual_loss`] reads
/// them) and 0 elsewhere.
fn counterfactual_outputs(batch: &RelationBatch, per_row: usize, device: &Device) -> Tensor<2> {
    let outputs = batch.applications.len() * per_row;
    let mut carried = vec![0.0f32; outputs];
    for (i, code) in batch.counterfactuals.iter().enumerate() {
        if code.is_some() {
            carried[i * per_row] = 1.0;
        }
    }
    Tensor::<2>::from_data(TensorData::new(carried, [outputs, 1]), device)
}

/// Mean squared distance between the ReL's outputs `out` ([n·outputs, d], row i's outputs
/// from row i·outputs) and the counterfactual codes of the rows that have one; None when no
/// row has one. Only single-output applications carry one, so each is its row's first output.
pub fn counterfactual_loss(out: Tensor<2>, batch: &RelationBatch) -> Option<Tensor<1>> {
    let outputs = out.dims()[0] / batch.applications.len().max(1);
    let (mut positions, mut targets) = (Vec::new(), Vec::new());
    for (i, code) in batch.counterfactuals.iter().enumerate() {
        if let Some(code) = code {
            positions.push((i * outputs) as i64);
            targets.extend_from_slice(code);
        }
    }
    if positions.is_empty() {
        return None;
    }
    let n = positions.len();
    let rows = Tensor::<1, Int>::from_data(TensorData::new(positions, [n]), &out.device());
    Some(mean_squared_distance(out.select(0, rows), targets))
}

/// Mean over the rows of `out` ([n, d]) of the squared distance to the codes `target`
/// (row-major n×d).
fn mean_squared_distance(out: Tensor<2>, target: Vec<f32>) -> Tensor<1> {
    squared_distances(out, target).mean()
}

/// The squared distance of each row of `out` ([n, d]) to its code in `target` (row-major
/// n×d), as a column [n, 1].
fn squared_distances(out: Tensor<2>, target: Vec<f32>) -> Tensor<2> {
    let dims = out.dims();
    let target = Tensor::<2>::from_data(TensorData::new(target, dims), &out.device());
    (out - target).powi_scalar(2).sum_dim(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for drawing codes: every value of the code is the component's index.
    fn code_of(c: usize) -> Vec<f32> {
        vec![c as f32; 2]
    }

    #[test]
    fn binary_rows_hold_both_operands_and_the_operator_code() {
        let set = RelationSet::for_task(&crate::tasks::by_name("hwf").unwrap(), &[]).unwrap();
        let sub = set.application(set.position("sub").unwrap(), vec![3, 4]);
        let mut row = Vec::new();
        draw_relation_row(&set, &sub, Some(&[0.5, 0.5]), &mut code_of, &mut row);
        assert_eq!(
            row,
            [0.5, 0.5, 4.0, 4.0, 11.0, 11.0],
            "chain code, operand 4, the `-` component's code"
        );
        assert_eq!(row.len(), set.input_width(2));
        row.clear();
        draw_relation_row(&set, &sub, None, &mut code_of, &mut row);
        assert_eq!(row, [3.0, 3.0, 4.0, 4.0, 11.0, 11.0]);
    }

    /// dSprites' relations and a 2-d mixture over its components: component c's mean is
    /// `mean(c)`, every covariance factor `cholesky`.
    fn dsprites_with_mixture(
        mean: impl Fn(f64) -> [f64; 2],
        cholesky: [f64; 4],
    ) -> (RelationSet, Mixture) {
        let task = crate::tasks::by_name("dsprites").unwrap();
        let k = task.components();
        let mixture = Mixture {
            dim: 2,
            means: (0..k).map(|c| mean(c as f64).to_vec()).collect(),
            cholesky: vec![cholesky.to_vec(); k],
            log_weight_ratios: Vec::new(),
        };
        (RelationSet::for_task(&task, &[]).unwrap(), mixture)
    }

    #[test]
    fn transport_loss_vanishes_only_at_the_carried_codes() {
        let (set, mixture) = dsprites_with_mixture(|c| [c, -c], [0.5, 0.0, 0.1, 0.3]);
        let mut rng = crate::rng::stream(1, crate::rng::Stream::Relation, 0);
        let batch = sample_relation_batch(&set, &mixture, 16, &mut rng);
        let device = Device::default();
        let mut loss = |codes: Vec<f32>| {
            let out = Tensor::<2>::from_data(TensorData::new(codes, [16, 2]), &device);
            let tensors = mixture.tensors(&device);
            let l =
                objective(RelObjective::Transport, out, &batch, &mixture, &tensors, 1.0, &mut rng);
            l.into_data().try_into_vec::<f32>().unwrap()[0]
        };
        let carried = batch.transported(&mixture);
        // Same covariance everywhere: carrying moves a code by the difference of the means.
        let rows = batch.applications.iter().zip(batch.inputs.chunks_exact(7));
        for (i, (a, row)) in rows.enumerate() {
            let shift = a.outputs[0] as f32 - a.inputs[0] as f32;
            let want = [row[0] + shift, row[1] - shift];
            let got = &carried[i * 2..i * 2 + 2];
            assert!((got[0] - want[0]).abs() < 1e-4 && (got[1] - want[1]).abs() < 1e-4, "{i}");
        }
        assert!(loss(carried.clone()) < 1e-10);
        let shifted: Vec<f32> = carried.iter().map(|v| v + 0.5).collect();
        assert!((loss(shifted) - 0.5).abs() < 1e-5, "two dimensions each 0.5² off");
    }

    /// Rows built from a real image carry its counterfactual code under the row's relation,
    /// prior-sample rows none; the loss is the mean squared distance over the rows that do.
    #[test]
    fn real_rows_carry_their_counterfactual_and_the_loss_reads_only_those() {
        let (set, mixture) = dsprites_with_mixture(|c| [c, 0.0], [0.1, 0.0, 0.0, 0.1]);
        // One real image of component 4; its counterfactual under relation r is (r, 100 + r).
        let real = RealCodes {
            codes: vec![4.0, 0.0],
            components: vec![4],
            counterfactuals: (0..set.len())
                .map(|r| Some(vec![r as f32, 100.0 + r as f32]))
                .collect(),
        };
        let mut rng = crate::rng::stream(2, crate::rng::Stream::Relation, 0);
        let mut batch = sample_relation_batch(&set, &mixture, 8, &mut rng);
        replace_with_real_codes(&mut batch, &set, &real, &mixture, 3, &mut rng);
        for (row, (a, c)) in batch.applications.iter().zip(&batch.counterfactuals).enumerate() {
            match c {
                Some(c) => {
                    assert!(row < 3, "only replaced rows");
                    assert_eq!(c, &vec![a.relation as f32, 100.0 + a.relation as f32]);
                }
                None => assert!(row >= 3, "row {row} was built from the real image"),
            }
        }
        let device = Device::default();
        let out: Vec<f32> = (0..8).flat_map(|i| [i as f32, 0.0]).collect();
        let loss = |out: Vec<f32>| {
            let out = Tensor::<2>::from_data(TensorData::new(out, [8, 2]), &device);
            counterfactual_loss(out, &batch).unwrap().into_data().try_to_vec::<f32>().unwrap()[0]
        };
        let want: f32 = (0..3)
            .map(|i| {
                let r = batch.applications[i].relation as f32;
                (i as f32 - r).powi(2) + (100.0 + r).powi(2)
            })
            .sum::<f32>()
            / 3.0;
        assert!((loss(out) - want).abs() < 1e-2 * want, "mean over the three real rows");
        batch.counterfactuals.iter_mut().for_each(|c| *c = None);
        let out = Tensor::<2>::zeros([8, 2], &device);
        assert!(counterfactual_loss(out, &batch).is_none());
    }

    /// An output carrying a counterfactual code is scored by `centring` × its NLL + (1 −
    /// `centring`) × the posterior's cross-entropy, every other one by the NLL alone (slow
    /// reference: the mixture's own densities in f64).
    #[test]
    fn outputs_with_a_counterfactual_mix_the_nll_and_the_posterior_by_centring() {
        let (set, mixture) = dsprites_with_mixture(|c| [c, 0.0], [0.3, 0.0, 0.1, 0.4]);
        let real = RealCodes {
            codes: vec![4.0, 0.0],
            components: vec![4],
            counterfactuals: vec![Some(vec![0.0, 0.0]); set.len()],
        };
        let mut rng = crate::rng::stream(3, crate::rng::Stream::Relation, 0);
        let mut batch = sample_relation_batch(&set, &mixture, 8, &mut rng);
        replace_with_real_codes(&mut batch, &set, &real, &mixture, 3, &mut rng);
        // Off the means' line, so every density is small and the two scores differ.
        let out: Vec<f32> = (0..8).flat_map(|i| [i as f32 * 0.7, 1.5 - i as f32 * 0.1]).collect();
        let device = Device::default();
        let tensors = mixture.tensors(&device);
        let mut loss = |centring| {
            let codes = Tensor::<2>::from_data(TensorData::new(out.clone(), [8, 2]), &device);
            let l =
                objective(RelObjective::Nll, codes, &batch, &mixture, &tensors, centring, &mut rng);
            l.into_data().try_into_vec::<f32>().unwrap()[0] as f64
        };
        let (mut nll, mut posterior) = (0.0, 0.0);
        for (i, &t) in batch.targets().iter().enumerate() {
            let ld = mixture.log_densities(&out[2 * i..2 * i + 2]);
            let top = ld.iter().cloned().fold(f64::MIN, f64::max);
            let log_sum = top + ld.iter().map(|l| (l - top).exp()).sum::<f64>().ln();
            nll += -ld[t] / 8.0;
            let score = if i < 3 { log_sum - ld[t] } else { -ld[t] };
            posterior += score / 8.0;
        }
        let close = |got: f64, want: f64| (got - want).abs() < 1e-4 * want.abs().max(1.0);
        for centring in [1.0, 0.25, 0.0] {
            let want = centring * nll + (1.0 - centring) * posterior;
            assert!(close(loss(centring), want), "{centring}: {} vs {want}", loss(centring));
        }
        assert!(nll - posterior > 1.0, "the three real rows' NLLs exceed their cross-entropies");
    }

    #[test]
    fn a_residual_learner_adds_the_first_code_to_every_output() {
        let set = RelationSet::for_task(&crate::tasks::by_name("hwf").unwrap(), &[]).unwrap();
        let (d, device) = (2, Device::default());
        let net = Mlp::new(set.input_width(d), 8, 1, set.outputs() * d, &device);
        let rows: Vec<f32> = (0..3 * set.input_width(d)).map(|i| (i as f32 * 0.7).sin()).collect();
        let run = |residual| {
            let input = relation_input(&rows, set.input_width(d), &device);
            forward(&net, input, &set, d, residual).into_data().try_into_vec::<f32>().unwrap()
        };
        let (plain, residual) = (run(false), run(true));
        let width = set.outputs() * d;
        for (i, (p, r)) in plain.chunks(width).zip(residual.chunks(width)).enumerate() {
            let first = &rows[i * set.input_width(d)..][..d];
            for (j, (p, r)) in p.iter().zip(r).enumerate() {
                assert!((r - p - first[j % d]).abs() < 1e-6, "row {i}, value {j}");
            }
        }
    }

    #[test]
    fn unary_rows_end_in_the_relation_one_hot() {
        let set = RelationSet::for_task(&crate::tasks::by_name("dsprites").unwrap(), &[]).unwrap();
        let right = set.position("move_right").unwrap();
        let mut row = Vec::new();
        draw_relation_row(&set, &set.application(right, vec![7]), None, &mut code_of, &mut row);
        let mut want = vec![7.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        want[2 + right] = 1.0;
        assert_eq!(row, want);
    }
}
