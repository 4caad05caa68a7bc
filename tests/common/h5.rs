//! Writes `3dshapes.h5` files in the official layout, with a pure-Rust HDF5 writer.

use std::path::Path;

use relatent::data::FactorDataset;
use relatent::data::shapes3d::{Shapes3dRenderer, grid_classes};
use relatent::data::shapes3d_h5::official_values;

/// Renders the grid images `indices` as official rows: HWC bytes and label values.
pub fn official_rows(indices: &[usize]) -> (Vec<u8>, Vec<f64>) {
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    let mut chw = vec![0.0f32; 3 * 64 * 64];
    for &g in indices {
        Shapes3dRenderer.render(g, &mut chw);
        for pixel in 0..64 * 64 {
            images.extend((0..3).map(|ch| (chw[ch * 4096 + pixel] * 255.0).round() as u8));
        }
        labels.extend(grid_classes(g).iter().enumerate().map(|(k, &c)| official_values(k)[c]));
    }
    (images, labels)
}

pub fn write_h5(path: &Path, images: &[u8], labels: &[f64], chunked: bool) {
    let n = labels.len() as u64 / 6;
    let mut builder = hdf5_pure::FileBuilder::new();
    let ds = builder.create_dataset("images");
    ds.with_u8_data(images).with_shape(&[n, 64, 64, 3]);
    if chunked {
        ds.with_chunks(&[7, 64, 64, 3]).with_deflate(4);
    }
    let ds = builder.create_dataset("labels");
    ds.with_f64_data(labels).with_shape(&[n, 6]);
    if chunked {
        ds.with_chunks(&[16, 6]).with_deflate(4);
    }
    builder.write(path).unwrap();
}
