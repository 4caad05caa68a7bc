//! Argument parsing and dispatch. Library errors (bad input) exit with status 2, anything
//! else with 1; either way one line on stderr.

mod progress;
mod sweep;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rand::seq::index::sample;

use relatent::config::{Config, Overrides};
use relatent::data::images::export_images;
use relatent::data::{folder, inspect};
use relatent::eval;
use relatent::inference::Run;
use relatent::rel::apply;
use relatent::rng::{Stream, stream};
use relatent::run_dir::{RunDir, default_run_path};
use relatent::tasks::{self, TaskData};
use relatent::train::Trainer;
use relatent::{bench, compare, pipeline, train};

#[derive(Parser)]
#[command(
    name = "relatent",
    version,
    about = "Weakly disentangled representations: AbsAE + Gaussian-mixture prior + relational learner"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a CPU preset on the embedded data, evaluate, and print the tables.
    Run(RunArgs),
    /// Train (or resume) a run into a directory.
    Train(TrainArgs),
    /// Evaluate a trained run and write its eval.json.
    Eval(EvalArgs),
    /// Draw a run's figures and write its report.md (evaluating it first if needed).
    Figures(FiguresArgs),
    /// Encode an image, apply a chain of relations, decode the result.
    Apply(ApplyArgs),
    /// DCI, MIG and SAP of any representation: codes and factors as .npy files.
    Metrics(MetricsArgs),
    /// A grid of runs (models × weights × τ × seeds × any key), one integer per point: list it,
    /// run it here or one point at a time (--index), or emit a Slurm array (--emit-sbatch).
    Sweep(Box<sweep::SweepArgs>),
    /// Table 1 and Figure 5 over evaluated runs: comparison.md and tradeoff.png.
    Compare(CompareArgs),
    /// Measure training, encoding, rendering, ReL and evaluation throughput on this machine.
    Bench(BenchArgs),
    /// Explore a trained run in the browser: a local page plus a JSON API under /api/.
    Serve(ServeArgs),
    /// Write a run's weights as safetensors (PyTorch layout) plus a JSON sidecar: prior,
    /// component names, relations, config.
    Export(ExportArgs),
    /// Look at datasets: render procedural images, inspect and export official files.
    #[command(subcommand)]
    Data(DataCommand),
}

