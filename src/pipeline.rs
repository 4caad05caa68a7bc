//! One run from config to report: train (or resume) into a run directory, evaluate, draw the
//! figures and write `report.md`, for the AbsAE and the baselines alike. `relatent run` and
//! `relatent sweep` are this.

use crate::Result;
use crate::config::Config;
use crate::eval::baseline::{self, TrainedVae};
use crate::eval::{self, EvalReport, TrainedModel};
use crate::prior::AlphaRule;
use crate::run_dir::RunDir;
use crate::train::vae::VaeTrainer;
use crate::train::{self, Progress, TrainOptions, Trainer};
use crate::viz::{self, figures::Figure};

/// What a finished run left in its directory.
pub struct Finished {
    pub report: EvalReport,
    pub figures: Vec<Figure>,
}

/// A run whose trainer is built and whose directory exists, ready to train.
pub enum Prepared {
    Method(Trainer),
    Baseline(VaeTrainer),
}

/// Builds the trainer of `config` for `dir` (a new run, or with `resume` the run already
/// there, whose `config.toml` the caller read) and creates the directory of a new run.
/// Everything the run reads is checked before its directory is created.
pub fn prepare(config: Config, dir: &RunDir, resume: bool) -> Result<Prepared> {
    let prepared = if config.is_baseline() {
        Prepared::Baseline(VaeTrainer::new(config.clone())?)
    } else {
        Prepared::Method(Trainer::new(config.clone())?)
    };
    create_unless_resuming(dir, &config, resume)?;
    Ok(prepared)
}

impl Prepared {
    /// Trains to the end of the schedule, then evaluates, writes `eval.json`, the figures and
    /// the report.
    pub fn finish(
        self,
        dir: &RunDir,
        resume: bool,
        progress: &mut dyn Progress,
    ) -> Result<Finished> {
        let options = TrainOptions { resume, stop_at: None };
        match self {
            Prepared::Baseline(trainer) => {
                let model =
                    TrainedVae::from_trainer(train::train(trainer, dir, options, progress)?);
                let report = baseline::evaluate(&model);
                dir.write_eval(&serde_json::to_value(&report).expect("report serialises"))?;
                let figures = viz::baseline_figures_and_report(dir, &model, &report)?;
                Ok(Finished { report, figures })
            }
            Prepared::Method(trainer) => {
                let model =
                    TrainedModel::from_trainer(train::train(trainer, dir, options, progress)?)?;
                let report = eval::evaluate(&model, AlphaRule::from_config(&model.config.eval)?);
                dir.write_eval(&serde_json::to_value(&report).expect("report serialises"))?;
                let figures = viz::figures_and_report(dir, &model, &report)?;
                Ok(Finished { report, figures })
            }
        }
    }
}

/// Creates the run directory for a new run; a resumed run's directory is already there.
fn create_unless_resuming(dir: &RunDir, config: &Config, resume: bool) -> Result<()> {
    if resume { Ok(()) } else { dir.create(config) }
}
