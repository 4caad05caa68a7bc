//! The networks: the AbsAE's encoder and decoder (per-task architecture, SPEC §2), and the
//! MLPs used as discriminator and relational learner.
//!
//! The networks are unaware of the objectives they are trained with ([`crate::objectives`]).
//! Activations are written in forms that burn-flex runs faster and that compute the same
//! function: LeakyReLU(0.1)(x) = 0.9·relu(x) + 0.1·x (measured: +24% training throughput),
//! tanh as one kernel pass each way ([`crate::backend::pointwise`]).

pub mod arch;

use crate::backend;
use crate::backend::dense::linear;
use crate::backend::pointwise::leaky_relu_with_slope;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

pub use arch::{Architecture, ConvSpec};

/// Whether every float parameter of `module` is finite (a NaN or ∞ in any weight makes the
/// sum of that parameter non-finite).
pub fn all_finite<M: Module>(module: &M) -> bool {
    struct Finite(bool);
    impl burn::module::ModuleVisitor for Finite {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0 = self.0 && param.val().sum().into_scalar::<f32>().is_finite();
        }
    }
    let mut finite = Finite(true);
    module.visit(&mut finite);
    finite.0
}

/// Seeds the backend's random generator and initialises the networks `init` builds, holding a
/// process-wide lock throughout: burn-flex keeps one generator for the whole process and burn
/// draws a parameter's initial values lazily, at its first use, so two runs starting at once
/// (tests in one binary, a server training beside a sweep) would otherwise interleave their
/// draws and neither would depend on its seed alone. Every parameter is therefore drawn here.
pub fn seeded_init<M: Module>(device: &Device, seed: u64, init: impl FnOnce() -> M) -> M {
    static BACKEND_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A panic inside another init leaves no state behind that this one depends on.
    let _held = BACKEND_RNG.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    device.seed(seed);
    let module = init();
    draw_parameters(&module);
    module
}

/// Makes burn draw every lazily initialised float parameter of `module` now.
fn draw_parameters<M: Module>(module: &M) {
    struct Draw;
    impl burn::module::ModuleVisitor for Draw {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            param.val();
        }
    }
    module.visit(&mut Draw);
}

/// The negative slope of the LeakyReLU after every batch norm (SPEC §2).
pub const LEAKY_SLOPE: f64 = 0.1;

/// LeakyReLU with slope 0.1, as a weighted sum of relu and identity.
pub fn leaky_relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    leaky_relu_with_slope(x, LEAKY_SLOPE)
}

/// Width of the hidden layers after the encoder's convolutions, before the decoder's, and of
/// the MLPs.
pub const HIDDEN: usize = 1024;

/// Adds a per-channel bias to an N×C×H×W tensor.
fn add_channel_bias(y: Tensor<4>, bias: Option<&burn::module::Param<Tensor<1>>>) -> Tensor<4> {
    match bias {
        Some(b) => {
            let c = b.dims()[0];
            y + b.val().reshape([1, c, 1, 1])
        }
        None => y,
    }
}

/// Convolution (no bias: batch norm follows), batch norm, LeakyReLU.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    norm: BatchNorm,
    #[module(skip)]
    padding: usize,
}

impl ConvBlock {
    fn new(cin: usize, cout: usize, spec: ConvSpec, device: &Device) -> Self {
        let p = spec.padding;
        let conv = Conv2dConfig::new([cin, cout], [spec.kernel, spec.kernel])
            .with_stride([spec.stride, spec.stride])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            // Batch norm subtracts each channel's mean, so a bias here would cancel out.
            .with_bias(false)
            .init(device);
        ConvBlock { conv, norm: BatchNormConfig::new(cout).init(device), padding: p }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = backend::conv2d(x, self.conv.weight.val(), self.conv.stride[0], self.padding);
        backend::norm::batch_norm_leaky_relu(&self.norm, y, LEAKY_SLOPE)
    }
}

/// Transposed convolution, optionally followed by batch norm and LeakyReLU.
#[derive(Module, Debug)]
pub struct DeconvBlock {
    deconv: ConvTranspose2d,
    norm: Option<BatchNorm>,
}

impl DeconvBlock {
    fn new(cin: usize, cout: usize, spec: ConvSpec, last: bool, device: &Device) -> Self {
        let deconv = ConvTranspose2dConfig::new([cin, cout], [spec.kernel, spec.kernel])
            .with_stride([spec.stride, spec.stride])
            .with_padding([spec.padding, spec.padding])
            // Only the last layer, which has no batch norm after it, needs a bias.
            .with_bias(last)
            .init(device);
        let norm = (!last).then(|| BatchNormConfig::new(cout).init(device));
        DeconvBlock { deconv, norm }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let d = &self.deconv;
        let y = add_channel_bias(
            backend::conv_transpose2d(x, d.weight.val(), d.stride[0], d.padding[0]),
            d.bias.as_ref(),
        );
        match &self.norm {
            Some(norm) => backend::norm::batch_norm_leaky_relu(norm, y, LEAKY_SLOPE),
            None => y,
        }
    }
}

