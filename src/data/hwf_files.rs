//! The official HWF release (Li et al. 2020, the NGS layout): `expr_{train,val,test}.json`, each
//! a list of formulas with `expr` (the formula as text, one character per symbol) and
//! `img_paths` (one image per symbol, relative to `Handwritten_Math_Symbols/`). A symbol's class
//! is its character in `expr`: digits, `+`, `-`, and `*` for ×; other symbols (`/`) are not
//! among the task's 13 classes and are skipped and counted. An image used by several formulas
//! is kept once, so no image can land in two splits. The 45×45 greyscale images (a few MB in
//! all) are decoded once when the release is opened; the release draws dark ink on white, so an
//! image whose border is mostly light is inverted, making ink 1 as in the renderer.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;

use super::hwf::SIDE;
use super::{Factor, FactorDataset, ImageShape};
use crate::{Error, Result};

/// The release's formula files, in the order their images are numbered.
pub const SPLIT_FILES: [&str; 3] = ["expr_train.json", "expr_val.json", "expr_test.json"];
/// Folder of the symbol images, beside the formula files.
pub const IMAGE_DIR: &str = "Handwritten_Math_Symbols";

#[derive(Deserialize)]
struct Formula {
    expr: String,
    img_paths: Vec<String>,
}

/// Our class of a formula character, if it is one of the task's symbols.
pub fn class_of_symbol(symbol: char) -> Option<usize> {
    match symbol {
        '0'..='9' => symbol.to_digit(10).map(|d| d as usize),
        '+' => Some(10),
        '-' => Some(11),
        '*' | '×' | 'x' => Some(12),
        _ => None,
    }
}

/// The symbol images of an HWF release, in memory.
pub struct HwfFiles {
    root: PathBuf,
    factors: [Factor; 2],
    /// 45·45 bytes per image, ink 255.
    pixels: Vec<u8>,
    symbols: Vec<usize>,
    /// Symbols outside the task's classes, skipped.
    pub skipped: usize,
}

impl HwfFiles {
    /// Opens the release in `path` (its folder, or one of its `expr_*.json` files).
    pub fn open(path: &Path) -> Result<HwfFiles> {
        let root = if path.is_file() {
            path.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            path.to_path_buf()
        };
        if !root.is_dir() {
            return Err(Error::file(
                path,
                "no such folder (expected the HWF release: expr_train.json, … and Handwritten_Math_Symbols/)",
            ));
        }
        let mut seen = HashSet::new();
        let (mut paths, mut symbols, mut skipped, mut found) = (Vec::new(), Vec::new(), 0, 0);
        for name in SPLIT_FILES {
            let file = root.join(name);
            if !file.exists() {
                continue;
            }
            found += 1;
            for (path, symbol) in read_formulas(&file)? {
                match class_of_symbol(symbol) {
                    Some(class) if seen.insert(path.clone()) => {
                        paths.push(path);
                        symbols.push(class);
                    }
                    Some(_) => {}
                    None => skipped += 1,
                }
            }
        }
        if found == 0 {
            return Err(Error::file(
                &root,
                format!("holds none of {} (expected the HWF release)", SPLIT_FILES.join(", ")),
            ));
        }
        if paths.is_empty() {
            return Err(Error::file(&root, "its formulas hold no digit or +, -, × symbol"));
        }
        let images = root.join(IMAGE_DIR);
        let decoded: Vec<Vec<u8>> =
            paths.par_iter().map(|p| read_symbol_image(&images.join(p))).collect::<Result<_>>()?;
        let factors = [Factor::new("symbol", 13), Factor::new("image", paths.len())];
        Ok(HwfFiles { root, factors, pixels: decoded.concat(), symbols, skipped })
    }

    /// The first `count` images only.
    pub fn first(mut self, count: usize) -> HwfFiles {
        let count = count.min(self.symbols.len());
        self.symbols.truncate(count);
        self.pixels.truncate(count * SIDE * SIDE);
        self.factors[1].size = count;
        self
    }
}

/// (image path, symbol character) of every symbol of every formula in `file`.
fn read_formulas(file: &Path) -> Result<Vec<(String, char)>> {
    let text = std::fs::read_to_string(file).map_err(|e| Error::file(file, e))?;
    let formulas: Vec<Formula> = serde_json::from_str(&text).map_err(|e| {
        Error::file(file, format!("not a list of formulas with 'expr' and 'img_paths' ({e})"))
    })?;
    let mut out = Vec::new();
    for (i, f) in formulas.into_iter().enumerate() {
        let chars: Vec<char> = f.expr.chars().collect();
        if chars.len() != f.img_paths.len() {
            return Err(Error::file(
                file,
                format!(
                    "formula {i} ('{}') has {} symbols but {} img_paths",
                    f.expr,
                    chars.len(),
                    f.img_paths.len()
                ),
            ));
        }
        out.extend(f.img_paths.into_iter().zip(chars));
    }
    Ok(out)
}

