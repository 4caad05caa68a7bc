//! Writing images as PNG, folders of images with their factors, and atomic output folders.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{FactorDataset, ImageShape};
use crate::{Error, Result};

/// Converts a `C·H·W` float image in [0, 1] to an 8-bit PNG-ready image (grey or RGB).
pub fn to_dynamic_image(pixels: &[f32], shape: ImageShape) -> image::DynamicImage {
    let [c, h, w] = shape;
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    if c == 1 {
        let buf = image::GrayImage::from_fn(w as u32, h as u32, |x, y| {
            image::Luma([byte(pixels[y as usize * w + x as usize])])
        });
        image::DynamicImage::ImageLuma8(buf)
    } else {
        let plane = h * w;
        let buf = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let i = y as usize * w + x as usize;
            image::Rgb([byte(pixels[i]), byte(pixels[plane + i]), byte(pixels[2 * plane + i])])
        });
        image::DynamicImage::ImageRgb8(buf)
    }
}

/// A `C·H·W` float image in [0, 1] as PNG bytes.
pub fn png_bytes(pixels: &[f32], shape: ImageShape) -> Vec<u8> {
    let mut bytes = Vec::new();
    to_dynamic_image(pixels, shape)
        .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("an 8-bit image always encodes as a PNG in memory");
    bytes
}

/// A folder that appears at its final path only when complete: files are written into a
/// hidden sibling that is renamed into place by [`AtomicDir::commit`], and removed if dropped
/// before that.
pub struct AtomicDir {
    target: PathBuf,
    staging: PathBuf,
    committed: bool,
}

impl AtomicDir {
    /// Stages a new folder for `target`, which must not exist (or be an empty folder).
    pub fn create(target: &Path) -> Result<AtomicDir> {
        if target.exists()
            && std::fs::read_dir(target).map(|mut d| d.next().is_some()).unwrap_or(true)
        {
            return Err(Error::file(target, "already exists and is not an empty folder"));
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "out".into());
        let parent =
            target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::file(parent, e))?;
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(|e| Error::file(&staging, e))?;
        Ok(AtomicDir { target: target.to_path_buf(), staging, committed: false })
    }

    /// Path of a file inside the staged folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.staging.join(name)
    }

    /// Moves the staged folder to its final path.
    pub fn commit(mut self) -> Result<PathBuf> {
        if self.target.exists() {
            std::fs::remove_dir(&self.target).map_err(|e| Error::file(&self.target, e))?;
        }
        std::fs::rename(&self.staging, &self.target).map_err(|e| Error::file(&self.target, e))?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Writes a file atomically: to a temporary sibling, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
        std::process::id()
    ));
    // A failed write (a full disk, a read-only folder) leaves the previous file as it was and
    // no temporary behind.
    let written = std::fs::write(&tmp, bytes).map_err(|e| Error::file(&tmp, e));
    let renamed =
        written.and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::file(path, e)));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

/// Writes images `indices` of `dataset` as `NNNNNN.png` plus `factors.csv` into a new folder.
pub fn export_images(
    dataset: &dyn FactorDataset,
    indices: &[usize],
    out: &Path,
) -> Result<PathBuf> {
    let dir = AtomicDir::create(out)?;
    let names: Vec<&str> = dataset.factors().iter().map(|f| f.name.as_ref()).collect();
    let mut csv = format!("file,{}\n", names.join(","));
    let mut pixels = vec![0.0; dataset.image_len()];
    for (n, &index) in indices.iter().enumerate() {
        dataset.render(index, &mut pixels);
        let file = format!("{n:06}.png");
        to_dynamic_image(&pixels, dataset.image_shape())
            .save(dir.path(&file))
            .map_err(|e| Error::file(dir.path(&file), e))?;
        let classes: Vec<String> =
            dataset.factor_classes(index).iter().map(|c| c.to_string()).collect();
        let _ = writeln!(csv, "{file},{}", classes.join(","));
    }
    std::fs::write(dir.path("factors.csv"), csv)
        .map_err(|e| Error::file(dir.path("factors.csv"), e))?;
    dir.commit()
}

/// An image as the networks take it: resized to `shape`'s height and width (bilinear) and
/// converted to grey or RGB, as C·H·W bytes.
pub fn model_bytes(image: &image::DynamicImage, [c, h, w]: ImageShape) -> Vec<u8> {
    let image = if (image.width(), image.height()) == (w as u32, h as u32) {
        std::borrow::Cow::Borrowed(image)
    } else {
        std::borrow::Cow::Owned(image.resize_exact(
            w as u32,
            h as u32,
            image::imageops::FilterType::Triangle,
        ))
    };
    if c == 1 {
        image.to_luma8().into_raw()
    } else {
        let rgb = image.to_rgb8().into_raw();
        (0..3).flat_map(|k| rgb.iter().skip(k).step_by(3).copied().collect::<Vec<u8>>()).collect()
    }
}

/// Decodes the image file at `path` (format guessed from its content); errors name the file.
pub fn open_image(path: &Path) -> Result<image::DynamicImage> {
    image::ImageReader::open(path)
        .map_err(|e| Error::file(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::file(path, e))?
        .decode()
        .map_err(|e| Error::file(path, format!("not a readable image: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eval.json");
        write_atomic(&path, b"old").unwrap();
        // A directory where the temporary file goes makes the write fail, as a full disk would.
        let blocker = dir.path().join(format!(".eval.json.tmp-{}", std::process::id()));
        std::fs::create_dir(&blocker).unwrap();
        assert!(write_atomic(&path, b"new").is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        std::fs::remove_dir(&blocker).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary left");
    }
    use crate::data::dsprites::DspritesRenderer;

    #[test]
    fn export_writes_pngs_and_factors_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("imgs");
        export_images(&DspritesRenderer, &[0, 1, 737_279], &out).unwrap();
        let csv = std::fs::read_to_string(out.join("factors.csv")).unwrap();
        assert_eq!(csv.lines().next().unwrap(), "file,shape,scale,orientation,pos_x,pos_y");
        assert_eq!(csv.lines().nth(3).unwrap(), "000002.png,2,5,39,31,31");
        let img = image::open(out.join("000001.png")).unwrap();
        assert_eq!((img.width(), img.height()), (64, 64));
        let err = export_images(&DspritesRenderer, &[0], &out).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no staging folder left behind");
    }
}
