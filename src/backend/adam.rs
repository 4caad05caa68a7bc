//! Adam with each parameter's whole update in one pass over its memory on Flex.
//!
//! burn's `Adam` updates a parameter through about a dozen tensor operations (two moment
//! blends, a square, a square root, a division, the scaled subtraction), each a pass over the
//! parameter's memory and, on Flex, a fresh allocation. [`FusedAdam`] computes the same update
//! — burn's formula and order of f32 operations, and burn's state type, so checkpoints are
//! unchanged — in one loop that rewrites the parameter and both moments in place. Off Flex it
//! is burn's `Adam` itself, so the GPU path never sees this code.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, GradientsParams, LearningRate,
    ModuleOptimizer, Optimizer,
};
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

use super::on_flex;

/// Elements per parallel task: large enough that a task outweighs its scheduling.
const CHUNK: usize = 1 << 14;

/// Adam's hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamSettings {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

impl AdamSettings {
    /// burn's defaults but ε = 1e-8 (PyTorch's, and the paper's code's): every network of ours
    /// but FactorVAE's discriminator.
    pub const DEFAULT: AdamSettings = AdamSettings { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-8 };

    /// The module optimiser: [`FusedAdam`] with these settings.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(FusedAdam { settings: self, burn: self.burn_config().build() })
    }

    /// burn's Adam with these settings: what [`FusedAdam`] computes.
    pub fn burn_config(self) -> AdamConfig {
        AdamConfig::new()
            .with_beta_1(self.beta_1)
            .with_beta_2(self.beta_2)
            .with_epsilon(self.epsilon)
    }
}

/// The optimiser of every network of ours but FactorVAE's discriminator.
pub fn adam() -> ModuleOptimizer {
    AdamSettings::DEFAULT.init()
}

/// One step of `optimizer` down `loss`'s gradient, updating `module` in place.
///
/// The usual `module = optimizer.step(lr, module.clone(), grads)` keeps the old parameters
/// alive while the new ones are written, so the fused kernel must copy every parameter first
/// (3% of a ReL update). Moving the module out needs something to leave in its place while
/// the step runs; `replace_with` aborts rather than leave a moved-from module behind if the
/// step panics.
pub fn descend<M: Module>(
    optimizer: &mut ModuleOptimizer,
    lr: LearningRate,
    module: &mut M,
    loss: Tensor<1>,
) {
    let grads = GradientsParams::from_grads(loss.backward(), module);
    replace_with::replace_with_or_abort(module, |m| optimizer.step(lr, m, grads));
}

/// The scalars of one Adam step at `time` (1 for the first), computed as burn computes them.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    settings: AdamSettings,
    lr: f32,
    /// √(1 − β₂ᵗ) / (1 − β₁ᵗ): both bias corrections folded into the first moment's factor.
    moment_factor: f32,
    /// ε·√(1 − β₂ᵗ): ε moved inside the uncorrected square root.
    epsilon: f32,
}

impl AdamStep {
    pub fn new(settings: AdamSettings, lr: LearningRate, time: usize) -> AdamStep {
        let t = time as i32;
        let correction_2 = (1.0 - settings.beta_2.powi(t)).sqrt();
        AdamStep {
            settings,
            lr: lr as f32,
            moment_factor: correction_2 / (1.0 - settings.beta_1.powi(t)),
            epsilon: settings.epsilon * correction_2,
        }
    }

    /// Updates `param` and both moments in place with `grad`.
    pub fn apply(
        &self,
        param: &mut [f32],
        grad: &[f32],
        moment_1: &mut [f32],
        moment_2: &mut [f32],
    ) {
        let AdamSettings { beta_1, beta_2, .. } = self.settings;
        let (blend_1, blend_2) = (1.0 - beta_1, 1.0 - beta_2);
        param
            .par_chunks_mut(CHUNK)
            .zip(moment_1.par_chunks_mut(CHUNK))
            .zip(moment_2.par_chunks_mut(CHUNK))
            .zip(grad.par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| {
                for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
                    *m = *m * beta_1 + g * blend_1;
                    *v = *v * beta_2 + g * g * blend_2;
                    *p -= (*m * self.moment_factor / (v.sqrt() + self.epsilon)) * self.lr;
                }
            });
    }
}

