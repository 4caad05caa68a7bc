//! relatent: weakly disentangled representations.
//!
//! An adversarial autoencoder (the *AbsAE*) whose latent space is shaped into a Gaussian
//! mixture with one component per combination of the factor classes a task keeps, plus a
//! relational learner (*ReL*) that moves codes between components. See `SPEC.md` in the
//! project's shared folder for the definitions this crate follows.
//!
//! Module map, by concept:
//! - [`data`]: factor datasets (procedural renderers, official files), tasks, splits.
//! - [`model`]: the networks (encoder, decoder, discriminator, relational learner) and our
//!   CPU kernels for their convolutions ([`model::kernels`]).
//! - [`prior`]: uniform and mixture priors, densities, classification, α rules.
//! - [`relations`]: relations as tables over components.
//! - [`train`]: the training loop, checkpoints and resume; the β-VAE / FactorVAE baselines
//!   ([`train::vae`]).
//! - [`eval`]: classification, relational accuracy, reconstruction, disentanglement metrics,
//!   `eval.json`.
//! - [`viz`]: figures and the run report.
//! - [`pipeline`]: one run from config to report; [`sweep`]: grids of runs and their
//!   [`compare`]: Table 1 and Figure 5 over runs.
//! - [`apply`]: relation chains applied to a user's image.
//! - [`bench`]: throughput measurements (`relatent bench`).
//! - [`config`]: TOML configuration, presets and validation.

pub mod apply;
pub mod bench;
pub mod compare;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod model;
pub mod perf;
pub mod pipeline;
pub mod prior;
pub mod relations;
pub mod rng;
pub mod run_dir;
pub mod sweep;
pub mod train;
pub mod viz;

pub use error::{Error, Result};
