//! Folder datasets (SPEC §1): a directory holding `factors.csv` — a `file` column (a path
//! relative to the directory, PNG or JPEG, grey or RGB) and one column per factor — and the
//! images. A factor whose values are all integers has its values as classes, in numeric order;
//! any other factor has named classes, ordered as the config lists them or else by first
//! appearance.
//!
//! Every image is decoded once, in parallel, resized to the network's square size and kept as
//! bytes (C·H·W per image); steps render from those bytes, never from the files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use image::ImageDecoder;
use rayon::prelude::*;

use super::images::{model_bytes, open_image};
use super::{Factor, FactorDataset, ImageShape};
use crate::{Error, Result};

/// The label file's name inside the folder.
pub const FACTORS_CSV: &str = "factors.csv";

/// Image sides the networks are built for (k4 s2 p1 convolutions down to 4×4).
pub const SIDES: [usize; 4] = [16, 32, 64, 128];

/// What a folder's images and labels are read with.
#[derive(Clone, Debug, Default)]
pub struct FolderOptions {
    /// For named factors, the order of their classes.
    pub classes: BTreeMap<String, Vec<String>>,
    /// Resize every image to this side (one of [`SIDES`]).
    pub image_size: Option<usize>,
}

/// A factor's classes: their names in class order, and their integer values for a factor whose
/// values are all integers.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderFactor {
    pub name: String,
    pub class_names: Vec<String>,
    pub values: Option<Vec<i64>>,
}

/// The labels of a folder: its factors and every row's image and classes.
#[derive(Clone, Debug)]
pub struct Labels {
    pub factors: Vec<FolderFactor>,
    /// Image paths relative to the folder, in row order.
    pub files: Vec<String>,
    /// Line of `factors.csv` each row was read from (for errors).
    pub lines: Vec<u64>,
    /// Row-major n × factors classes.
    pub classes: Vec<u32>,
}

/// A folder dataset, decoded.
pub struct FolderDataset {
    root: PathBuf,
    labels: Labels,
    factors: Vec<Factor>,
    shape: ImageShape,
    /// n × C·H·W bytes.
    pixels: Vec<u8>,
    /// Width and height of the images in the folder, before resizing.
    pub source_size: (u32, u32),
}

/// What [`scan`] finds without decoding the images: enough to choose a preset.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderScan {
    pub images: usize,
    /// Channels, and the side the images will be resized to.
    pub shape: ImageShape,
}

/// The number of rows, and the shape the images will have, of the folder at `dir` (from its
/// labels and its first image's header).
pub fn scan(dir: &Path, image_size: Option<usize>) -> Result<FolderScan> {
    let labels = read_labels(dir, &BTreeMap::new())?;
    let (width, height, colour) = image_header(dir, &labels, 0)?;
    let side = network_side(width, height, image_size, &dir.join(FACTORS_CSV))?;
    Ok(FolderScan { images: labels.files.len(), shape: [if colour { 3 } else { 1 }, side, side] })
}

/// Whether `path` is a folder dataset (a directory holding `factors.csv`).
pub fn is_folder_dataset(path: &Path) -> bool {
    path.is_dir() && path.join(FACTORS_CSV).is_file()
}

/// Whether data at `path` is read as a folder dataset when no task is named: a directory
/// that is not the HWF release (which holds `expr_*.json` files instead of `factors.csv`).
pub fn is_folder_dataset_candidate(path: &Path) -> bool {
    let hwf = super::hwf_files::SPLIT_FILES.iter().any(|f| path.join(f).is_file());
    path.is_dir() && (is_folder_dataset(path) || !hwf)
}

