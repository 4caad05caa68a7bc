//! Convolutions with our own CPU kernels (forward and backward), as a burn backend extension.
//!
//! [`LayerKernels`] has six operations: a convolution and a transposed convolution, each with
//! its input and weight gradient. Their default bodies are burn's own ops, so a backend that
//! does not override them (CUDA) computes exactly what `burn::nn` would. Flex overrides all six
//! with the im2col kernels of [`cpu`]; `Autodiff` overrides the two forward operations with a
//! backward pass that calls the inner backend's gradient operations.
//!
//! [`conv2d`] and [`conv_transpose2d`] are the tensor-level entry points; they fall back to
//! burn's modules' ops on a device that is not Flex, so the GPU path never sees this code.

pub mod cpu;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, DispatchDevice, Flex, backend_extension};
use burn::module::RunningState;
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use cpu::ConvGeometry;

fn conv_options(stride: usize, padding: usize) -> ConvOptions<2> {
    ConvOptions::new([stride, stride], [padding, padding], [1, 1], 1)
}

fn transpose_options(stride: usize, padding: usize) -> ConvTransposeOptions<2> {
    ConvTransposeOptions::new([stride, stride], [padding, padding], [0, 0], [1, 1], 1)
}

/// Square-kernel convolutions without bias (the bias is added by the caller), and batch norm
/// fused with LeakyReLU.
#[backend_extension(Flex, Autodiff)]
pub trait LayerKernels: Backend {
    /// Per-channel mean and biased variance of an N×C×H×W tensor as a 2×C tensor; a constant
    /// for autodiff (batch norm's backward accounts for the statistics' dependence on x).
    fn batch_stats(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Batch norm of `x` with the statistics `stats` (from [`Self::batch_stats`]), then
    /// LeakyReLU with negative slope `slope`.
    fn batch_norm_leaky(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, stats: FloatTensor<Self>, epsilon: f64, slope: f64) -> FloatTensor<Self>;

    /// Gradients of [`Self::batch_norm_leaky`] with respect to x, γ and β.
    fn batch_norm_leaky_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Convolution of `x` (N×C×H×W) with `weight` (C_out×C×k×k).
    fn conv2d_kernel(x: FloatTensor<Self>, weight: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, conv_options(stride, padding))
    }

    /// Gradient of [`Self::conv2d_kernel`]'s input.
    fn conv2d_input_grad(x: FloatTensor<Self>, weight: FloatTensor<Self>, grad: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, grad, conv_options(stride, padding))
    }

    /// Gradient of [`Self::conv2d_kernel`]'s weight.
    fn conv2d_weight_grad(x: FloatTensor<Self>, weight: FloatTensor<Self>, grad: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, grad, conv_options(stride, padding))
    }

    /// Transposed convolution of `x` (N×C×H×W) with `weight` (C×C_out×k×k), output padding 0.
    fn conv_transpose2d_kernel(x: FloatTensor<Self>, weight: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        Self::conv_transpose2d(x, weight, None, transpose_options(stride, padding))
    }

    /// Gradient of [`Self::conv_transpose2d_kernel`]'s input.
    fn conv_transpose2d_input_grad(x: FloatTensor<Self>, weight: FloatTensor<Self>, grad: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        let _ = x;
        Self::conv_transpose2d_x_backward(weight, grad, transpose_options(stride, padding))
    }

    /// Gradient of [`Self::conv_transpose2d_kernel`]'s weight.
    fn conv_transpose2d_weight_grad(x: FloatTensor<Self>, weight: FloatTensor<Self>, grad: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        Self::conv_transpose2d_weight_backward(x, weight, grad, transpose_options(stride, padding))
    }
}

/// Dimensions of a 4-D Flex tensor.
fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// A contiguous f32 Flex tensor's values.
fn values(t: &FlexTensor) -> &[f32] {
    t.storage::<f32>()
}

fn flex_tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The geometry of a convolution of `x` with `weight` (C_out×C×k×k).
fn conv_geometry(x: &FlexTensor, weight: &FlexTensor, stride: usize, padding: usize) -> ConvGeometry {
    let ([_, c, h, w], [c_out, _, k, _]) = (dims4(x), dims4(weight));
    ConvGeometry::conv(c, h, w, c_out, k, stride, padding)
}

