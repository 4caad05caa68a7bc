//! `relatent sweep`: the grid from the config file's `[sweep]` table and the flags, listed,
//! run here point after point, run one point (`--index`, for array jobs), emitted as a Slurm
//! array script, or compared.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{ConfigArgs, compare_and_print, train_evaluate_print};
use relatent::config::Config;
use relatent::run_dir::RunDir;
use relatent::sweep::{Grid, Point, SlurmOptions, sbatch_script};

#[derive(Args)]
pub(super) struct SweepArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Sweep folder: one run directory per grid point, then comparison.md and tradeoff.png.
    #[arg(long)]
    out: PathBuf,
    /// Models, comma-separated (default beta-vae,factor-vae).
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
    /// The swept weight (β or γ) for every model (default: each model's paper grid).
    #[arg(long, value_delimiter = ',')]
    weights: Vec<f64>,
    /// Tasks, comma-separated (default: the config's task, not swept).
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// τ values, comma-separated (default: the config's τ, not swept).
    #[arg(long, value_delimiter = ',')]
    taus: Vec<usize>,
    /// Seeds, comma-separated (default: the config's seed, not swept).
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    /// Any other config key and its values: `--set train.lr=1e-4,5e-4` (repeatable).
    #[arg(long = "set", value_name = "KEY=V1,V2")]
    set: Vec<String>,
    /// Print every point with its index and run directory, and nothing else.
    #[arg(long)]
    list: bool,
    /// Train, evaluate and draw point N only (a finished point is kept, a killed one resumed).
    #[arg(long, conflicts_with_all = ["list", "emit_sbatch", "compare"])]
    index: Option<usize>,
    /// Compare the points (all must be evaluated): comparison.md and tradeoff.png in --out.
    #[arg(long, conflicts_with_all = ["list", "emit_sbatch"])]
    compare: bool,
    /// Write a Slurm array script running one point per array task, then the comparison.
    #[arg(long, value_name = "FILE", conflicts_with = "list")]
    emit_sbatch: Option<PathBuf>,
    /// Slurm partition of the emitted script.
    #[arg(long, requires = "emit_sbatch")]
    partition: Option<String>,
    /// Slurm time limit per point (`2:00:00`).
    #[arg(long, requires = "emit_sbatch")]
    time: Option<String>,
    /// CPUs per point.
    #[arg(long, requires = "emit_sbatch")]
    cpus: Option<usize>,
    /// GPUs per point.
    #[arg(long, requires = "emit_sbatch")]
    gpus: Option<usize>,
    /// Array tasks running at once.
    #[arg(long, requires = "emit_sbatch")]
    max_parallel: Option<usize>,
}

/// Flags of `sweep` that shape the emitted script rather than the grid, with whether each
/// takes a value; the script's own `sweep` command line is the user's without them.
const EMIT_FLAGS: [(&str, bool); 7] = [
    ("--emit-sbatch", true),
    ("--partition", true),
    ("--time", true),
    ("--cpus", true),
    ("--gpus", true),
    ("--max-parallel", true),
    ("--list", false),
];

pub(super) fn sweep_command(args: SweepArgs) -> anyhow::Result<()> {
    let grid = grid(&args)?;
    if args.list {
        for point in grid.points() {
            println!("{}\t{}", point.index, args.out.join(point.name()).display());
        }
        return Ok(());
    }
    if let Some(file) = &args.emit_sbatch {
        return emit_sbatch(&args, &grid, file);
    }
    if let Some(index) = args.index {
        let point = grid.point(index)?;
        return run_point(&args, &point, grid.len());
    }
    let points = grid.points();
    if !args.compare {
        for point in &points {
            run_point(&args, point, points.len())?;
        }
    }
    let dirs: Vec<PathBuf> = points.iter().map(|p| args.out.join(p.name())).collect();
    compare_and_print(&dirs, &args.out)
}

/// The config file's `[sweep]` grid with the flags' axes over it.
fn grid(args: &SweepArgs) -> relatent::Result<Grid> {
    let from_file = match &args.config.config {
        Some(path) => Grid::from_file(path)?,
        None => Grid::default(),
    };
    let models = args.models.iter().map(|m| m.parse()).collect::<relatent::Result<_>>()?;
    let set = args.set.iter().map(|s| parse_set(s)).collect::<relatent::Result<_>>()?;
    let flags = Grid {
        tasks: args.tasks.clone(),
        models,
        weights: args.weights.clone(),
        model_weights: Vec::new(),
        taus: args.taus.clone(),
        set,
        seeds: args.seeds.clone(),
    };
    let grid = from_file.overridden_by(flags);
    grid.check()?;
    Ok(grid)
}

