//! Batch norm in training mode followed by LeakyReLU, with our own CPU kernel (forward and
//! backward), as a burn backend extension.
//!
//! burn's batch norm gathers each channel by swapping the batch and channel axes (a transposing
//! copy of the activation) before every reduction, four copies per layer per step; here the
//! per-channel sums run over the NCHW layout in place, two passes forward (moments, then the
//! normalised output) and two backward (the two sums, then the input gradient). Statistics are
//! accumulated in f64, one channel per task, so results do not depend on the thread count.
//! The LeakyReLU that follows every batch norm of our networks is applied in the same pass, and
//! its gradient in the backward passes (the sign of the normalised value is recomputed), instead
//! of the four element-wise operations and their gradients it costs as tensor operations.
//! Off Flex, and outside training, [`batch_norm_leaky_relu`] is burn's `BatchNorm::forward`
//! followed by the activation.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, Flex, Scalar, TensorMetadata, backend_extension,
    get_or_init_device_settings,
};
use burn::nn::BatchNorm;
use burn::prelude::*;
use rayon::prelude::*;

use super::vector::paired_lane_sums;
use super::{dims, f32_inputs, flex_tensor, on_flex, par_output, values};

/// Training-mode batch norm of N×C×H×W tensors followed by LeakyReLU with `slope` (1 for none).
#[backend_extension(Flex, Autodiff)]
pub trait NormKernels: Backend {
    /// The normalised, scaled, shifted and activated `x`, and the batch's per-channel mean and
    /// biased variance (for the running statistics).
    fn batch_norm_train_kernel(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        burn_forward::<Self>(x, gamma, beta, epsilon, slope)
    }

    /// LeakyReLU with `slope` of `x` normalised by given (running) statistics: inference.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_inference_kernel(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
    ) -> FloatTensor<Self> {
        burn_inference::<Self>(x, gamma, beta, mean, variance, epsilon, slope)
    }

    /// Gradients of [`Self::batch_norm_train_kernel`]'s input, gamma and beta.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_train_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        burn_grads::<Self>(x, gamma, beta, mean, variance, epsilon, slope, grad)
    }
}

/// The forward operation with burn's own ops.
fn burn_forward<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    epsilon: f64,
    slope: f64,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let r = B::batch_norm_train(x, gamma, beta, epsilon);
    (B::leaky_relu(r.output, Scalar::Float(slope)), r.mean, r.variance)
}

/// The inference operation with burn's own ops: `BatchNorm`'s inference form, then LeakyReLU
/// as [`super::pointwise::leaky_relu_with_slope`] computes it.
#[allow(clippy::too_many_arguments)]
fn burn_inference<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    mean: FloatTensor<B>,
    variance: FloatTensor<B>,
    epsilon: f64,
    slope: f64,
) -> FloatTensor<B> {
    let normalised = B::batch_norm(x, gamma, beta, mean, variance, epsilon);
    let kept = B::float_mul_scalar(B::relu(normalised.clone()), Scalar::Float(1.0 - slope));
    B::float_add(kept, B::float_mul_scalar(normalised, Scalar::Float(slope)))
}

/// The gradients with burn's own ops.
#[allow(clippy::too_many_arguments)]
fn burn_grads<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    mean: FloatTensor<B>,
    variance: FloatTensor<B>,
    epsilon: f64,
    slope: f64,
    grad: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    // The activation passes the gradient where the normalised value is ≥ 0, `slope` of it elsewhere.
    let normalised =
        B::batch_norm(x.clone(), gamma.clone(), beta, mean.clone(), variance.clone(), epsilon);
    let bool_dtype = get_or_init_device_settings::<B>(&normalised.device()).bool_dtype;
    let negative = B::float_lower_elem(normalised, 0f32.into(), bool_dtype);
    let grad = B::float_mask_where(
        grad.clone(),
        negative,
        B::float_mul_scalar(grad, Scalar::Float(slope)),
    );
    let r = B::batch_norm_train_backward(x, gamma, mean, variance, epsilon, grad);
    (r.x_grad, r.gamma_grad, r.beta_grad)
}

fn vector(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    flex_tensor(values, [n])
}

/// The values of a tensor as a contiguous f32 vector.
fn owned(t: FlexTensor) -> Vec<f32> {
    values(&t.to_contiguous()).to_vec()
}

