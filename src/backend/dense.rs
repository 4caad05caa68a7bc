//! Dense layers' matrix product with our own input gradient, as a burn backend extension.
//!
//! burn differentiates `y = x · W` into `dx = dy · Wᵀ` with `Wᵀ` a strided view of the
//! weight, so gemm packs W a column at a time: for a 1 024-wide layer those reads are 4 KiB
//! apart and collide in the cache. In a profile of a dSprites mixture step at one thread that
//! packing was 7% of the time (the discriminator's and the encoder's dense layers; the ReL's
//! three 1 024-wide layers spend more of theirs there). [`DenseKernels::dense_input_grad`]
//! transposes W by blocks first, on every thread ([`super::par_transpose_into`]), so that gemm
//! reads it as it lies, and otherwise makes the same gemm call burn's matmul makes: the same
//! products in the same order, so the gradients are burn's to the bit. The forward product and
//! the weight gradient are burn's own ops.
//!
//! [`linear`] is the tensor-level entry point; it falls back to burn's `Linear` on a device
//! that is not Flex, so the GPU path never sees this code.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::nn::Linear;
use burn::prelude::*;

use super::{dims, f32_inputs, flex_tensor, on_flex, par_transpose_into, values};

/// The product of a batch of rows with a dense layer's weight, and its input gradient.
#[backend_extension(Flex, Autodiff)]
pub trait DenseKernels: Backend {
    /// `x` (N × in) · `weight` (in × out).
    fn dense_kernel(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_matmul(x, weight)
    }

    /// Gradient of [`Self::dense_kernel`]'s input: `grad` (N × out) · `weight`ᵀ.
    fn dense_input_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_matmul(grad, Self::float_transpose(weight))
    }
}

/// burn-flex's rule for when a matrix product runs on every thread (the product of its three
/// sizes from 192³ up): the same split over the same tiles gives the same values.
fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;
    if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_THRESHOLD {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// Whether gemm runs burn's input-gradient product of these sizes on its general path, where
/// the operands' layout changes which of them it packs but no sum: a product with at most 256
/// outputs, one row or one column, or at most two terms per sum goes to one of gemm's
/// special kernels, which picks its summation order by the operands' layout. Those products
/// are small, and burn's own op computes them.
fn on_gemms_general_path(rows: usize, inputs: usize, outputs: usize) -> bool {
    rows * inputs > 16 * 16 && rows > 1 && inputs > 1 && outputs > 2
}

impl DenseKernels for Flex {
    fn dense_input_grad(weight: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let ([inputs, outputs], [rows, _]) = (dims(&weight), dims(&grad));
        if !f32_inputs(&[&weight, &grad]) || !on_gemms_general_path(rows, inputs, outputs) {
            return Flex::float_matmul(grad, Flex::float_transpose(weight));
        }
        let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
        let mut weight_t = vec![0.0; inputs * outputs];
        par_transpose_into(values(&weight), inputs, outputs, &mut weight_t);
        let mut dx = vec![0.0; rows * inputs];
        // SAFETY: `grad` holds rows × outputs values, `weight_t` outputs × inputs and `dx`
        // rows × inputs, each row-major at the strides given.
        unsafe {
            gemm::gemm(
                rows,
                inputs,
                outputs,
                dx.as_mut_ptr(),
                1,
                inputs as isize,
                false,
                values(&grad).as_ptr(),
                1,
                outputs as isize,
                weight_t.as_ptr(),
                1,
                inputs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism(rows, inputs, outputs),
            );
        }
        flex_tensor(dx, [rows, inputs])
    }
}

/// Backward step of [`DenseKernels::dense_kernel`]: our input gradient, burn's weight gradient.
#[derive(Debug)]
struct DenseBackward;

impl<B: Backend + DenseKernels> Backward<B, 2> for DenseBackward {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::dense_input_grad(weight, grad.clone()));
        }
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, B::float_matmul(B::float_transpose(x), grad));
        }
    }
}

impl<B: Backend + DenseKernels, C: CheckpointStrategy> DenseKernels for Autodiff<B, C> {
    fn dense_kernel(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        match DenseBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                prep.finish(state, B::dense_kernel(x.into_primitive(), weight.into_primitive()))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::dense_kernel(x.into_primitive(), weight.into_primitive()))
            }
        }
    }
}

/// `layer` applied to the rows of `x` ([N, in] → [N, out]): our input gradient on Flex,
/// burn's `Linear` elsewhere.
pub fn linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    if !on_flex(&x.device()) {
        return layer.forward(x);
    }
    let y = Tensor::from_dispatch(<Dispatch as DenseKernels>::dense_kernel(
        x.into_dispatch(),
        layer.weight.val().into_dispatch(),
    ));
    match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze(),
        None => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::Distribution;

    fn values_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().unwrap()
    }

    /// Output and gradients (input, weight, bias) of `layer` on `x`, through `forward`.
    fn run(
        layer: &Linear,
        x: &Tensor<2>,
        forward: impl Fn(&Linear, Tensor<2>) -> Tensor<2>,
    ) -> [Vec<f32>; 4] {
        let x = x.clone().require_grad();
        let y = forward(layer, x.clone());
        // A non-uniform upstream gradient, so every output matters differently.
        let probe = y.clone().detach().mul_scalar(0.5).sin();
        let grads = (y.clone() * probe).sum().backward();
        let bias = layer.bias.as_ref().expect("a bias");
        [
            values_of(y.inner()),
            values_of(x.grad(&grads).unwrap()),
            values_of(layer.weight.grad(&grads).unwrap()),
            values_of(bias.grad(&grads).unwrap()),
        ]
    }

    #[test]
    fn dense_layer_matches_burns_linear_to_the_bit() {
        let device = Device::flex().autodiff();
        assert!(on_flex(&device), "the comparison must exercise our kernel");
        // A ReL-sized layer (whole transpose blocks, parallel gemm), a ragged one, and small
        // ones that gemm computes on its special paths.
        for (rows, inputs, outputs) in
            [(128, 256, 1024), (37, 100, 70), (7, 10, 33), (3, 1024, 1), (1, 64, 64)]
        {
            let layer = LinearConfig::new(inputs, outputs).init(&device);
            let x = Tensor::<2>::random([rows, inputs], Distribution::Normal(0.0, 1.0), &device);
            let ours = run(&layer, &x, linear);
            let burns = run(&layer, &x, |layer, x| layer.forward(x));
            for (what, (a, b)) in ["output", "input gradient", "weight gradient", "bias gradient"]
                .iter()
                .zip(ours.iter().zip(&burns))
            {
                assert_eq!(a, b, "{what} of a {rows}×{inputs}→{outputs} layer");
            }
        }
    }
}
