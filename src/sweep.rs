//! Grids of runs (SPEC §7–8): one grid over tasks, models, their weights, τ, any other config
//! key and seeds, each point a run directory under one sweep folder and addressed by one
//! integer, so that a Slurm array task, a GNU parallel job or a shell loop runs exactly point N.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::config::{Config, ModelKind};
use crate::{Error, Result};

/// β of the β-VAE sweep.
pub const BETA_VAE_BETAS: [f64; 6] = [1.0, 2.0, 4.0, 6.0, 8.0, 16.0];
/// γ of the FactorVAE sweep.
pub const FACTOR_VAE_GAMMAS: [f64; 6] = [10.0, 20.0, 30.0, 40.0, 50.0, 100.0];
/// The AbsAE's adversarial β (the paper's figure 5 varies it too).
pub const ABSAE_BETAS: [f64; 6] = BETA_VAE_BETAS;

/// The models of a sweep that names none: the paper's two baselines.
pub const DEFAULT_MODELS: [ModelKind; 2] = [ModelKind::BetaVae, ModelKind::FactorVae];

/// Keys with an axis of their own, which `set` may not sweep.
const AXIS_KEYS: [&str; 5] = ["task", "model", "tau", "seed", "preset"];

/// Weights of single models, in the order the file names them.
pub type ModelWeights = Vec<(ModelKind, Vec<f64>)>;

/// The axes of a sweep. An empty axis is not swept: every point takes the base config's value
/// and the axis is left out of the run folders' names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grid {
    pub tasks: Vec<String>,
    /// Empty: [`DEFAULT_MODELS`].
    pub models: Vec<ModelKind>,
    /// The swept weight of every model (β or γ); empty: `model_weights`, else each model's
    /// paper grid.
    pub weights: Vec<f64>,
    /// The weights of single models (`[sweep.weights]`), so a grid can give the β-VAE its βs
    /// and FactorVAE its γs.
    pub model_weights: ModelWeights,
    pub taus: Vec<usize>,
    /// Any other config key, by its dotted path (`train.lr`), with the values it takes.
    pub set: BTreeMap<String, Vec<toml::Value>>,
    pub seeds: Vec<u64>,
}

/// The `[sweep]` table of a config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GridTable {
    #[serde(default)]
    tasks: Vec<String>,
    #[serde(default)]
    models: Vec<String>,
    /// A list (every model) or a table of lists by model name: read by [`weights_axis`].
    weights: Option<toml::Value>,
    #[serde(default)]
    tau: Vec<usize>,
    #[serde(default)]
    seeds: Vec<u64>,
    #[serde(default)]
    set: BTreeMap<String, Vec<toml::Value>>,
}

/// One point of a grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub index: usize,
    /// None: the base config's.
    pub task: Option<String>,
    pub model: ModelKind,
    pub weight: f64,
    pub tau: Option<usize>,
    pub set: Vec<(String, toml::Value)>,
    pub seed: Option<u64>,
}