impl FolderDataset {
    /// Reads the folder at `dir`: its labels, then every image.
    pub fn open(dir: &Path, options: &FolderOptions) -> Result<FolderDataset> {
        let labels = read_labels(dir, &options.classes)?;
        let headers: Vec<(u32, u32, bool)> = (0..labels.files.len())
            .into_par_iter()
            .map(|i| image_header(dir, &labels, i))
            .collect::<Result<_>>()?;
        let (width, height, _) = headers[0];
        if options.image_size.is_none()
            && let Some(odd) = headers.iter().position(|h| (h.0, h.1) != (width, height))
        {
            return Err(Error::file(
                dir.join(&labels.files[odd]),
                format!(
                    "is {}×{} but {} is {width}×{height}; set [folder] image_size to resize every image",
                    headers[odd].0, headers[odd].1, labels.files[0]
                ),
            ));
        }
        let channels = if headers.iter().any(|h| h.2) { 3 } else { 1 };
        let side = network_side(width, height, options.image_size, &dir.join(FACTORS_CSV))?;
        let shape = [channels, side, side];
        let decoded: Vec<Vec<u8>> = labels
            .files
            .par_iter()
            .map(|file| open_image(&dir.join(file)).map(|image| model_bytes(&image, shape)))
            .collect::<Result<_>>()?;
        let factors = labels
            .factors
            .iter()
            .map(|f| Factor { name: f.name.clone().into(), size: f.class_names.len() })
            .collect();
        Ok(FolderDataset {
            root: dir.to_path_buf(),
            labels,
            factors,
            shape,
            pixels: decoded.concat(),
            source_size: (width, height),
        })
    }

    /// The factors' classes.
    pub fn folder_factors(&self) -> &[FolderFactor] {
        &self.labels.factors
    }

    /// The image file of row `index`, relative to the folder.
    pub fn file(&self, index: usize) -> &str {
        &self.labels.files[index]
    }
}

impl FactorDataset for FolderDataset {
    fn describe(&self) -> String {
        format!("folder {} ({} images)", self.root.display(), self.labels.files.len())
    }
    fn factors(&self) -> &[Factor] {
        &self.factors
    }
    fn image_shape(&self) -> ImageShape {
        self.shape
    }
    fn len(&self) -> usize {
        self.labels.files.len()
    }
    fn factor_classes(&self, index: usize) -> Vec<usize> {
        let k = self.factors.len();
        self.labels.classes[index * k..(index + 1) * k].iter().map(|&c| c as usize).collect()
    }
    fn file_name(&self, index: usize) -> Option<String> {
        Some(self.labels.files[index].clone())
    }
    fn render(&self, index: usize, out: &mut [f32]) {
        let len = self.image_len();
        for (o, &b) in out.iter_mut().zip(&self.pixels[index * len..(index + 1) * len]) {
            *o = b as f32 / 255.0;
        }
    }
}

/// The side of the square images the networks take: `image_size` when given (it must be one
/// of [`SIDES`]), else the side in [`SIDES`] nearest the images' longer side.
fn network_side(width: u32, height: u32, image_size: Option<usize>, csv: &Path) -> Result<usize> {
    match image_size {
        Some(side) if SIDES.contains(&side) => Ok(side),
        Some(side) => Err(Error::config(
            "folder.image_size",
            format!("must be one of {SIDES:?}, the sides the networks are built for (got {side})"),
        )),
        None => {
            let longer = width.max(height) as usize;
            if longer < 8 {
                return Err(Error::file(
                    csv,
                    format!("its images are {width}×{height}; at least 8 pixels are needed"),
                ));
            }
            Ok(*SIDES.iter().min_by_key(|&&s| (s.abs_diff(longer), s)).expect("sides are listed"))
        }
    }
}

/// Width, height and whether it has colour, of row `row`'s image (read from its header only).
fn image_header(dir: &Path, labels: &Labels, row: usize) -> Result<(u32, u32, bool)> {
    let file = &labels.files[row];
    let path = dir.join(file);
    if !path.is_file() {
        return Err(Error::file(
            dir.join(FACTORS_CSV),
            format!("line {}: image '{file}' is missing", labels.lines[row]),
        ));
    }
    let unreadable =
        |e: &dyn std::fmt::Display| Error::file(&path, format!("not a readable image: {e}"));
    let decoder = image::ImageReader::open(&path)
        .map_err(|e| Error::file(&path, e))?
        .with_guessed_format()
        .map_err(|e| Error::file(&path, e))?
        .into_decoder()
        .map_err(|e| unreadable(&e))?;
    let (width, height) = decoder.dimensions();
    Ok((width, height, decoder.color_type().has_color()))
}