/// Image → features: the latent code (AbsAE), or its mean next to its log-variance (VAEs).
#[derive(Module, Debug)]
pub struct Encoder {
    convs: Vec<ConvBlock>,
    hidden: Linear,
    out: Linear,
}

impl Encoder {
    /// The encoder of `arch`, emitting `outputs` features per image.
    pub fn new(arch: &Architecture, outputs: usize, device: &Device) -> Self {
        let mut cin = arch.image[0];
        let convs = arch
            .encoder
            .iter()
            .map(|&spec| {
                let block = ConvBlock::new(cin, arch.channels, spec, device);
                cin = arch.channels;
                block
            })
            .collect();
        Encoder {
            convs,
            hidden: LinearConfig::new(arch.flat_features(), HIDDEN).init(device),
            out: LinearConfig::new(HIDDEN, outputs).init(device),
        }
    }

    /// [B, C, H, W] → [B, outputs].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.convs.iter().fold(images, |x, block| block.forward(x));
        let x: Tensor<2> = x.flatten(1, 3);
        linear(&self.out, leaky_relu(linear(&self.hidden, x)))
    }
}

/// Latent code → image logits.
#[derive(Module, Debug)]
pub struct Decoder {
    hidden: Linear,
    to_grid: Linear,
    deconvs: Vec<DeconvBlock>,
    channels: usize,
    start: usize,
}

impl Decoder {
    /// The decoder of `arch`.
    pub fn new(arch: &Architecture, device: &Device) -> Self {
        let n = arch.decoder.len();
        let deconvs = arch
            .decoder
            .iter()
            .enumerate()
            .map(|(i, &spec)| {
                let last = i + 1 == n;
                let cout = if last { arch.image[0] } else { arch.channels };
                DeconvBlock::new(arch.channels, cout, spec, last, device)
            })
            .collect();
        Decoder {
            hidden: LinearConfig::new(arch.latent, HIDDEN).init(device),
            to_grid: LinearConfig::new(
                HIDDEN,
                arch.channels * arch.decoder_start * arch.decoder_start,
            )
            .init(device),
            deconvs,
            channels: arch.channels,
            start: arch.decoder_start,
        }
    }

    /// [B, d] → logits [B, C, H, W].
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let b = z.dims()[0];
        let x = linear(&self.to_grid, leaky_relu(linear(&self.hidden, z)));
        let x = x.reshape([b, self.channels, self.start, self.start]);
        self.deconvs.iter().fold(x, |x, block| block.forward(x))
    }
}

/// The adversarial autoencoder's two halves.
#[derive(Module, Debug)]
pub struct AbsAe {
    pub encoder: Encoder,
    pub decoder: Decoder,
}

impl AbsAe {
    /// Encoder and decoder of `arch`.
    pub fn new(arch: &Architecture, device: &Device) -> Self {
        AbsAe {
            encoder: Encoder::new(arch, arch.latent, device),
            decoder: Decoder::new(arch, device),
        }
    }
}

/// The baselines' variational autoencoder: the AbsAE's networks, the encoder emitting the mean
/// and log-variance of a diagonal Gaussian posterior.
#[derive(Module, Debug)]
pub struct Vae {
    pub encoder: Encoder,
    pub decoder: Decoder,
}

impl Vae {
    /// Encoder (2·latent outputs) and decoder of `arch`.
    pub fn new(arch: &Architecture, device: &Device) -> Self {
        Vae {
            encoder: Encoder::new(arch, 2 * arch.latent, device),
            decoder: Decoder::new(arch, device),
        }
    }

    /// Posterior mean and log-variance, each [B, d].
    pub fn posterior(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let out = self.encoder.forward(images);
        let [b, two_d] = out.dims();
        let d = two_d / 2;
        (out.clone().slice([0..b, 0..d]), out.slice([0..b, d..two_d]))
    }
}

/// Hidden-layer nonlinearity of an [`Mlp`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Tanh,
    LeakyRelu(f64),
}

impl Activation {
    fn apply(self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Activation::Tanh => backend::pointwise::tanh(x),
            Activation::LeakyRelu(slope) => leaky_relu_with_slope(x, slope),
        }
    }
}

/// MLP with tanh (or LeakyReLU) hidden layers and a linear output: the discriminators and the
/// relational learner are all this.
#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Vec<Linear>,
    out: Linear,
    #[module(skip)]
    activation: Activation,
}

