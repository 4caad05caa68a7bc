//! A trained run loaded for inference, without any training machinery: the networks built
//! from the task's architecture with the checkpoint's weights (no optimiser state, no
//! labelled images rendered), the prior and the task. Batched encode, decode, classify and
//! apply live here once; evaluation, figures, `apply` and the explorer use them.

use std::path::Path;

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use crate::config::ModelKind;
use crate::context::{RunContext, code_tensor, image_tensor};
use crate::data::ImageShape;
use crate::model::{self, AbsAe, Encoder, Vae};
use crate::prior::{AlphaRule, Mixture, Prior, argmax, max_posterior};
use crate::rel::{RelationSet, RelationalLearner};
use crate::run_dir::RunDir;
use crate::train::checkpoint::{Checkpoint, sections};
use crate::{Error, Result};

/// Images per inference batch: large enough to keep the cores busy, small enough for memory.
pub const INFERENCE_BATCH: usize = 256;

/// What a trained method does at inference time.
pub trait Model: Send + Sync {
    /// The model's kind.
    fn kind(&self) -> ModelKind;
    /// Latent dimensions of a code.
    fn latent(&self) -> usize;
    /// Images [B, C, H, W] → codes [B, d]: the AbsAE's code, a VAE's posterior mean.
    fn encode(&self, images: Tensor<4>) -> Tensor<2>;
    /// Codes [B, d] → image logits [B, C, H, W].
    fn decode(&self, codes: Tensor<2>) -> Tensor<4>;
    /// The representation the disentanglement metrics score for these codes (row-major n×d),
    /// and its width: the AbsAE's predicted factor classes (as the paper scores it), a VAE's
    /// latent mean.
    fn representation(&self, codes: &[f32]) -> (Vec<f64>, usize);
    /// The AbsAE's prior and relational learner; None for the baselines.
    fn absae(&self) -> Option<&AbsAeModel> {
        None
    }
    /// A VAE's posterior mean and log-variance [B, d] each; None for the AbsAE.
    fn posterior(&self, _images: Tensor<4>) -> Option<(Tensor<2>, Tensor<2>)> {
        None
    }
}

/// The trained AbsAE: encoder, decoder, mixture prior and relational learner.
pub struct AbsAeModel {
    pub ae: AbsAe,
    pub mixture: Mixture,
    pub learner: RelationalLearner,
    pub task: crate::tasks::Task,
}

/// A trained baseline VAE (β-VAE or FactorVAE).
pub struct VaeModel {
    pub kind: ModelKind,
    pub vae: Vae,
    pub latent: usize,
}

/// Where a code lands: its most likely component and how confidently.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub component: usize,
    /// The component's factor classes, e.g. `shape=heart x=left y=top`.
    pub label: String,
    /// log N(z; μ_k, Σ_k) of that component.
    pub log_density: f64,
    /// Its posterior probability p(k | z).
    pub posterior: f64,
    /// Whether the α rule accepts the code.
    pub accepted: bool,
}

impl AbsAeModel {
    /// The relations the ReL learned.
    pub fn relations(&self) -> &RelationSet {
        &self.learner.relations
    }

    /// The most likely component of each code (row-major n×d).
    pub fn classify(&self, codes: &[f32]) -> Vec<usize> {
        codes.chunks_exact(self.mixture.dim).map(|z| self.mixture.classify(z).0).collect()
    }

    /// Where `code` lands under `rule` at threshold `alpha`.
    pub fn place(&self, code: &[f32], rule: AlphaRule, alpha: f64) -> Placement {
        let ld = self.mixture.log_densities(code);
        let k = argmax(&ld);
        let posterior = max_posterior(&ld, rule.temperature());
        Placement {
            component: k,
            label: self.task.component_label(k),
            log_density: ld[k],
            posterior,
            accepted: rule.accepts(&ld, alpha),
        }
    }
}