impl Grid {
    /// The `[sweep]` table of the TOML file at `path` (an empty grid when it has none).
    pub fn from_file(path: &Path) -> Result<Grid> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
        let mut file: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::file(path, format!("invalid TOML: {}", e.message().trim()))
        })?;
        let Some(table) = file.remove("sweep") else { return Ok(Grid::default()) };
        let table: GridTable = serde_path_to_error::deserialize(table).map_err(|e| {
            let key = e.path().to_string();
            Error::file(path, format!("sweep.{key}: {}", e.into_inner().message().trim()))
        })?;
        let models = table
            .models
            .iter()
            .map(|m| m.parse().map_err(|e: Error| Error::file(path, format!("sweep.models: {e}"))))
            .collect::<Result<_>>()?;
        let (weights, model_weights) = match &table.weights {
            Some(value) => weights_axis(value).map_err(|e| Error::file(path, e))?,
            None => (Vec::new(), Vec::new()),
        };
        let grid = Grid {
            tasks: table.tasks,
            models,
            weights,
            model_weights,
            taus: table.tau,
            set: table.set,
            seeds: table.seeds,
        };
        grid.check().map_err(|e| Error::file(path, e))?;
        Ok(grid)
    }

    /// `self` with every axis that `top` sweeps replaced by `top`'s.
    pub fn overridden_by(mut self, top: Grid) -> Grid {
        fn replace<T>(axis: &mut Vec<T>, top: Vec<T>) {
            if !top.is_empty() {
                *axis = top;
            }
        }
        replace(&mut self.tasks, top.tasks);
        replace(&mut self.models, top.models);
        replace(&mut self.weights, top.weights);
        for (model, weights) in top.model_weights {
            self.model_weights.retain(|(m, _)| *m != model);
            self.model_weights.push((model, weights));
        }
        replace(&mut self.taus, top.taus);
        replace(&mut self.seeds, top.seeds);
        self.set.extend(top.set);
        self
    }

    /// Rejects `set` keys that have their own axis and `set` entries without values.
    pub fn check(&self) -> Result<()> {
        for (key, values) in &self.set {
            if AXIS_KEYS.contains(&key.as_str()) {
                return Err(Error::config(
                    format!("sweep.set.{key}"),
                    "has its own axis (tasks, models, tau, seeds) or, for preset, needs a sweep of its own",
                ));
            }
            if values.is_empty() {
                return Err(Error::config(format!("sweep.set.{key}"), "lists no values"));
            }
        }
        for (model, weights) in &self.model_weights {
            if weights.is_empty() {
                return Err(Error::config(
                    format!("sweep.weights.{}", model.name()),
                    "lists no values",
                ));
            }
        }
        Ok(())
    }

    fn models(&self) -> &[ModelKind] {
        if self.models.is_empty() { &DEFAULT_MODELS } else { &self.models }
    }

    fn weights(&self, model: ModelKind) -> &[f64] {
        if !self.weights.is_empty() {
            return &self.weights;
        }
        if let Some((_, weights)) = self.model_weights.iter().find(|(m, _)| *m == model) {
            return weights;
        }
        match model {
            ModelKind::BetaVae => &BETA_VAE_BETAS,
            ModelKind::FactorVae => &FACTOR_VAE_GAMMAS,
            ModelKind::AbsAe => &ABSAE_BETAS,
        }
    }

    /// Every point, in index order: task, then model, weight, τ, the `set` keys in key order,
    /// and seed last, so that the seeds of one setting are neighbours.
    pub fn points(&self) -> Vec<Point> {
        let mut points = Vec::new();
        for task in optional(&self.tasks) {
            for &model in self.models() {
                for &weight in self.weights(model) {
                    for tau in optional(&self.taus) {
                        for set in self.set_combinations() {
                            for seed in optional(&self.seeds) {
                                points.push(Point {
                                    index: points.len(),
                                    task: task.cloned(),
                                    model,
                                    weight,
                                    tau: tau.copied(),
                                    set: set.clone(),
                                    seed: seed.copied(),
                                });
                            }
                        }
                    }
                }
            }
        }
        points
    }

    /// The number of points, without listing them.
    pub fn len(&self) -> usize {
        let per_model: usize = self.models().iter().map(|&m| self.weights(m).len()).sum();
        let set: usize = self.set.values().map(Vec::len).product();
        [self.tasks.len(), self.taus.len(), self.seeds.len()]
            .iter()
            .map(|&n| n.max(1))
            .product::<usize>()
            * per_model
            * set
    }

    /// True when the grid has no point (never: every axis has at least one value).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Point `index`, or an error naming `--index` and the grid's size.
    pub fn point(&self, index: usize) -> Result<Point> {
        let n = self.len();
        if index >= n {
            return Err(Error::Invalid(format!(
                "--index {index}: the grid has {n} points (0 to {})",
                n.saturating_sub(1)
            )));
        }
        Ok(self.points().swap_remove(index))
    }

    /// Every combination of the `set` keys' values, in key order.
    fn set_combinations(&self) -> Vec<Vec<(String, toml::Value)>> {
        let mut combinations = vec![Vec::new()];
        for (key, values) in &self.set {
            combinations = combinations
                .into_iter()
                .flat_map(|prefix| {
                    values.iter().map(move |v| {
                        let mut c: Vec<(String, toml::Value)> = prefix.clone();
                        c.push((key.clone(), v.clone()));
                        c
                    })
                })
                .collect();
        }
        combinations
    }
}