/// Reads and checks `dir/factors.csv`.
pub fn read_labels(dir: &Path, class_order: &BTreeMap<String, Vec<String>>) -> Result<Labels> {
    let path = dir.join(FACTORS_CSV);
    if !dir.is_dir() {
        return Err(Error::file(dir, "no such folder"));
    }
    let bad = |message: String| Error::file(&path, message);
    let file = std::fs::File::open(&path).map_err(|e| {
        bad(format!("cannot open ({e}); a folder dataset holds factors.csv and its images"))
    })?;
    let mut reader =
        csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(file);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad(format!("unreadable header: {e}")))?
        .iter()
        .map(String::from)
        .collect();
    if header.first().map(String::as_str) != Some("file") {
        return Err(bad(format!(
            "the first column must be 'file' (found '{}')",
            header.first().map(String::as_str).unwrap_or("")
        )));
    }
    let names = &header[1..];
    if names.is_empty() {
        return Err(bad("has no factor columns after 'file'".into()));
    }
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() || names[..i].contains(name) {
            return Err(bad(format!("factor column {} is empty or repeated ('{name}')", i + 2)));
        }
    }
    if let Some(unknown) = class_order.keys().find(|k| !names.contains(k)) {
        return Err(Error::config(
            format!("folder.classes.{unknown}"),
            format!("'{unknown}' is not a column of {}", path.display()),
        ));
    }
    let (mut files, mut lines, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record.map_err(|e| bad(format!("unreadable: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            return Err(bad(format!(
                "line {line}: {} fields, expected {}",
                record.len(),
                header.len()
            )));
        }
        if record[0].is_empty() {
            return Err(bad(format!("line {line}: the file is empty")));
        }
        files.push(record[0].to_string());
        lines.push(line);
        raw.push(record.iter().skip(1).map(String::from).collect::<Vec<String>>());
    }
    if files.is_empty() {
        return Err(bad("has no image rows".into()));
    }
    let mut factors = Vec::with_capacity(names.len());
    let mut classes = vec![0u32; files.len() * names.len()];
    for (f, name) in names.iter().enumerate() {
        let column: Vec<&str> = raw.iter().map(|row| row[f].as_str()).collect();
        if let Some(empty) = column.iter().position(|v| v.is_empty()) {
            return Err(bad(format!("line {}: '{name}' is empty", lines[empty])));
        }
        let (factor, of) = factor_classes(name, &column, class_order.get(name))
            .map_err(|(row, message)| bad(format!("line {}: {message}", lines[row])))?;
        for (row, class) in of.into_iter().enumerate() {
            classes[row * names.len() + f] = class;
        }
        factors.push(factor);
    }
    Ok(Labels { factors, files, lines, classes })
}

