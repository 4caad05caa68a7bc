//! The training loop (SPEC §5), the same for every method: steps of the method's schedule,
//! `metrics.jsonl`, periodic atomic checkpoints ([`checkpoint`]) and exact resume. What one
//! step does is the method's ([`crate::method`]).

pub mod checkpoint;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::config::Config;
use crate::context::RunContext;
use crate::inference::{Run, TrainState};
use crate::method::{self, Method};
use crate::run_dir::RunDir;
use crate::{Error, Result};
use checkpoint::{Checkpoint, sections};

/// Losses of one step, for the progress bar and `metrics.jsonl`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StepLosses {
    pub recon: Option<f32>,
    pub adversarial: Option<f32>,
    pub discriminator: Option<f32>,
    pub relational: Option<f32>,
    pub supervised: Option<f32>,
    pub consistency: Option<f32>,
    /// How far decoded prior samples land from where they started, once encoded again.
    pub cycle: Option<f32>,
    /// How often the batch's reconstructions, encoded again, miss their input's component
    /// (posterior cross-entropy).
    pub reconstruction_cycle: Option<f32>,
    /// KL divergence of the VAE posterior from N(0, I) (baselines).
    pub kl: Option<f32>,
    /// FactorVAE's discriminator estimate of the total correlation.
    pub total_correlation: Option<f32>,
}

/// A method being trained in its run context, and how far it has got.
pub struct Trainer {
    pub ctx: Arc<RunContext>,
    pub method: Box<dyn Method>,
    pub state: TrainState,
}

impl Trainer {
    /// A trainer at step 0 for `config`.
    pub fn new(config: Config) -> Result<Trainer> {
        let ctx = Arc::new(RunContext::new(config)?);
        let method = method::for_run(ctx.clone())?;
        let state = TrainState { step: 0, seconds: 0.0, backend: ctx.backend.into() };
        Ok(Trainer { ctx, method, state })
    }

    /// The resolved config.
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// Steps of the whole schedule.
    pub fn total_steps(&self) -> usize {
        self.config().total_steps()
    }

    /// Runs the next step of the schedule and returns its losses.
    pub fn step(&mut self) -> Result<StepLosses> {
        let losses = self.method.step(self.state.step)?;
        if let Some(e) = self.ctx.data.dataset.read_error() {
            return Err(e);
        }
        self.state.step += 1;
        Ok(losses)
    }

    /// The checkpoint of the current state, to be written to `path`.
    pub fn checkpoint(&self, path: &Path) -> Result<Checkpoint> {
        let mut checkpoint = Checkpoint::new(path);
        checkpoint.add_json(sections::STATE, &self.state);
        self.method.save(&mut checkpoint)?;
        Ok(checkpoint)
    }

    /// Writes the checkpoint atomically.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        self.checkpoint(path)?.write()
    }

    /// Restores the state, weights and optimiser states of the checkpoint at `path`.
    pub fn load_checkpoint(&mut self, path: &Path) -> Result<()> {
        let checkpoint = Checkpoint::read(path)?;
        self.state = checkpoint.json(sections::STATE)?;
        self.method.restore(&checkpoint)
    }

    /// The method as it is now, loaded for inference (through an in-memory checkpoint, so it
    /// is exactly what a saved run would load).
    pub fn inference_run(&self) -> Result<Run> {
        let checkpoint = self.checkpoint(Path::new("(in memory)"))?;
        Run::from_checkpoint(RunContext::new(self.config().clone())?, &checkpoint)
    }
}

/// Progress reporting from [`train`].
pub trait Progress {
    /// Called after each step with the step number (1-based) and its losses.
    fn step(&mut self, step: usize, total: usize, losses: &StepLosses);
}

/// No progress output (tests, library use).
pub struct Quiet;

impl Progress for Quiet {
    fn step(&mut self, _: usize, _: usize, _: &StepLosses) {}
}

/// How far one call of [`train`] goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrainOptions {
    /// Continue from the directory's checkpoint.
    pub resume: bool,
    /// Stop (after checkpointing) once this many steps are done; the run can be resumed.
    pub stop_at: Option<usize>,
}

