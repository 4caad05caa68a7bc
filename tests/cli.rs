//! The command line on bad input: exit 2, one clear line, nothing left behind.

mod common;

use common::{assert_user_error, relatent, write};

#[test]
fn missing_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let out = relatent(&["train", "--config", "nope.toml", "--out", out_dir.to_str().unwrap()]);
    assert_user_error(&out, "nope.toml");
    assert!(!out_dir.exists());
}

#[test]
fn invalid_config_values_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    for (text, key) in [
        ("[train]\nlr = -1.0", "train.lr"),
        ("tau = 1", "tau"),
        ("[train]\nbatch_size = 0", "train.batch_size"),
        ("colour = 2", "colour"),
    ] {
        let cfg = write(tmp.path(), "bad.toml", text);
        let out = relatent(&[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert_user_error(&out, key);
        assert!(!out_dir.exists());
    }
}

#[test]
fn unknown_task_and_relation() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("run");
    let out = relatent(&["run", "--task", "mnist", "--out", out_dir.to_str().unwrap()]);
    assert_user_error(&out, "unknown task 'mnist'");
    let out = relatent(&["run", "--relations", "teleport", "--out", out_dir.to_str().unwrap()]);
    assert_user_error(&out, "unknown relation 'teleport'");
    // HWF's relations cannot mix single results with two-output variants in one ReL.
    let out = relatent(&[
        "run",
        "--task",
        "hwf",
        "--relations",
        "sum,sum_tens_units",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_user_error(&out, "cannot share one relational learner");
    assert!(!out_dir.exists());
    let images = tmp.path().join("hwf");
    let out =
        relatent(&["data", "render", "hwf", "--out", images.to_str().unwrap(), "--count", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = std::fs::read_to_string(images.join("factors.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("file,symbol,style"));
    assert_eq!(image::open(images.join("000000.png")).unwrap().width(), 45);
}

#[test]
fn corrupt_and_missing_data_files() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = write(tmp.path(), "bad.npz", "not a zip at all");
    let out = relatent(&["data", "inspect", bad.to_str().unwrap()]);
    assert_user_error(&out, "bad.npz");
    let out_dir = tmp.path().join("export");
    let out =
        relatent(&["data", "export", bad.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_user_error(&out, "bad.npz");
    let run_dir = tmp.path().join("run");
    let out = relatent(&["run", "--data", "missing.npz", "--out", run_dir.to_str().unwrap()]);
    assert_user_error(&out, "missing.npz");
    assert!(!out_dir.exists() && !run_dir.exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "nothing but the input file");
}

#[test]
fn eval_of_a_directory_without_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = relatent(&["eval", tmp.path().join("none").to_str().unwrap()]);
    assert_user_error(&out, "none");
    // A bad flag value is a usage error: clap's message, whose first line names the flag.
    let out = relatent(&[
        "eval",
        tmp.path().join("none").to_str().unwrap(),
        "--posterior-temperature",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .lines()
            .next()
            .is_some_and(|l| l.contains("--posterior-temperature") && l.contains("positive")),
        "{stderr}"
    );
}

#[test]
fn render_writes_images_and_factors() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("imgs");
    let out = relatent(&[
        "data",
        "render",
        "dsprites",
        "--out",
        out_dir.to_str().unwrap(),
        "--count",
        "5",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = std::fs::read_to_string(out_dir.join("factors.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6);
    assert!(out_dir.join("000004.png").exists());
}

#[test]
fn bench_reports_every_throughput_as_json() {
    let out = relatent(&["bench", "--batch", "4", "--repeats", "1", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "train_images_per_s",
        "train_default_images_per_s",
        "encode_images_per_s",
        "render_images_per_s",
        "rel_updates_per_s",
        "eval_images_per_s",
        "metrics_seconds",
        "peak_memory_mib",
    ] {
        assert!(json[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {json}");
    }
    assert_eq!(json["batch"], 4);
    assert_user_error(&relatent(&["bench", "--batch", "0"]), "--batch");
    assert_user_error(&relatent(&["bench", "--task", "mnist"]), "unknown task 'mnist'");
}