impl Model for AbsAeModel {
    fn kind(&self) -> ModelKind {
        ModelKind::AbsAe
    }
    fn latent(&self) -> usize {
        self.mixture.dim
    }
    fn encode(&self, images: Tensor<4>) -> Tensor<2> {
        self.ae.encoder.forward(images)
    }
    fn decode(&self, codes: Tensor<2>) -> Tensor<4> {
        self.ae.decoder.forward(codes)
    }
    fn representation(&self, codes: &[f32]) -> (Vec<f64>, usize) {
        let classes = self
            .classify(codes)
            .into_iter()
            .flat_map(|c| self.task.component_classes(c))
            .map(|c| c as f64)
            .collect();
        (classes, self.task.kept.len())
    }
    fn absae(&self) -> Option<&AbsAeModel> {
        Some(self)
    }
}

impl Model for VaeModel {
    fn kind(&self) -> ModelKind {
        self.kind
    }
    fn latent(&self) -> usize {
        self.latent
    }
    fn encode(&self, images: Tensor<4>) -> Tensor<2> {
        self.vae.posterior(images).0
    }
    fn decode(&self, codes: Tensor<2>) -> Tensor<4> {
        self.vae.decoder.forward(codes)
    }
    fn representation(&self, codes: &[f32]) -> (Vec<f64>, usize) {
        (codes.iter().map(|&v| v as f64).collect(), self.latent)
    }
    fn posterior(&self, images: Tensor<4>) -> Option<(Tensor<2>, Tensor<2>)> {
        Some(self.vae.posterior(images))
    }
}

/// How long a run trained, as its checkpoint's state says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Steps completed.
    pub step: usize,
    /// Training seconds so far (over all sessions of a resumed run).
    pub seconds: f64,
    pub backend: String,
}

/// The model of `ctx`'s config with the weights of `checkpoint`, on `ctx`'s plain device.
/// This is where each kind of model says which networks it has.
pub fn load_model(ctx: &RunContext, checkpoint: &Checkpoint) -> Result<Box<dyn Model>> {
    let (arch, device) = (&ctx.arch, &ctx.device);
    Ok(match ctx.config.model {
        ModelKind::AbsAe => {
            let mixture = match checkpoint.json::<Prior>(sections::PRIOR)? {
                Prior::Mixture(m) => m,
                Prior::Uniform { .. } => {
                    return Err(Error::Invalid(
                        "the run has not reached the mixture phase yet; nothing to evaluate".into(),
                    ));
                }
            };
            let relations = RelationSet::for_task(&ctx.data.task, &ctx.config.relations)?;
            // Loaded modules are in training mode (batch norm on batch statistics) until `valid`.
            let ae =
                checkpoint.load_module(sections::AUTOENCODER, AbsAe::new(arch, device))?.valid();
            let net = model::relational_learner(
                arch,
                relations.input_width(arch.latent),
                relations.outputs(),
                device,
            );
            let net = checkpoint.load_module(sections::RELATIONAL_LEARNER, net)?.valid();
            let learner = RelationalLearner {
                net,
                relations,
                dim: arch.latent,
                residual: ctx.config.rel.residual,
                device: device.clone(),
            };
            Box::new(AbsAeModel { ae, mixture, learner, task: ctx.data.task.clone() })
        }
        kind @ (ModelKind::BetaVae | ModelKind::FactorVae) => {
            let vae = checkpoint.load_module(sections::VAE, Vae::new(arch, device))?.valid();
            Box::new(VaeModel { kind, vae, latent: arch.latent })
        }
    })
}

/// A trained run, loaded for inference.
pub struct Run {
    pub ctx: RunContext,
    pub model: Box<dyn Model>,
    pub state: TrainState,
}

impl Run {
    /// Loads the run in `dir` (its config and checkpoint's weights), optionally on another
    /// data file.
    pub fn open(dir: &RunDir, data: Option<&Path>) -> Result<Run> {
        let mut config = dir.read_config()?;
        if let Some(d) = data {
            config.data = Some(d.to_path_buf());
        }
        let checkpoint = Run::read_checkpoint(dir)?;
        Run::from_checkpoint(RunContext::new(config)?, &checkpoint)
    }

    /// The checkpoint of the run in `dir`, or an error saying it has not been trained.
    pub fn read_checkpoint(dir: &RunDir) -> Result<Checkpoint> {
        if !dir.checkpoint().exists() {
            return Err(Error::file(dir.checkpoint(), "missing: the run has not been trained"));
        }
        Checkpoint::read(&dir.checkpoint())
    }

