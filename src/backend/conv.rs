//! Convolutions with our own CPU kernels (forward and backward), as a burn backend extension.
//!
//! [`ConvKernels`] has six operations: a convolution and a transposed convolution, each with
//! its input and weight gradient. Their default bodies are burn's own ops, so a backend that
//! does not override them (CUDA) computes exactly what `burn::nn` would. Flex overrides all six
//! with the im2col kernels of [`super::im2col`]; `Autodiff` overrides the two forward operations with a
//! backward pass that calls the inner backend's gradient operations.
//!
//! [`conv2d`] and [`conv_transpose2d`] are the tensor-level entry points; they fall back to
//! burn's modules' ops on a device that is not Flex, so the GPU path never sees this code.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use super::im2col::{self, ConvGeometry};
use super::{dims, f32_inputs, flex_tensor, on_flex, values};

pub fn conv_options(stride: usize, padding: usize) -> ConvOptions<2> {
    ConvOptions::new([stride, stride], [padding, padding], [1, 1], 1)
}

pub fn transpose_options(stride: usize, padding: usize) -> ConvTransposeOptions<2> {
    ConvTransposeOptions::new([stride, stride], [padding, padding], [0, 0], [1, 1], 1)
}

/// Square-kernel convolutions without bias (the bias is added by the caller).
#[backend_extension(Flex, Autodiff)]
pub trait ConvKernels: Backend {
    /// Convolution of `x` (N×C×H×W) with `weight` (C_out×C×k×k).
    fn conv2d_kernel(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, conv_options(stride, padding))
    }

    /// Gradient of [`Self::conv2d_kernel`]'s input.
    fn conv2d_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, grad, conv_options(stride, padding))
    }

    /// Gradient of [`Self::conv2d_kernel`]'s weight.
    fn conv2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, grad, conv_options(stride, padding))
    }

    /// Transposed convolution of `x` (N×C×H×W) with `weight` (C×C_out×k×k), output padding 0.
    fn conv_transpose2d_kernel(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d(x, weight, None, transpose_options(stride, padding))
    }

    /// Gradient of [`Self::conv_transpose2d_kernel`]'s input.
    fn conv_transpose2d_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        let _ = x;
        Self::conv_transpose2d_x_backward(weight, grad, transpose_options(stride, padding))
    }

    /// Gradient of [`Self::conv_transpose2d_kernel`]'s weight.
    fn conv_transpose2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d_weight_backward(x, weight, grad, transpose_options(stride, padding))
    }
}

/// The geometry of a convolution of `x` with `weight` (C_out×C×k×k).
fn conv_geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: usize,
    padding: usize,
) -> ConvGeometry {
    let ([_, c, h, w], [c_out, _, k, _]) = (dims::<4>(x), dims::<4>(weight));
    ConvGeometry::conv(c, h, w, c_out, k, stride, padding)
}

/// The geometry whose adjoint is the transposed convolution of `x` with `weight` (C×C_out×k×k).
fn transposed_geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    stride: usize,
    padding: usize,
) -> ConvGeometry {
    let ([_, c, h, w], [_, c_out, k, _]) = (dims::<4>(x), dims::<4>(weight));
    ConvGeometry::transposed(c, h, w, c_out, k, stride, padding)
}

impl ConvKernels for Flex {
    fn conv2d_kernel(
        x: FlexTensor,
        weight: FlexTensor,
        stride: usize,
        padding: usize,
    ) -> FlexTensor {
        if !f32_inputs(&[&x, &weight]) {
            return Flex::conv2d(x, weight, None, conv_options(stride, padding));
        }
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let g = conv_geometry(&x, &weight, stride, padding);
        let y = im2col::conv_forward(values(&x), values(&weight), &g);
        flex_tensor(y, [dims::<4>(&x)[0], g.c_out, g.h_out, g.w_out])
    }

    fn conv2d_input_grad(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        stride: usize,
        padding: usize,
    ) -> FlexTensor {
        if !f32_inputs(&[&x, &weight, &grad]) {
            return Flex::conv2d_x_backward(x, weight, grad, conv_options(stride, padding));
        }
        let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
        let g = conv_geometry(&x, &weight, stride, padding);
        flex_tensor(im2col::conv_input_grad(values(&grad), values(&weight), &g), dims::<4>(&x))
    }

    fn conv2d_weight_grad(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        stride: usize,
        padding: usize,
    ) -> FlexTensor {
        if !f32_inputs(&[&x, &weight, &grad]) {
            return Flex::conv2d_weight_backward(x, weight, grad, conv_options(stride, padding));
        }
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let g = conv_geometry(&x, &weight, stride, padding);
        flex_tensor(im2col::conv_weight_grad(values(&x), values(&grad), &g), dims::<4>(&weight))
    }

    fn conv_transpose2d_kernel(
        x: FlexTensor,
        weight: FlexTensor,
        stride: usize,
        padding: usize,
    ) -> FlexTensor {
        if !f32_inputs(&[&x, &weight]) {
            return Flex::conv_transpose2d(x, weight, None, transpose_options(stride, padding));
        }
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let g = transposed_geometry(&x, &weight, stride, padding);
        let y = im2col::conv_input_grad(values(&x), values(&weight), &g);
        flex_tensor(y, [dims::<4>(&x)[0], g.c_in, g.h_in, g.w_in])
    }

    fn conv_transpose2d_input_grad(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        stride: usize,
        padding: usize,
    ) -> FlexTensor {
        if !f32_inputs(&[&x, &weight, &grad]) {
            return Flex::conv_transpose2d_x_backward(
                weight,
                grad,
                transpose_options(stride, padding),
            );
        }
        let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
        let g = transposed_geometry(&x, &weight, stride, padding);
        flex_tensor(im2col::conv_forward(values(&grad), values(&weight), &g), dims::<4>(&x))
    }