#[derive(Args, Clone)]
struct ConfigArgs {
    /// Task: dsprites, dsprites-full, shapes3d, hwf.
    #[arg(long)]
    task: Option<String>,
    /// Preset: default, paper, paper-gpu.
    #[arg(long)]
    preset: Option<String>,
    /// Model: absae (the method), beta-vae or factor-vae (baselines).
    #[arg(long)]
    model: Option<String>,
    /// β: adversarial weight (absae) or KL weight (beta-vae).
    #[arg(long)]
    beta: Option<f64>,
    /// γ: ReL weight (absae) or total-correlation weight (factor-vae).
    #[arg(long)]
    gamma: Option<f64>,
    /// TOML config file (its values override the preset's).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Official dataset to use instead of the procedural renderer: the dSprites .npz,
    /// 3dshapes.h5, or the HWF release folder.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seed of every random choice (the presets' is 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Labelled images per component.
    #[arg(long)]
    tau: Option<usize>,
    /// Total autoencoder steps (warm-up included).
    #[arg(long)]
    steps: Option<usize>,
    /// Steps with the uniform prior before the switch to the mixture.
    #[arg(long)]
    warmup_steps: Option<usize>,
    /// Images in each autoencoder step's batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Relations to learn, comma-separated (default: all of the task's).
    #[arg(long, value_delimiter = ',')]
    relations: Option<Vec<String>>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl ConfigArgs {
    fn resolve(&self) -> relatent::Result<Config> {
        let overrides = Overrides {
            seed: self.seed,
            tau: self.tau,
            steps: self.steps,
            warmup_steps: self.warmup_steps,
            batch_size: self.batch_size,
            relations: self.relations.clone(),
            data: self.data.clone(),
            model: self.model.clone(),
            beta: self.beta,
            gamma: self.gamma,
        };
        let preset = self.preset.as_deref().map(str::parse).transpose()?;
        Config::resolve(self.config.as_deref(), preset, self.task.as_deref(), &overrides)
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Run directory (default runs/<task>-<timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Run directory.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run in --out from its checkpoint (its config.toml is used).
    #[arg(long)]
    resume: bool,
    /// Stop after this many steps (checkpointed; continue later with --resume).
    #[arg(long)]
    stop_at: Option<usize>,
}

/// A flag's value that must be a positive finite number; clap names the flag in the error.
fn positive_number(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("must be positive and finite (got {v})")),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Args)]
struct EvalArgs {
    /// Run directory.
    dir: PathBuf,
    /// posterior (default) or density.
    #[arg(long)]
    alpha_rule: Option<String>,
    /// Temperature of the posterior rule (default: the run's `eval.posterior_temperature`).
    #[arg(long, value_parser = positive_number)]
    posterior_temperature: Option<f64>,
    /// Evaluate on this official file instead of the run's data.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print eval.json instead of the tables.
    #[arg(long)]
    json: bool,
    /// Score out-of-distribution images against the test split: a folder of images (any size,
    /// resized and converted to the model's input) or `noise`; repeat for several sources.
    #[arg(long)]
    ood: Vec<String>,
}

#[derive(Args)]
struct FiguresArgs {
    /// Run directory.
    dir: PathBuf,
    /// Evaluate again even if eval.json exists.
    #[arg(long)]
    reevaluate: bool,
}

#[derive(Args)]
struct ApplyArgs {
    /// Run directory.
    dir: PathBuf,
    /// Input image (resized to the model's size with a warning if needed).
    #[arg(long)]
    image: PathBuf,
    /// Relations to apply in order, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    relation: Vec<String>,
    /// Further operand images of relations with several inputs (HWF's `sum 3`: an image of a
    /// 3), comma-separated, used in order.
    #[arg(long, value_delimiter = ',')]
    operand: Vec<PathBuf>,
    /// Operator images of relations selected by an operator (HWF: a handwritten `+`, `-` or
    /// `×`), comma-separated, one per such step; without them the operator's prior mean is used.
    #[arg(long, value_delimiter = ',')]
    operator: Vec<PathBuf>,
    /// Where to write the decoded result (PNG).
    #[arg(long)]
    out: PathBuf,
    /// Also write the input and every step side by side, as OUT-strip.png.
    #[arg(long)]
    strip: bool,
    /// Threshold of the α rule for the `accepted` verdicts.
    #[arg(long, default_value_t = 0.5)]
    alpha: f64,
}

#[derive(Args)]
struct MetricsArgs {
    /// Codes: n × d, float32 or float64.
    #[arg(long)]
    codes: PathBuf,
    /// Factors: n × k, integers.
    #[arg(long)]
    factors: PathBuf,
    /// Rows that fit the classifiers (and give MIG); the rest test them. Default ⌊2n/3⌋.
    #[arg(long)]
    train: Option<usize>,
    /// Print the disentanglement object as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ServeArgs {
    /// Run directory.
    dir: PathBuf,
    /// Address to listen on (loopback by default: the explorer has no authentication).
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Port (0: any free port).
    #[arg(long, default_value_t = 7878)]
    port: u16,
    /// Open the page in the default browser once the server listens.
    #[arg(long)]
    open: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum WeightsFormat {
    Safetensors,
}

#[derive(Args)]
struct ExportArgs {
    /// Run directory.
    dir: PathBuf,
    /// File format of the weights.
    #[arg(long, value_enum, default_value = "safetensors")]
    format: WeightsFormat,
    /// Weights file to write; the sidecar is the same path with a .json extension.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct CompareArgs {
    /// Evaluated run directories.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Folder for comparison.md and tradeoff.png.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long, default_value = "dsprites")]
    task: String,
    /// Training batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Time each op of the task's networks (forward + backward, ours against burn's) instead.
    #[arg(long)]
    ops: bool,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Render procedural images as PNG plus factors.csv.
    Render {
        task: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 64)]
        count: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Describe an official dataset file (dSprites .npz, 3dshapes.h5) or the HWF release folder.
    Inspect {
        path: PathBuf,
        #[arg(long)]
        json: bool,
        /// A folder dataset's config (its [folder] table decides the kept factors and bands).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Export the first images of an official file or the HWF release as PNG plus factors.csv.
    Export {
        path: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 64)]
        count: usize,
    },
}

