//! `relatent bench`: throughput of the parts a run spends its time in, measured on this
//! machine (median after warm-up), so optimisations are judged by numbers.

pub mod ops;

use std::time::Instant;

use serde::Serialize;

use crate::Result;
use crate::backend::training_device;
use crate::config::{Config, Preset};
use crate::eval::{ALPHAS, classify_codes};
use crate::prior::AlphaRule;
use crate::tasks;
use crate::train::Trainer;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub task: String,
    pub batch: usize,
    /// Timed repetitions of each measurement (after warm-up).
    pub repeats: usize,
}

/// Measured throughputs (per second) and peak memory.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub task: String,
    pub batch: usize,
    pub backend: String,
    pub threads: usize,
    /// Images per second through one paper-mode training step (AE update + discriminator update).
    pub train_images_per_s: f64,
    /// Median milliseconds of that step.
    pub train_step_ms: f64,
    /// Images per second of the batch through one default-mode step (supervised and consistency
    /// views, ReL updates included).
    pub train_default_images_per_s: f64,
    pub encode_images_per_s: f64,
    pub render_images_per_s: f64,
    /// ReL updates (one batch of prior samples each) per second.
    pub rel_updates_per_s: f64,
    /// Test images per second through encoding and classification under the α grid.
    pub eval_images_per_s: f64,
    /// Seconds for DCI, MIG and SAP on 15 000 × 8 codes with 3 factors (10 000 fit, 5 000 test).
    pub metrics_seconds: f64,
    pub peak_memory_mib: f64,
}

const WARMUP: usize = 3;

