//! Writes small `.npz` and `.npy` files in the layouts of the official releases.

use std::io::Write;
use std::path::Path;

/// A `.npy` file's bytes: header for `descr` and `shape`, then `data`.
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text =
        if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// Writes a deflate-compressed archive of `(name, npy bytes)` entries.
pub fn write_npz(path: &Path, entries: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
    write_npz_with(path, entries, zip::CompressionMethod::Deflated)
}

/// Writes an archive of `(name, npy bytes)` entries with `method` (Stored keeps the bytes as
/// they are, so a test can corrupt a known byte).
pub fn write_npz_with(
    path: &Path,
    entries: &[(&str, Vec<u8>)],
    method: zip::CompressionMethod,
) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in entries {
        zip.start_file(format!("{name}.npy"), options)?;
        zip.write_all(bytes)?;
    }
    zip.finish()?;
    Ok(())
}

/// A dSprites file in the official layout holding the grid images `indices`, rendered by
/// the procedural renderer: `imgs`, `latents_classes`, `latents_values`, `metadata`.
pub fn write_dsprites_npz(path: &Path, indices: &[usize]) -> std::io::Result<()> {
    use relatent::data::FactorDataset;
    use relatent::data::dsprites::{DspritesRenderer, SIDE, grid_classes};
    let mut imgs = Vec::new();
    let mut classes = Vec::new();
    let mut values = Vec::new();
    let mut pixels = vec![0.0; SIDE * SIDE];
    for &i in indices {
        DspritesRenderer.render(i, &mut pixels);
        imgs.extend(pixels.iter().map(|&p| p as u8));
        let c = grid_classes(i);
        let row: Vec<i64> = std::iter::once(0).chain(c.iter().map(|&v| v as i64)).collect();
        classes.extend(row.iter().flat_map(|v| v.to_le_bytes()));
        values.extend(row.iter().flat_map(|&v| (v as f64).to_le_bytes()));
    }
    let n = indices.len();
    write_npz(
        path,
        &[
            ("metadata", pickled_metadata()),
            ("imgs", npy_bytes("|u1", &[n, SIDE, SIDE], &imgs)),
            ("latents_classes", npy_bytes("<i8", &[n, 6], &classes)),
            ("latents_values", npy_bytes("<f8", &[n, 6], &values)),
        ],
    )
}

/// An object-dtype entry like the official `metadata` (a pickle we must skip).
pub fn pickled_metadata() -> Vec<u8> {
    npy_bytes(
        "|O",
        &[],
        b"\x80\x02}q\x00X\x05\x00\x00\x00titleq\x01X\x08\x00\x00\x00dSpritesq\x02s.",
    )
}
