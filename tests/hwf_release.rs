//! The official HWF release (NGS layout) through the command line: inspect, export, and a
//! run on it, from a small release the test writes with rendered symbols.

mod common;

use std::path::Path;

use common::{TINY, assert_user_error, relatent, write};
use relatent::data::FactorDataset;
use relatent::data::hwf::{HwfRenderer, SYMBOLS};

/// Images per symbol in the test release.
const PER_SYMBOL: usize = 12;

/// Writes a release: rendered symbols as dark-on-white JPEGs in per-symbol folders, and
/// formulas "a op b" over them (plus one with a division sign, which is skipped).
fn write_release(dir: &Path) {
    let renderer = HwfRenderer;
    let folder = |s: usize| match SYMBOLS[s] {
        "×" => "times".to_string(),
        other => other.to_string(),
    };
    let mut paths = vec![Vec::new(); SYMBOLS.len()];
    let mut px = vec![0.0; 45 * 45];
    for (s, symbol_paths) in paths.iter_mut().enumerate() {
        std::fs::create_dir_all(dir.join("Handwritten_Math_Symbols").join(folder(s))).unwrap();
        for k in 0..PER_SYMBOL {
            renderer.render(s * 1000 + k, &mut px);
            let img = image::GrayImage::from_fn(45, 45, |x, y| {
                image::Luma([255 - (px[(y * 45 + x) as usize] * 255.0) as u8])
            });
            let rel = format!("{}/{s}_{k}.jpg", folder(s));
            img.save(dir.join("Handwritten_Math_Symbols").join(&rel)).unwrap();
            symbol_paths.push(rel);
        }
    }
    std::fs::create_dir_all(dir.join("Handwritten_Math_Symbols/div")).unwrap();
    image::GrayImage::from_pixel(45, 45, image::Luma([255]))
        .save(dir.join("Handwritten_Math_Symbols/div/d.jpg"))
        .unwrap();
    let ops = ['+', '-', '*'];
    let formulas: Vec<serde_json::Value> = (0..PER_SYMBOL)
        .flat_map(|k| (0..10).map(move |a| (k, a)))
        .map(|(k, a)| {
            let (b, op) = ((a + 3) % 10, (a + k) % 3);
            let expr = format!("{a}{}{b}", ops[op]);
            serde_json::json!({"expr": expr, "img_paths": [paths[a][k], paths[10 + op][k], paths[b][(k + 1) % PER_SYMBOL]]})
        })
        .chain(std::iter::once(serde_json::json!({"expr": "8/4", "img_paths": [paths[8][0], "div/d.jpg", paths[4][0]]})))
        .collect();
    let (train, test) = formulas.split_at(formulas.len() * 4 / 5);
    std::fs::write(dir.join("expr_train.json"), serde_json::to_string(train).unwrap()).unwrap();
    std::fs::write(dir.join("expr_test.json"), serde_json::to_string(test).unwrap()).unwrap();
}

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
