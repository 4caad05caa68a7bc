//! Guarded training: a diverging run stops with its last good checkpoint, Ctrl-C checkpoints
//! and stops, and runs killed at random moments resume to the same losses and eval.json.

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::{TINY, losses, relatent, write};
use rand::{Rng, SeedableRng};

/// A config long enough to be interrupted: the tiny one with more, checkpointed steps.
fn slow_config(dir: &std::path::Path) -> std::path::PathBuf {
    let text = TINY
        .replace("steps = 10", "steps = 40")
        .replace("checkpoint_every = 4", "checkpoint_every = 3")
        .replace("finetune_steps = 3", "finetune_steps = 20");
    write(dir, "slow.toml", &text)
}

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_relatent"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The run's losses and eval.json, without wall-clock seconds.
fn outcome(run: &std::path::Path) -> (Vec<serde_json::Value>, serde_json::Value) {
    let out = relatent(&["eval", run.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eval["train"].as_object_mut().unwrap().remove("seconds");
    (losses(&run.join("metrics.jsonl")), eval)
}

#[test]
fn killed_at_random_moments_a_run_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let config = slow_config(tmp.path());
    let whole = tmp.path().join("whole");
    let out = relatent(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        whole.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = outcome(&whole);

    let killed = tmp.path().join("killed");
    let (config, killed_str) = (config.to_str().unwrap(), killed.to_str().unwrap());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut child = spawn(&["train", "--config", config, "--out", killed_str, "--quiet"]);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
        let _ = child.kill();
        let _ = child.wait();
        child = spawn(&["train", "--out", killed_str, "--resume", "--quiet"]);
    }
    assert!(child.wait().unwrap().success(), "the last resume finishes the run");
    assert_eq!(outcome(&killed), expected);
}

#[test]
fn ctrl_c_checkpoints_and_the_run_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = slow_config(tmp.path());
    let run = tmp.path().join("run");
    let mut child = spawn(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    while !run.join("checkpoint.bin").exists() {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill sends a signal to the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted run exits 130");
    let saved: serde_json::Value = serde_json::from_slice(&relatent_state(&run)).unwrap();
    assert!(saved["step"].as_u64().unwrap() >= 3, "{saved}");
    let out = relatent(&["train", "--out", run.to_str().unwrap(), "--resume", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let whole = tmp.path().join("whole");
    let out = relatent(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        whole.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success());
    assert_eq!(outcome(&run), outcome(&whole));
}

/// The `state` section of the run's checkpoint.
fn relatent_state(run: &std::path::Path) -> Vec<u8> {
    let checkpoint =
        relatent::train::checkpoint::Checkpoint::read(&run.join("checkpoint.bin")).unwrap();
    checkpoint.section("state").unwrap().to_vec()
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_keeps_a_finite_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write(tmp.path(), "wild.toml", &TINY.replace("lr = 0.001", "lr = 1e30"));
    let run = tmp.path().join("run");
    let out = relatent(&[
        "train",
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("training diverged at step") && stderr.contains("is kept"), "{stderr}");
    if run.join("checkpoint.bin").exists() {
        relatent::train::checkpoint::Checkpoint::read(&run.join("checkpoint.bin")).unwrap();
    }
}