/// One Adam step on a parameter and its moments, returned in the same order.
#[backend_extension(Flex)]
pub trait AdamKernels: Backend {
    #[allow(clippy::too_many_arguments)]
    fn adam_kernel(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        lr: f64,
        time: usize,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `t` laid out contiguously over its whole buffer, held by this handle only (so writing
/// through `storage_mut` does not copy).
fn exclusive(t: FlexTensor) -> FlexTensor {
    let contiguous = t.to_contiguous();
    drop(t);
    contiguous
}

impl AdamKernels for Flex {
    #[allow(clippy::too_many_arguments)]
    fn adam_kernel(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        lr: f64,
        time: usize,
        beta_1: f32,
        beta_2: f32,
        epsilon: f32,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut param, grad, mut moment_1, mut moment_2) =
            (exclusive(param), exclusive(grad), exclusive(moment_1), exclusive(moment_2));
        let step = AdamStep::new(AdamSettings { beta_1, beta_2, epsilon }, lr, time);
        step.apply(
            param.storage_mut(),
            grad.storage(),
            moment_1.storage_mut(),
            moment_2.storage_mut(),
        );
        (param, moment_1, moment_2)
    }
}

/// burn's Adam (its formula and state), fused into one kernel per parameter on Flex.
#[derive(Clone)]
pub struct FusedAdam {
    settings: AdamSettings,
    burn: Adam,
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        let moments_f32 = state.as_ref().is_none_or(|s| {
            s.momentum.moment_1.dtype() == DType::F32 && s.momentum.moment_2.dtype() == DType::F32
        });
        if !on_flex(&tensor.device())
            || tensor.dtype() != DType::F32
            || grad.dtype() != DType::F32
            || !moments_f32
        {
            return self.burn.step(lr, tensor, grad, state);
        }
        let (moment_1, moment_2, time) = match state {
            Some(AdamState { momentum }) => {
                (momentum.moment_1, momentum.moment_2, momentum.time + 1)
            }
            // Zero moments make the first blend exactly burn's (1 − β)·g.
            None => (tensor.zeros_like(), tensor.zeros_like(), 1),
        };
        let AdamSettings { beta_1, beta_2, epsilon } = self.settings;
        let (param, moment_1, moment_2) = <Dispatch as AdamKernels>::adam_kernel(
            tensor.into_dispatch(),
            grad.into_dispatch(),
            moment_1.into_dispatch(),
            moment_2.into_dispatch(),
            lr,
            time,
            beta_1,
            beta_2,
            epsilon,
        );
        let momentum = AdaptiveMomentumState::new(
            time,
            Tensor::from_dispatch(moment_1),
            Tensor::from_dispatch(moment_2),
        );
        (Tensor::from_dispatch(param), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: AdamState<D>, device: &Device) -> AdamState<D> {
        AdamState::new(state.momentum.to_device(device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::{Linear, LinearConfig};

    fn weights(linear: &Linear) -> Vec<f32> {
        let mut w = linear.weight.val().into_data().try_to_vec::<f32>().unwrap();
        w.extend(linear.bias.as_ref().unwrap().val().into_data().try_to_vec::<f32>().unwrap());
        w
    }

    /// Trains `start`, a layer big enough for several parallel chunks, with `optimizer` for a
    /// few steps on inputs that do not come from the (shared, global) random generator.
    fn train(mut optimizer: ModuleOptimizer, start: &Linear, steps: usize) -> Vec<f32> {
        let device = start.weight.device();
        let mut linear = start.clone();
        for s in 0..steps {
            let values: Vec<f32> =
                (0..8 * 300).map(|i| ((i * 7 + s * 13) as f32 * 0.37).sin()).collect();
            let x = Tensor::<2>::from_data(TensorData::new(values, [8, 300]), &device);
            // A loss whose gradient differs between steps and between elements.
            let loss = linear.forward(x).mul_scalar(0.5 + s as f32).sin().sum();
            let grads = GradientsParams::from_grads(loss.backward(), &linear);
            linear = optimizer.step(1e-3, linear, grads);
        }
        weights(&linear)
    }

    /// A layer whose weights come from a formula, not from the global generator other tests
    /// draw from at the same time: with random weights, one whose updates cancel within an
    /// ulp now and then stayed where it began and failed the "every weight moved" check.
    fn fixed_linear(inputs: usize, outputs: usize, device: &Device) -> Linear {
        let values = |n: usize, phase: f32| {
            (0..n).map(|i| (i as f32 * 0.61 + phase).sin() * 0.05).collect::<Vec<f32>>()
        };
        let mut linear = LinearConfig::new(inputs, outputs).init(device);
        linear.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(values(inputs * outputs, 0.0), [inputs, outputs]),
            device,
        ));
        linear.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(values(outputs, 1.0), [outputs]),
            device,
        )));
        linear
    }

