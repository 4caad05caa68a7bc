//! Augmentation: pixel noise for every training image, and component-preserving geometric
//! transformations (default mode) for labelled images and the consistency term's strong views.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use super::ImageShape;
use super::room_colours::{Room, find_room, recolour_room, repaint_object};
use crate::config::{PixelAugment, SupervisedConfig};

/// Component-preserving augmentation of a task's images (default mode): of the labelled images
/// of the supervised term, and the strong views of the consistency term.
#[derive(Clone, Debug)]
pub enum Augmentation {
    /// dSprites: rotation and scale about the ink centroid; labelled images also move to a
    /// random place inside their position bands.
    Sprite(GeometricAugment),
    /// HWF and folder datasets: rotation by up to `max_rotation` radians, a horizontal shear of
    /// up to `max_shear` (a slant: x moves by `shear` × the height above the ink centroid) and
    /// a scale in `scale` about the ink centroid, and a shift of up to `max_shift` pixels,
    /// which keep a handwritten symbol's class (every channel moved alike).
    Jitter { max_rotation: f64, max_shear: f64, scale: (f64, f64), max_shift: f64 },
    /// Shapes3D: floor and walls repainted in other palette hues, the object untouched.
    /// `object_hue` is the kept-factor position of the object's palette hue (its counterfactual
    /// is a repaint of the object: [`counterfactual`]).
    RoomColours { object_hue: usize },
}

impl Augmentation {
    /// The augmentation as the run's `[supervised]` section sets it: jitter views slanted by
    /// up to `shear`, sprites placed at their bands' edges `edge_share` of the time.
    pub fn configured(self, supervised: &SupervisedConfig) -> Augmentation {
        match self {
            Augmentation::Jitter { max_rotation, scale, max_shift, .. } => {
                Augmentation::Jitter { max_rotation, max_shear: supervised.shear, scale, max_shift }
            }
            Augmentation::Sprite(g) => {
                Augmentation::Sprite(GeometricAugment { edge_share: supervised.edge_share, ..g })
            }
            other => other,
        }
    }
}

/// The sprite augmentation's ranges (dSprites).
#[derive(Clone, Debug)]
pub struct GeometricAugment {
    /// Largest rotation either way, radians.
    pub max_rotation: f64,
    /// Range of the scale multiplier.
    pub scale: (f64, f64),
    /// For each x class, the pixel range its sprite centres span.
    pub x_bands: Vec<(f64, f64)>,
    /// For each y class, likewise.
    pub y_bands: Vec<(f64, f64)>,
    /// Kept-factor positions of the x and y bands in a component's classes.
    pub band_factors: (usize, usize),
    /// Where a sprite's dataset position puts its shape's centre, for labelled views that
    /// place that centre in the band (`supervised.position_anchor`): a heart's ink centroid
    /// lies 0.9 pixel above it, so placing centroids teaches hearts a band edge off by that.
    pub position_pixels: Option<PositionPixels>,
    /// Share of labelled views placed within the outer tenth of their band, at either edge
    /// (`supervised.edge_share`): where neighbouring bands are a pixel or two apart.
    pub edge_share: f64,
}

impl GeometricAugment {
    /// A place for a sprite centre inside the band `(low, high)`: uniform, or `edge_share` of
    /// the time uniform within a tenth of the band's width of one of its edges.
    fn place_in_band(&self, (low, high): (f64, f64), rng: &mut impl Rng) -> f64 {
        // Drawn only when asked for, so runs without edge views draw what they always drew.
        if self.edge_share > 0.0 && rng.random_bool(self.edge_share) {
            let width = (high - low) / 10.0;
            if rng.random_bool(0.5) {
                rng.random_range(low..=low + width)
            } else {
                rng.random_range(high - width..=high)
            }
        } else {
            rng.random_range(low..=high)
        }
    }
}

/// The pixel a sprite is centred on: `first` + `span` × value / `last_value` for the values of
/// the dataset's x and y position factors (`factors`).
#[derive(Clone, Copy, Debug)]
pub struct PositionPixels {
    pub factors: (usize, usize),
    pub first: f64,
    pub span: f64,
    pub last_value: f64,
}

impl PositionPixels {
    /// The pixel of position `value` (fractional values lie between positions).
    pub fn pixel(&self, value: f64) -> f64 {
        self.first + self.span * value / self.last_value
    }

