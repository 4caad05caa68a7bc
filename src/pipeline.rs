//! One run from config to report: train (or resume) into a run directory, evaluate, draw the
//! figures and write `report.md`, for every method alike. `relatent run` and `relatent sweep`
//! are this.

use crate::Result;
use crate::config::Config;
use crate::eval::{self, EvalReport};
use crate::inference::Run;
use crate::run_dir::RunDir;
use crate::train::{self, Progress, TrainOptions, Trainer};
use crate::viz::{self, figures::Figure};

/// What a finished run left in its directory.
pub struct Finished {
    pub report: EvalReport,
    pub figures: Vec<Figure>,
}

/// Builds the trainer of `config` for `dir` (a new run, or with `resume` the run already
/// there, whose `config.toml` the caller read) and creates the directory of a new run.
/// Everything the run reads is checked before its directory is created.
pub fn prepare(config: Config, dir: &RunDir, resume: bool) -> Result<Trainer> {
    let trainer = Trainer::new(config)?;
    if !resume {
        dir.create(trainer.config())?;
    }
    Ok(trainer)
}

/// Trains to the end of the schedule, then evaluates, writes `eval.json`, the figures and the
/// report.
pub fn finish(
    trainer: Trainer,
    dir: &RunDir,
    resume: bool,
    progress: &mut dyn Progress,
) -> Result<Finished> {
    train::train(trainer, dir, TrainOptions { resume, stop_at: None }, progress)?;
    crate::perf::return_freed_memory();
    let run = Run::open(dir, None)?;
    let report = eval::evaluate(&run, run.ctx.config.eval.alpha_rule());
    eval::write_eval(dir, &report)?;
    draw(dir, &run, report)
}

/// Draws the figures of an evaluated run and writes its report.
pub fn draw(dir: &RunDir, run: &Run, report: EvalReport) -> Result<Finished> {
    let figures = viz::figures_and_report(dir, run, &report)?;
    Ok(Finished { report, figures })
}
