//! Batch norm in training mode with our own CPU kernel (forward and backward), as a burn
//! backend extension.
//!
//! burn's batch norm gathers each channel by swapping the batch and channel axes (a transposing
//! copy of the activation) before every reduction, four copies per layer per step; here the
//! per-channel sums run over the NCHW layout in place, two passes forward (moments, then the
//! normalised output) and two backward (the two sums, then the input gradient). Statistics are
//! accumulated in f64, one channel per task, so results do not depend on the thread count.
//! Off Flex, and outside training, [`batch_norm`] is burn's `BatchNorm::forward`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::nn::BatchNorm;
use burn::prelude::*;
use rayon::prelude::*;

use super::{dims4, f32_inputs, on_flex, values};

/// Training-mode batch norm of N×C×H×W tensors.
#[backend_extension(Flex, Autodiff)]
pub trait NormKernels: Backend {
    /// The normalised, scaled and shifted `x`, and the batch's per-channel mean and biased
    /// variance (for the running statistics).
    fn batch_norm_train_kernel(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let r = Self::batch_norm_train(x, gamma, beta, epsilon);
        (r.output, r.mean, r.variance)
    }

    /// Gradients of [`Self::batch_norm_train_kernel`]'s input, gamma and beta.
    fn batch_norm_train_grads(x: FloatTensor<Self>, gamma: FloatTensor<Self>, mean: FloatTensor<Self>, variance: FloatTensor<Self>, epsilon: f64, grad: FloatTensor<Self>) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let r = Self::batch_norm_train_backward(x, gamma, mean, variance, epsilon, grad);
        (r.x_grad, r.gamma_grad, r.beta_grad)
    }
}

fn vector(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::from_data(TensorData::new(values, [n]))
}

/// The values of a tensor as a contiguous f32 vector.
fn owned(t: FlexTensor) -> Vec<f32> {
    values(&t.to_contiguous()).to_vec()
}

impl NormKernels for Flex {
    fn batch_norm_train_kernel(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, epsilon: f64) -> (FlexTensor, FlexTensor, FlexTensor) {
        if x.layout().shape().num_dims() != 4 || !f32_inputs(&[&x, &gamma, &beta]) {
            let r = Flex::batch_norm_train(x, gamma, beta, epsilon);
            return (r.output, r.mean, r.variance);
        }
        let x = x.to_contiguous();
        let [_, c, h, w] = dims4(&x);
        let (mean, variance) = channel_moments(values(&x), c, h * w);
        let out = normalise(values(&x), &owned(gamma), &owned(beta), &mean, &variance, epsilon, h * w);
        (FlexTensor::from_data(TensorData::new(out, dims4(&x))), vector(mean), vector(variance))
    }

    fn batch_norm_train_grads(x: FlexTensor, gamma: FlexTensor, mean: FlexTensor, variance: FlexTensor, epsilon: f64, grad: FlexTensor) -> (FlexTensor, FlexTensor, FlexTensor) {
        if x.layout().shape().num_dims() != 4 || !f32_inputs(&[&x, &gamma, &mean, &variance, &grad]) {
            let r = Flex::batch_norm_train_backward(x, gamma, mean, variance, epsilon, grad);
            return (r.x_grad, r.gamma_grad, r.beta_grad);
        }
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let [_, _, h, w] = dims4(&x);
        let g = normalisation_grads(values(&x), values(&grad), &owned(gamma), &owned(mean), &owned(variance), epsilon, h * w);
        (FlexTensor::from_data(TensorData::new(g.input, dims4(&x))), vector(g.gamma), vector(g.beta))
    }
}

/// Backward step of the forward kernel: the inner backend's gradient kernel.
#[derive(Debug)]
struct NormBackward;

impl<B: Backend + NormKernels> Backward<B, 3> for NormBackward {
    /// Input and gamma (checkpointed), the batch's mean and variance, epsilon.
    type State = (NodeId, NodeId, B::FloatTensorPrimitive, B::FloatTensorPrimitive, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, mean, variance, epsilon) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let gamma = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(gamma_state);
        let (dx, dgamma, dbeta) = B::batch_norm_train_grads(x, gamma, mean, variance, epsilon, grad);
        for (node, g) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: Backend + NormKernels, C: CheckpointStrategy> NormKernels for Autodiff<B, C> {
    fn batch_norm_train_kernel(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match NormBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let (x_state, gamma_state) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
                let (out, mean, variance) = B::batch_norm_train_kernel(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon);
                let out = prep.finish((x_state, gamma_state, mean.clone(), variance.clone(), epsilon), out);
                (out, Self::from_inner(mean), Self::from_inner(variance))
            }
            OpsKind::UnTracked(prep) => {
                let (out, mean, variance) = B::batch_norm_train_kernel(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), epsilon);
                (prep.finish(out), Self::from_inner(mean), Self::from_inner(variance))
            }
        }
    }
}

/// `norm` applied to `x` as `BatchNorm::forward` does (batch statistics and a running-statistics
/// update while training, the running statistics otherwise), with our kernel when training on
/// Flex.
pub fn batch_norm(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    if !(on_flex(&device) && device.is_autodiff() && norm.training.is_enabled()) {
        return norm.forward(x);
    }
    let (out, mean, variance) = <Dispatch as NormKernels>::batch_norm_train_kernel(x.into_dispatch(), norm.gamma.val().into_dispatch(), norm.beta.val().into_dispatch(), norm.epsilon);
    let blend = |running: Tensor<1>, batch| running.mul_scalar(1.0 - norm.momentum).add(Tensor::<1>::from_dispatch(batch).detach().mul_scalar(norm.momentum)).detach();
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
            let (sum, squares) = x.chunks_exact(plane).skip(c).step_by(channels).flatten().fold((0.0f64, 0.0f64), |(s, q), &v| (s + f64::from(v), q + f64::from(v) * f64::from(v)));
            let mean = sum / count;
            (mean as f32, (squares / count - mean * mean).max(0.0) as f32)
        })
        .unzip()
}

