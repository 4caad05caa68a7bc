//! The run directory: resolved config, checkpoint, `metrics.jsonl`, `eval.json`, `report.md`,
//! `figures/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::data::images::write_atomic;
use crate::{Error, Result};

/// Paths inside a run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join("checkpoint.bin")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    pub fn eval(&self) -> PathBuf {
        self.root.join("eval.json")
    }
    pub fn report(&self) -> PathBuf {
        self.root.join("report.md")
    }
    pub fn figures(&self) -> PathBuf {
        self.root.join("figures")
    }
    pub fn ood_scores(&self) -> PathBuf {
        self.root.join("ood-scores.csv")
    }

    /// Creates the directory for a new run and writes its resolved config. Refuses a
    /// directory that already holds a run.
    pub fn create(&self, config: &Config) -> Result<()> {
        if self.checkpoint().exists() || self.config().exists() {
            return Err(Error::file(
                &self.root,
                "already holds a run (use --resume to continue it, or another --out)",
            ));
        }
        std::fs::create_dir_all(&self.root).map_err(|e| Error::file(&self.root, e))?;
        write_atomic(&self.config(), config.to_toml().as_bytes())
    }

    /// Reads the run's resolved config.
    pub fn read_config(&self) -> Result<Config> {
        if !self.root.is_dir() {
            return Err(Error::file(&self.root, "is not a run directory"));
        }
        Config::resolve(Some(&self.config()), None, None, &Default::default())
    }

    /// Appends one line to `metrics.jsonl`.
    pub fn append_metrics(&self, line: &serde_json::Value) -> Result<()> {
        let path = self.metrics();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::file(&path, e))?;
        writeln!(file, "{line}").map_err(|e| Error::file(&path, e))
    }

    /// Drops `metrics.jsonl` lines logged after `step` (a resumed run logs them again).
    pub fn truncate_metrics_after(&self, step: usize) -> Result<()> {
        let path = self.metrics();
        let Ok(text) = std::fs::read_to_string(&path) else { return Ok(()) };
        let kept: String = text
            .lines()
            .filter(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .ok()
                    .and_then(|v| v["step"].as_u64())
                    .is_some_and(|s| s as usize <= step)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        write_atomic(&path, kept.as_bytes())
    }

    /// Writes `eval.json` atomically.
    pub fn write_eval(&self, value: &serde_json::Value) -> Result<()> {
        write_atomic(
            &self.eval(),
            serde_json::to_string_pretty(value).expect("JSON values serialise").as_bytes(),
        )
    }
}

/// `runs/<task>-<timestamp>` for `relatent run` without `--out`.
pub fn default_run_path(task: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Path::new("runs").join(format!("{task}-{secs}"))
}