/// The `[sweep]` table's `weights`: `[1, 4]` for every model, or `{ beta-vae = [1, 4], … }`
/// with one list per model name.
fn weights_axis(value: &toml::Value) -> Result<(Vec<f64>, ModelWeights)> {
    let numbers = |key: &str, value: &toml::Value| -> Result<Vec<f64>> {
        let list = value.as_array().ok_or_else(|| {
            Error::config(key, "expected a list of numbers or a table of them by model name")
        })?;
        list.iter()
            .map(|v| {
                v.as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .ok_or_else(|| Error::config(key, format!("{v} is not a number")))
            })
            .collect()
    };
    match value.as_table() {
        None => Ok((numbers("sweep.weights", value)?, Vec::new())),
        Some(table) => {
            let per_model = table
                .iter()
                .map(|(name, list)| {
                    let key = format!("sweep.weights.{name}");
                    let model = name.parse().map_err(|e: Error| Error::config(&key, e))?;
                    Ok((model, numbers(&key, list)?))
                })
                .collect::<Result<_>>()?;
            Ok((Vec::new(), per_model))
        }
    }
}

/// The values of an axis, or one `None` when it is not swept.
fn optional<T>(axis: &[T]) -> Vec<Option<&T>> {
    if axis.is_empty() { vec![None] } else { axis.iter().map(Some).collect() }
}

impl Point {
    /// Folder name under the sweep directory: `beta-vae-beta4`, `hwf-absae-beta1-tau20-seed2`,
    /// `absae-beta1-train.lr0.0005` (only the swept axes appear).
    pub fn name(&self) -> String {
        let mut name = String::new();
        if let Some(task) = &self.task {
            name.push_str(&format!("{task}-"));
        }
        name.push_str(&format!(
            "{}-{}{}",
            self.model.name(),
            self.model.weight_name(),
            self.weight
        ));
        if let Some(tau) = self.tau {
            name.push_str(&format!("-tau{tau}"));
        }
        for (key, value) in &self.set {
            let value = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            name.push_str(&format!("-{key}{value}"));
        }
        if let Some(seed) = self.seed {
            name.push_str(&format!("-seed{seed}"));
        }
        name
    }

    /// The config of this point: `base` (the base config resolved for the point's task) with
    /// its model, weight, τ, `set` values and seed.
    pub fn config(&self, base: &Config) -> Result<Config> {
        let mut config = base.clone();
        config.model = self.model;
        config.set_model_weight(self.weight);
        if let Some(tau) = self.tau {
            config.tau = tau;
        }
        if let Some(seed) = self.seed {
            config.seed = seed;
        }
        for (key, value) in &self.set {
            config = config.with_value(key, value.clone())?;
        }
        config.validate()?;
        Ok(config)
    }
}

/// The Slurm settings of an emitted array script.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    /// Wall-clock limit per point, in Slurm's format (`2:00:00`).
    pub time: Option<String>,
    pub cpus: Option<usize>,
    pub gpus: Option<usize>,
    /// Array tasks running at once (`%K`).
    pub max_parallel: Option<usize>,
}