/// Set by [`request_stop`] (the CLI's Ctrl-C handler): the loop checkpoints and stops.
static STOP: AtomicBool = AtomicBool::new(false);

/// Asks a running [`train`] to checkpoint after its current step and stop (and a server to
/// shut down).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether [`request_stop`] was called.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Trains `trainer` in `dir` to the end of its schedule (or `stop_at`), logging to
/// `metrics.jsonl` and checkpointing as it goes; with `resume`, first restores the
/// directory's checkpoint (a run killed before its first checkpoint starts again). Returns the
/// trainer at the end.
///
/// A non-finite loss or weight stops the run with an error naming the step, and the last
/// checkpoint (all finite) is kept; so does [`request_stop`], after checkpointing.
pub fn train(
    mut trainer: Trainer,
    dir: &RunDir,
    options: TrainOptions,
    progress: &mut dyn Progress,
) -> Result<Trainer> {
    if options.resume && dir.checkpoint().exists() {
        trainer.load_checkpoint(&dir.checkpoint())?;
    }
    if options.resume {
        dir.truncate_metrics_after(trainer.state.step)?;
    }
    let total = trainer.total_steps();
    let end = options.stop_at.map_or(total, |s| s.min(total));
    let (every, log_every) =
        (trainer.config().train.checkpoint_every, trainer.config().train.log_every);
    let mut clock = Instant::now();
    let mut saved = trainer.state.step;
    while trainer.state.step < end {
        let losses = trainer.step()?;
        let step = trainer.state.step;
        if let Some((name, value)) = losses.non_finite() {
            return Err(diverged(step, &format!("the {name} loss is {value}"), saved));
        }
        progress.step(step, total, &losses);
        // The schedule's last step is always logged; a pause (--stop-at) logs nothing extra, so
        // a paused and resumed run leaves the same metrics.jsonl as an uninterrupted one.
        if step.is_multiple_of(log_every) || step == total {
            let mut line = serde_json::to_value(&losses).expect("losses serialise");
            line["step"] = step.into();
            line["phase"] = trainer.method.phase(step - 1).into();
            line["seconds"] = (trainer.state.seconds + clock.elapsed().as_secs_f64()).into();
            dir.append_metrics(&line)?;
        }
        let stopping = stop_requested();
        if step.is_multiple_of(every) || step == end || stopping {
            if !trainer.method.weights_finite() {
                return Err(diverged(step, "a weight is not finite", saved));
            }
            trainer.state.seconds += clock.elapsed().as_secs_f64();
            clock = Instant::now();
            trainer.save_checkpoint(&dir.checkpoint())?;
            saved = step;
        }
        if stopping {
            return Err(Error::Interrupted(format!(
                "interrupted after step {step}; the checkpoint is saved: continue with `relatent train --out {} --resume`",
                dir.root.display()
            )));
        }
    }
    Ok(trainer)
}

/// The error of a run that diverged at `step`, whose last checkpoint is at step `saved`.
fn diverged(step: usize, what: &str, saved: usize) -> Error {
    Error::Invalid(format!(
        "training diverged at step {step}: {what}; the checkpoint of step {saved} is kept (a lower train.lr or rel.lr may help)"
    ))
}

impl StepLosses {
    /// The first loss that is NaN or infinite, with its value.
    pub fn non_finite(&self) -> Option<(&'static str, f32)> {
        let all = [
            ("recon", self.recon),
            ("adversarial", self.adversarial),
            ("discriminator", self.discriminator),
            ("relational", self.relational),
            ("supervised", self.supervised),
            ("consistency", self.consistency),
            ("cycle", self.cycle),
            ("reconstruction_cycle", self.reconstruction_cycle),
            ("kl", self.kl),
            ("total_correlation", self.total_correlation),
        ];
        all.into_iter().find_map(|(name, v)| v.filter(|v| !v.is_finite()).map(|v| (name, v)))
    }
}