    /// The centre of a sprite of dataset factor classes `classes`.
    pub fn centre(&self, classes: &[usize]) -> (f64, f64) {
        let at = |f: usize| self.pixel(classes[f] as f64);
        (at(self.factors.0), at(self.factors.1))
    }
}

/// Pixel-level corruption of training inputs (the paper's Gaussian or Bernoulli noise).
#[derive(Clone, Copy, Debug)]
pub enum PixelNoise {
    None,
    /// Add N(0, σ²) and clamp to [0, 1].
    Gaussian(f32),
    /// Zero each pixel with probability p.
    Dropout(f64),
}

impl PixelNoise {
    /// From the config's `train.augment`, `noise_std` and `dropout`.
    pub fn from_config(kind: PixelAugment, noise_std: f64, dropout: f64) -> PixelNoise {
        match kind {
            PixelAugment::Noise => PixelNoise::Gaussian(noise_std as f32),
            PixelAugment::Dropout => PixelNoise::Dropout(dropout),
            PixelAugment::None => PixelNoise::None,
        }
    }

    /// Corrupts `pixels` in place.
    pub fn apply(self, pixels: &mut [f32], rng: &mut impl Rng) {
        match self {
            PixelNoise::None => {}
            PixelNoise::Gaussian(std) => {
                let normal = Normal::new(0.0f32, std).expect("noise_std is validated");
                for p in pixels {
                    *p = (*p + normal.sample(rng)).clamp(0.0, 1.0);
                }
            }
            PixelNoise::Dropout(prob) => {
                for p in pixels {
                    if rng.random_bool(prob) {
                        *p = 0.0;
                    }
                }
            }
        }
    }
}

/// A view of a labelled image of kept-factor `classes` that stays in its component; a sprite
/// is placed by its nominal centre where its dataset factor classes (`factor_classes`) are
/// given and the augmentation knows their pixels, else by its ink centroid.
pub fn labelled_view(
    image: &[f32],
    shape: ImageShape,
    aug: &Augmentation,
    classes: &[usize],
    factor_classes: Option<&[usize]>,
    rng: &mut impl Rng,
) -> Vec<f32> {
    match aug {
        Augmentation::Sprite(g) => geometric(
            image,
            shape[2],
            g,
            (classes[g.band_factors.0], classes[g.band_factors.1]),
            factor_classes.zip(g.position_pixels).map(|(f, p)| p.centre(f)),
            rng,
        ),
        _ => strong_view(image, shape, aug, rng),
    }
}

/// A view of an image in the same component, whatever that component is (unlabelled images).
pub fn strong_view(
    image: &[f32],
    shape: ImageShape,
    aug: &Augmentation,
    rng: &mut impl Rng,
) -> Vec<f32> {
    match aug {
        Augmentation::Sprite(g) => rotate_scale_in_place(image, shape[2], g, rng),
        &Augmentation::Jitter { max_rotation, max_shear, scale, max_shift } => {
            let side = shape[2];
            let Some(centre) = ink_centroid(image, side) else { return image.to_vec() };
            let angle = rng.random_range(-max_rotation..=max_rotation);
            let scale = rng.random_range(scale.0..=scale.1);
            let to = (
                centre.0 + rng.random_range(-max_shift..=max_shift),
                centre.1 + rng.random_range(-max_shift..=max_shift),
            );
            // Drawn only when asked for, so unslanted views draw what they always drew.
            let shear =
                if max_shear > 0.0 { rng.random_range(-max_shear..=max_shear) } else { 0.0 };
            let warp = Warp { angle, scale, shear };
            image
                .chunks_exact(side * side)
                .flat_map(|plane| warp.apply(plane, side, centre, to))
                .collect()
        }
        Augmentation::RoomColours { .. } => recolour_room(image, shape[2], rng),
    }
}

/// Whether the augmentation can make views of the image that differ from it: the geometric
/// ones need ink to move, the room repaint needs floor, walls and object it can tell apart.
/// The others are used as they are.
pub fn makes_views_of(image: &[f32], shape: ImageShape, aug: &Augmentation) -> bool {
    match aug {
        Augmentation::Sprite(_) | Augmentation::Jitter { .. } => {
            ink_centroid(image, shape[2]).is_some()
        }
        Augmentation::RoomColours { .. } => find_room(image, shape[2]).is_some(),
    }
}

