//! `relatent bench --ops`: where a training step's time goes, op by op. Every layer of the
//! task's networks is run forward and backward alone at the bench batch, once through the
//! code the model uses (our kernels and activation forms) and once through burn's own op for
//! the same function, so the table shows what each of our kernels buys.

use burn::nn::{BatchNorm, BatchNormConfig, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation;
use burn::tensor::module::{conv_transpose2d, conv2d};
use serde::Serialize;

use super::median_seconds;
use crate::Result;
use crate::backend::{self as kernels};
use crate::model::{self, Architecture, ConvSpec, LEAKY_SLOPE};
use crate::objectives::reconstruction_bce as bce_with_logits;

/// Hidden width of the encoder's, decoder's and discriminator's dense layers (SPEC §2).
const WIDTH: usize = 1024;
/// Tanh layers of the discriminator.
const DISCRIMINATOR_TANH_LAYERS: usize = 3;

/// One op's forward + backward milliseconds, summed over the layers it appears in.
#[derive(Clone, Debug, Serialize)]
pub struct OpTiming {
    pub op: &'static str,
    /// Layers that run it in one pass of each network (encoder, decoder, discriminator).
    pub layers: usize,
    /// Through the code the model runs.
    pub ours_ms: f64,
    /// Through burn's own op; None where the model runs burn's op itself.
    pub burn_ms: Option<f64>,
}

/// One way of computing a layer from its inputs.
type LayerFn = Box<dyn Fn(&[Tensor<4>]) -> Tensor<4>>;

/// A layer's inputs and the two ways of computing it.
struct Case {
    op: &'static str,
    inputs: Vec<[usize; 4]>,
    ours: LayerFn,
    burn: Option<LayerFn>,
}

/// Times every layer of `arch`'s autoencoder (plus the discriminator's tanh and the
/// reconstruction loss) at batch `batch` on `device` (an autodiff device).
pub fn per_op(
    arch: &Architecture,
    batch: usize,
    repeats: usize,
    device: &Device,
) -> Result<Vec<OpTiming>> {
    let mut table: Vec<OpTiming> = Vec::new();
    for case in cases(arch, batch, device) {
        let inputs: Vec<Tensor<4>> = case
            .inputs
            .iter()
            .map(|&s| Tensor::random(s, Distribution::Normal(0.0, 1.0), device))
            .collect();
        let ours = forward_backward_ms(&inputs, &*case.ours, repeats)?;
        let burn =
            case.burn.as_ref().map(|f| forward_backward_ms(&inputs, &**f, repeats)).transpose()?;
        match table.iter_mut().find(|t| t.op == case.op) {
            Some(row) => {
                row.layers += 1;
                row.ours_ms += ours;
                row.burn_ms = row.burn_ms.zip(burn).map(|(a, b)| a + b);
            }
            None => table.push(OpTiming { op: case.op, layers: 1, ours_ms: ours, burn_ms: burn }),
        }
    }
    Ok(table)
}

/// Median milliseconds of `f`'s forward pass and the backward pass of its output's sum.
fn forward_backward_ms(
    inputs: &[Tensor<4>],
    f: &dyn Fn(&[Tensor<4>]) -> Tensor<4>,
    repeats: usize,
) -> Result<f64> {
    let seconds = median_seconds(super::WARMUP, repeats, || {
        let inputs: Vec<Tensor<4>> = inputs.iter().map(|t| t.clone().require_grad()).collect();
        let grads = f(&inputs).sum().backward();
        std::hint::black_box(inputs[0].grad(&grads));
        Ok(())
    })?;
    Ok(seconds * 1e3)
}

/// Every op instance of one training step's autoencoder pass, in network order.
fn cases(arch: &Architecture, b: usize, device: &Device) -> Vec<Case> {
    let ch = arch.channels;
    let mut cases = Vec::new();
    let mut side = arch.image[1];
    let mut cin = arch.image[0];
    for &spec in &arch.encoder {
        cases.push(convolution(b, cin, side, ch, spec));
        side = (side + 2 * spec.padding - spec.kernel) / spec.stride + 1;
        cases.push(batch_norm_leaky(b, ch, side, device));
        cin = ch;
    }
    let flat = arch.flat_features();
    cases.push(linear(b, flat, WIDTH, device));
    cases.push(leaky(b, WIDTH));
    cases.push(linear(b, WIDTH, arch.latent, device));
    cases.push(linear(b, arch.latent, WIDTH, device));
    cases.push(leaky(b, WIDTH));
    cases.push(linear(b, WIDTH, flat, device));
    let mut side = arch.decoder_start;
    for (i, &spec) in arch.decoder.iter().enumerate() {
        let last = i + 1 == arch.decoder.len();
        let cout = if last { arch.image[0] } else { ch };
        cases.push(transposed_convolution(b, ch, side, cout, spec));
        side = (side - 1) * spec.stride + spec.kernel - 2 * spec.padding;
        if !last {
            cases.push(batch_norm_leaky(b, cout, side, device));
        }
    }
    cases.push(reconstruction_loss(b, arch));
    cases.extend((0..DISCRIMINATOR_TANH_LAYERS).map(|_| tanh(b)));
    cases
}

fn convolution(b: usize, cin: usize, side: usize, cout: usize, spec: ConvSpec) -> Case {
    let ConvSpec { kernel, stride, padding } = spec;
    let options = kernels::conv_options(stride, padding);
    Case {
        op: "conv2d",
        inputs: vec![[b, cin, side, side], [cout, cin, kernel, kernel]],
        ours: Box::new(move |t| kernels::conv2d(t[0].clone(), t[1].clone(), stride, padding)),
        burn: Some(Box::new(move |t| conv2d(t[0].clone(), t[1].clone(), None, options.clone()))),
    }
}

fn transposed_convolution(b: usize, cin: usize, side: usize, cout: usize, spec: ConvSpec) -> Case {
    let ConvSpec { kernel, stride, padding } = spec;
    let options = kernels::transpose_options(stride, padding);
    Case {
        op: "conv_transpose2d",
        inputs: vec![[b, cin, side, side], [cin, cout, kernel, kernel]],
        ours: Box::new(move |t| {
            kernels::conv_transpose2d(t[0].clone(), t[1].clone(), stride, padding)
        }),
        burn: Some(Box::new(move |t| {
            conv_transpose2d(t[0].clone(), t[1].clone(), None, options.clone())
        })),
    }
}

fn batch_norm_leaky(b: usize, channels: usize, side: usize, device: &Device) -> Case {
    let norm: BatchNorm = BatchNormConfig::new(channels).init(device);
    let theirs = norm.clone();
    Case {
        op: "batch norm + LeakyReLU",
        inputs: vec![[b, channels, side, side]],
        ours: Box::new(move |t| {
            kernels::norm::batch_norm_leaky_relu(&norm, t[0].clone(), LEAKY_SLOPE)
        }),
        burn: Some(Box::new(move |t| {
            activation::leaky_relu(theirs.forward(t[0].clone()), LEAKY_SLOPE)
        })),
    }
}

fn linear(b: usize, inputs: usize, outputs: usize, device: &Device) -> Case {
    let layer = LinearConfig::new(inputs, outputs).init(device);
    Case {
        op: "linear",
        inputs: vec![[b, inputs, 1, 1]],
        ours: Box::new(move |t| {
            layer.forward(t[0].clone().flatten::<2>(1, 3)).reshape([b, outputs, 1, 1])
        }),
        burn: None,
    }
}

fn leaky(b: usize, width: usize) -> Case {
    Case {
        op: "LeakyReLU",
        inputs: vec![[b, width, 1, 1]],
        ours: Box::new(|t| model::leaky_relu(t[0].clone())),
        burn: Some(Box::new(|t| activation::leaky_relu(t[0].clone(), LEAKY_SLOPE))),
    }
}

fn tanh(b: usize) -> Case {
    Case {
        op: "tanh",
        inputs: vec![[b, WIDTH, 1, 1]],
        ours: Box::new(|t| kernels::pointwise::tanh(t[0].clone())),
        burn: Some(Box::new(|t| activation::tanh(t[0].clone()))),
    }
}

/// The reconstruction BCE from logits, against the textbook form through log σ.
fn reconstruction_loss(b: usize, arch: &Architecture) -> Case {
    let [c, h, w] = arch.image;
    let scalar_as_4d = |l: Tensor<1>| l.reshape([1, 1, 1, 1]);
    Case {
        op: "BCE with logits",
        inputs: vec![[b, c, h, w], [b, c, h, w]],
        ours: Box::new(move |t| {
            scalar_as_4d(bce_with_logits(t[0].clone(), activation::sigmoid(t[1].clone().detach())))
        }),
        burn: Some(Box::new(move |t| {
            let (logits, targets) = (t[0].clone(), activation::sigmoid(t[1].clone().detach()));
            let ones = targets.ones_like();
            let nll = targets.clone() * activation::log_sigmoid(logits.clone())
                + (ones - targets) * activation::log_sigmoid(logits.neg());
            scalar_as_4d(nll.sum().neg().div_scalar(b as f32))
        })),
    }
}

/// The per-op table as text.
pub fn table(ops: &[OpTiming]) -> String {
    let mut out = format!(
        "{:<24} {:>6} {:>10} {:>10}\n",
        "op (forward + backward)", "layers", "ours ms", "burn ms"
    );
    for t in ops {
        let burn = t.burn_ms.map_or("same op".into(), |ms| format!("{ms:.2}"));
        out.push_str(&format!("{:<24} {:>6} {:>10.2} {:>10}\n", t.op, t.layers, t.ours_ms, burn));
    }
    let ours: f64 = ops.iter().map(|t| t.ours_ms).sum();
    let burn: f64 = ops.iter().map(|t| t.burn_ms.unwrap_or(t.ours_ms)).sum();
    out.push_str(&format!("{:<24} {:>6} {:>10.2} {:>10.2}\n", "total", "", ours, burn));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_of_the_dsprites_networks_is_timed_once() {
        let arch = crate::tasks::by_name("dsprites").unwrap().architecture;
        let ops = per_op(&arch, 2, 1, &Device::flex().autodiff()).unwrap();
        let layers = |op: &str| ops.iter().find(|t| t.op == op).map(|t| t.layers);
        assert_eq!(layers("conv2d"), Some(4));
        assert_eq!(layers("conv_transpose2d"), Some(4));
        assert_eq!(
            layers("batch norm + LeakyReLU"),
            Some(7),
            "after every convolution but the last"
        );
        assert_eq!(layers("linear"), Some(4));
        assert_eq!(layers("LeakyReLU"), Some(2));
        assert_eq!(layers("tanh"), Some(3));
        assert_eq!(layers("BCE with logits"), Some(1));
        assert!(ops.iter().all(|t| t.ours_ms > 0.0 && t.burn_ms.is_none_or(|ms| ms > 0.0)));
        assert_eq!(
            ops.iter().find(|t| t.op == "linear").unwrap().burn_ms,
            None,
            "linear layers run burn's op"
        );
    }
}
