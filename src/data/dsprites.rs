//! dSprites: the procedural renderer and the official `.npz` reader.
//!
//! Factor grid as in the official file (colour dropped, it has one value): shape 3 (square,
//! ellipse, heart) × scale 6 in [0.5, 1] × orientation 40 in [0, 2π] × x 32 × y 32 in [0, 1],
//! y fastest. Images are binary 64×64.

use std::f64::consts::PI;
use std::path::Path;

use super::npz::NpzArchive;
use super::{Factor, FactorDataset, ImageShape};
use crate::{Error, Result};

/// Side of a dSprites image.
pub const SIDE: usize = 64;
/// The factors, in the order of the official `latents_classes` columns 1..6.
pub static FACTORS: [Factor; 5] = [
    Factor::new("shape", 3),
    Factor::new("scale", 6),
    Factor::new("orientation", 40),
    Factor::new("pos_x", 32),
    Factor::new("pos_y", 32),
];
/// Names of the shape classes, in factor order.
pub const SHAPES: [&str; 3] = ["square", "ellipse", "heart"];

/// The sprite shapes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Square,
    Ellipse,
    Heart,
}

impl Shape {
    fn from_class(class: usize) -> Shape {
        [Shape::Square, Shape::Ellipse, Shape::Heart][class]
    }

    /// Whether the point (u, v) of the sprite's own frame (unit half-extent, v down) is inside.
    fn contains(self, u: f64, v: f64) -> bool {
        match self {
            Shape::Square => u.abs() <= 0.8 && v.abs() <= 0.8,
            Shape::Ellipse => (u / 1.0).powi(2) + (v / 0.55).powi(2) <= 1.0,
            Shape::Heart => {
                // The classic heart curve (x² + y² − 1)³ − x²y³ ≤ 0, y up, fitted to the box.
                let x = u * 1.25;
                let y = -v * 1.25 + 0.15;
                let a = x * x + y * y - 1.0;
                a * a * a - x * x * y * y * y <= 0.0
            }
        }
    }
}

/// Factor classes → factor values, exactly as the official `latents_values`.
fn scale_value(class: usize) -> f64 {
    0.5 + 0.5 * class as f64 / 5.0
}
fn orientation_value(class: usize) -> f64 {
    2.0 * PI * class as f64 / 39.0
}
fn position_value(class: usize) -> f64 {
    class as f64 / LAST_POSITION
}

/// Sprite centres span [`POSITION_FIRST`, `POSITION_FIRST` + `POSITION_SPAN`] px over the
/// positions 0..=`LAST_POSITION`, so the largest sprite stays inside the canvas.
pub const POSITION_FIRST: f64 = 10.0;
pub const POSITION_SPAN: f64 = 44.0;
pub const LAST_POSITION: f64 = 31.0;

/// Renders one sprite as a binary image (1 inside the shape) into `out` (64·64 floats).
///
/// Deterministic: a pixel is lit when its centre falls inside the rotated, scaled shape.
pub fn render_sprite(
    shape: usize,
    scale: usize,
    orientation: usize,
    x: usize,
    y: usize,
    out: &mut [f32],
) {
    let shape = Shape::from_class(shape);
    let half = 10.0 * scale_value(scale);
    let theta = orientation_value(orientation);
    let (sin, cos) = theta.sin_cos();
    let cx = POSITION_FIRST + POSITION_SPAN * position_value(x);
    let cy = POSITION_FIRST + POSITION_SPAN * position_value(y);
    for row in 0..SIDE {
        for col in 0..SIDE {
            let dx = (col as f64 + 0.5 - cx) / half;
            let dy = (row as f64 + 0.5 - cy) / half;
            // Rotate the pixel back into the sprite's frame.
            let u = cos * dx + sin * dy;
            let v = -sin * dx + cos * dy;
            out[row * SIDE + col] = if shape.contains(u, v) { 1.0 } else { 0.0 };
        }
    }
}

/// Factor-class vector of a grid index.
pub fn grid_classes(index: usize) -> Vec<usize> {
    super::grid_classes_of(&FACTORS, index)
}

/// Number of images in the full grid.
pub fn grid_len() -> usize {
    FACTORS.iter().map(|f| f.size).product()
}

/// The procedural dSprites: every image of the official grid, rendered on demand.
#[derive(Clone, Debug, Default)]
pub struct DspritesRenderer;