/// The geometry whose adjoint is the transposed convolution of `x` with `weight` (C×C_out×k×k).
fn transposed_geometry(x: &FlexTensor, weight: &FlexTensor, stride: usize, padding: usize) -> ConvGeometry {
    let ([_, c, h, w], [_, c_out, k, _]) = (dims4(x), dims4(weight));
    ConvGeometry::transposed(c, h, w, c_out, k, stride, padding)
}

/// Whether our kernels take these tensors (f32; other dtypes use burn's ops).
fn f32_inputs(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// Channel layout of a 4-D Flex tensor.
fn channels(x: &FlexTensor) -> cpu::Channels {
    let [n, c, h, w] = dims4(x);
    cpu::Channels { batch: n, channels: c, plane: h * w }
}

fn flex_vector(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::from_data(TensorData::new(values, [n]))
}

/// A contiguous f32 version of `t` (the batch norm kernels compute in f32 for every dtype).
fn f32_contiguous(t: FlexTensor) -> FlexTensor {
    let t = t.to_contiguous();
    if t.dtype() == DType::F32 { t } else { FlexTensor::from_data(t.into_data().convert::<f32>()) }
}

fn norm_operands(tensors: [FlexTensor; 4]) -> [FlexTensor; 4] {
    tensors.map(f32_contiguous)
}

impl LayerKernels for Flex {
    fn batch_stats(x: FlexTensor) -> FlexTensor {
        let x = f32_contiguous(x);
        let l = channels(&x);
        FlexTensor::from_data(TensorData::new(cpu::channel_stats(values(&x), l), [2, l.channels]))
    }

    fn batch_norm_leaky(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, stats: FlexTensor, epsilon: f64, slope: f64) -> FlexTensor {
        let [x, gamma, beta, stats] = norm_operands([x, gamma, beta, stats]);
        let norm = cpu::NormLeaky::new(values(&stats), values(&gamma), values(&beta), epsilon, slope);
        flex_tensor(norm.forward(values(&x), channels(&x)), dims4(&x))
    }

    fn batch_norm_leaky_grad(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, stats: FlexTensor, grad: FlexTensor, epsilon: f64, slope: f64) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [x, gamma, beta, stats] = norm_operands([x, gamma, beta, stats]);
        let grad = f32_contiguous(grad);
        let norm = cpu::NormLeaky::new(values(&stats), values(&gamma), values(&beta), epsilon, slope);
        let (dx, dgamma, dbeta) = norm.backward(values(&x), values(&grad), values(&stats), channels(&x));
        (flex_tensor(dx, dims4(&x)), flex_vector(dgamma), flex_vector(dbeta))
    }

    fn conv2d_kernel(x: FlexTensor, weight: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
        if !f32_inputs(&[&x, &weight]) {
            return Flex::conv2d(x, weight, None, conv_options(stride, padding));
        }
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let g = conv_geometry(&x, &weight, stride, padding);
        let y = cpu::conv_forward(values(&x), values(&weight), &g);
        flex_tensor(y, [dims4(&x)[0], g.c_out, g.h_out, g.w_out])
    }

    fn conv2d_input_grad(x: FlexTensor, weight: FlexTensor, grad: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
        if !f32_inputs(&[&x, &weight, &grad]) {
            return Flex::conv2d_x_backward(x, weight, grad, conv_options(stride, padding));
        }
        let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
        let g = conv_geometry(&x, &weight, stride, padding);
        flex_tensor(cpu::conv_input_grad(values(&grad), values(&weight), &g), dims4(&x))
    }

    fn conv2d_weight_grad(x: FlexTensor, weight: FlexTensor, grad: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
        if !f32_inputs(&[&x, &weight, &grad]) {
            return Flex::conv2d_weight_backward(x, weight, grad, conv_options(stride, padding));
        }
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let g = conv_geometry(&x, &weight, stride, padding);
        flex_tensor(cpu::conv_weight_grad(values(&x), values(&grad), &g), dims4(&weight))
    }

    fn conv_transpose2d_kernel(x: FlexTensor, weight: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
        if !f32_inputs(&[&x, &weight]) {
            return Flex::conv_transpose2d(x, weight, None, transpose_options(stride, padding));
        }
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let g = transposed_geometry(&x, &weight, stride, padding);
        let y = cpu::conv_input_grad(values(&x), values(&weight), &g);
        flex_tensor(y, [dims4(&x)[0], g.c_in, g.h_in, g.w_in])
    }

    fn conv_transpose2d_input_grad(x: FlexTensor, weight: FlexTensor, grad: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
        if !f32_inputs(&[&x, &weight, &grad]) {
            return Flex::conv_transpose2d_x_backward(weight, grad, transpose_options(stride, padding));
        }
        let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
        let g = transposed_geometry(&x, &weight, stride, padding);
        flex_tensor(cpu::conv_forward(values(&grad), values(&weight), &g), dims4(&x))
    }

    fn conv_transpose2d_weight_grad(x: FlexTensor, weight: FlexTensor, grad: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
        if !f32_inputs(&[&x, &weight, &grad]) {
            return Flex::conv_transpose2d_weight_backward(x, weight, grad, transpose_options(stride, padding));
        }
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let g = transposed_geometry(&x, &weight, stride, padding);
        // The adjoint convolution reads the transposed convolution's output gradient and
        // produces its input: its weight gradient pairs them the other way round.
        flex_tensor(cpu::conv_weight_grad(values(&grad), values(&x), &g), dims4(&weight))
    }
}