impl NormKernels for Flex {
    fn batch_norm_train_kernel(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        slope: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        if x.layout().shape().num_dims() != 4 || !f32_inputs(&[&x, &gamma, &beta]) {
            return burn_forward::<Flex>(x, gamma, beta, epsilon, slope);
        }
        let x = x.to_contiguous();
        let [_, c, h, w] = dims::<4>(&x);
        let (mean, variance) = channel_moments(values(&x), c, h * w);
        let affine = ChannelAffine::new(&owned(gamma), &owned(beta), &mean, &variance, epsilon);
        let out = normalise(values(&x), &affine, slope as f32, h * w);
        (flex_tensor(out, dims::<4>(&x)), vector(mean), vector(variance))
    }

    fn batch_norm_inference_kernel(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        slope: f64,
    ) -> FlexTensor {
        if x.layout().shape().num_dims() != 4 || !f32_inputs(&[&x, &gamma, &beta, &mean, &variance])
        {
            return burn_inference::<Flex>(x, gamma, beta, mean, variance, epsilon, slope);
        }
        let x = x.to_contiguous();
        let [_, _, h, w] = dims::<4>(&x);
        let statistics = RunningNorm {
            gamma: owned(gamma),
            beta: owned(beta),
            mean: owned(mean),
            std: owned(variance).iter().map(|&v| (v + epsilon as f32).sqrt()).collect(),
        };
        let out = statistics.normalise(values(&x), slope, h * w);
        flex_tensor(out, dims::<4>(&x))
    }

    fn batch_norm_train_grads(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        slope: f64,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        if x.layout().shape().num_dims() != 4
            || !f32_inputs(&[&x, &gamma, &beta, &mean, &variance, &grad])
        {
            return burn_grads::<Flex>(x, gamma, beta, mean, variance, epsilon, slope, grad);
        }
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let [_, _, h, w] = dims::<4>(&x);
        let affine = ChannelAffine::new(
            &owned(gamma),
            &owned(beta),
            &owned(mean),
            &owned(variance),
            epsilon,
        );
        let g = normalisation_grads(values(&x), values(&grad), &affine, slope as f32, h * w);
        (flex_tensor(g.input, dims::<4>(&x)), vector(g.gamma), vector(g.beta))
    }
}

/// Backward step of the forward kernel: the inner backend's gradient kernel.
#[derive(Debug)]
struct NormBackward;

impl<B: Backend + NormKernels> Backward<B, 3> for NormBackward {
    /// Input, gamma and beta (checkpointed), the batch's mean and variance, epsilon, slope.
    type State =
        (NodeId, NodeId, NodeId, B::FloatTensorPrimitive, B::FloatTensorPrimitive, f64, f64);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, beta_state, mean, variance, epsilon, slope) = ops.state;
        let mut retrieve = |id| checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(id);
        let (x, gamma, beta) = (retrieve(x_state), retrieve(gamma_state), retrieve(beta_state));
        let (dx, dgamma, dbeta) =
            B::batch_norm_train_grads(x, gamma, beta, mean, variance, epsilon, slope, grad);
        for (node, g) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: Backend + NormKernels, C: CheckpointStrategy> NormKernels for Autodiff<B, C> {
    fn batch_norm_train_kernel(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match NormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (x_state, gamma_state, beta_state) =
                    (prep.checkpoint(&x), prep.checkpoint(&gamma), prep.checkpoint(&beta));
                let (out, mean, variance) = B::batch_norm_train_kernel(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    slope,
                );
                let out = prep.finish(
                    (
                        x_state,
                        gamma_state,
                        beta_state,
                        mean.clone(),
                        variance.clone(),
                        epsilon,
                        slope,
                    ),
                    out,
                );
                (out, Self::from_inner(mean), Self::from_inner(variance))
            }
            OpsKind::UnTracked(prep) => {
                let (out, mean, variance) = B::batch_norm_train_kernel(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    slope,
                );
                (prep.finish(out), Self::from_inner(mean), Self::from_inner(variance))
            }
        }
    }
}

