//! Writes a small HWF release in the NGS layout, from rendered symbols.

use std::path::Path;

use relatent::data::FactorDataset;
use relatent::data::hwf::{HwfRenderer, SYMBOLS};

/// Images per symbol in the test release.
pub const PER_SYMBOL: usize = 12;

/// Writes a release: rendered symbols as dark-on-white JPEGs in per-symbol folders, and
/// formulas "a op b" over them (plus one with a division sign, which is skipped).
pub fn write_release(dir: &Path) {
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