impl FactorDataset for DspritesRenderer {
    fn describe(&self) -> String {
        "dsprites (procedural renderer)".into()
    }
    fn factors(&self) -> &[Factor] {
        &FACTORS
    }
    fn image_shape(&self) -> ImageShape {
        [1, SIDE, SIDE]
    }
    fn len(&self) -> usize {
        grid_len()
    }
    fn factor_classes(&self, index: usize) -> Vec<usize> {
        grid_classes(index)
    }
    fn render(&self, index: usize, out: &mut [f32]) {
        let c = grid_classes(index);
        render_sprite(c[0], c[1], c[2], c[3], c[4], out);
    }
    fn render_counterfactual(&self, _index: usize, classes: &[usize], out: &mut [f32]) -> bool {
        self.render(super::grid_index_of(&FACTORS, classes), out);
        true
    }
}

/// Images of the official `dsprites_ndarray_*.npz`, streamed from the archive and kept
/// bit-packed (one bit per pixel): the full file's 737 280 images take 377 MB this way
/// instead of 12 GB as f32. Only rows that `keep` accepts are stored.
pub struct DspritesNpz {
    source: String,
    classes: Vec<[u8; 5]>,
    bits: Vec<u64>,
}

const WORDS_PER_IMAGE: usize = SIDE * SIDE / 64;

impl DspritesNpz {
    /// Opens `path`, keeping the rows whose factor classes `keep` accepts; reads at most
    /// `limit` rows when given.
    pub fn open(
        path: &Path,
        keep: impl Fn(&[usize]) -> bool,
        limit: Option<usize>,
    ) -> Result<DspritesNpz> {
        let mut archive = NpzArchive::open(path)?;
        let classes = read_latents_classes(&mut archive)?;
        let mut rows = archive.array("imgs")?;
        let shape = rows.shape().to_vec();
        if shape.len() != 3
            || shape[1] != SIDE as u64
            || shape[2] != SIDE as u64
            || rows.item_size() != 1
        {
            return Err(Error::file(
                path,
                format!(
                    "'imgs' must be N×64×64 uint8 (found shape {shape:?}, dtype {})",
                    rows.dtype_name()
                ),
            ));
        }
        if shape[0] as usize != classes.len() {
            return Err(Error::file(
                path,
                format!("'imgs' has {} rows but 'latents_classes' has {}", shape[0], classes.len()),
            ));
        }
        let mut kept_classes = Vec::new();
        let mut bits = Vec::new();
        let mut row = vec![0u8; SIDE * SIDE];
        let rows_wanted = limit.unwrap_or(usize::MAX);
        for factor_classes in classes.into_iter().take(rows_wanted) {
            rows.read_row(&mut row)?;
            let as_usize: Vec<usize> = factor_classes.iter().map(|&c| c as usize).collect();
            if keep(&as_usize) {
                kept_classes.push(factor_classes);
                bits.extend(pack_bits(&row));
            }
        }
        rows.finish()?;
        Ok(DspritesNpz { source: path.display().to_string(), classes: kept_classes, bits })
    }
}

/// Reads `latents_classes` (N×6 integers), drops the one-valued colour column and checks
/// every class against the grid.
fn read_latents_classes(archive: &mut NpzArchive) -> Result<Vec<[u8; 5]>> {
    let (shape, values) = archive.read_integers("latents_classes")?;
    if shape.len() != 2 || shape[1] != 6 {
        return Err(archive.error(format!("'latents_classes' must be N×6 (found {shape:?})")));
    }
    let mut rows = Vec::with_capacity(shape[0]);
    for (i, row) in values.chunks_exact(6).enumerate() {
        let mut classes = [0u8; 5];
        for (k, factor) in FACTORS.iter().enumerate() {
            let v = row[k + 1];
            if v < 0 || v as usize >= factor.size {
                return Err(archive.error(format!(
                    "'latents_classes' row {i}: {} class {v} is outside 0..{}",
                    factor.name, factor.size
                )));
            }
            classes[k] = v as u8;
        }
        rows.push(classes);
    }
    Ok(rows)
}

fn pack_bits(pixels: &[u8]) -> Vec<u64> {
    pixels
        .chunks(64)
        .map(|chunk| chunk.iter().enumerate().fold(0u64, |w, (i, &p)| w | (((p != 0) as u64) << i)))
        .collect()
}