    /// The run of `ctx` with the weights and state of `checkpoint`.
    pub fn from_checkpoint(ctx: RunContext, checkpoint: &Checkpoint) -> Result<Run> {
        let state = checkpoint.json(sections::STATE)?;
        let model = load_model(&ctx, checkpoint)?;
        Ok(Run { ctx, model, state })
    }

    /// The AbsAE's parts, or an error saying this run is a baseline's.
    pub fn absae(&self) -> Result<&AbsAeModel> {
        self.model.absae().ok_or_else(|| {
            Error::Invalid(format!(
                "a {} baseline run has no mixture prior or relational learner; this needs an absae run",
                self.model.kind().name()
            ))
        })
    }

    /// Image layout of the task.
    pub fn image_shape(&self) -> ImageShape {
        self.ctx.image_shape()
    }

    /// The test images evaluation uses.
    pub fn test(&self) -> &[usize] {
        self.ctx.test_items()
    }

    /// The test images of every component, in test-split order.
    pub fn test_items_by_component(&self) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); self.ctx.data.task.components()];
        for &i in self.test() {
            by[self.ctx.data.components[i]].push(i);
        }
        by
    }

    /// Codes (row-major n×d) of the task's images `items` (positions in its index list).
    pub fn encode_items(&self, items: &[usize]) -> Vec<f32> {
        items
            .chunks(INFERENCE_BATCH)
            .flat_map(|chunk| self.encode_pixels(&self.ctx.data.render_batch(chunk)))
            .collect()
    }

    /// Codes of images given as pixels (n·C·H·W values in [0, 1]).
    pub fn encode_pixels(&self, pixels: &[f32]) -> Vec<f32> {
        encode_in_batches(|x| self.model.encode(x), pixels, self.image_shape(), &self.ctx.device)
    }

    /// Decoded images (n·C·H·W values in [0, 1]) of codes (row-major n×d).
    pub fn decode(&self, codes: &[f32]) -> Vec<f32> {
        decode_in_batches(|z| self.model.decode(z), codes, self.model.latent(), &self.ctx.device)
    }

    /// The codes of one batch of images given as pixels, and the logits of their decodings.
    pub fn encode_and_decode(&self, pixels: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let x = image_tensor(pixels.to_vec(), self.image_shape(), &self.ctx.device);
        let z = self.model.encode(x);
        let codes = z.to_data().try_to_vec::<f32>().expect("f32 codes");
        let logits = self.model.decode(z).into_data().try_into_vec::<f32>().expect("f32 logits");
        (codes, logits)
    }
}

/// Codes that `encode` gives images given as pixels (`shape` each, concatenated), in batches.
pub fn encode_in_batches(
    encode: impl Fn(Tensor<4>) -> Tensor<2>,
    pixels: &[f32],
    shape: ImageShape,
    device: &Device,
) -> Vec<f32> {
    let len: usize = shape.iter().product();
    let mut codes = Vec::new();
    for chunk in pixels.chunks(INFERENCE_BATCH * len) {
        codes.extend(
            encode(image_tensor(chunk.to_vec(), shape, device))
                .into_data()
                .try_into_vec::<f32>()
                .expect("f32 codes"),
        );
    }
    codes
}

/// Images (n·C·H·W values in [0, 1]) that `decode` makes of codes (row-major n×d), in batches.
pub fn decode_in_batches(
    decode: impl Fn(Tensor<2>) -> Tensor<4>,
    codes: &[f32],
    d: usize,
    device: &Device,
) -> Vec<f32> {
    let mut pixels = Vec::new();
    for chunk in codes.chunks(INFERENCE_BATCH * d) {
        let images = sigmoid(decode(code_tensor(chunk.to_vec(), d, device)));
        pixels.extend(images.into_data().try_into_vec::<f32>().expect("f32 pixels"));
    }
    pixels
}

/// Codes of images in memory under a training encoder, in evaluation mode on `device`.
pub fn encode_with(
    encoder: &Encoder,
    pixels: &[f32],
    shape: ImageShape,
    device: &Device,
) -> Vec<f32> {
    let encoder = encoder.valid().to_device(device);
    encode_in_batches(|x| encoder.forward(x), pixels, shape, device)
}