/// The classes of a factor column and every row's class; an error names the row.
fn factor_classes(
    name: &str,
    column: &[&str],
    order: Option<&Vec<String>>,
) -> std::result::Result<(FolderFactor, Vec<u32>), (usize, String)> {
    let numbers: Option<Vec<i64>> = column.iter().map(|v| v.parse::<i64>().ok()).collect();
    let (class_names, values): (Vec<String>, Option<Vec<i64>>) = match (order, numbers) {
        (Some(order), _) => (order.clone(), None),
        (None, Some(numbers)) => {
            let mut distinct = numbers;
            distinct.sort_unstable();
            distinct.dedup();
            (distinct.iter().map(|v| v.to_string()).collect(), Some(distinct))
        }
        (None, None) => {
            let mut seen = Vec::new();
            for v in column {
                if !seen.iter().any(|s: &String| s == v) {
                    seen.push(v.to_string());
                }
            }
            (seen, None)
        }
    };
    let index: HashMap<&str, u32> =
        class_names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u32)).collect();
    let lookup = |v: &str| match &values {
        Some(values) => {
            v.parse::<i64>().ok().and_then(|n| values.binary_search(&n).ok()).map(|i| i as u32)
        }
        None => index.get(v).copied(),
    };
    let of = column
        .iter()
        .enumerate()
        .map(|(row, v)| {
            lookup(v).ok_or_else(|| {
                (
                    row,
                    format!("'{name}' = '{v}' is not among the classes listed in [folder.classes]"),
                )
            })
        })
        .collect::<std::result::Result<Vec<u32>, _>>()?;
    Ok((FolderFactor { name: name.to_string(), class_names, values }, of))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_of(csv: &str, order: &[(&str, &[&str])]) -> Result<Labels> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FACTORS_CSV), csv).unwrap();
        let order = order
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        read_labels(dir.path(), &order)
    }

    #[test]
    fn integer_factors_are_ordered_numerically_and_names_by_first_appearance() {
        let labels =
            labels_of("file,size,kind\na.png,10,cat\nb.png,2,dog\nc.png,10,cat\n", &[]).unwrap();
        assert_eq!(
            labels.factors[0],
            FolderFactor {
                name: "size".into(),
                class_names: vec!["2".into(), "10".into()],
                values: Some(vec![2, 10])
            }
        );
        assert_eq!(labels.factors[1].class_names, ["cat", "dog"]);
        assert_eq!(labels.classes, [1, 0, 0, 1, 1, 0]);
        assert_eq!(labels.lines, [2, 3, 4]);
    }

    #[test]
    fn csv_quotes_bom_blank_space_and_a_missing_trailing_newline_are_read() {
        let text = "\u{feff}file,\"kind\"\n\"a, b.png\", big \nc.png,\"small\"";
        let labels = labels_of(text, &[]).unwrap();
        assert_eq!(labels.files, ["a, b.png", "c.png"]);
        assert_eq!(labels.factors[0].name, "kind");
        assert_eq!(labels.factors[0].class_names, ["big", "small"]);
    }

    #[test]
    fn listed_class_orders_win_and_unlisted_values_are_errors() {
        let csv = "file,size\na.png,large\nb.png,small\n";
        let labels = labels_of(csv, &[("size", &["small", "medium", "large"])]).unwrap();
        assert_eq!(labels.factors[0].class_names, ["small", "medium", "large"]);
        assert_eq!(labels.classes, [2, 0]);
        let err = labels_of(csv, &[("size", &["small"])]).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("'size' = 'large'"), "{err}");
        let err = labels_of(csv, &[("colour", &["red"])]).unwrap_err().to_string();
        assert!(err.contains("folder.classes.colour"), "{err}");
    }

    #[test]
    fn malformed_label_files_name_the_line() {
        let cases = [
            ("", "the first column must be 'file'"),
            ("file\n", "no factor columns"),
            ("file,a\n", "no image rows"),
            ("image,a\nx.png,1\n", "the first column must be 'file' (found 'image')"),
            ("file,a,a\nx.png,1,2\n", "repeated ('a')"),
            ("file,a,b\nx.png,1,2\ny.png,3\n", "line 3: 2 fields, expected 3"),
            ("file,a\nx.png,\n", "line 2: 'a' is empty"),
            ("file,a\n,4\n", "line 2: the file is empty"),
        ];
        for (csv, needle) in cases {
            let err = labels_of(csv, &[]).unwrap_err().to_string();
            assert!(err.contains("factors.csv") && err.contains(needle), "{csv:?}: {err}");
        }
    }

    #[test]
    fn the_network_side_is_the_nearest_built_one() {
        let csv = Path::new("factors.csv");
        let side = |w, h| network_side(w, h, None, csv).unwrap();
        assert_eq!(
            (side(28, 28), side(45, 45), side(64, 64), side(100, 60), side(8, 8)),
            (32, 32, 64, 128, 16)
        );
        assert_eq!(network_side(28, 28, Some(64), csv).unwrap(), 64);
        assert!(
            network_side(28, 28, Some(50), csv)
                .unwrap_err()
                .to_string()
                .contains("folder.image_size")
        );
    }
}
