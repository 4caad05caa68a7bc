//! The official HWF release (NGS layout) through the command line: inspect, export, and a
//! run on it, from a small release the test writes with rendered symbols.

mod common;

use common::hwf::{PER_SYMBOL, write_release};
use common::{TINY, assert_user_error, relatent, write};

#[test]
fn inspect_export_and_run_on_the_release() {
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("HWF");
    write_release(&release);
    let out = relatent(&["data", "inspect", release.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["format"], "hwf-ngs");
    // Every digit and operator image appears in some formula.
    assert_eq!(summary["factors"]["symbol"], 13);
    assert_eq!(summary["skipped_symbols"], 1);
    assert_eq!(summary["image_shape"], serde_json::json!([1, 45, 45]));
    let images = summary["images"].as_u64().unwrap();
    assert!(images > 10 * PER_SYMBOL as u64 && images <= 13 * PER_SYMBOL as u64, "{images}");

    let exported = tmp.path().join("export");
    let out = relatent(&[
        "data",
        "export",
        release.to_str().unwrap(),
        "--out",
        exported.to_str().unwrap(),
        "--count",
        "3",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = std::fs::read_to_string(exported.join("factors.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(
        csv.lines().nth(1).unwrap().starts_with("000000.png,0,"),
        "the first symbol of the first formula is a 0: {csv}"
    );

    let config = write(tmp.path(), "tiny.toml", &TINY.replace("tau = 4", "tau = 3"));
    let run = tmp.path().join("run");
    let out = relatent(&[
        "run",
        "--task",
        "hwf",
        "--data",
        release.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("official release"), "the report names the data");
}

#[test]
fn a_folder_that_is_not_a_release_is_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = relatent(&["data", "inspect", tmp.path().to_str().unwrap()]);
    assert_user_error(&out, "expr_train.json");
    let run = tmp.path().join("run");
    let out = relatent(&[
        "run",
        "--task",
        "hwf",
        "--data",
        tmp.path().join("nope").to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    assert_user_error(&out, "nope");
    assert!(!run.exists());
}