/// Which of the two forward operations a backward step belongs to.
#[derive(Clone, Copy, Debug)]
enum ConvKind {
    Conv,
    Transposed,
}

/// Backward step of either forward operation: the inner backend's gradient operations.
#[derive(Debug)]
struct ConvBackward;

impl<B: Backend + LayerKernels> Backward<B, 2> for ConvBackward {
    type State = (NodeId, NodeId, ConvKind, usize, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, kind, stride, padding) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        if let Some(node) = node_x {
            let dx = match kind {
                ConvKind::Conv => B::conv2d_input_grad(x.clone(), weight.clone(), grad.clone(), stride, padding),
                ConvKind::Transposed => B::conv_transpose2d_input_grad(x.clone(), weight.clone(), grad.clone(), stride, padding),
            };
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = match kind {
                ConvKind::Conv => B::conv2d_weight_grad(x, weight, grad, stride, padding),
                ConvKind::Transposed => B::conv_transpose2d_weight_grad(x, weight, grad, stride, padding),
            };
            grads.register::<B>(node.id, dw);
        }
    }
}

/// Runs `forward` on the inner backend and records [`ConvBackward`] for it.
fn tracked<B: Backend + LayerKernels, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    kind: ConvKind,
    stride: usize,
    padding: usize,
) -> FloatTensor<Autodiff<B, C>> {
    let forward = |x: B::FloatTensorPrimitive, w: B::FloatTensorPrimitive| match kind {
        ConvKind::Conv => B::conv2d_kernel(x, w, stride, padding),
        ConvKind::Transposed => B::conv_transpose2d_kernel(x, w, stride, padding),
    };
    match ConvBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let (x_state, weight_state) = (prep.checkpoint(&x), prep.checkpoint(&weight));
            prep.finish((x_state, weight_state, kind, stride, padding), forward(x.into_primitive(), weight.into_primitive()))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x.into_primitive(), weight.into_primitive())),
    }
}

/// Backward step of [`LayerKernels::batch_norm_leaky`].
#[derive(Debug)]
struct NormLeakyBackward;

impl<B: Backend + LayerKernels> Backward<B, 3> for NormLeakyBackward {
    type State = (NodeId, NodeId, NodeId, B::FloatTensorPrimitive, f64, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, beta_state, stats, epsilon, slope) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let gamma = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(gamma_state);
        let beta = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(beta_state);
        let (dx, dgamma, dbeta) = B::batch_norm_leaky_grad(x, gamma, beta, stats, grad, epsilon, slope);
        for (node, g) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

impl<B: Backend + LayerKernels, C: CheckpointStrategy> LayerKernels for Autodiff<B, C> {
    fn batch_stats(x: FloatTensor<Self>) -> FloatTensor<Self> {
        <FloatTensor<Self>>::new(B::batch_stats(x.into_primitive()))
    }