    #[test]
    fn fused_adam_matches_burns_adam() {
        let device = Device::flex().autodiff();
        assert!(on_flex(&device), "the comparison must exercise the fused kernel");
        let start = fixed_linear(300, 200, &device);
        for settings in
            [AdamSettings::DEFAULT, AdamSettings { beta_1: 0.5, beta_2: 0.9, epsilon: 1e-8 }]
        {
            let (ours, burns) = (
                train(settings.init(), &start, 5),
                train(settings.burn_config().init(), &start, 5),
            );
            assert_eq!(ours.len(), 300 * 200 + 200);
            let worst = ours.iter().zip(&burns).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(worst <= 1e-6, "{settings:?}: largest difference {worst}");
            assert!(ours.iter().zip(weights(&start)).all(|(x, y)| *x != y), "every weight moved");
        }
    }

    #[test]
    fn descend_updates_in_place_as_a_step_on_a_clone_would() {
        let device = Device::flex().autodiff();
        let start = fixed_linear(300, 200, &device);
        let loss = |linear: &Linear| {
            let x = Tensor::<2>::from_data(
                TensorData::new((0..600).map(|i| (i as f32 * 0.3).cos()).collect(), [2, 300]),
                &device,
            );
            linear.forward(x).tanh().sum()
        };
        let (mut by_step, mut in_place) = (start.clone(), start.clone());
        let (mut optimizer_1, mut optimizer_2) = (adam(), adam());
        for _ in 0..3 {
            let grads = GradientsParams::from_grads(loss(&by_step).backward(), &by_step);
            by_step = optimizer_1.step(1e-3, by_step.clone(), grads);
            let l = loss(&in_place);
            descend(&mut optimizer_2, 1e-3, &mut in_place, l);
        }
        assert_eq!(weights(&in_place), weights(&by_step));
        assert_ne!(weights(&in_place), weights(&start));
    }

    #[test]
    fn one_step_follows_the_formula() {
        // t = 1: m = 0.1 g, v = 0.001 g², update = lr · m̂ / (√v̂ + ε) = lr · sign(g) (up to ε).
        let (mut p, g, mut m, mut v) =
            (vec![1.0f32, -2.0], vec![0.5f32, -4.0], vec![0.0; 2], vec![0.0; 2]);
        AdamStep::new(AdamSettings::DEFAULT, 0.01, 1).apply(&mut p, &g, &mut m, &mut v);
        // 1 − β₂ is 0.00099998… in f32, hence the relative tolerance.
        let near =
            |a: &[f32], b: [f32; 2]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * y.abs());
        assert!(near(&m, [0.05, -0.4]), "{m:?}");
        assert!(near(&v, [0.00025, 0.016]), "{v:?}");
        assert!(near(&p, [0.99, -1.99]), "{p:?}");
    }
}