/// `KEY=V1,V2,…`; each value is read as TOML (`5e-4`, `true`, `"noise"`), else as a string.
fn parse_set(text: &str) -> relatent::Result<(String, Vec<toml::Value>)> {
    let (key, values) = text.split_once('=').ok_or_else(|| {
        relatent::Error::Invalid(format!("--set {text}: expected KEY=V1,V2 (e.g. train.lr=1e-4)"))
    })?;
    let value = |v: &str| {
        format!("v = {v}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(v.to_string()))
    };
    Ok((key.trim().to_string(), values.split(',').map(|v| value(v.trim())).collect()))
}

/// The base config of `task` (the config's own when None): preset, file and flags resolved.
fn base_config(args: &SweepArgs, task: Option<&str>) -> relatent::Result<Config> {
    let mut config_args = args.config.clone();
    if let Some(task) = task {
        config_args.task = Some(task.to_string());
    }
    config_args.resolve()
}

/// Trains, evaluates and draws one point unless it is already evaluated; a point whose run
/// directory was started resumes with the config it was started with.
fn run_point(args: &SweepArgs, point: &Point, of: usize) -> anyhow::Result<()> {
    let dir = RunDir::new(args.out.join(point.name()));
    let label = format!("[{}/{of}] {}", point.index, point.name());
    if dir.eval().exists() {
        eprintln!("{label}: already evaluated, kept");
        return Ok(());
    }
    let started = dir.config().exists();
    let config = if started {
        dir.read_config()?
    } else {
        point.config(&base_config(args, point.task.as_deref())?)?
    };
    eprintln!("{label}{}", if started { " (resuming)" } else { "" });
    train_evaluate_print(config, &dir, started, args.config.quiet)
}

fn emit_sbatch(args: &SweepArgs, grid: &Grid, file: &Path) -> anyhow::Result<()> {
    // Every point's config is checked now, not on the cluster an hour later.
    for point in grid.points() {
        point.config(&base_config(args, point.task.as_deref())?)?;
    }
    let workdir = std::env::current_dir()?;
    let out = std::path::absolute(&args.out)?;
    std::fs::create_dir_all(out.join("logs"))
        .map_err(|e| relatent::Error::file(out.join("logs"), e))?;
    let slurm = SlurmOptions {
        partition: args.partition.clone(),
        time: args.time.clone(),
        cpus: args.cpus,
        gpus: args.gpus,
        max_parallel: args.max_parallel,
    };
    let program = std::env::current_exe()?;
    let script = sbatch_script(grid.len(), &program, &sweep_argv(), &workdir, &out, &slurm);
    relatent::data::images::write_atomic(file, script.as_bytes())?;
    println!(
        "Wrote {} ({} points; logs in {}). Submit it with: sbatch {}",
        file.display(),
        grid.len(),
        out.join("logs").display(),
        file.display()
    );
    Ok(())
}

/// This process's arguments after `sweep`, without the flags that shape the script.
fn sweep_argv() -> Vec<String> {
    let argv: Vec<String> = std::env::args().collect();
    let after = argv.iter().position(|a| a == "sweep").map_or(argv.len(), |i| i + 1);
    without_emit_flags(&argv[after..])
}

fn without_emit_flags(args: &[String]) -> Vec<String> {
    let mut kept = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        let name = arg.split_once('=').map_or(arg.as_str(), |(n, _)| n);
        match EMIT_FLAGS.iter().find(|(flag, _)| *flag == name) {
            Some((_, takes_value)) => skip_value = *takes_value && !arg.contains('='),
            None => kept.push(arg.clone()),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emitted_command_line_drops_only_the_script_flags() {
        let args: Vec<String> = [
            "--out",
            "s",
            "--emit-sbatch",
            "job.sh",
            "--time=1:00:00",
            "--models",
            "absae",
            "--max-parallel",
            "3",
            "--seeds=0,1",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(without_emit_flags(&args), ["--out", "s", "--models", "absae", "--seeds=0,1"]);
    }

    #[test]
    fn set_values_are_read_as_toml() {
        let (key, values) = parse_set("train.lr=1e-4, 5e-4").unwrap();
        assert_eq!(key, "train.lr");
        assert_eq!(values, vec![toml::Value::Float(1e-4), toml::Value::Float(5e-4)]);
        let (_, values) = parse_set("train.augment=noise,none").unwrap();
        assert_eq!(values[0], toml::Value::String("noise".into()));
        let (_, values) = parse_set("train.steps=10").unwrap();
        assert_eq!(values, vec![toml::Value::Integer(10)]);
        assert!(parse_set("train.lr").unwrap_err().to_string().contains("KEY=V1,V2"));
    }
}
