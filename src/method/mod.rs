//! The methods: the AbsAE ([`absae`]) and its baselines, β-VAE ([`beta_vae`]) and FactorVAE
//! ([`factor_vae`]), which share one VAE ([`vae`]). A method owns its networks, optimisers
//! and the state its objective needs; the training loop ([`crate::train`]) drives any of them
//! through [`Method`], and inference loads what they save ([`crate::inference`]).

pub mod absae;
pub mod beta_vae;
pub mod factor_vae;
pub mod vae;

use std::sync::Arc;

use crate::Result;
use crate::config::ModelKind;
use crate::context::RunContext;
use crate::train::StepLosses;
use crate::train::checkpoint::Checkpoint;

/// One objective's training: its step, its schedule's phases and its checkpoint sections.
pub trait Method {
    /// Runs step `step` (0-based) of the schedule and returns its losses.
    fn step(&mut self, step: usize) -> Result<StepLosses>;
    /// Name of the schedule phase step `step` belongs to, for `metrics.jsonl`.
    fn phase(&self, step: usize) -> &'static str;
    /// Adds the method's sections (weights, optimiser states, prior) to `checkpoint`.
    fn save(&self, checkpoint: &mut Checkpoint) -> Result<()>;
    /// Restores what [`Method::save`] wrote.
    fn restore(&mut self, checkpoint: &Checkpoint) -> Result<()>;
    /// Whether every weight of the method's networks is finite.
    fn weights_finite(&self) -> bool;
    /// What the user should know before training starts (e.g. images the augmentation
    /// cannot make views of).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The method the run's config names, at step 0, with networks initialised from its seed.
pub fn for_run(ctx: Arc<RunContext>) -> Result<Box<dyn Method>> {
    Ok(match ctx.config.model {
        ModelKind::AbsAe => Box::new(absae::AbsAeMethod::new(ctx)?),
        ModelKind::BetaVae => Box::new(beta_vae::BetaVae::new(ctx)),
        ModelKind::FactorVae => Box::new(factor_vae::FactorVae::new(ctx)),
    })
}