/// `norm` applied to `x` as `BatchNorm::forward` does (batch statistics and a running-statistics
/// update while training, the running statistics otherwise), then LeakyReLU with `slope`; one
/// kernel of ours when training on Flex, and one for inference on Flex.
pub fn batch_norm_leaky_relu(norm: &BatchNorm, x: Tensor<4>, slope: f64) -> Tensor<4> {
    let device = x.device();
    // burn's rule: batch statistics only where a backward is possible and the layer trains.
    if on_flex(&device) && !device.is_autodiff() {
        return Tensor::from_dispatch(<Dispatch as NormKernels>::batch_norm_inference_kernel(
            x.into_dispatch(),
            norm.gamma.val().into_dispatch(),
            norm.beta.val().into_dispatch(),
            norm.running_mean.value().to_device(&device).into_dispatch(),
            norm.running_var.value().to_device(&device).into_dispatch(),
            norm.epsilon,
            slope,
        ));
    }
    if !(on_flex(&device) && device.is_autodiff() && norm.training.is_enabled()) {
        return super::pointwise::leaky_relu_with_slope(norm.forward(x), slope);
    }
    let (out, mean, variance) = <Dispatch as NormKernels>::batch_norm_train_kernel(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        norm.epsilon,
        slope,
    );
    let blend = |running: Tensor<1>, batch| {
        running
            .mul_scalar(1.0 - norm.momentum)
            .add(Tensor::<1>::from_dispatch(batch).detach().mul_scalar(norm.momentum))
            .detach()
    };
    norm.running_mean.update(blend(norm.running_mean.value_sync().to_device(&device), mean));
    norm.running_var.update(blend(norm.running_var.value_sync().to_device(&device), variance));
    Tensor::from_dispatch(out)
}

/// Per-channel mean and biased variance of `x` (batch × `channels` × `plane`).
pub fn channel_moments(x: &[f32], channels: usize, plane: usize) -> (Vec<f32>, Vec<f32>) {
    let count = (x.len() / channels) as f64;
    (0..channels)
        .into_par_iter()
        .map(|c| {
            // Sums of x − k and (x − k)² with k one of the channel's values, so the variance is
            // not the difference of two large numbers.
            let k = x[c * plane];
            let (sum, squares) =
                x.chunks_exact(plane).skip(c).step_by(channels).fold((0.0, 0.0), |(s, q), p| {
                    let (ps, pq) = paired_lane_sums(p, p, |v, _| (v - k, (v - k) * (v - k)));
                    (s + ps, q + pq)
                });
            let shifted_mean = sum / count;
            (
                (f64::from(k) + shifted_mean) as f32,
                (squares / count - shifted_mean * shifted_mean).max(0.0) as f32,
            )
        })
        .unzip()
}

/// Per channel, the normalisation as `x·scale + shift` (in f64): scale = γ/σ, shift = β − mean·γ/σ,
/// with σ = √(variance + ε).
pub struct ChannelAffine {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    gamma: Vec<f64>,
    scale: Vec<f64>,
    shift: Vec<f64>,
}

impl ChannelAffine {
    pub fn new(
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        variance: &[f32],
        epsilon: f64,
    ) -> ChannelAffine {
        let wide = |v: &[f32]| v.iter().map(|&v| f64::from(v)).collect::<Vec<f64>>();
        let (gamma, mean) = (wide(gamma), wide(mean));
        let inv_std: Vec<f64> =
            variance.iter().map(|&v| 1.0 / (f64::from(v) + epsilon).sqrt()).collect();
        let scale: Vec<f64> = gamma.iter().zip(&inv_std).map(|(g, s)| g * s).collect();
        let shift =
            beta.iter().zip(&mean).zip(&scale).map(|((&b, m), k)| f64::from(b) - m * k).collect();
        ChannelAffine { mean, inv_std, gamma, scale, shift }
    }

    fn channels(&self) -> usize {
        self.gamma.len()
    }

    /// (scale, shift) of channel `c` in f32.
    fn of(&self, c: usize) -> (f32, f32) {
        (self.scale[c] as f32, self.shift[c] as f32)
    }
}

/// Batch norm's inference form with running statistics, per channel, in f32.
///
/// burn's form is five passes over the activation (subtract, divide, scale, shift, then three
/// for the LeakyReLU), each allocating a tensor: most of the time of encoding images for
/// evaluation and for the ReL's real codes, in a profile. This is one pass with the same f32
/// operations in the same order, so its values are burn's to the bit.
struct RunningNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    mean: Vec<f32>,
    /// √(variance + ε).
    std: Vec<f32>,
}

