//! FactorVAE (Kim & Mnih): reconstruction + KL + γ·total correlation, the total correlation
//! estimated by a discriminator that tells codes from codes with each dimension shuffled
//! across the batch (a sample of the product of the marginals), trained in turn.

use std::sync::Arc;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use rand::seq::SliceRandom;

use super::Method;
use super::vae::VaeCore;
use crate::Result;
use crate::backend::adam::{AdamSettings, descend};
use crate::context::{RunContext, code_tensor};
use crate::model::{self, Mlp};
use crate::objectives::{self, scalar};
use crate::rng::{Stream, stream};
use crate::train::StepLosses;
use crate::train::checkpoint::{Checkpoint, sections};

/// The FactorVAE in training: the VAE and its total-correlation discriminator.
pub struct FactorVae {
    core: VaeCore,
    disc: Mlp,
    opt_disc: ModuleOptimizer,
}

/// The discriminator's optimiser: Adam with β1 = 0.5, β2 = 0.9 (disentanglement_lib).
fn discriminator_adam() -> ModuleOptimizer {
    AdamSettings { beta_1: 0.5, beta_2: 0.9, epsilon: 1e-8 }.init()
}

impl FactorVae {
    /// At step 0, initialised from the config's seed.
    pub fn new(ctx: Arc<RunContext>) -> FactorVae {
        let (core, disc) = VaeCore::with_network(ctx, model::total_correlation_discriminator);
        FactorVae { core, disc, opt_disc: discriminator_adam() }
    }
}

impl Method for FactorVae {
    fn step(&mut self, step: usize) -> Result<StepLosses> {
        let config = &self.core.ctx.config;
        let (gamma, seed, lr, d) =
            (config.factor_vae.gamma, config.seed, config.train.lr, self.core.ctx.arch.latent);
        let f = self.core.forward(step);
        let tc = objectives::total_correlation(self.disc.forward(f.z.clone()));
        let mut losses = f.losses;
        losses.total_correlation = Some(scalar(&tc));
        self.core.update(f.recon + f.kl + tc.mul_scalar(gamma));

        let codes = f.z.detach();
        let values = codes.to_data().try_to_vec::<f32>().expect("f32 codes");
        let permuted =
            code_tensor(permute_dimensions(&values, d, step as u64, seed), d, &self.core.device);
        let disc_loss = objectives::total_correlation_discriminator(
            self.disc.forward(codes),
            self.disc.forward(permuted),
        );
        losses.discriminator = Some(scalar(&disc_loss));
        descend(&mut self.opt_disc, lr, &mut self.disc, disc_loss);
        Ok(losses)
    }
    fn phase(&self, _: usize) -> &'static str {
        "vae"
    }
    fn save(&self, checkpoint: &mut Checkpoint) -> Result<()> {
        self.core.save(checkpoint)?;
        checkpoint.add_module(sections::TC_DISCRIMINATOR, self.disc.valid())?;
        checkpoint.add_optimizer(&sections::optimizer(sections::TC_DISCRIMINATOR), &self.opt_disc)
    }
    fn weights_finite(&self) -> bool {
        self.core.weights_finite() && model::all_finite(&self.disc)
    }
    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()> {
        self.core.restore(checkpoint)?;
        self.disc = checkpoint.load_module(sections::TC_DISCRIMINATOR, self.disc.clone())?;
        self.opt_disc = checkpoint.load_optimizer(
            &sections::optimizer(sections::TC_DISCRIMINATOR),
            discriminator_adam(),
        )?;
        Ok(())
    }
}

/// Codes (row-major n×d) with each dimension shuffled independently across the rows: a sample
/// of the product of the marginals.
pub fn permute_dimensions(codes: &[f32], d: usize, step: u64, seed: u64) -> Vec<f32> {
    let n = codes.len() / d;
    let mut rng = stream(seed, Stream::Permute, step);
    let mut out = vec![0.0; codes.len()];
    let mut order: Vec<usize> = (0..n).collect();
    for j in 0..d {
        order.shuffle(&mut rng);
        for (row, &from) in order.iter().enumerate() {
            out[row * d + j] = codes[from * d + j];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_keeps_each_column_and_is_seeded() {
        let codes: Vec<f32> = (0..40).map(|v| v as f32).collect();
        let a = permute_dimensions(&codes, 4, 3, 0);
        assert_eq!(a, permute_dimensions(&codes, 4, 3, 0));
        assert_ne!(a, permute_dimensions(&codes, 4, 4, 0));
        assert_ne!(a, codes);
        for j in 0..4 {
            let mut col: Vec<f32> = a.iter().skip(j).step_by(4).copied().collect();
            col.sort_by(f32::total_cmp);
            let want: Vec<f32> = codes.iter().skip(j).step_by(4).copied().collect();
            assert_eq!(col, want);
        }
    }
}
