//! β-VAE (Higgins et al.): reconstruction + β·KL.

use std::sync::Arc;

use super::Method;
use super::vae::VaeCore;
use crate::Result;
use crate::context::RunContext;
use crate::train::StepLosses;
use crate::train::checkpoint::Checkpoint;

/// The β-VAE in training.
pub struct BetaVae {
    core: VaeCore,
}

impl BetaVae {
    /// At step 0, initialised from the config's seed.
    pub fn new(ctx: Arc<RunContext>) -> BetaVae {
        BetaVae { core: VaeCore::new(ctx) }
    }
}

impl Method for BetaVae {
    fn step(&mut self, step: usize) -> Result<StepLosses> {
        let beta = self.core.ctx.config.beta_vae.beta;
        let f = self.core.forward(step);
        self.core.update(f.recon + f.kl.mul_scalar(beta));
        Ok(f.losses)
    }
    fn phase(&self, _: usize) -> &'static str {
        "vae"
    }
    fn save(&self, checkpoint: &mut Checkpoint) -> Result<()> {
        self.core.save(checkpoint)
    }
    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        self.core.restore(checkpoint)
    }
    fn weights_finite(&self) -> bool {
        self.core.weights_finite()
    }
}
