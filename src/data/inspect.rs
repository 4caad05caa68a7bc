//! Recognising official dataset files and describing them (`relatent data inspect`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::dsprites::{DspritesNpz, FACTORS};
use super::npz::NpzArchive;
use super::FactorDataset;
use crate::{Error, Result};

/// What `data inspect` prints (its JSON keys are a contract).
#[derive(Clone, Debug, Serialize)]
pub struct FileSummary {
    pub format: String,
    pub images: usize,
    pub image_shape: Vec<usize>,
    /// Factor name → number of distinct classes found in the file.
    pub factors: BTreeMap<String, usize>,
}

/// Describes an official dataset file without decoding its images.
pub fn inspect(path: &Path) -> Result<FileSummary> {
    if !path.exists() {
        return Err(Error::file(path, "no such file"));
    }
    let mut npz = NpzArchive::open(path).map_err(|_| Error::file(path, "not a recognised dataset file (expected the official dSprites .npz)"))?;
    let names = npz.names();
    if !(names.iter().any(|n| n == "imgs") && names.iter().any(|n| n == "latents_classes")) {
        return Err(Error::file(path, "is a .npz archive but not dSprites: it needs arrays 'imgs' and 'latents_classes'"));
    }
    let shape: Vec<usize> = npz.array("imgs")?.shape().iter().map(|&d| d as usize).collect();
    if shape.len() != 3 {
        return Err(Error::file(path, format!("'imgs' must be N×64×64 (found {shape:?})")));
    }
    let (cshape, classes) = npz.read_integers("latents_classes")?;
    if cshape.len() != 2 || cshape[1] != 6 || cshape[0] != shape[0] {
        return Err(Error::file(path, format!("'latents_classes' must be {}×6 (found {cshape:?})", shape[0])));
    }
    let mut factors = BTreeMap::new();
    for (k, factor) in FACTORS.iter().enumerate() {
        let distinct: std::collections::BTreeSet<i64> = classes.chunks_exact(6).map(|r| r[k + 1]).collect();
        factors.insert(factor.name.to_string(), distinct.len());
    }
    Ok(FileSummary { format: "dsprites-npz".into(), images: shape[0], image_shape: vec![1, shape[1], shape[2]], factors })
}

/// Opens the first `count` images of an official file, in file order.
pub fn open_first(path: &Path, count: usize) -> Result<Arc<dyn FactorDataset>> {
    inspect(path)?;
    Ok(Arc::new(DspritesNpz::open(path, |_| true, Some(count))?))
}
