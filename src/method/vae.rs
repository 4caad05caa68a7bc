//! The VAE both baselines share (SPEC §7): the AbsAE's encoder, emitting the mean and
//! log-variance of a diagonal Gaussian posterior, and its decoder, trained as
//! disentanglement_lib trains them — reconstruction BCE summed per image plus a regulariser
//! the baseline chooses ([`super::beta_vae`], [`super::factor_vae`]).

use std::sync::Arc;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use rand::seq::IndexedRandom;
use rand_distr::{Distribution, StandardNormal};

use crate::Result;
use crate::backend::adam::{adam, descend};
use crate::context::{RunContext, code_tensor, image_tensor};
use crate::model::{self, Architecture, Vae};
use crate::objectives::{self, scalar};
use crate::rng::{Stream, stream};
use crate::train::StepLosses;
use crate::train::checkpoint::{Checkpoint, sections};

/// A VAE in training and its optimiser.
pub struct VaeCore {
    pub ctx: Arc<RunContext>,
    /// The autodiff device the networks train on.
    pub device: Device,
    pub vae: Vae,
    optimizer: ModuleOptimizer,
}

/// One step's forward pass: the reparameterised codes and the two standard terms.
pub struct VaeForward {
    /// z = μ + σ·ε, [B, d].
    pub z: Tensor<2>,
    pub recon: Tensor<1>,
    pub kl: Tensor<1>,
    /// The losses so far (reconstruction and KL).
    pub losses: StepLosses,
}

impl VaeCore {
    /// The VAE at step 0, initialised from the config's seed.
    pub fn new(ctx: Arc<RunContext>) -> VaeCore {
        let device = ctx.device.clone().autodiff();
        let vae = model::seeded_init(&device, ctx.config.seed, || Vae::new(&ctx.arch, &device));
        VaeCore { ctx, device, vae, optimizer: adam() }
    }

    /// The VAE and a network of the baseline's own (`network`), initialised in that order from
    /// the config's seed.
    pub fn with_network<T: Module>(
        ctx: Arc<RunContext>,
        network: impl FnOnce(&Architecture, &Device) -> T,
    ) -> (VaeCore, T) {
        let device = ctx.device.clone().autodiff();
        let (vae, extra) = model::seeded_init(&device, ctx.config.seed, || {
            (Vae::new(&ctx.arch, &device), network(&ctx.arch, &device))
        });
        (VaeCore { ctx, device, vae, optimizer: adam() }, extra)
    }

    /// Encodes step `step`'s batch, draws its codes and scores reconstruction and KL.
    pub fn forward(&self, step: usize) -> VaeForward {
        let s = step as u64;
        let (seed, b, d) =
            (self.ctx.config.seed, self.ctx.config.train.batch_size, self.ctx.arch.latent);
        let mut rng = stream(seed, Stream::Batch, s);
        let train = &self.ctx.split.train;
        let items: Vec<usize> =
            (0..b).map(|_| *train.choose(&mut rng).expect("train split is not empty")).collect();
        let x =
            image_tensor(self.ctx.data.render_batch(&items), self.ctx.image_shape(), &self.device);
        let (mean, log_var) = self.vae.posterior(x.clone());
        let mut noise_rng = stream(seed, Stream::Reparameterise, s);
        let eps: Vec<f32> = (0..b * d).map(|_| StandardNormal.sample(&mut noise_rng)).collect();
        let z = mean.clone()
            + log_var.clone().mul_scalar(0.5).exp() * code_tensor(eps, d, &self.device);
        let recon = objectives::reconstruction_bce(self.vae.decoder.forward(z.clone()), x);
        let kl = objectives::gaussian_kl(mean, log_var);
        let losses =
            StepLosses { recon: Some(scalar(&recon)), kl: Some(scalar(&kl)), ..Default::default() };
        VaeForward { z, recon, kl, losses }
    }

    /// One optimiser step of the VAE on `loss`.
    pub fn update(&mut self, loss: Tensor<1>) {
        descend(&mut self.optimizer, self.ctx.config.train.lr, &mut self.vae, loss);
    }

    /// Adds the VAE's weights and optimiser state.
    pub fn save(&self, checkpoint: &mut Checkpoint) -> Result<()> {
        checkpoint.add_module(sections::VAE, self.vae.valid())?;
        checkpoint.add_optimizer(&sections::optimizer(sections::VAE), &self.optimizer)
    }

    /// Whether every weight of the VAE is finite.
    pub fn weights_finite(&self) -> bool {
        crate::model::all_finite(&self.vae)
    }

    /// Restores what [`VaeCore::save`] wrote.
    pub fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        self.vae = checkpoint.load_module(sections::VAE, self.vae.clone())?;
        self.optimizer = checkpoint.load_optimizer(&sections::optimizer(sections::VAE), adam())?;
        Ok(())
    }
}