impl Mlp {
    /// `inputs` → `layers`×`width` tanh → `outputs`.
    pub fn new(
        inputs: usize,
        width: usize,
        layers: usize,
        outputs: usize,
        device: &Device,
    ) -> Self {
        let hidden = (0..layers)
            .map(|i| LinearConfig::new(if i == 0 { inputs } else { width }, width).init(device))
            .collect();
        Mlp {
            hidden,
            out: LinearConfig::new(width, outputs).init(device),
            activation: Activation::Tanh,
        }
    }

    /// The same MLP with another hidden nonlinearity.
    pub fn with_activation(self, activation: Activation) -> Self {
        Mlp { activation, ..self }
    }

    /// [B, inputs] → [B, outputs].
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.hidden.iter().fold(x, |x, layer| self.activation.apply(linear(layer, x)));
        linear(&self.out, x)
    }
}

/// The discriminator: code → logit of "drawn from the prior".
pub fn discriminator(arch: &Architecture, device: &Device) -> Mlp {
    Mlp::new(arch.latent, HIDDEN, 3, 1, device)
}

/// FactorVAE's discriminator as disentanglement_lib builds it: code → 6×1000 LeakyReLU(0.2) →
/// two logits ("from q(z)", "from the product of its marginals").
pub fn total_correlation_discriminator(arch: &Architecture, device: &Device) -> Mlp {
    Mlp::new(arch.latent, 1000, 6, 2, device).with_activation(Activation::LeakyRelu(0.2))
}

/// The relational learner: a row of `inputs` features (input codes, then the relation's one-hot
/// id or its operator's code) → `outputs` codes side by side.
pub fn relational_learner(
    arch: &Architecture,
    inputs: usize,
    outputs: usize,
    device: &Device,
) -> Mlp {
    Mlp::new(inputs, HIDDEN, 3, outputs * arch.latent, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation;

    #[test]
    fn dsprites_shapes_are_consistent() {
        let device = Device::flex();
        let arch = crate::tasks::by_name("dsprites").unwrap().architecture;
        let ae = AbsAe::new(&arch, &device);
        let x = Tensor::<4>::zeros([2, 1, 64, 64], &device);
        let z = ae.encoder.forward(x);
        assert_eq!(z.dims(), [2, 8]);
        assert_eq!(ae.decoder.forward(z.clone()).dims(), [2, 1, 64, 64]);
        assert_eq!(discriminator(&arch, &device).forward(z.clone()).dims(), [2, 1]);
        let rel_in = Tensor::cat(vec![z, Tensor::zeros([2, 5], &device)], 1);
        assert_eq!(relational_learner(&arch, 13, 1, &device).forward(rel_in).dims(), [2, 8]);
        assert_eq!(
            relational_learner(&arch, 24, 2, &device)
                .forward(Tensor::zeros([3, 24], &device))
                .dims(),
            [3, 16],
            "two output codes"
        );
        let vae = Vae::new(&arch, &device);
        let (mean, log_var) = vae.posterior(Tensor::<4>::zeros([3, 1, 64, 64], &device));
        assert_eq!((mean.dims(), log_var.dims()), ([3, 8], [3, 8]));
        assert_eq!(vae.decoder.forward(mean).dims(), [3, 1, 64, 64]);
        assert_eq!(total_correlation_discriminator(&arch, &device).forward(log_var).dims(), [3, 2]);
    }

    #[test]
    fn shapes3d_and_hwf_networks_map_images_to_codes_and_back() {
        let device = Device::flex();
        for (task, image, latent) in [("shapes3d", [3, 64, 64], 16), ("hwf", [1, 45, 45], 8)] {
            let ae = AbsAe::new(&crate::tasks::by_name(task).unwrap().architecture, &device);
            let z =
                ae.encoder.forward(Tensor::<4>::zeros([2, image[0], image[1], image[2]], &device));
            assert_eq!(z.dims(), [2, latent], "{task}");
            assert_eq!(ae.decoder.forward(z).dims(), [2, image[0], image[1], image[2]], "{task}");
        }
    }

    #[test]
    fn fast_leaky_relu_equals_the_library_one() {
        let device = Device::flex();
        let x = Tensor::<1>::from_floats([-3.0, -0.5, 0.0, 0.2, 4.0], &device);
        let lr = leaky_relu(x.clone()).into_data().try_into_vec::<f32>().unwrap();
        let want = activation::leaky_relu(x, 0.1).into_data().try_into_vec::<f32>().unwrap();
        for i in 0..5 {
            assert!((lr[i] - want[i]).abs() < 1e-6);
        }
    }
}