/// Runs the CLI and returns the process exit status.
pub fn run() -> i32 {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => 0,
        Err(err) => {
            let ours = err.chain().find_map(|e| e.downcast_ref::<relatent::Error>());
            eprintln!(
                "error: {}",
                err.chain().map(|e| e.to_string()).collect::<Vec<_>>().join(": ")
            );
            match ours {
                Some(relatent::Error::Interrupted(_)) => 130,
                Some(_) => 2,
                None => 1,
            }
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => run_main_job(args),
        Command::Train(args) => train_command(args),
        Command::Eval(args) => eval_command(args),
        Command::Figures(args) => figures_command(args),
        Command::Apply(args) => apply_command(args),
        Command::Sweep(args) => sweep::sweep_command(*args),
        Command::Compare(args) => compare_command(args),
        Command::Bench(args) => bench_command(args),
        Command::Metrics(args) => metrics_command(args),
        Command::Serve(args) => serve_command(args),
        Command::Export(args) => export_command(args),
        Command::Data(cmd) => data_command(cmd),
    }
}

fn export_command(args: ExportArgs) -> anyhow::Result<()> {
    let WeightsFormat::Safetensors = args.format;
    relatent::export::export_safetensors(&RunDir::new(&args.dir), &args.out)
        .with_context(|| format!("cannot export {}", args.dir.display()))?;
    println!(
        "Wrote {} and {}",
        args.out.display(),
        relatent::export::sidecar_path(&args.out).display()
    );
    Ok(())
}

fn serve_command(args: ServeArgs) -> anyhow::Result<()> {
    let explorer = relatent::serve::load(&args.dir)
        .with_context(|| format!("cannot serve {}", args.dir.display()))?;
    let addr = std::net::SocketAddr::new(args.host, args.port);
    relatent::serve::serve(explorer, addr, |bound| {
        let url = format!("http://{bound}/");
        // Tests and scripts read this line to find the port when --port 0 was asked for.
        println!("relatent: serving {} at {url} (Ctrl-C to stop)", args.dir.display());
        if args.open
            && let Err(e) = webbrowser::open(&url)
        {
            eprintln!("relatent: cannot open a browser ({e}); open {url} yourself");
        }
    })?;
    Ok(())
}

fn train_into(
    trainer: Trainer,
    dir: &RunDir,
    options: train::TrainOptions,
    quiet: bool,
) -> anyhow::Result<Trainer> {
    let mut bar = progress::TrainingBar::new(quiet);
    let trainer = train::train(trainer, dir, options, &mut bar)?;
    bar.finish();
    Ok(trainer)
}

/// Trains (or resumes) `config` in `dir`, evaluates, draws, and prints the tables.
fn train_evaluate_print(
    config: Config,
    dir: &RunDir,
    resume: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let trainer = pipeline::prepare(config, dir, resume)?;
    let c = trainer.config();
    eprintln!(
        "relatent: task {}, model {}, preset {}, {} steps; run directory {}",
        c.task,
        c.model.name(),
        c.preset.name(),
        c.train.steps,
        dir.root.display()
    );
    print_notes(&trainer);
    let mut bar = progress::TrainingBar::new(quiet);
    let finished = pipeline::finish(trainer, dir, resume, &mut bar)?;
    bar.finish();
    println!("{}", eval::tables::markdown(&finished.report));
    println!(
        "Wrote {}, {} and {} figures in {}",
        dir.eval().display(),
        dir.report().display(),
        finished.figures.len(),
        dir.figures().display()
    );
    Ok(())
}

/// Says on stderr what the method wants the user to know before it trains.
fn print_notes(trainer: &Trainer) {
    for note in trainer.method.notes() {
        eprintln!("relatent: {note}");
    }
}

fn run_main_job(args: RunArgs) -> anyhow::Result<()> {
    let config = args.config.resolve()?;
    let dir = RunDir::new(args.out.unwrap_or_else(|| default_run_path(&config.task)));
    train_evaluate_print(config, &dir, false, args.config.quiet)
}