/// 1/√(variance + ε) per channel.
fn inverse_std(variance: &[f32], epsilon: f64) -> Vec<f64> {
    variance.iter().map(|&v| 1.0 / (f64::from(v) + epsilon).sqrt()).collect()
}

/// γ·(x − mean)/√(variance + ε) + β, per channel plane.
pub fn normalise(x: &[f32], gamma: &[f32], beta: &[f32], mean: &[f32], variance: &[f32], epsilon: f64, plane: usize) -> Vec<f32> {
    let channels = gamma.len();
    let inv_std = inverse_std(variance, epsilon);
    let mut out = vec![0.0; x.len()];
    out.par_chunks_exact_mut(plane).zip(x.par_chunks_exact(plane)).enumerate().for_each(|(i, (o, x))| {
        let c = i % channels;
        let scale = f64::from(gamma[c]) * inv_std[c];
        let (scale, shift) = (scale as f32, (f64::from(beta[c]) - f64::from(mean[c]) * scale) as f32);
        o.iter_mut().zip(x).for_each(|(o, &v)| *o = v * scale + shift);
    });
    out
}

/// Gradients of [`normalise`] with batch statistics.
pub struct NormGrads {
    pub input: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

/// With x̂ = (x − mean)/σ and M values per channel: dβ = Σ dy, dγ = Σ dy·x̂ and
/// dx = γ/σ · (dy − dβ/M − x̂·dγ/M), the mean and variance depending on x.
pub fn normalisation_grads(x: &[f32], dy: &[f32], gamma: &[f32], mean: &[f32], variance: &[f32], epsilon: f64, plane: usize) -> NormGrads {
    let channels = gamma.len();
    let count = (x.len() / channels) as f64;
    let inv_std = inverse_std(variance, epsilon);
    let (beta, gamma_grad): (Vec<f64>, Vec<f64>) = (0..channels)
        .into_par_iter()
        .map(|c| {
            let (m, s) = (f64::from(mean[c]), inv_std[c]);
            let planes = x.chunks_exact(plane).zip(dy.chunks_exact(plane)).skip(c).step_by(channels);
            planes.flat_map(|(x, dy)| x.iter().zip(dy)).fold((0.0, 0.0), |(b, g), (&x, &dy)| (b + f64::from(dy), g + f64::from(dy) * (f64::from(x) - m) * s))
        })
        .unzip();
    let mut input = vec![0.0; x.len()];
    input.par_chunks_exact_mut(plane).zip(x.par_chunks_exact(plane).zip(dy.par_chunks_exact(plane))).enumerate().for_each(|(i, (dx, (x, dy)))| {
        let c = i % channels;
        let (s, k) = (inv_std[c], f64::from(gamma[c]) * inv_std[c]);
        // dx = k·dy − q·x + r, with the per-channel terms folded in f64.
        let q = k * s * gamma_grad[c] / count;
        let r = q * f64::from(mean[c]) - k * beta[c] / count;
        let (k, q, r) = (k as f32, q as f32, r as f32);
        dx.iter_mut().zip(x.iter().zip(dy)).for_each(|(dx, (&x, &dy))| *dx = k * dy - q * x + r);
    });
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
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0f32, f32::max);
        assert!(worst < 2e-4, "{what}: worst relative difference {worst}");
    }

    /// burn's BatchNorm and ours on the same input and parameters: outputs, running statistics
    /// and the gradients of input, gamma and beta agree.
    #[test]
    fn batch_norm_matches_burn_in_values_gradients_and_running_statistics() {
        let device = Device::flex().autodiff();
        device.seed(7);
        for shape in [[4, 3, 5, 6], [2, 32, 8, 8]] {
            let reference = BatchNormConfig::new(shape[1]).init(&device);
            let mut ours = reference.clone();
            let c = shape[1];
            // Non-trivial gamma and beta, shared by both.
            ours.gamma = burn::module::Param::from_tensor(Tensor::<1>::random([c], Distribution::Uniform(0.5, 1.5), &device));
            ours.beta = burn::module::Param::from_tensor(Tensor::<1>::random([c], Distribution::Uniform(-0.5, 0.5), &device));
            let reference = BatchNorm { gamma: ours.gamma.clone(), beta: ours.beta.clone(), ..reference };
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.3, 2.0), &device).require_grad();
            let weights = Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), &device);
            let run = |norm: &BatchNorm, forward: &dyn Fn(&BatchNorm, Tensor<4>) -> Tensor<4>| {
                let y = forward(norm, x.clone());
                let grads = (y.clone() * weights.clone()).sum().backward();
                let g = |t: Tensor<1>| vec_of(t.grad(&grads).unwrap());
                (vec_of(y), vec_of(x.grad(&grads).unwrap()), g(norm.gamma.val()), g(norm.beta.val()))
            };
            let want = run(&reference, &|n, x| n.forward(x));
            let got = run(&ours, &|n, x| batch_norm(n, x));
            assert_close(&got.0, &want.0, "output");
            assert_close(&got.1, &want.1, "input gradient");
            assert_close(&got.2, &want.2, "gamma gradient");
            assert_close(&got.3, &want.3, "beta gradient");
            assert_close(&vec_of(ours.running_mean.value_sync()), &vec_of(reference.running_mean.value_sync()), "running mean");
            assert_close(&vec_of(ours.running_var.value_sync()), &vec_of(reference.running_var.value_sync()), "running variance");
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