    fn batch_norm_leaky(x: FloatTensor<Self>, gamma: FloatTensor<Self>, beta: FloatTensor<Self>, stats: FloatTensor<Self>, epsilon: f64, slope: f64) -> FloatTensor<Self> {
        let stats = stats.into_primitive();
        match NormLeakyBackward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let states = (prep.checkpoint(&x), prep.checkpoint(&gamma), prep.checkpoint(&beta));
                let y = B::batch_norm_leaky(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), stats.clone(), epsilon, slope);
                prep.finish((states.0, states.1, states.2, stats, epsilon, slope), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::batch_norm_leaky(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), stats, epsilon, slope)),
        }
    }

    fn batch_norm_leaky_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
        slope: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Gradients are values, not part of the graph: computed on the inner backend.
        let (dx, dgamma, dbeta) =
            B::batch_norm_leaky_grad(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), stats.into_primitive(), grad.into_primitive(), epsilon, slope);
        (<FloatTensor<Self>>::new(dx), <FloatTensor<Self>>::new(dgamma), <FloatTensor<Self>>::new(dbeta))
    }

    fn conv2d_kernel(x: FloatTensor<Self>, weight: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        tracked::<B, C>(x, weight, ConvKind::Conv, stride, padding)
    }

    fn conv_transpose2d_kernel(x: FloatTensor<Self>, weight: FloatTensor<Self>, stride: usize, padding: usize) -> FloatTensor<Self> {
        tracked::<B, C>(x, weight, ConvKind::Transposed, stride, padding)
    }
}

/// Whether tensors on `device` run on Flex (directly or under autodiff).
fn on_flex(device: &Device) -> bool {
    matches!(device.as_dispatch().clone().inner(), DispatchDevice::Flex(_))
}

/// Whether `device` records gradients (training).
fn records_gradients(device: &Device) -> bool {
    matches!(device.as_dispatch(), DispatchDevice::Autodiff(_))
}

/// LeakyReLU(`norm`(x)) for an N×C×H×W tensor. In training on Flex, one fused kernel (and one
/// for its backward) with the running statistics updated as burn's `BatchNorm` does;
/// otherwise burn's module followed by [`crate::model::leaky_relu`].
pub fn batch_norm_leaky(x: Tensor<4>, norm: &BatchNorm) -> Tensor<4> {
    let device = x.device();
    if !on_flex(&device) || !records_gradients(&device) {
        return crate::model::leaky_relu(norm.forward(x));
    }
    let c = x.dims()[1];
    let stats = Tensor::<2>::from_dispatch(<Dispatch as LayerKernels>::batch_stats(x.clone().into_dispatch()));
    let update = |state: &RunningState<Tensor<1>>, batch: Tensor<1>| {
        let running = state.value_sync().to_device(&device).mul_scalar(1.0 - norm.momentum).add(batch.mul_scalar(norm.momentum));
        state.update(running.detach());
    };
    update(&norm.running_mean, stats.clone().slice([0..1]).reshape([c]));
    update(&norm.running_var, stats.clone().slice([1..2]).reshape([c]));
    Tensor::from_dispatch(<Dispatch as LayerKernels>::batch_norm_leaky(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        stats.into_dispatch(),
        norm.epsilon,
        crate::model::LEAKY_SLOPE,
    ))
}

/// Convolution without bias: our kernels on Flex, burn's op elsewhere.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, stride: usize, padding: usize) -> Tensor<4> {
    if !on_flex(&x.device()) {
        return burn::tensor::module::conv2d(x, weight, None, conv_options(stride, padding));
    }
    Tensor::from_dispatch(<Dispatch as LayerKernels>::conv2d_kernel(x.into_dispatch(), weight.into_dispatch(), stride, padding))
}