fn train_command(args: TrainArgs) -> anyhow::Result<()> {
    let dir = RunDir::new(&args.out);
    let config = if args.resume {
        if !dir.config().exists() {
            return Err(relatent::Error::file(dir.config(), "missing: no run to resume here"))
                .context("train --resume");
        }
        dir.read_config()?
    } else {
        args.config.resolve()?
    };
    let options = train::TrainOptions { resume: args.resume, stop_at: args.stop_at };
    let trainer = pipeline::prepare(config, &dir, args.resume)?;
    print_notes(&trainer);
    let trainer = train_into(trainer, &dir, options, args.config.quiet)?;
    let (steps, seconds) = (trainer.state.step, trainer.state.seconds);
    println!("Trained {steps} steps in {seconds:.0} s; checkpoint {}", dir.checkpoint().display());
    Ok(())
}

fn compare_command(args: CompareArgs) -> anyhow::Result<()> {
    compare_and_print(&args.runs, &args.out)
}

/// Writes the comparison of the evaluated runs `dirs` into `out` and prints its tables.
fn compare_and_print(dirs: &[PathBuf], out: &std::path::Path) -> anyhow::Result<()> {
    let compared = compare::read_runs(dirs)?;
    let (table, plot) = compare::write_comparison(&compared, out)?;
    println!("{}\nWrote {} and {}", compare::markdown(&compared), table.display(), plot.display());
    Ok(())
}

fn eval_command(args: EvalArgs) -> anyhow::Result<()> {
    let alpha_rule = args.alpha_rule.as_deref().map(str::parse).transpose()?;
    let rule = eval::RuleChoice { alpha_rule, posterior_temperature: args.posterior_temperature };
    let dir = RunDir::new(&args.dir);
    let report = eval::evaluate_run(&dir, &rule, args.data.as_deref(), &args.ood)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", eval::tables::markdown(&report));
    }
    Ok(())
}

fn figures_command(args: FiguresArgs) -> anyhow::Result<()> {
    let dir = RunDir::new(&args.dir);
    let stale = !dir.eval().exists() || args.reevaluate;
    let run = Run::open(&dir, None)?;
    let report = if stale {
        eprintln!("Evaluating {} first", dir.root.display());
        let report = eval::evaluate(&run, run.ctx.config.eval.alpha_rule());
        eval::write_eval(&dir, &report)?;
        report
    } else {
        eval::read_eval(&dir)?
    };
    let finished = pipeline::draw(&dir, &run, report)?;
    for f in &finished.figures {
        println!("{}", dir.figures().join(&f.file).display());
    }
    println!("{}", dir.report().display());
    Ok(())
}

fn apply_command(args: ApplyArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.alpha) {
        return Err(relatent::Error::Invalid(format!(
            "--alpha must be in [0, 1], got {}",
            args.alpha
        ))
        .into());
    }
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
        return Err(relatent::Error::file(parent, "output folder does not exist").into());
    }
    let dir = RunDir::new(&args.dir);
    let run = Run::open(&dir, None)?;
    let model = run.absae()?;
    for name in &args.relation {
        model.relations().position(name)?;
    }
    let load = |path: &PathBuf| -> anyhow::Result<Vec<f32>> {
        let (pixels, warning) = apply::load_image(path, run.image_shape())?;
        if let Some(w) = warning {
            eprintln!("warning: {w}");
        }
        Ok(pixels)
    };
    let pixels = load(&args.image)?;
    let images = apply::StepImages {
        operands: args.operand.iter().map(load).collect::<anyhow::Result<_>>()?,
        operators: args.operator.iter().map(load).collect::<anyhow::Result<_>>()?,
    };
    let rule = run.ctx.config.eval.alpha_rule();
    let stages = apply::apply_chain(&run, &pixels, &args.relation, &images, rule, args.alpha)?;
    let reference = eval::read_eval(&dir).ok().and_then(|e| e.ood_reference);
    println!("{}", apply::ood_line(&run, &pixels, rule, reference.as_ref())?);
    for stage in &stages {
        let p = &stage.placement;
        let verdict = if p.accepted { "accepted" } else { "rejected" };
        println!(
            "{:<16} component {:>3} ({}), log density {:.2}, posterior {:.3}, {verdict} at α = {} ({} rule)",
            stage.relation.as_deref().unwrap_or("input"),
            p.component,
            p.label,
            p.log_density,
            p.posterior,
            args.alpha,
            rule.name()
        );
        println!("{:<16} {}", "", seen_line(stage));
    }
    if args.strip {
        let path = strip_path(&args.out);
        apply::strip(&run, &pixels, &stages).save(&path)?;
        println!("Wrote {}", path.display());
    }
    apply::write_result(&run, &stages, &args.out)?;
    println!("Wrote {}", args.out.display());
    Ok(())
}