impl RunningNorm {
    /// LeakyReLU(((x − mean) / std)·γ + β) of batch × channels × `plane` values, LeakyReLU
    /// as relu(y)·(1 − slope) + y·slope.
    fn normalise(&self, x: &[f32], slope: f64, plane: usize) -> Vec<f32> {
        let channels = self.mean.len();
        let (keep, leak) = ((1.0 - slope) as f32, slope as f32);
        par_output(
            x.len(),
            plane,
            || (),
            |_, i, out| {
                let c = i % channels;
                let (mean, std, gamma, beta) =
                    (self.mean[c], self.std[c], self.gamma[c], self.beta[c]);
                out.iter_mut().zip(&x[i * plane..]).for_each(|(o, &v)| {
                    let y = (v - mean) / std * gamma + beta;
                    let relu = if y.is_nan() || y > 0.0 { y } else { 0.0 };
                    *o = relu * keep + y * leak;
                });
            },
        )
    }
}

/// LeakyReLU's factor for a pre-activation value: 1 where it is ≥ 0, `slope` below.
fn slope_at(pre: f32, slope: f32) -> f32 {
    if pre < 0.0 { slope } else { 1.0 }
}

/// LeakyReLU(γ·(x − mean)/σ + β), per channel plane.
pub fn normalise(x: &[f32], affine: &ChannelAffine, slope: f32, plane: usize) -> Vec<f32> {
    let channels = affine.channels();
    par_output(
        x.len(),
        plane,
        || (),
        |_, i, o| {
            let (scale, shift) = affine.of(i % channels);
            o.iter_mut().zip(&x[i * plane..]).for_each(|(o, &v)| {
                let pre = v * scale + shift;
                *o = pre * slope_at(pre, slope);
            });
        },
    )
}

