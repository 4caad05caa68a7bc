//! The official `3dshapes.h5` (SPEC §1): `images` N×64×64×3 u8 and `labels` N×6 f64 (floor
//! hue, wall hue, object hue, scale, shape, orientation). Images are read row by row when a
//! batch needs them, never the 5.9 GB at once; labels (23 MB) are read whole and turned into
//! classes by the nearest value of the official grid, so label values are read, not assumed.
//! The file is read with `hdf5-reader` (pure Rust: contiguous and chunked, deflate-compressed
//! or not, with a chunk cache), chosen after reading h5py-written files of both layouts.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hdf5_reader::{Dataset, Datatype, Hdf5File, SliceInfo, SliceInfoElem};

use super::shapes3d::{FACTORS, SIDE};
use super::{Factor, FactorDataset, ImageShape};
use crate::{Error, Result};

/// The label value of each class of each factor, in the official grid's order.
pub fn official_values(factor: usize) -> Vec<f64> {
    let linspace = |lo: f64, hi: f64, n: usize| {
        (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64).collect::<Vec<_>>()
    };
    match factor {
        0..=2 => (0..10).map(|i| i as f64 / 10.0).collect(),
        3 => linspace(0.75, 1.25, 8),
        4 => (0..4).map(f64::from).collect(),
        _ => linspace(-30.0, 30.0, 15),
    }
}

/// Class of `value` on `grid`: the nearest grid value, if within a quarter of the spacing.
fn class_of_value(value: f64, grid: &[f64]) -> Option<usize> {
    let spacing = grid[1] - grid[0];
    let (class, distance) =
        grid.iter().map(|g| (g - value).abs()).enumerate().min_by(|a, b| a.1.total_cmp(&b.1))?;
    (distance <= spacing / 4.0).then_some(class)
}

/// Rows of `3dshapes.h5` that a task keeps, read on demand.
pub struct Shapes3dH5 {
    path: PathBuf,
    images: Dataset,
    /// File row of each kept image.
    rows: Vec<usize>,
    classes: Vec<[u8; 6]>,
    /// The first row that could not be read.
    failure: Mutex<Option<Error>>,
}

impl Shapes3dH5 {
    /// Opens `path`, keeping the rows whose factor classes `keep` accepts; at most `limit` rows
    /// of the file are considered when given.
    pub fn open(
        path: &Path,
        keep: impl Fn(&[usize]) -> bool,
        limit: Option<usize>,
    ) -> Result<Shapes3dH5> {
        let bad = |what: String| Error::file(path, what);
        let file =
            Hdf5File::open(path).map_err(|e| bad(format!("not a readable HDF5 file ({e})")))?;
        let images = file.dataset("images").map_err(|_| {
            bad("has no dataset 'images' (expected the official 3dshapes.h5)".into())
        })?;
        let labels = file.dataset("labels").map_err(|_| {
            bad("has no dataset 'labels' (expected the official 3dshapes.h5)".into())
        })?;
        let n = match images.shape() {
            &[n, h, w, 3] if h == SIDE as u64 && w == SIDE as u64 => n as usize,
            other => return Err(bad(format!("'images' must be N×64×64×3 (found {other:?})"))),
        };
        if !matches!(images.dtype(), Datatype::FixedPoint { size: 1, signed: false, .. }) {
            return Err(bad(format!(
                "'images' must be unsigned bytes (found {:?})",
                images.dtype()
            )));
        }
        if labels.shape() != [n as u64, 6] {
            return Err(bad(format!(
                "'labels' must be {n}×6 like 'images' (found {:?})",
                labels.shape()
            )));
        }
        // The labels are read whole: a corrupt shape must not make that allocation larger than
        // a file of this size could hold (even compressed, by a wide margin).
        let held = std::fs::metadata(path).map_err(|e| Error::file(path, e))?.len();
        if (n as u64).saturating_mul(48) > held.saturating_mul(64).saturating_add(1 << 20) {
            return Err(bad(format!("claims {n} images, more than its {held} bytes could hold")));
        }
        let n = limit.map_or(n, |l| l.min(n));
        let values = labels
            .read_slice::<f64>(&rows_slice(0, n, 2))
            .map_err(|e| bad(format!("cannot read 'labels' ({e})")))?;
        let grids: Vec<Vec<f64>> = (0..6).map(official_values).collect();
        let (mut rows, mut classes) = (Vec::new(), Vec::new());
        for (row, label) in values
            .as_slice()
            .ok_or_else(|| bad("'labels' is not contiguous".into()))?
            .chunks_exact(6)
            .enumerate()
        {
            let mut c = [0u8; 6];
            for (k, (&v, grid)) in label.iter().zip(&grids).enumerate() {
                c[k] = class_of_value(v, grid).ok_or_else(|| {
                    bad(format!(
                        "row {row}: {} = {v} is not a value of the official grid",
                        FACTORS[k].name
                    ))
                })? as u8;
            }
            if keep(&c.map(usize::from)) {
                rows.push(row);
                classes.push(c);
            }
        }
        Ok(Shapes3dH5 {
            path: path.to_path_buf(),
            images,
            rows,
            classes,
            failure: Mutex::new(None),
        })
    }

    /// Reads image `index` as 64×64×3 bytes (height, width, channel).
    fn read_row(&self, index: usize) -> Result<Vec<u8>> {
        let row = self.rows[index];
        let image = self
            .images
            .read_slice::<u8>(&rows_slice(row, row + 1, 4))
            .map_err(|e| Error::file(&self.path, format!("cannot read image {row} ({e})")))?;
        Ok(image.into_raw_vec_and_offset().0)
    }
}

/// Rows `start..end` of a rank-`ndim` dataset, every column.
fn rows_slice(start: usize, end: usize, ndim: usize) -> SliceInfo {
    let mut selection = SliceInfo::all(ndim);
    selection.selections[0] =
        SliceInfoElem::Slice { start: start as u64, end: end as u64, step: 1 };
    selection
}

impl FactorDataset for Shapes3dH5 {
    fn describe(&self) -> String {
        format!("shapes3d ({}, {} images)", self.path.display(), self.rows.len())
    }
    fn factors(&self) -> &[Factor] {
        &FACTORS
    }
    fn image_shape(&self) -> ImageShape {
        [3, SIDE, SIDE]
    }
    fn len(&self) -> usize {
        self.rows.len()
    }
    fn factor_classes(&self, index: usize) -> Vec<usize> {
        self.classes[index].map(usize::from).to_vec()
    }
    fn read_error(&self) -> Option<Error> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// A row that cannot be read (the file changed or broke after it was opened) renders
    /// black and is kept as [`FactorDataset::read_error`], which stops the run.
    fn render(&self, index: usize, out: &mut [f32]) {
        match self.read_row(index) {
            Ok(hwc) => {
                let plane = SIDE * SIDE;
                for (pixel, rgb) in hwc.chunks_exact(3).enumerate() {
                    for (ch, &v) in rgb.iter().enumerate() {
                        out[ch * plane + pixel] = f32::from(v) / 255.0;
                    }
                }
            }
            Err(e) => {
                self.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                out.fill(0.0);
            }
        }
    }
}
