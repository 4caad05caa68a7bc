//! relatent: weakly disentangled representations.
//!
//! An adversarial autoencoder (the *AbsAE*) whose latent space is shaped into a Gaussian
//! mixture with one component per combination of the factor classes a task keeps, plus a
//! relational learner (*ReL*) that moves codes between components. `docs/design.md` in the
//! repository describes the architecture; `README.md` the commands.
//!
//! Module map, by concept:
//! - [`config`]: TOML configuration, presets and validation.
//! - [`data`]: factor datasets (procedural renderers, official files), splits, augmentation.
//! - [`tasks`]: the built-in tasks — kept factors and components, architecture, relations,
//!   presets' budgets, the paper's numbers.
//! - [`model`]: the networks (encoder, decoder, MLPs), unaware of how they are trained.
//! - [`objectives`]: the loss terms.
//! - [`prior`]: the uniform and mixture priors, and the α rules.
//! - [`rel`]: relations as tables over components, and the relational learner.
//! - [`method`]: the AbsAE, β-VAE and FactorVAE, each a [`method::Method`].
//! - [`train`]: the training loop, checkpoints and resume.
//! - [`inference`]: a trained run loaded without training machinery.
//! - [`eval`]: classification, relational accuracy, reconstruction, the disentanglement
//!   metrics, `eval.json`.
//! - [`viz`]: figures and the run report.
//! - [`backend`]: the device, and our CPU kernels as burn extensions.
//! - [`serve`]: the browser explorer over a trained run; [`export`]: portable weights.
//! - [`pipeline`]: one run from config to report; [`sweep`] and [`compare`]: grids of runs and
//!   Table 1 / Figure 5 over them; [`bench`]: throughput measurements.

pub mod backend;
pub mod bench;
pub mod compare;
pub mod config;
pub mod context;
pub mod data;
pub mod error;
pub mod eval;
pub mod export;
pub mod inference;
pub mod method;
pub mod model;
pub mod objectives;
pub mod perf;
pub mod pipeline;
pub mod prior;
pub mod rel;
pub mod rng;
pub mod run_dir;
pub mod serve;
pub mod sweep;
pub mod tasks;
pub mod train;
pub mod viz;

pub use error::{Error, Result};