/// Gradients of [`normalise`] with batch statistics.
pub struct NormGrads {
    pub input: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// With g = dy·LeakyReLU′, x̂ = (x − mean)/σ and M values per channel: dβ = Σ g, dγ = Σ g·x̂
/// and dx = γ/σ · (g − dβ/M − x̂·dγ/M), the mean and variance depending on x.
pub fn normalisation_grads(
    x: &[f32],
    dy: &[f32],
    affine: &ChannelAffine,
    slope: f32,
    plane: usize,
) -> NormGrads {
    let channels = affine.channels();
    let count = (x.len() / channels) as f64;
    let (beta, gamma_grad): (Vec<f64>, Vec<f64>) = (0..channels)
        .into_par_iter()
        .map(|c| {
            let (scale, shift) = affine.of(c);
            let (m, s) = (affine.mean[c] as f32, affine.inv_std[c]);
            let planes =
                x.chunks_exact(plane).zip(dy.chunks_exact(plane)).skip(c).step_by(channels);
            let (sum_g, sum_g_centred) = planes.fold((0.0, 0.0), |(b, g), (x, dy)| {
                let (pb, pg) = paired_lane_sums(x, dy, |x, dy| {
                    let g_pre = dy * slope_at(x * scale + shift, slope);
                    (g_pre, g_pre * (x - m))
                });
                (b + pb, g + pg)
            });
            (sum_g, sum_g_centred * s)
        })
        .unzip();
    let input = par_output(
        x.len(),
        plane,
        || (),
        |_, i, dx| {
            let (x, dy) = (&x[i * plane..], &dy[i * plane..]);
            let c = i % channels;
            let (scale, shift) = affine.of(c);
            let (s, k) = (affine.inv_std[c], affine.gamma[c] * affine.inv_std[c]);
            // dx = k·g − q·x + r, with the per-channel terms folded in f64.
            let q = k * s * gamma_grad[c] / count;
            let r = q * affine.mean[c] - k * beta[c] / count;
            let (k, q, r) = (k as f32, q as f32, r as f32);
            dx.iter_mut().zip(x.iter().zip(dy)).for_each(|(dx, (&x, &dy))| {
                *dx = k * dy * slope_at(x * scale + shift, slope) - q * x + r
            });
        },
    );
    let narrow = |v: Vec<f64>| v.into_iter().map(|v| v as f32).collect();
    NormGrads { input, gamma: narrow(gamma_grad), beta: narrow(beta) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Distribution;

    fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        let worst =
            a.iter().zip(b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0f32, f32::max);
        assert!(worst < 2e-4, "{what}: worst relative difference {worst}");
    }

    /// burn's BatchNorm + LeakyReLU and ours on the same input and parameters: outputs,
    /// running statistics and the gradients of input, gamma and beta agree (with the
    /// activation, and without it: slope 1).
    #[test]
    fn batch_norm_matches_burn_in_values_gradients_and_running_statistics() {
        let device = Device::flex().autodiff();
        device.seed(7);
        for (shape, slope) in [([4, 3, 5, 6], 0.1), ([2, 32, 8, 8], 0.1), ([3, 4, 5, 5], 1.0)] {
            let reference = BatchNormConfig::new(shape[1]).init(&device);
            let mut ours = reference.clone();
            let c = shape[1];
            // Non-trivial gamma and beta, shared by both.
            ours.gamma = burn::module::Param::from_tensor(Tensor::<1>::random(
                [c],
                Distribution::Uniform(0.5, 1.5),
                &device,
            ));
            ours.beta = burn::module::Param::from_tensor(Tensor::<1>::random(
                [c],
                Distribution::Uniform(-0.5, 0.5),
                &device,
            ));
            let reference =
                BatchNorm { gamma: ours.gamma.clone(), beta: ours.beta.clone(), ..reference };
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.3, 2.0), &device).require_grad();
            let weights = Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &device);
            let run = |norm: &BatchNorm, forward: &dyn Fn(&BatchNorm, Tensor<4>) -> Tensor<4>| {
                let y = forward(norm, x.clone());
                let grads = (y.clone() * weights.clone()).sum().backward();
                let g = |t: Tensor<1>| vec_of(t.grad(&grads).unwrap());
                (
                    vec_of(y),
                    vec_of(x.grad(&grads).unwrap()),
                    g(norm.gamma.val()),
                    g(norm.beta.val()),
                )
            };
            let want =
                run(&reference, &|n, x| burn::tensor::activation::leaky_relu(n.forward(x), slope));
            let got = run(&ours, &|n, x| batch_norm_leaky_relu(n, x, slope));
            assert_close(&got.0, &want.0, "output");
            assert_close(&got.1, &want.1, "input gradient");
            assert_close(&got.2, &want.2, "gamma gradient");
            assert_close(&got.3, &want.3, "beta gradient");
            assert_close(
                &vec_of(ours.running_mean.value_sync()),
                &vec_of(reference.running_mean.value_sync()),
                "running mean",
            );
            assert_close(
                &vec_of(ours.running_var.value_sync()),
                &vec_of(reference.running_var.value_sync()),
                "running variance",
            );
        }
    }

    /// Inference (running statistics, no autodiff): ours equals burn's `BatchNorm::forward`
    /// followed by [`super::super::pointwise::leaky_relu_with_slope`] bit for bit, NaN kept.
    #[test]
    fn inference_batch_norm_is_burns_bit_for_bit() {
        let device = Device::flex();
        device.seed(11);
        let uniform = |lo, hi| Tensor::<1>::random([5], Distribution::Uniform(lo, hi), &device);
        let mut norm: BatchNorm = BatchNormConfig::new(5).init(&device);
        norm.gamma = burn::module::Param::from_tensor(uniform(0.5, 1.5));
        norm.beta = burn::module::Param::from_tensor(uniform(-0.5, 0.5));
        norm.running_mean = burn::module::RunningState::new(uniform(-1.0, 1.0));
        norm.running_var = burn::module::RunningState::new(uniform(0.1, 3.0));
        let mut values =
            vec_of(Tensor::<4>::random([3, 5, 4, 7], Distribution::Normal(0.2, 2.0), &device));
        values[17] = f32::NAN;
        let x = Tensor::<4>::from_data(TensorData::new(values, [3, 5, 4, 7]), &device);
        for slope in [0.2, 0.01, 1.0] {
            let want =
                super::super::pointwise::leaky_relu_with_slope(norm.forward(x.clone()), slope);
            let got = batch_norm_leaky_relu(&norm, x.clone(), slope);
            let bits = |t: Tensor<4>| vec_of(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(got), bits(want), "slope {slope}");
        }
    }

    #[test]
    fn moments_are_per_channel_over_batch_and_plane() {
        // Two images, two channels of two pixels: channel 0 holds 1, 2, 5, 6; channel 1 holds 3, 4, 7, 8.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let (mean, var) = channel_moments(&x, 2, 2);
        assert_eq!(mean, [3.5, 5.5]);
        assert_eq!(var, [4.25, 4.25]);
    }
}