/// One symbol image as 45·45 bytes with ink 255 (resized if the file is another size).
fn read_symbol_image(path: &Path) -> Result<Vec<u8>> {
    let image = crate::data::images::open_image(path)?;
    let side = SIDE as u32;
    let mut grey =
        image.resize_exact(side, side, image::imageops::FilterType::Triangle).to_luma8().into_raw();
    let border: Vec<u8> = (0..SIDE * SIDE)
        .filter(|i| [0, SIDE - 1].contains(&(i / SIDE)) || [0, SIDE - 1].contains(&(i % SIDE)))
        .map(|i| grey[i])
        .collect();
    if border.iter().map(|&v| f64::from(v)).sum::<f64>() / border.len() as f64 > 127.5 {
        grey.iter_mut().for_each(|v| *v = 255 - *v);
    }
    Ok(grey)
}

impl FactorDataset for HwfFiles {
    fn describe(&self) -> String {
        format!(
            "hwf (official release at {}; {} symbols outside the 13 classes skipped)",
            self.root.display(),
            self.skipped
        )
    }
    fn factors(&self) -> &[Factor] {
        &self.factors
    }
    fn image_shape(&self) -> ImageShape {
        [1, SIDE, SIDE]
    }
    fn len(&self) -> usize {
        self.symbols.len()
    }
    fn factor_classes(&self, index: usize) -> Vec<usize> {
        vec![self.symbols[index], index]
    }
    fn render(&self, index: usize, out: &mut [f32]) {
        let n = SIDE * SIDE;
        for (o, &v) in out.iter_mut().zip(&self.pixels[index * n..(index + 1) * n]) {
            *o = f32::from(v) / 255.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A release in the official layout: dark strokes on white JPEGs in symbol folders.
    fn write_release(dir: &Path) {
        let images = dir.join(IMAGE_DIR);
        for (folder, name, bar) in [
            ("3", "a.jpg", true),
            ("+", "b.jpg", false),
            ("times", "c.jpg", true),
            ("div", "d.jpg", false),
            ("7", "e.jpg", false),
        ] {
            std::fs::create_dir_all(images.join(folder)).unwrap();
            let img = image::GrayImage::from_fn(45, 45, |x, y| {
                let on = if bar {
                    (20..25).contains(&x) && (5..40).contains(&y)
                } else {
                    (5..40).contains(&x) && (20..25).contains(&y)
                };
                image::Luma([if on { 0 } else { 255 }])
            });
            img.save(images.join(folder).join(name)).unwrap();
        }
        let train = r#"[{"id": 1, "expr": "3+7", "img_paths": ["3/a.jpg", "+/b.jpg", "7/e.jpg"], "res": 10},
                        {"id": 2, "expr": "3*7/3", "img_paths": ["3/a.jpg", "times/c.jpg", "7/e.jpg", "div/d.jpg", "3/a.jpg"], "res": 7}]"#;
        std::fs::write(dir.join("expr_train.json"), train).unwrap();
        std::fs::write(dir.join("expr_test.json"), r#"[{"expr": "7", "img_paths": ["7/e.jpg"]}]"#)
            .unwrap();
    }

    #[test]
    fn reads_the_release_layout_mapping_symbols_and_skipping_division() {
        let dir = tempfile::tempdir().unwrap();
        write_release(dir.path());
        let files = HwfFiles::open(dir.path()).unwrap();
        assert_eq!(files.len(), 4, "3, +, 7 and × once each");
        assert_eq!(files.skipped, 1, "the division sign");
        let symbols: Vec<usize> = (0..4).map(|i| files.factor_classes(i)[0]).collect();
        assert_eq!(symbols, [3, 10, 7, 12]);
        let mut px = vec![0.0; 45 * 45];
        files.render(0, &mut px);
        assert!(px[22 * 45 + 22] > 0.8, "ink is 1 after inverting the white background");
        assert!(px[0] < 0.2);
        assert_eq!(
            HwfFiles::open(&dir.path().join("expr_test.json")).unwrap().len(),
            4,
            "a formula file opens its release"
        );
    }

    #[test]
    fn bad_releases_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let err = HwfFiles::open(dir.path()).err().expect("an error").to_string();
        assert!(err.contains("expr_train.json"), "{err}");
        write_release(dir.path());
        std::fs::write(
            dir.path().join("expr_val.json"),
            r#"[{"expr": "12", "img_paths": ["1/x.jpg"]}]"#,
        )
        .unwrap();
        let err = HwfFiles::open(dir.path()).err().expect("an error").to_string();
        assert!(
            err.contains("expr_val.json") && err.contains("2 symbols but 1 img_paths"),
            "{err}"
        );
        std::fs::write(
            dir.path().join("expr_val.json"),
            r#"[{"expr": "1", "img_paths": ["1/missing.jpg"]}]"#,
        )
        .unwrap();
        let err = HwfFiles::open(dir.path()).err().expect("an error").to_string();
        assert!(err.contains("missing.jpg"), "{err}");
        std::fs::write(dir.path().join("expr_val.json"), "{not json").unwrap();
        assert!(
            HwfFiles::open(dir.path())
                .err()
                .expect("an error")
                .to_string()
                .contains("not a list of formulas")
        );
    }
}
