//! `relatent metrics` on .npy files: known scores, and clear errors on bad arrays.

mod common;

use std::path::{Path, PathBuf};

use common::npz::npy_bytes;
use common::{assert_user_error, relatent};

fn write_npy(dir: &Path, name: &str, descr: &str, shape: &[usize], data: Vec<u8>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, npy_bytes(descr, shape, &data)).unwrap();
    path
}

/// Two factors (3 and 4 values, every combination 25 times) and codes that copy them.
fn aligned(dir: &Path) -> (PathBuf, PathBuf) {
    let rows: Vec<(i64, i64)> = (0..300).map(|i| ((i % 3) as i64, ((i / 3) % 4) as i64)).collect();
    let factors: Vec<u8> =
        rows.iter().flat_map(|&(a, b)| [a, b]).flat_map(|v| v.to_le_bytes()).collect();
    let codes: Vec<u8> = rows
        .iter()
        .flat_map(|&(a, b)| [a as f32, b as f32, 0.5])
        .flat_map(|v| v.to_le_bytes())
        .collect();
    (
        write_npy(dir, "codes.npy", "<f4", &[300, 3], codes),
        write_npy(dir, "factors.npy", "<i8", &[300, 2], factors),
    )
}

#[test]
fn aligned_codes_score_perfectly() {
    let tmp = tempfile::tempdir().unwrap();
    let (codes, factors) = aligned(tmp.path());
    let out = relatent(&[
        "metrics",
        "--codes",
        codes.to_str().unwrap(),
        "--factors",
        factors.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let get = |v: &serde_json::Value| v.as_f64().unwrap();
    assert!(get(&json["mig"]) > 0.999, "the 200 fitting rows are not exactly balanced: {json}");
    assert!((get(&json["dci"]["informativeness"]) - 1.0).abs() < 1e-9, "{json}");
    assert!(
        get(&json["dci"]["disentanglement"]) > 0.99 && get(&json["dci"]["completeness"]) > 0.99,
        "{json}"
    );
    assert!(get(&json["sap"]) > 0.3, "each factor has one predictive dimension: {json}");
    let text = relatent(&[
        "metrics",
        "--codes",
        codes.to_str().unwrap(),
        "--factors",
        factors.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("300 rows (200 fit, 100 test)"));
}

#[test]
fn bad_arrays_are_named_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (codes, factors) = aligned(tmp.path());
    let (c, f) = (codes.to_str().unwrap(), factors.to_str().unwrap());
    let short = write_npy(
        tmp.path(),
        "short.npy",
        "<i8",
        &[2, 1],
        [0i64, 1].iter().flat_map(|v| v.to_le_bytes()).collect(),
    );
    assert_user_error(
        &relatent(&["metrics", "--codes", c, "--factors", short.to_str().unwrap()]),
        "rows",
    );
    let ints = write_npy(tmp.path(), "int_codes.npy", "<i4", &[300, 1], vec![0; 1200]);
    assert_user_error(
        &relatent(&["metrics", "--codes", ints.to_str().unwrap(), "--factors", f]),
        "float32 or float64",
    );
    let mut nan = vec![0u8; 300 * 4];
    nan[40..44].copy_from_slice(&f32::NAN.to_le_bytes());
    let nan = write_npy(tmp.path(), "nan.npy", "<f4", &[300, 1], nan);
    assert_user_error(
        &relatent(&["metrics", "--codes", nan.to_str().unwrap(), "--factors", f]),
        "row 10 holds a non-finite value",
    );
    let constant = write_npy(tmp.path(), "constant.npy", "<i8", &[300, 1], vec![0; 2400]);
    assert_user_error(
        &relatent(&["metrics", "--codes", c, "--factors", constant.to_str().unwrap()]),
        "single value",
    );
    let junk = common::write(tmp.path(), "junk.npy", "not numpy");
    assert_user_error(
        &relatent(&["metrics", "--codes", junk.to_str().unwrap(), "--factors", f]),
        "junk.npy",
    );
    assert_user_error(
        &relatent(&["metrics", "--codes", c, "--factors", f, "--train", "300"]),
        "--train",
    );
}