    fn conv_transpose2d_weight_grad(
        x: FlexTensor,
        weight: FlexTensor,
        grad: FlexTensor,
        stride: usize,
        padding: usize,
    ) -> FlexTensor {
        if !f32_inputs(&[&x, &weight, &grad]) {
            return Flex::conv_transpose2d_weight_backward(
                x,
                weight,
                grad,
                transpose_options(stride, padding),
            );
        }
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let g = transposed_geometry(&x, &weight, stride, padding);
        // The adjoint convolution reads the transposed convolution's output gradient and
        // produces its input: its weight gradient pairs them the other way round.
        flex_tensor(im2col::conv_weight_grad(values(&grad), values(&x), &g), dims::<4>(&weight))
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

impl<B: Backend + ConvKernels> Backward<B, 2> for ConvBackward {
    type State = (NodeId, NodeId, ConvKind, usize, usize);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, kind, stride, padding) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        if let Some(node) = node_x {
            let dx = match kind {
                ConvKind::Conv => {
                    B::conv2d_input_grad(x.clone(), weight.clone(), grad.clone(), stride, padding)
                }
                ConvKind::Transposed => B::conv_transpose2d_input_grad(
                    x.clone(),
                    weight.clone(),
                    grad.clone(),
                    stride,
                    padding,
                ),
            };
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = match kind {
                ConvKind::Conv => B::conv2d_weight_grad(x, weight, grad, stride, padding),
                ConvKind::Transposed => {
                    B::conv_transpose2d_weight_grad(x, weight, grad, stride, padding)
                }
            };
            grads.register::<B>(node.id, dw);
        }
    }
}

/// Runs `forward` on the inner backend and records [`ConvBackward`] for it.
fn tracked<B: Backend + ConvKernels, C: CheckpointStrategy>(
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
            prep.finish(
                (x_state, weight_state, kind, stride, padding),
                forward(x.into_primitive(), weight.into_primitive()),
            )
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(forward(x.into_primitive(), weight.into_primitive()))
        }
    }
}

impl<B: Backend + ConvKernels, C: CheckpointStrategy> ConvKernels for Autodiff<B, C> {
    fn conv2d_kernel(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        tracked::<B, C>(x, weight, ConvKind::Conv, stride, padding)
    }

    fn conv_transpose2d_kernel(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        tracked::<B, C>(x, weight, ConvKind::Transposed, stride, padding)
    }
}

/// Convolution without bias: our kernels on Flex, burn's op elsewhere.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, stride: usize, padding: usize) -> Tensor<4> {
    if !on_flex(&x.device()) {
        return burn::tensor::module::conv2d(x, weight, None, conv_options(stride, padding));
    }
    Tensor::from_dispatch(<Dispatch as ConvKernels>::conv2d_kernel(
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        padding,
    ))
}

/// Transposed convolution without bias (output padding 0): our kernels on Flex, burn's op elsewhere.
pub fn conv_transpose2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    stride: usize,
    padding: usize,
) -> Tensor<4> {
    if !on_flex(&x.device()) {
        return burn::tensor::module::conv_transpose2d(
            x,
            weight,
            None,
            transpose_options(stride, padding),
        );
    }
    Tensor::from_dispatch(<Dispatch as ConvKernels>::conv_transpose2d_kernel(
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        padding,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn close(a: Tensor<4>, b: Tensor<4>, what: &str) {
        let (a, b) = (
            a.into_data().try_into_vec::<f32>().unwrap(),
            b.into_data().try_into_vec::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{what}");
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * scale, "{what}[{i}]: {x} vs burn {y}");
        }
    }

    /// Values and both gradients of `ours` against `burn` on random inputs.
    fn compare(
        x_shape: [usize; 4],
        w_shape: [usize; 4],
        ours: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
        burn: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>,
    ) {
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
    fn convolution_matches_burn_in_values_and_gradients() {
        // dSprites' and Shapes3D's k4 s2 p1 layers, and HWF's k5 / k3 s2 p0 (45 → 21 → 9 → 4).
        let cases = [
            ([3, 1, 64, 64], [32, 1, 4, 4], 1),
            ([3, 32, 16, 16], [32, 32, 4, 4], 1),
            ([2, 5, 9, 9], [4, 5, 3, 3], 1),
            ([2, 1, 45, 45], [6, 1, 5, 5], 0),
            ([2, 6, 9, 9], [4, 6, 3, 3], 0),
        ];
        for (x, w, p) in cases {
            compare(
                x,
                w,
                |x, w| conv2d(x, w, 2, p),
                |x, w| burn::tensor::module::conv2d(x, w, None, conv_options(2, p)),
            );
        }
    }

    #[test]
    fn transposed_convolution_matches_burn_in_values_and_gradients() {
        // k4 s2 p1 (64×64 tasks), and HWF's k3 / k5 s2 p0 (4 → 9 → 21 → 45).
        let cases = [
            ([3, 32, 32, 32], [32, 1, 4, 4], 1),
            ([3, 32, 4, 4], [32, 32, 4, 4], 1),
            ([2, 5, 6, 6], [5, 3, 4, 4], 1),
            ([2, 6, 4, 4], [6, 5, 3, 3], 0),
            ([2, 5, 21, 21], [5, 1, 5, 5], 0),
        ];
        for (x, w, p) in cases {
            compare(
                x,
                w,
                |x, w| conv_transpose2d(x, w, 2, p),
                |x, w| burn::tensor::module::conv_transpose2d(x, w, None, transpose_options(2, p)),
            );
        }
    }
}