/// Transposed convolution without bias (output padding 0): our kernels on Flex, burn's op elsewhere.
pub fn conv_transpose2d(x: Tensor<4>, weight: Tensor<4>, stride: usize, padding: usize) -> Tensor<4> {
    if !on_flex(&x.device()) {
        return burn::tensor::module::conv_transpose2d(x, weight, None, transpose_options(stride, padding));
    }
    Tensor::from_dispatch(<Dispatch as LayerKernels>::conv_transpose2d_kernel(x.into_dispatch(), weight.into_dispatch(), stride, padding))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn close(a: Tensor<4>, b: Tensor<4>, what: &str) {
        let (a, b) = (a.into_data().to_vec::<f32>().unwrap(), b.into_data().to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len(), "{what}");
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * scale, "{what}[{i}]: {x} vs burn {y}");
        }
    }

    /// Values and both gradients of `ours` against `burn` on random inputs.
    fn compare(x_shape: [usize; 4], w_shape: [usize; 4], ours: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>, burn: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>) {
        let device = Device::flex().autodiff();
        assert!(on_flex(&device), "the comparison must exercise our kernels");
        let x = Tensor::<4>::random(x_shape, Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random(w_shape, Distribution::Normal(0.0, 0.2), &device);
        let run = |f: &dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>| {
            let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
            let y = f(x.clone(), w.clone());
            // A non-uniform upstream gradient, so every output position matters differently.
            let probe = y.clone().detach().mul_scalar(0.5).sin();
            let grads = (y.clone() * probe).sum().backward();
            (y.inner(), x.grad(&grads).unwrap(), w.grad(&grads).unwrap())
        };
        let (y1, dx1, dw1) = run(&ours);
        let (y2, dx2, dw2) = run(&burn);
        close(y1, y2, "output");
        close(dx1, dx2, "input gradient");
        close(dw1, dw2, "weight gradient");
    }

    #[test]
    fn fused_batch_norm_matches_burn_in_values_gradients_and_running_statistics() {
        use burn::module::Param;
        use burn::nn::BatchNormConfig;
        let device = Device::flex().autodiff();
        let c = 5;
        let gamma = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.5), &device);
        let beta = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &device);
        let x = Tensor::<4>::random([4, c, 6, 7], Distribution::Normal(0.3, 2.0), &device);
        let run = |fused: bool| {
            // A fresh module each time: clones would share their running statistics.
            let mut norm = BatchNormConfig::new(c).init(&device);
            norm.gamma = Param::from_tensor(gamma.clone());
            norm.beta = Param::from_tensor(beta.clone());
            let x = x.clone().require_grad();
            let y = if fused { batch_norm_leaky(x.clone(), &norm) } else { crate::model::leaky_relu(norm.forward(x.clone())) };
            let probe = y.clone().detach().mul_scalar(0.7).cos();
            let grads = (y.clone() * probe).sum().backward();
            let g = |t: Tensor<1>| t.reshape([1, c, 1, 1]);
            let stats = [norm.running_mean.value_sync(), norm.running_var.value_sync()].map(|t| g(t.inner()));
            let (dgamma, dbeta) = (g(norm.gamma.grad(&grads).unwrap()), g(norm.beta.grad(&grads).unwrap()));
            (y.inner(), x.grad(&grads).unwrap(), dgamma, dbeta, stats)
        };
        let (y1, dx1, dg1, db1, [m1, v1]) = run(true);
        let (y2, dx2, dg2, db2, [m2, v2]) = run(false);
        close(y1, y2, "output");
        close(dx1, dx2, "input gradient");
        close(dg1, dg2, "gamma gradient");
        close(db1, db2, "beta gradient");
        close(m1, m2, "running mean");
        close(v1, v2, "running variance");
    }

    #[test]
    fn convolution_matches_burn_in_values_and_gradients() {
        for (x, w) in [([3, 1, 64, 64], [32, 1, 4, 4]), ([3, 32, 16, 16], [32, 32, 4, 4]), ([2, 5, 9, 9], [4, 5, 3, 3])] {
            compare(x, w, |x, w| conv2d(x, w, 2, 1), |x, w| burn::tensor::module::conv2d(x, w, None, conv_options(2, 1)));
        }
    }

    #[test]
    fn transposed_convolution_matches_burn_in_values_and_gradients() {
        for (x, w) in [([3, 32, 32, 32], [32, 1, 4, 4]), ([3, 32, 4, 4], [32, 32, 4, 4]), ([2, 5, 6, 6], [5, 3, 4, 4])] {
            compare(x, w, |x, w| conv_transpose2d(x, w, 2, 1), |x, w| burn::tensor::module::conv_transpose2d(x, w, None, transpose_options(2, 1)));
        }
    }
}