/// Median seconds of `repeats` calls of `f`, after `warmup` untimed calls.
fn median_seconds(warmup: usize, repeats: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// A trainer of `preset` for the bench, at batch `batch`, whose warm-up ends after
/// `warmup_steps` and whose autoencoder never stops during the bench.
fn bench_trainer(options: &BenchOptions, preset: Preset, warmup_steps: usize) -> Result<Trainer> {
    let mut config = Config::preset(preset, &options.task)?;
    config.train.batch_size = options.batch;
    config.train.warmup_steps = warmup_steps;
    config.train.steps = warmup_steps + 1_000_000;
    config.validate()?;
    Trainer::new(config)
}

/// Runs every measurement.
pub fn run(options: &BenchOptions, log: &mut dyn FnMut(&str)) -> Result<BenchReport> {
    let b = options.batch as f64;
    let mut paper = bench_trainer(options, Preset::Paper, usize::MAX / 2)?;
    log("training step (paper mode: AE + discriminator)");
    let step = median_seconds(WARMUP, options.repeats, || paper.step().map(drop))?;

    log("training step (default mode)");
    let mut default = bench_trainer(options, Preset::Default, 1)?;
    let default_step = median_seconds(WARMUP, options.repeats, || default.step().map(drop))?;

    log("relational learner");
    default.state.step = default.config().train.steps;
    let updates = default.config().rel.updates_per_step as f64;
    let rel_step = median_seconds(WARMUP, options.repeats, || default.step().map(drop))?;

    log("renderer, encoder and evaluation");
    let run = default.inference_run()?;
    let mixture = &run.absae()?.mixture;
    let n = run.test().len().min(1024);
    let items = run.test()[..n].to_vec();
    let data = &run.ctx.data;
    let render = median_seconds(WARMUP, options.repeats, || {
        std::hint::black_box(data.render_batch(&items));
        Ok(())
    })?;
    let pixels = data.render_batch(&items);
    let encode = median_seconds(WARMUP, options.repeats, || {
        std::hint::black_box(run.encode_pixels(&pixels));
        Ok(())
    })?;
    let truth: Vec<usize> = items.iter().map(|&i| data.components[i]).collect();
    let eval = median_seconds(WARMUP, options.repeats, || {
        let codes = run.encode_items(&items);
        std::hint::black_box(classify_codes(
            mixture,
            &codes,
            &truth,
            AlphaRule::Posterior { temperature: 1.0 },
            &ALPHAS,
        ));
        Ok(())
    })?;

    log("disentanglement metrics");
    let rep = synthetic_representation(METRICS_ROWS);
    let metrics = median_seconds(0, options.repeats.min(3), || {
        crate::eval::metrics::disentanglement(&rep, METRICS_TRAIN).map(drop)
    })?;

    Ok(BenchReport {
        task: options.task.clone(),
        batch: options.batch,
        backend: run.state.backend.clone(),
        threads: threads(),
        train_images_per_s: b / step,
        train_step_ms: step * 1e3,
        train_default_images_per_s: b / default_step,
        encode_images_per_s: n as f64 / encode,
        render_images_per_s: n as f64 / render,
        rel_updates_per_s: updates / rel_step,
        eval_images_per_s: n as f64 / eval,
        metrics_seconds: metrics,
        peak_memory_mib: peak_memory_mib(),
    })
}

/// Per-op forward + backward times of a task's networks (`relatent bench --ops`).
#[derive(Clone, Debug, Serialize)]
pub struct OpsReport {
    pub task: String,
    pub batch: usize,
    pub backend: String,
    pub threads: usize,
    pub ops: Vec<ops::OpTiming>,
}

/// Times every layer of `options.task`'s networks on the training device.
pub fn run_ops(options: &BenchOptions) -> Result<OpsReport> {
    let arch = tasks::by_name(&options.task)?.architecture;
    let (device, backend) = training_device()?;
    let ops = ops::per_op(&arch, options.batch, options.repeats, &device.autodiff())?;
    Ok(OpsReport {
        task: options.task.clone(),
        batch: options.batch,
        backend: backend.into(),
        threads: threads(),
        ops,
    })
}

impl OpsReport {
    /// The report as a short table.
    pub fn table(&self) -> String {
        let head = format!(
            "relatent bench --ops: task {}, batch {}, backend {}, {} threads\n",
            self.task, self.batch, self.backend, self.threads
        );
        head + &ops::table(&self.ops)
    }
}

const METRICS_ROWS: usize = 15_000;
const METRICS_TRAIN: usize = 10_000;

/// Factors with 3, 6 and 10 values; codes: the three factors scaled to [0, 1] plus a little
/// noise, and five noise dimensions (the "aligned" case of `bench/metrics_reference.py`).
fn synthetic_representation(rows: usize) -> crate::eval::metrics::Representation {
    use rand::Rng;
    use rand_distr::{Distribution, Normal};
    let mut rng = crate::rng::stream(0, crate::rng::Stream::Eval, 3000);
    let noise = Normal::new(0.0, 1.0).expect("valid normal");
    let sizes = [3i64, 6, 10];
    let mut codes = Vec::with_capacity(rows * 8);
    let mut factors = Vec::with_capacity(rows * 3);
    for _ in 0..rows {
        for &size in &sizes {
            let v = rng.random_range(0..size);
            factors.push(v);
            codes.push(v as f64 / (size - 1) as f64 + 0.05 * noise.sample(&mut rng));
        }
        codes.extend((0..5).map(|_| noise.sample(&mut rng)));
    }
    crate::eval::metrics::Representation::new(codes, 8, factors, 3)
        .expect("synthetic data is valid")
}

/// Worker threads the CPU backend uses (rayon's pool: `RAYON_NUM_THREADS` or every core).
fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// The process's peak resident memory.
fn peak_memory_mib() -> f64 {
    // SAFETY: getrusage only writes the struct we pass it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0;
    if ok { usage.ru_maxrss as f64 / 1024.0 } else { f64::NAN }
}

impl BenchReport {
    /// The report as a short table.
    pub fn table(&self) -> String {
        let rows = [
            (
                "training step, paper mode (AE + disc.)",
                format!(
                    "{:.0} img/s ({:.0} ms per step)",
                    self.train_images_per_s, self.train_step_ms
                ),
            ),
            (
                "training step, default mode (+ ReL)",
                format!("{:.0} img/s", self.train_default_images_per_s),
            ),
            ("encoder (inference)", format!("{:.0} img/s", self.encode_images_per_s)),
            ("renderer", format!("{:.0} img/s", self.render_images_per_s)),
            ("ReL updates", format!("{:.1} /s", self.rel_updates_per_s)),
            ("evaluation (encode + classify)", format!("{:.0} img/s", self.eval_images_per_s)),
            ("DCI + MIG + SAP, 15 000 × 8 codes", format!("{:.2} s", self.metrics_seconds)),
            ("peak memory", format!("{:.0} MiB", self.peak_memory_mib)),
        ];
        let mut out = format!(
            "relatent bench: task {}, batch {}, backend {}, {} threads\n",
            self.task, self.batch, self.backend, self.threads
        );
        for (k, v) in rows {
            out.push_str(&format!("  {k:<42} {v}\n"));
        }
        out
    }
}
