//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod h5;
pub mod hwf;
pub mod npz;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A config small enough to train in seconds: tiny batches, few steps, short evaluation.
pub const TINY: &str = r#"
seed = 3
tau = 4
[train]
batch_size = 8
warmup_steps = 4
steps = 10
log_every = 2
checkpoint_every = 4
lr = 0.001
[supervised]
labelled_batch = 8
[cycle]
decoder_steps = 2
[rel]
batch_size = 16
finetune_steps = 3
pseudo_labelled = 64
[eval]
relational_samples = 50
max_test_images = 64
disentanglement_points = 90
"#;

/// Writes `text` as `name` in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Metrics lines of a run without their wall-clock seconds: equal iff the losses are.
pub fn losses(metrics: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

/// Parses the JSON file at `path`.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `relatent run --task TASK` on the tiny config into `dir/run`; asserts it succeeded.
pub fn run_tiny(task: &str, dir: &Path) -> (PathBuf, Output) {
    let config = write(dir, "tiny.toml", TINY);
    let run = dir.join("run");
    let args = ["run", "--task", task, "--config", config.to_str().unwrap()];
    let out = relatent(&[&args[..], &["--out", run.to_str().unwrap(), "--quiet"]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (run, out)
}

/// Runs the relatent binary.
pub fn relatent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relatent")).args(args).output().unwrap()
}

/// Asserts a bad-input failure: exit 2 and one line on stderr containing `needle`.
pub fn assert_user_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}