/// A Slurm array script over `points` points of a sweep into `out`: array task N runs
/// `relatent` with `sweep_args` and `--index N`; array task 0 also submits the comparison as a
/// job that starts once every point has finished (`afterok` on the whole array).
/// `sweep_args` and `workdir` are quoted for the shell here.
pub fn sbatch_script(
    points: usize,
    program: &Path,
    sweep_args: &[String],
    workdir: &Path,
    out: &Path,
    slurm: &SlurmOptions,
) -> String {
    let logs = out.join("logs");
    let mut s = String::from("#!/bin/bash\n");
    s.push_str("#SBATCH --job-name=relatent-sweep\n");
    let limit = slurm.max_parallel.map(|k| format!("%{k}")).unwrap_or_default();
    s.push_str(&format!("#SBATCH --array=0-{}{limit}\n", points.saturating_sub(1)));
    s.push_str(&format!("#SBATCH --output={}/point-%a.out\n", logs.display()));
    s.push_str(&format!("#SBATCH --error={}/point-%a.err\n", logs.display()));
    if let Some(p) = &slurm.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &slurm.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(c) = slurm.cpus {
        s.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    if let Some(g) = slurm.gpus {
        s.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
    }
    let relatent = shell_quote(&program.display().to_string());
    let args: Vec<String> = sweep_args.iter().map(|a| shell_quote(a)).collect();
    let sweep = format!("{relatent} sweep {}", args.join(" "));
    s.push_str(&format!("set -euo pipefail\ncd {}\n", shell_quote(&workdir.display().to_string())));
    s.push_str(&format!(
        "if [ \"$SLURM_ARRAY_TASK_ID\" = 0 ]; then\n  sbatch --job-name=relatent-compare \
         --dependency=afterok:\"$SLURM_ARRAY_JOB_ID\" --output={logs}/compare.out \
         --error={logs}/compare.err --wrap={wrap}\nfi\n",
        logs = logs.display(),
        wrap = shell_quote(&format!("{sweep} --compare")),
    ));
    s.push_str(&format!("exec {sweep} --index \"$SLURM_ARRAY_TASK_ID\"\n"));
    s
}

/// `text` as one word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c));
    if plain { text.to_string() } else { format!("'{}'", text.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;

    fn names(grid: &Grid) -> Vec<String> {
        grid.points().iter().map(Point::name).collect()
    }

    #[test]
    fn default_grid_covers_the_spec_weights_with_distinct_names() {
        let grid = Grid { models: ModelKind::ALL.to_vec(), ..Grid::default() };
        let names = names(&grid);
        assert_eq!((names.len(), grid.len()), (18, 18));
        let distinct: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), 18);
        for expected in ["factor-vae-gamma100", "beta-vae-beta16", "absae-beta1"] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
        }
        assert_eq!(Grid::default().len(), 12, "β-VAE and FactorVAE when no model is named");
    }

    #[test]
    fn points_are_the_cartesian_product_in_index_order() {
        let grid = Grid {
            tasks: vec!["dsprites".into(), "hwf".into()],
            models: vec![ModelKind::AbsAe],
            weights: vec![1.0],
            model_weights: Vec::new(),
            taus: vec![10, 20, 30],
            set: BTreeMap::from([("train.lr".into(), vec![1e-4.into(), 5e-4.into()])]),
            seeds: vec![0, 1, 2],
        };
        let points = grid.points();
        assert_eq!((points.len(), grid.len()), (36, 36));
        assert!(points.iter().enumerate().all(|(i, p)| p.index == i));
        assert_eq!(points[0].name(), "dsprites-absae-beta1-tau10-train.lr0.0001-seed0");
        assert_eq!(points[1].name(), "dsprites-absae-beta1-tau10-train.lr0.0001-seed1");
        assert_eq!(points[3].name(), "dsprites-absae-beta1-tau10-train.lr0.0005-seed0");
        assert_eq!(points[35].name(), "hwf-absae-beta1-tau30-train.lr0.0005-seed2");
        assert_eq!(grid.point(7).unwrap(), points[7]);
        let err = grid.point(36).unwrap_err().to_string();
        assert!(err.contains("--index 36") && err.contains("36 points"), "{err}");
    }

    #[test]
    fn a_large_grid_is_counted_and_listed_quickly() {
        let grid =
            Grid { models: ModelKind::ALL.to_vec(), seeds: (0..700).collect(), ..Grid::default() };
        assert_eq!(grid.len(), 18 * 700);
        assert_eq!(grid.points().len(), 12_600);
    }

    #[test]
    fn point_config_sets_every_axis() {
        let base = Config::preset(Preset::Default, "dsprites").unwrap();
        let point = Point {
            index: 0,
            task: None,
            model: ModelKind::FactorVae,
            weight: 30.0,
            tau: Some(20),
            set: vec![("train.lr".into(), 2e-4.into()), ("eval.max_test_images".into(), 50.into())],
            seed: Some(3),
        };
        let c = point.config(&base).unwrap();
        assert_eq!(
            (c.model, c.factor_vae.gamma, c.tau, c.seed, c.train.lr, c.eval.max_test_images),
            (ModelKind::FactorVae, 30.0, 20, 3, 2e-4, 50)
        );
        assert_eq!(c.train.gamma, base.train.gamma, "the AbsAE's γ is not the FactorVAE's");
        let bad = Point { set: vec![("train.lr".into(), "fast".into())], ..point.clone() };
        let err = bad.config(&base).unwrap_err().to_string();
        assert!(err.contains("train.lr"), "{err}");
        let unknown = Point { set: vec![("train.speed".into(), 1.into())], ..point };
        let err = unknown.config(&base).unwrap_err().to_string();
        assert!(err.contains("speed"), "{err}");
    }

    #[test]
    fn the_sweep_table_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.toml");
        std::fs::write(
            &path,
            "seed = 1\n[sweep]\nmodels = [\"absae\"]\nweights = [1.0, 2.0]\ntau = [10, 20]\nseeds = [0, 1]\n[sweep.set]\n\"train.steps\" = [10, 20]\n",
        )
        .unwrap();
        let grid = Grid::from_file(&path).unwrap();
        assert_eq!(grid.len(), 16);
        assert_eq!(grid.models, vec![ModelKind::AbsAe]);
        let flags = Grid { seeds: vec![5], ..Grid::default() };
        let merged = grid.overridden_by(flags);
        assert_eq!((merged.seeds.clone(), merged.len()), (vec![5], 8));

        std::fs::write(&path, "[sweep]\nmodel = [\"absae\"]\n").unwrap();
        let err = Grid::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("grid.toml") && err.contains("model"), "{err}");
        std::fs::write(&path, "[sweep]\nmodels = [\"vae\"]\n").unwrap();
        let err = Grid::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("sweep.models"), "{err}");
        std::fs::write(&path, "[sweep.set]\nseed = [1, 2]\n").unwrap();
        let err = Grid::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("sweep.set.seed"), "{err}");
    }

    /// The grids behind docs/results.md: each point's config resolves and validates.
    #[test]
    fn every_shipped_sweep_file_gives_valid_points() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        assert!(files.len() >= 4, "{files:?}");
        for file in &files {
            let grid = Grid::from_file(file).unwrap();
            assert!(grid.len() > 1, "{}", file.display());
            for point in grid.points() {
                let overrides = crate::config::Overrides::default();
                let base = Config::resolve(Some(file), None, point.task.as_deref(), &overrides)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                point.config(&base).unwrap_or_else(|e| panic!("{}: {e}", point.name()));
            }
        }
    }

    #[test]
    fn each_model_takes_its_own_weights_from_the_sweep_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.toml");
        std::fs::write(
            &path,
            "[sweep]\nmodels = [\"beta-vae\", \"factor-vae\", \"absae\"]\n\
             [sweep.weights]\nbeta-vae = [1, 16]\nfactor-vae = [30.0]\n",
        )
        .unwrap();
        let grid = Grid::from_file(&path).unwrap();
        let names = names(&grid);
        assert_eq!(&names[..3], ["beta-vae-beta1", "beta-vae-beta16", "factor-vae-gamma30"]);
        assert_eq!(names.len(), 3 + ABSAE_BETAS.len(), "the AbsAE keeps its paper grid");
        assert_eq!(grid.len(), names.len());
        let flags = Grid { weights: vec![2.0], ..Grid::default() };
        assert_eq!(grid.overridden_by(flags).len(), 3, "--weights applies to every model");

        std::fs::write(&path, "[sweep.weights]\nvae = [1]\n").unwrap();
        let err = Grid::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("sweep.weights.vae"), "{err}");
        std::fs::write(&path, "[sweep]\nweights = \"x\"\n").unwrap();
        let err = Grid::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("sweep.weights") && err.contains("list of numbers"), "{err}");
        std::fs::write(&path, "[sweep.weights]\nabsae = []\n").unwrap();
        let err = Grid::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("sweep.weights.absae") && err.contains("no values"), "{err}");
    }

    #[test]
    fn the_sbatch_script_runs_one_point_per_array_task_and_then_compares() {
        let slurm = SlurmOptions {
            partition: Some("cpu".into()),
            time: Some("1:00:00".into()),
            cpus: Some(2),
            gpus: None,
            max_parallel: Some(4),
        };
        let args = vec!["--out".to_string(), "sweeps/my grid".to_string()];
        let script = sbatch_script(
            18,
            Path::new("/opt/relatent"),
            &args,
            Path::new("/home/me"),
            Path::new("sweeps/my grid"),
            &slurm,
        );
        for line in [
            "#SBATCH --array=0-17%4",
            "#SBATCH --partition=cpu",
            "#SBATCH --time=1:00:00",
            "#SBATCH --cpus-per-task=2",
            "exec /opt/relatent sweep --out 'sweeps/my grid' --index \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(script.lines().any(|l| l == line), "no line {line:?} in\n{script}");
        }
        assert!(!script.contains("--gpus"), "{script}");
        assert!(script.contains("--dependency=afterok:\"$SLURM_ARRAY_JOB_ID\""), "{script}");
        assert!(
            script
                .contains("--wrap='/opt/relatent sweep --out '\\''sweeps/my grid'\\'' --compare'"),
            "{script}"
        );
    }

    #[test]
    fn shell_quoting_keeps_words_whole() {
        assert_eq!(shell_quote("plain/path-1.toml"), "plain/path-1.toml");
        assert_eq!(shell_quote("two words"), "'two words'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