/// Rotates and scales a single-channel image about its ink centroid and moves its `nominal`
/// centre (its ink centroid where None) to a random place inside the same x and y bands, so
/// the component is unchanged. Nearest-neighbour resampling keeps binary images binary.
/// `bands` are the (x, y) classes of the image.
pub fn geometric(
    image: &[f32],
    side: usize,
    aug: &GeometricAugment,
    bands: (usize, usize),
    nominal: Option<(f64, f64)>,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let Some(centre) = ink_centroid(image, side) else { return image.to_vec() };
    let anchor = nominal.unwrap_or(centre);
    let (angle, scale) = random_rotation_scale(aug, rng);
    let target = (
        aug.place_in_band(aug.x_bands[bands.0], rng) + centre.0 - anchor.0,
        aug.place_in_band(aug.y_bands[bands.1], rng) + centre.1 - anchor.1,
    );
    Warp { angle, scale, shear: 0.0 }.apply(image, side, centre, target)
}

/// Rotates and scales a single-channel image about its ink centroid, leaving the centroid
/// where it is: the component is kept without knowing it (for unlabelled images).
pub fn rotate_scale_in_place(
    image: &[f32],
    side: usize,
    aug: &GeometricAugment,
    rng: &mut impl Rng,
) -> Vec<f32> {
    let Some(centre) = ink_centroid(image, side) else { return image.to_vec() };
    let (angle, scale) = random_rotation_scale(aug, rng);
    Warp { angle, scale, shear: 0.0 }.apply(image, side, centre, centre)
}

fn random_rotation_scale(aug: &GeometricAugment, rng: &mut impl Rng) -> (f64, f64) {
    (
        rng.random_range(-aug.max_rotation..=aug.max_rotation),
        rng.random_range(aug.scale.0..=aug.scale.1),
    )
}

/// A rotation by `angle`, then a horizontal shear by `shear`, then a scale, about a point.
#[derive(Clone, Copy, Debug)]
struct Warp {
    angle: f64,
    scale: f64,
    shear: f64,
}

impl Warp {
    /// Resamples a single-channel `image` so that the point `from` lands on `to`, warped.
    /// Nearest-neighbour resampling keeps binary images binary.
    fn apply(self, image: &[f32], side: usize, from: (f64, f64), to: (f64, f64)) -> Vec<f32> {
        let (sin, cos) = self.angle.sin_cos();
        let mut out = vec![0.0; side * side];
        for row in 0..side {
            for col in 0..side {
                // Inverse map: output pixel → source pixel (unscale, unshear, unrotate).
                let dy = (row as f64 + 0.5 - to.1) / self.scale;
                let dx = (col as f64 + 0.5 - to.0) / self.scale - self.shear * dy;
                let sx = (cos * dx + sin * dy + from.0).floor();
                let sy = (-sin * dx + cos * dy + from.1).floor();
                if sx >= 0.0 && sy >= 0.0 && (sx as usize) < side && (sy as usize) < side {
                    out[row * side + col] = image[sy as usize * side + sx as usize];
                }
            }
        }
        out
    }
}

/// The image (kept-factor classes `from`) as it would look in the component of classes `to`,
/// where the augmentation knows the pixel action that moves it there and every nuisance stays:
/// a sprite moved to other position bands ([`band_move`]), a Shapes3D object repainted in
/// another hue ([`repaint_object`]). None for any other change (a shape, a scale, a
/// handwritten symbol): no pixel action draws it.
pub fn counterfactual(
    image: &[f32],
    shape: ImageShape,
    aug: &Augmentation,
    from: &[usize],
    to: &[usize],
) -> Option<Vec<f32>> {
    match *aug {
        Augmentation::Sprite(ref g) => band_move(image, shape[2], g, from, to),
        Augmentation::RoomColours { object_hue } => {
            let changed: Vec<usize> = (0..from.len()).filter(|&f| from[f] != to[f]).collect();
            if changed != [object_hue] {
                return None;
            }
            repaint_object(image, shape[2], from[object_hue], to[object_hue])
        }
        Augmentation::Jitter { .. } => None,
    }
}