impl FactorDataset for DspritesNpz {
    fn describe(&self) -> String {
        format!("dsprites (official file {})", self.source)
    }
    fn factors(&self) -> &[Factor] {
        &FACTORS
    }
    fn image_shape(&self) -> ImageShape {
        [1, SIDE, SIDE]
    }
    fn len(&self) -> usize {
        self.classes.len()
    }
    fn factor_classes(&self, index: usize) -> Vec<usize> {
        self.classes[index].iter().map(|&c| c as usize).collect()
    }
    fn render(&self, index: usize, out: &mut [f32]) {
        let words = &self.bits[index * WORDS_PER_IMAGE..(index + 1) * WORDS_PER_IMAGE];
        for (i, px) in out.iter_mut().enumerate().take(SIDE * SIDE) {
            *px = ((words[i / 64] >> (i % 64)) & 1) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(classes: [usize; 5]) -> Vec<f32> {
        let mut out = vec![0.0; SIDE * SIDE];
        render_sprite(classes[0], classes[1], classes[2], classes[3], classes[4], &mut out);
        out
    }

    fn centroid(img: &[f32]) -> (f64, f64) {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
        for (i, &p) in img.iter().enumerate() {
            if p > 0.5 {
                sx += (i % SIDE) as f64;
                sy += (i / SIDE) as f64;
                n += 1.0;
            }
        }
        (sx / n, sy / n)
    }

    #[test]
    fn grid_matches_the_official_size_and_order() {
        assert_eq!(grid_len(), 737_280);
        assert_eq!(grid_classes(1), vec![0, 0, 0, 0, 1], "y is fastest");
        assert_eq!(grid_classes(32), vec![0, 0, 0, 1, 0]);
        let grid_index = |classes: &[usize]| {
            classes.iter().zip(FACTORS.iter()).fold(0, |acc, (c, f)| acc * f.size + c)
        };
        for i in [0, 1, 12345, 737_279] {
            assert_eq!(grid_index(&grid_classes(i)), i);
        }
    }

    #[test]
    fn rendering_is_binary_and_deterministic() {
        let a = image([2, 3, 7, 10, 20]);
        assert_eq!(a, image([2, 3, 7, 10, 20]));
        assert!(a.iter().all(|&p| p == 0.0 || p == 1.0));
        assert!(a.iter().sum::<f32>() > 50.0);
    }

    #[test]
    fn shapes_differ() {
        let imgs: Vec<_> = (0..3).map(|s| image([s, 5, 0, 16, 16])).collect();
        for i in 0..3 {
            for j in i + 1..3 {
                let diff = imgs[i].iter().zip(&imgs[j]).filter(|(a, b)| a != b).count();
                assert!(diff > 20, "shapes {i} and {j} differ in only {diff} pixels");
            }
        }
    }

    #[test]
    fn positions_move_the_pixels() {
        let (x0, y0) = centroid(&image([0, 5, 0, 0, 16]));
        let (x1, y1) = centroid(&image([0, 5, 0, 31, 16]));
        assert!(x1 - x0 > 40.0 && (y1 - y0).abs() < 1.0);
        let (_, ya) = centroid(&image([0, 5, 0, 16, 0]));
        let (_, yb) = centroid(&image([0, 5, 0, 16, 31]));
        assert!(yb - ya > 40.0, "y grows downwards");
    }

    #[test]
    fn scale_grows_the_sprite_and_rotation_turns_it() {
        let small: f32 = image([0, 0, 0, 16, 16]).iter().sum();
        let big: f32 = image([0, 5, 0, 16, 16]).iter().sum();
        assert!(big > 3.0 * small);
        assert_ne!(image([0, 5, 0, 16, 16]), image([0, 5, 5, 16, 16]));
    }

    #[test]
    fn heart_is_heart_shaped() {
        // Upright heart: two lobes on top (a notch between them), a point at the bottom.
        let img = image([2, 5, 0, 16, 16]);
        let lit = |r: usize, c: usize| img[r * SIDE + c] > 0.5;
        let rows: Vec<usize> = (0..SIDE).filter(|&r| (0..SIDE).any(|c| lit(r, c))).collect();
        let (top, bottom) = (rows[0], *rows.last().unwrap());
        let width = |r: usize| (0..SIDE).filter(|&c| lit(r, c)).count();
        assert!(width(bottom) <= 3, "pointed bottom");
        let centre = 32;
        let notch_row = top + 1;
        assert!(
            !lit(notch_row, centre) && (0..SIDE).any(|c| lit(notch_row, c)),
            "notch between lobes"
        );
        let widest = rows.iter().map(|&r| width(r)).max().unwrap();
        assert!(
            rows.iter().take(rows.len() / 2).any(|&r| width(r) == widest),
            "widest in the upper half"
        );
    }

    #[test]
    fn bit_packing_round_trips() {
        let img = image([2, 2, 3, 4, 5]);
        let bytes: Vec<u8> = img.iter().map(|&p| p as u8).collect();
        let ds = DspritesNpz {
            source: "t".into(),
            classes: vec![[2, 2, 3, 4, 5]],
            bits: pack_bits(&bytes),
        };
        let mut out = vec![0.0; SIDE * SIDE];
        ds.render(0, &mut out);
        assert_eq!(out, img);
    }
}
