//! Recognising official dataset files and describing them (`relatent data inspect`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::FactorDataset;
use super::dsprites::{DspritesNpz, FACTORS};
use super::hwf_files::HwfFiles;
use super::npz::NpzArchive;
use super::shapes3d;
use super::shapes3d_h5::Shapes3dH5;
use crate::{Error, Result};

/// What `data inspect` prints (its JSON keys are a contract).
#[derive(Clone, Debug, Serialize)]
pub struct FileSummary {
    pub format: String,
    pub images: usize,
    pub image_shape: Vec<usize>,
    /// Factor name → number of distinct classes found in the file.
    pub factors: BTreeMap<String, usize>,
    /// Symbols outside the task's classes, not counted in `images` (HWF only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_symbols: Option<usize>,
    /// A folder dataset's task: its classes, components and images per component.
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub folder: Option<FolderSummary>,
}

/// What `data inspect` adds for a folder dataset.
#[derive(Clone, Debug, Serialize)]
pub struct FolderSummary {
    /// Width and height of the images in the folder (`image_shape` is what the networks take).
    pub source_size: [u32; 2],
    /// Factor name → class → images.
    pub classes: BTreeMap<String, BTreeMap<String, usize>>,
    /// The kept factors, in component order.
    pub kept: Vec<String>,
    /// Number of components (combinations of the kept factors' classes).
    pub components: usize,
    /// Component label → images.
    pub component_images: BTreeMap<String, usize>,
}

impl FileSummary {
    /// The summary as lines of text.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!(
            "format: {}\nimages: {}\nimage shape: {:?}\n",
            self.format, self.images, self.image_shape
        );
        for (name, size) in &self.factors {
            let _ = write!(out, "factor {name}: {size} values");
            if let Some(classes) = self.folder.as_ref().and_then(|f| f.classes.get(name)) {
                let counts: Vec<String> =
                    classes.iter().map(|(c, n)| format!("{c} ({n})")).collect();
                let _ = write!(out, ": {}", counts.join(", "));
            }
            out.push('\n');
        }
        if let Some(skipped) = self.skipped_symbols {
            let _ = writeln!(out, "symbols skipped (not among the 13 classes): {skipped}");
        }
        if let Some(f) = &self.folder {
            let _ = writeln!(out, "source images: {}×{}", f.source_size[0], f.source_size[1]);
            let _ =
                writeln!(out, "kept factors: {}; {} components", f.kept.join(", "), f.components);
            let fewest = f.component_images.iter().min_by_key(|(_, n)| **n);
            if let Some((label, n)) = fewest {
                let _ = writeln!(out, "images per component: fewest {n} ({label})");
            }
        }
        out
    }
}

/// HDF5's signature, at the start of a file without a user block.
const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

fn is_hdf5(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && &head == HDF5_MAGIC
}

/// Describes an official dataset file without decoding its images.
pub fn inspect(path: &Path) -> Result<FileSummary> {
    if !path.exists() {
        return Err(Error::file(path, "no such file"));
    }
    if is_hwf_release(path) {
        return inspect_hwf(path);
    }
    if is_hdf5(path) {
        return inspect_shapes3d(path);
    }
    inspect_dsprites(path)
}

/// An HWF release is a folder (or one of its `expr_*.json` files).
fn is_hwf_release(path: &Path) -> bool {
    path.is_dir() || path.extension().is_some_and(|e| e == "json")
}

/// The HWF release: symbol images (skipped symbols excluded) and the symbols found.
fn inspect_hwf(path: &Path) -> Result<FileSummary> {
    let files = HwfFiles::open(path)?;
    let symbols: std::collections::BTreeSet<usize> =
        (0..files.len()).map(|i| files.factor_classes(i)[0]).collect();
    let factors = BTreeMap::from([("symbol".to_string(), symbols.len())]);
    Ok(FileSummary {
        format: "hwf-ngs".into(),
        images: files.len(),
        image_shape: files.image_shape().to_vec(),
        factors,
        skipped_symbols: Some(files.skipped),
        folder: None,
    })
}

/// The official `3dshapes.h5`: images and the distinct classes of each factor.
fn inspect_shapes3d(path: &Path) -> Result<FileSummary> {
    let file = Shapes3dH5::open(path, |_| true, None)?;
    let factors = shapes3d::FACTORS
        .iter()
        .enumerate()
        .map(|(k, f)| {
            (
                f.name.to_string(),
                (0..file.len())
                    .map(|i| file.factor_classes(i)[k])
                    .collect::<std::collections::BTreeSet<_>>()
                    .len(),
            )
        })
        .collect();
    Ok(FileSummary {
        format: "shapes3d-h5".into(),
        images: file.len(),
        image_shape: file.image_shape().to_vec(),
        factors,
        skipped_symbols: None,
        folder: None,
    })
}

/// The official dSprites `.npz`, read whole with the training reader's checks: the arrays'
/// names, dtypes and shapes, every label's range, and every member's checksum.
fn inspect_dsprites(path: &Path) -> Result<FileSummary> {
    let archive = NpzArchive::open(path).map_err(|_| {
        Error::file(path, "not a recognised dataset file (expected the official dSprites .npz, 3dshapes.h5 or the HWF release folder)")
    })?;
    let names = archive.names();
    if !(names.iter().any(|n| n == "imgs") && names.iter().any(|n| n == "latents_classes")) {
        return Err(Error::file(
            path,
            "is a .npz archive but not dSprites: it needs arrays 'imgs' and 'latents_classes'",
        ));
    }
    let file = DspritesNpz::open(path, |_| true, None)?;
    let factors = FACTORS
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let distinct: std::collections::BTreeSet<usize> =
                (0..file.len()).map(|i| file.factor_classes(i)[k]).collect();
            (f.name.to_string(), distinct.len())
        })
        .collect();
    Ok(FileSummary {
        format: "dsprites-npz".into(),
        images: file.len(),
        image_shape: file.image_shape().to_vec(),
        factors,
        skipped_symbols: None,
        folder: None,
    })
}

/// Opens the first `count` images of an official file, in file order.
pub fn open_first(path: &Path, count: usize) -> Result<Arc<dyn FactorDataset>> {
    if path.exists() && is_hwf_release(path) {
        return Ok(Arc::new(HwfFiles::open(path)?.first(count)));
    }
    if path.exists() && is_hdf5(path) {
        return Ok(Arc::new(Shapes3dH5::open(path, |_| true, Some(count))?));
    }
    Ok(Arc::new(DspritesNpz::open(path, |_| true, Some(count))?))
}