/// How a stage's decoded image reads when encoded again, and the nuisances the probe reads in
/// it beside the input's.
fn seen_line(stage: &apply::Stage) -> String {
    let s = &stage.seen;
    let same = if s.component == stage.placement.component {
        "as its code"
    } else {
        "✗ not as its code"
    };
    let mut line = format!("image reads as {} ({same}), posterior {:.3}", s.label, s.posterior);
    if !stage.nuisances.is_empty() {
        let read: Vec<String> = stage
            .nuisances
            .iter()
            .map(|n| {
                format!("{} {} {}", n.factor, n.class, if n.kept { "kept" } else { "changed" })
            })
            .collect();
        line += &format!("; nuisances {}", read.join(", "));
    }
    line
}

/// `OUT-strip.png` beside `OUT.png`.
fn strip_path(out: &std::path::Path) -> PathBuf {
    let stem =
        out.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
    out.with_file_name(format!("{stem}-strip.png"))
}

fn metrics_command(args: MetricsArgs) -> anyhow::Result<()> {
    use relatent::eval::metrics;
    let rep = metrics::read_representation(&args.codes, &args.factors)?;
    let train = args.train.unwrap_or_else(|| metrics::default_train_rows(rep.len()));
    let scores = metrics::disentanglement(&rep, train)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&scores)?);
    } else {
        let d = &scores.dci;
        println!(
            "{} rows ({train} fit, {} test), {} code dimensions, {} factors",
            rep.len(),
            rep.len() - train,
            rep.dim,
            rep.num_factors
        );
        println!(
            "DCI disentanglement {:.3}, completeness {:.3}, informativeness {:.3} (mean {:.3})",
            d.disentanglement, d.completeness, d.informativeness, d.mean
        );
        println!("MIG {:.3}\nSAP {:.3}", scores.mig, scores.sap);
    }
    Ok(())
}

fn bench_command(args: BenchArgs) -> anyhow::Result<()> {
    if args.batch == 0 || args.repeats == 0 {
        return Err(
            relatent::Error::Invalid("--batch and --repeats must be positive".into()).into()
        );
    }
    let options = bench::BenchOptions { task: args.task, batch: args.batch, repeats: args.repeats };
    if args.ops {
        let report = bench::run_ops(&options)?;
        print_report(&report, report.table(), args.json)
    } else {
        let report = bench::run(&options, &mut |what| eprintln!("measuring {what}"))?;
        print_report(&report, report.table(), args.json)
    }
}

/// Prints `report` as JSON or as its `table`.
fn print_report(report: &impl serde::Serialize, table: String, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{table}");
    }
    Ok(())
}

fn data_command(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Render { task, out, count, seed } => {
            let data = TaskData::open(&task, None)?;
            let count = count.min(data.len());
            let picks = sample(&mut stream(seed, Stream::Render, 0), data.len(), count).into_vec();
            let indices: Vec<usize> = picks.iter().map(|&i| data.indices[i]).collect();
            let dir = export_images(data.dataset.as_ref(), &indices, &out)?;
            println!("Wrote {count} images of {task} and factors.csv to {}", dir.display());
        }
        DataCommand::Inspect { path, json, config } => {
            let summary = if folder::is_folder_dataset(&path) {
                let overrides = Overrides { data: Some(path.clone()), ..Default::default() };
                let config =
                    Config::resolve(config.as_deref(), None, Some(tasks::FOLDER), &overrides)?;
                tasks::folder::inspect(&path, &config.folder.unwrap_or_default())?
            } else {
                inspect::inspect(&path)?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", summary.text());
            }
        }
        DataCommand::Export { path, out, count } => {
            let dataset = inspect::open_first(&path, count)?;
            let indices: Vec<usize> = (0..dataset.len()).collect();
            let dir = export_images(dataset.as_ref(), &indices, &out)?;
            println!("Wrote {} images and factors.csv to {}", indices.len(), dir.display());
        }
    }
    Ok(())
}