/// What a donor of the target component (where [`counterfactual`] has no pixel action) takes
/// over from an image where the augmentation can carry its nuisances (Shapes3D: its room,
/// which [`in_room`](super::room_colours::in_room) repaints the donor's in); None for the other
/// augmentations, or where the room is not found.
pub fn carried_nuisances(image: &[f32], shape: ImageShape, aug: &Augmentation) -> Option<Room> {
    match aug {
        Augmentation::RoomColours { .. } => find_room(image, shape[2]),
        Augmentation::Sprite(_) | Augmentation::Jitter { .. } => None,
    }
}

/// The sprite of `image` (kept-factor classes `from`) as it looks in the component of classes
/// `to`, where the two differ only in their position bands: translated by the difference of
/// the bands' lower edges, in whole pixels (the nearest), vacated pixels dark — the true
/// counterfactual of a band move up to that rounding, nuisances (shape, scale, rotation, the
/// place inside the band) kept. None where any other kept factor differs: no translation
/// draws that.
pub fn band_move(
    image: &[f32],
    side: usize,
    aug: &GeometricAugment,
    from: &[usize],
    to: &[usize],
) -> Option<Vec<f32>> {
    let (fx, fy) = aug.band_factors;
    let others_kept = (0..from.len()).filter(|&f| f != fx && f != fy).all(|f| from[f] == to[f]);
    if !others_kept || from == to {
        return None;
    }
    let edge_shift = |bands: &[(f64, f64)], f: usize| (bands[to[f]].0 - bands[from[f]].0).round();
    Some(translate(image, side, edge_shift(&aug.x_bands, fx), edge_shift(&aug.y_bands, fy)))
}

/// Every channel plane of a square image moved by whole pixels `(dx, dy)` (right and down
/// when positive); what leaves the canvas is dropped, what is uncovered is dark.
fn translate(image: &[f32], side: usize, dx: f64, dy: f64) -> Vec<f32> {
    let (dx, dy) = (dx as isize, dy as isize);
    let mut out = vec![0.0; image.len()];
    let moved = |i: usize, d: isize| usize::try_from(i as isize + d).ok().filter(|&v| v < side);
    for (src, dst) in image.chunks_exact(side * side).zip(out.chunks_exact_mut(side * side)) {
        for (row, pixels) in src.chunks_exact(side).enumerate() {
            let Some(to_row) = moved(row, dy) else { continue };
            for (col, &p) in pixels.iter().enumerate() {
                if let Some(to_col) = moved(col, dx) {
                    dst[to_row * side + to_col] = p;
                }
            }
        }
    }
    out
}

/// Centre of mass of the lit pixels over every channel plane of a square image, in pixel
/// coordinates (pixel centres at +0.5).
pub fn ink_centroid(image: &[f32], side: usize) -> Option<(f64, f64)> {
    let (mut sx, mut sy, mut total) = (0.0, 0.0, 0.0);
    let plane = side * side;
    for (i, &p) in image.iter().enumerate().map(|(i, p)| (i % plane, p)) {
        let p = p as f64;
        sx += p * ((i % side) as f64 + 0.5);
        sy += p * ((i / side) as f64 + 0.5);
        total += p;
    }
    (total > 0.0).then(|| (sx / total, sy / total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dsprites::{SIDE, render_sprite};
    use crate::rng::{Stream, stream};
    use crate::tasks;

    #[test]
    fn geometric_augmentation_keeps_the_bands() {
        let task = tasks::by_name("dsprites-full").unwrap();
        let Some(Augmentation::Sprite(aug)) = task.augment.clone() else {
            panic!("dSprites augments sprites")
        };
        let mut rng = stream(1, Stream::Augment, 0);
        for (x, y) in [(0, 0), (5, 30), (15, 15), (31, 12)] {
            let mut img = vec![0.0; SIDE * SIDE];
            render_sprite(2, 3, 0, x, y, &mut img);
            let bands = (task.kept[1].class_of[x], task.kept[2].class_of[y]);
            for _ in 0..20 {
                let out = geometric(&img, SIDE, &aug, bands, None, &mut rng);
                let (cx, cy) = ink_centroid(&out, SIDE).unwrap();
                let (xl, xh) = aug.x_bands[bands.0];
                let (yl, yh) = aug.y_bands[bands.1];
                assert!(
                    cx > xl - 2.0 && cx < xh + 2.0 && cy > yl - 2.0 && cy < yh + 2.0,
                    "({cx}, {cy}) left band {bands:?}"
                );
                assert!(out.iter().all(|&p| p == 0.0 || p == 1.0));
            }
        }
    }

    #[test]
    fn a_position_anchored_heart_is_placed_by_its_nominal_centre_not_its_ink_centroid() {
        let task = tasks::by_name("dsprites").unwrap();
        let Some(Augmentation::Sprite(aug)) = task.augment.clone() else {
            panic!("dSprites augments sprites")
        };
        // A heart (shape 2) at x = 15, y = 21: the bottom band's first position.
        let classes = [2, 3, 0, 15, 21];
        let mut img = vec![0.0; SIDE * SIDE];
        render_sprite(2, 3, 0, 15, 21, &mut img);
        let (nx, ny) = aug.position_pixels.expect("dSprites knows its positions").centre(&classes);
        let (_, cy) = ink_centroid(&img, SIDE).unwrap();
        assert!(ny - cy > 0.5, "a heart's ink centroid lies above its centre ({cy} vs {ny})");
        let bands = (task.kept[1].class_of[15], task.kept[2].class_of[21]);
        let (yl, yh) = aug.y_bands[bands.1];
        // The centre a view puts the heart at, by its ink centroid and the heart's offset.
        let mean_centre_y = |nominal| {
            let mut rng = stream(3, Stream::Augment, 0);
            let draws = 400;
            let sum: f64 = (0..draws)
                .map(|_| {
                    let out = geometric(&img, SIDE, &aug, bands, nominal, &mut rng);
                    ink_centroid(&out, SIDE).unwrap().1 + ny - cy
                })
                .sum();
            sum / draws as f64
        };
        let middle = (yl + yh) / 2.0;
        let anchored = mean_centre_y(Some((nx, ny)));
        assert!((anchored - middle).abs() < 0.3, "{anchored} against the band's middle {middle}");
        let by_centroid = mean_centre_y(None);
        assert!(by_centroid - middle > 0.6, "by its centroid it sits lower: {by_centroid}");
    }

    #[test]
    fn edge_views_fall_in_the_outer_tenths_of_the_band_and_uniform_ones_anywhere() {
        let Some(Augmentation::Sprite(aug)) = tasks::by_name("dsprites").unwrap().augment else {
            panic!("dSprites augments sprites")
        };
        let band = (10.0, 30.0);
        let mut rng = stream(6, Stream::Augment, 0);
        let edges = GeometricAugment { edge_share: 1.0, ..aug.clone() };
        let placed: Vec<f64> = (0..200).map(|_| edges.place_in_band(band, &mut rng)).collect();
        assert!(placed.iter().all(|&p| (10.0..=12.0).contains(&p) || (28.0..=30.0).contains(&p)));
        let low = placed.iter().filter(|&&p| p <= 12.0).count();
        assert!((70..=130).contains(&low), "{low} of 200 at the low edge");
        let inner = (0..200)
            .map(|_| aug.place_in_band(band, &mut rng))
            .filter(|p| (12.0..28.0).contains(p))
            .count();
        assert!(inner > 130, "uniform places inside the edges: {inner} of 200");
    }

    /// Moving a sprite one band to the right is the renderer's image of the same sprite at the
    /// position one band on (up to the rounding of the shift), and moving it back restores it.
    #[test]
    fn a_band_move_draws_the_counterfactual_and_moving_back_restores_the_image() {
        let task = tasks::by_name("dsprites").unwrap();
        let Some(Augmentation::Sprite(aug)) = task.augment.clone() else {
            panic!("dSprites augments sprites")
        };
        let (x, y) = (3, 16);
        let mut img = vec![0.0; SIDE * SIDE];
        render_sprite(0, 4, 0, x, y, &mut img);
        let from = [0, task.kept[1].class_of[x], task.kept[2].class_of[y]];
        let to = [0, from[1] + 1, from[2]];
        let moved = band_move(&img, SIDE, &aug, &from, &to).expect("only the x band changes");
        // The renderer's counterfactual keeps the place inside the band: 11 positions on.
        let mut truth = vec![0.0; SIDE * SIDE];
        render_sprite(0, 4, 0, x + 11, y, &mut truth);
        let (a, b) = (ink_centroid(&moved, SIDE).unwrap(), ink_centroid(&truth, SIDE).unwrap());
        assert!((a.0 - b.0).abs() < 0.75 && (a.1 - b.1).abs() < 1e-9, "{a:?} vs {b:?}");
        let lit = |v: &[f32]| v.iter().filter(|&&p| p > 0.5).count();
        assert_eq!(lit(&moved), lit(&img), "the whole sprite moved, nothing cut");
        assert_eq!(band_move(&moved, SIDE, &aug, &to, &from).unwrap(), img);
        // Shape is not a position: no translation draws a shape change, nor no change at all.
        assert!(band_move(&img, SIDE, &aug, &from, &[1, from[1], from[2]]).is_none());
        assert!(band_move(&img, SIDE, &aug, &from, &from).is_none());
    }

    /// Shapes3D's counterfactual is the object repainted for a change of its hue alone; the
    /// dispatch names the kept factors by position, so it is checked on the task's own.
    #[test]
    fn a_hue_change_repaints_the_object_and_nothing_else_has_a_pixel_action() {
        use crate::data::shapes3d::{FACTORS, SIDE as S3D_SIDE, Shapes3dRenderer};
        let task = tasks::by_name("shapes3d").unwrap();
        let aug = task.augment.clone().unwrap();
        let shape = [3, S3D_SIDE, S3D_SIDE];
        let render = |classes: [usize; 6]| {
            let index = FACTORS.iter().zip(classes).fold(0, |acc, (f, c)| acc * f.size + c);
            let mut img = vec![0.0; 3 * S3D_SIDE * S3D_SIDE];
            crate::data::FactorDataset::render(&Shapes3dRenderer, index, &mut img);
            img
        };
        // Classes (floor, wall, object, scale, shape, orientation); kept (hue, shape, scale).
        let img = render([1, 8, 4, 7, 2, 5]);
        let from = [4, 2, 2];
        let moved = counterfactual(&img, shape, &aug, &from, &[5, 2, 2]).expect("a hue change");
        let truth = render([1, 8, 5, 7, 2, 5]);
        let diff = moved.iter().zip(&truth).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff < 0.02, "largest pixel difference {diff}");
        for to in [[5, 3, 2], [4, 3, 2], [4, 2, 1], [4, 2, 2]] {
            assert!(counterfactual(&img, shape, &aug, &from, &to).is_none(), "{to:?}");
        }
    }

    /// Slope dx/dy of a single-channel image's ink: the least-squares line x = a + slope·y
    /// through its lit pixels.
    fn ink_slope(image: &[f32], side: usize) -> f64 {
        let lit: Vec<(f64, f64)> = (0..image.len())
            .filter(|&i| image[i] > 0.5)
            .map(|i| ((i % side) as f64, (i / side) as f64))
            .collect();
        let n = lit.len() as f64;
        let (mx, my) = lit.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
        let cov: f64 = lit.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
        let var: f64 = lit.iter().map(|(_, y)| (y - my) * (y - my)).sum();
        cov / var
    }

    /// A shear slants an upright stroke by its amount and leaves its centroid; views of a
    /// slanting jitter slant both ways within `max_shear`, and unslanted ones keep it upright.
    #[test]
    fn a_shear_slants_an_upright_stroke_and_jitter_slants_within_its_range() {
        let side = 32;
        let mut bar = vec![0.0; side * side];
        for row in 6..26 {
            bar[row * side + 15] = 1.0;
            bar[row * side + 16] = 1.0;
        }
        let centre = ink_centroid(&bar, side).unwrap();
        let warp = |shear| Warp { angle: 0.0, scale: 1.0, shear };
        let slanted = warp(0.3).apply(&bar, side, centre, centre);
        assert!((ink_slope(&slanted, side) - 0.3).abs() < 0.03, "{}", ink_slope(&slanted, side));
        let moved = ink_centroid(&slanted, side).unwrap();
        assert!((moved.0 - centre.0).abs() < 0.5 && (moved.1 - centre.1).abs() < 0.5);
        assert_eq!(warp(0.0).apply(&bar, side, centre, centre), bar);

        let jitter = |max_shear| Augmentation::Jitter {
            max_rotation: 0.0,
            max_shear,
            scale: (1.0, 1.0),
            max_shift: 0.0,
        };
        let mut rng = stream(5, Stream::Augment, 0);
        let slopes: Vec<f64> = (0..40)
            .map(|_| ink_slope(&strong_view(&bar, [1, side, side], &jitter(0.4), &mut rng), side))
            .collect();
        assert!(slopes.iter().all(|s| s.abs() < 0.45), "{slopes:?}");
        assert!(slopes.iter().any(|&s| s > 0.2) && slopes.iter().any(|&s| s < -0.2));
        let upright = strong_view(&bar, [1, side, side], &jitter(0.0), &mut rng);
        assert_eq!(upright, bar);
    }

    #[test]
    fn handwriting_views_keep_the_symbol_near_its_place() {
        let aug = tasks::by_name("hwf").unwrap().augment.unwrap();
        let mut rng = stream(3, Stream::Augment, 0);
        let mut img = vec![0.0; 45 * 45];
        crate::data::FactorDataset::render(&crate::data::hwf::HwfRenderer, 7 * 1000 + 3, &mut img);
        let before = ink_centroid(&img, 45).unwrap();
        for _ in 0..10 {
            let view = strong_view(&img, [1, 45, 45], &aug, &mut rng);
            let after = ink_centroid(&view, 45).unwrap();
            assert!(
                (after.0 - before.0).abs() < 4.5 && (after.1 - before.1).abs() < 4.5,
                "{before:?} → {after:?}"
            );
            assert_ne!(view, img);
        }
    }

    #[test]
    fn room_views_repaint_the_floor_and_keep_the_object() {
        use crate::data::shapes3d::{FACTORS, SIDE as S3D_SIDE, Shapes3dRenderer};
        let task = tasks::by_name("shapes3d").unwrap();
        let aug = task.augment.expect("Shapes3D repaints rooms");
        let mut img = vec![0.0; 3 * S3D_SIDE * S3D_SIDE];
        // Classes (floor, wall, object, scale, shape, orientation).
        let index = FACTORS.iter().zip([0, 3, 6, 7, 0, 7]).fold(0, |acc, (f, c)| acc * f.size + c);
        crate::data::FactorDataset::render(&Shapes3dRenderer, index, &mut img);
        let (plane, centre, floor) = (S3D_SIDE * S3D_SIDE, 40 * S3D_SIDE + 32, 62 * S3D_SIDE + 32);
        let mut rng = stream(4, Stream::Augment, 0);
        let mut floor_changed = 0;
        for _ in 0..10 {
            let view =
                labelled_view(&img, [3, S3D_SIDE, S3D_SIDE], &aug, &[6, 0, 2], None, &mut rng);
            assert!(
                (0..3)
                    .all(|ch| (view[ch * plane + centre] - img[ch * plane + centre]).abs() < 1e-6),
                "object pixel changed"
            );
            floor_changed +=
                usize::from((0..3).any(|ch| view[ch * plane + floor] != img[ch * plane + floor]));
        }
        assert!(floor_changed >= 7, "floor repainted in {floor_changed} of 10 views");
        assert!(makes_views_of(&img, [3, S3D_SIDE, S3D_SIDE], &aug));
        assert!(
            !makes_views_of(&vec![0.5; img.len()], [3, S3D_SIDE, S3D_SIDE], &aug),
            "a grey image has no room"
        );
    }

    #[test]
    fn rotate_scale_keeps_the_centroid() {
        let Some(Augmentation::Sprite(aug)) = tasks::by_name("dsprites").unwrap().augment else {
            panic!("dSprites augments sprites")
        };
        let mut rng = stream(2, Stream::Augment, 0);
        let mut img = vec![0.0; SIDE * SIDE];
        render_sprite(0, 5, 0, 4, 27, &mut img);
        let before = ink_centroid(&img, SIDE).unwrap();
        let out = rotate_scale_in_place(&img, SIDE, &aug, &mut rng);
        let after = ink_centroid(&out, SIDE).unwrap();
        assert!(
            (before.0 - after.0).abs() < 1.5 && (before.1 - after.1).abs() < 1.5,
            "{before:?} {after:?}"
        );
        assert_ne!(out, img);
    }

    #[test]
    fn pixel_noise_stays_in_range() {
        let mut rng = stream(1, Stream::Augment, 0);
        let mut px = vec![0.0, 1.0, 0.5, 1.0];
        PixelNoise::Gaussian(0.5).apply(&mut px, &mut rng);
        assert!(px.iter().all(|p| (0.0..=1.0).contains(p)));
        let mut ones = vec![1.0; 10_000];
        PixelNoise::Dropout(0.1).apply(&mut ones, &mut rng);
        let zeros = ones.iter().filter(|&&p| p == 0.0).count();
        assert!((800..1200).contains(&zeros), "{zeros}");
    }
}
