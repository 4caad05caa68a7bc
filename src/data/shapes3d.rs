//! Shapes3D (SPEC §1): the procedural renderer — a small ray-cast room with a floor, two walls
//! forming a corner, and one object (cube, cylinder, sphere, capsule) standing on the floor — on
//! the official factor grid: floor, wall and object hue 10 each, 8 scales in [0.75, 1.25],
//! 4 shapes, 15 orientations in [−30°, 30°] (the camera orbits the object, so the corner of the
//! room moves), 64×64 RGB. Lambert shading with an ambient term and the object's shadow on the
//! floor and walls make the shapes read as solids. Every intersection is closed-form (no
//! sphere tracing), so an image takes well under a millisecond and batches render on demand.

use super::{Factor, FactorDataset, ImageShape};

pub const SIDE: usize = 64;

/// The official factor grid, in label order (last fastest).
pub static FACTORS: [Factor; 6] = [
    Factor::new("floor_hue", 10),
    Factor::new("wall_hue", 10),
    Factor::new("object_hue", 10),
    Factor::new("scale", 8),
    Factor::new("shape", 4),
    Factor::new("orientation", 15),
];

pub const SHAPES: [&str; 4] = ["cube", "cylinder", "sphere", "capsule"];

/// Factor classes of grid index `index` (mixed radix, orientation fastest).
pub fn grid_classes(index: usize) -> Vec<usize> {
    super::grid_classes_of(&FACTORS, index)
}

/// Images in the grid.
pub fn grid_len() -> usize {
    FACTORS.iter().map(|f| f.size).product()
}

/// The procedural Shapes3D dataset.
pub struct Shapes3dRenderer;

impl FactorDataset for Shapes3dRenderer {
    fn describe(&self) -> String {
        "shapes3d (procedural renderer)".into()
    }
    fn factors(&self) -> &[Factor] {
        &FACTORS
    }
    fn image_shape(&self) -> ImageShape {
        [3, SIDE, SIDE]
    }
    fn len(&self) -> usize {
        grid_len()
    }
    fn factor_classes(&self, index: usize) -> Vec<usize> {
        grid_classes(index)
    }
    fn render(&self, index: usize, out: &mut [f32]) {
        render_scene(&Scene::from_classes(&grid_classes(index)), out);
    }
    fn render_counterfactual(&self, _index: usize, classes: &[usize], out: &mut [f32]) -> bool {
        render_scene(&Scene::from_classes(classes), out);
        true
    }
}

type V3 = [f64; 3];

fn add(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}
fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn cross(a: V3, b: V3) -> V3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}
fn normalize(a: V3) -> V3 {
    scale(a, 1.0 / dot(a, a).sqrt())
}

/// RGB of hue `h` ∈ [0, 1) at full saturation and value.
pub fn hue_rgb(h: f64) -> V3 {
    let x = (h.rem_euclid(1.0)) * 6.0;
    let f = |n: f64| {
        let k = (n + x) % 6.0;
        1.0 - (k.min(4.0 - k).clamp(0.0, 1.0))
    };
    [f(5.0), f(3.0), f(1.0)]
}

/// Hue of an RGB colour in [0, 1), the inverse of [`hue_rgb`] up to value; None for a grey.
pub fn hue_of(c: V3) -> Option<f64> {
    let (max, min) = (c[0].max(c[1]).max(c[2]), c[0].min(c[1]).min(c[2]));
    if max - min < 1e-3 {
        return None;
    }
    let d = max - min;
    let h = if max == c[0] {
        ((c[1] - c[2]) / d).rem_euclid(6.0)
    } else if max == c[1] {
        (c[2] - c[0]) / d + 2.0
    } else {
        (c[0] - c[1]) / d + 4.0
    };
    Some(h / 6.0)
}

/// One scene: colours, the object, the camera angle.
#[derive(Clone, Debug)]
pub struct Scene {
    pub floor: V3,
    pub wall: V3,
    pub object: V3,
    /// Half-height of the object (it stands on the floor, centred on the vertical axis).
    pub size: f64,
    pub shape: usize,
    /// Camera orbit angle about the vertical axis, radians.
    pub orbit: f64,
}

impl Scene {
    /// The scene of the official factor classes.
    pub fn from_classes(c: &[usize]) -> Scene {
        let hue = |i: usize| hue_rgb(i as f64 / 10.0);
        let scale_value = 0.75 + 0.5 * c[3] as f64 / 7.0;
        let orientation = (-30.0 + 60.0 * c[5] as f64 / 14.0).to_radians();
        Scene {
            floor: hue(c[0]),
            wall: hue(c[1]),
            object: hue(c[2]),
            size: 0.5 * scale_value,
            shape: c[4],
            orbit: orientation,
        }
    }
}

/// Walls: the back wall z = WALL and the side wall x = WALL meet in a corner behind the object.
const WALL: f64 = 2.6;
const CAMERA_DISTANCE: f64 = 4.6;
const CAMERA_HEIGHT: f64 = 1.9;
const LOOK_AT: V3 = [0.0, 0.55, 0.0];
/// Half the vertical field of view's tangent.
const VIEW: f64 = 0.42;
const AMBIENT: f64 = 0.35;
/// Light still reaching a shadowed point, as a share of the direct light.
const SHADOW: f64 = 0.25;
/// Sub-pixel samples per axis (anti-aliasing).
const SAMPLES: usize = 2;

fn light() -> V3 {
    normalize([-0.45, 1.0, -0.7])
}

/// A ray hit: distance, surface normal, colour.
struct Hit {
    t: f64,
    normal: V3,
    colour: V3,
}

/// Renders `scene` into `out` as 3·64·64 floats in [0, 1] (channel-major).
pub fn render_scene(scene: &Scene, out: &mut [f32]) {
    let eye =
        [CAMERA_DISTANCE * scene.orbit.sin(), CAMERA_HEIGHT, -CAMERA_DISTANCE * scene.orbit.cos()];
    let forward = normalize(sub(LOOK_AT, eye));
    let right = normalize(cross([0.0, 1.0, 0.0], forward));
    let up = cross(forward, right);
    let plane = SIDE * SIDE;
    for py in 0..SIDE {
        for px in 0..SIDE {
            let mut rgb = [0.0; 3];
            for sy in 0..SAMPLES {
                for sx in 0..SAMPLES {
                    let u = ((px as f64 + (sx as f64 + 0.5) / SAMPLES as f64) / SIDE as f64 * 2.0
                        - 1.0)
                        * VIEW;
                    let v = (1.0
                        - (py as f64 + (sy as f64 + 0.5) / SAMPLES as f64) / SIDE as f64 * 2.0)
                        * VIEW;
                    let dir = normalize(add(forward, add(scale(right, u), scale(up, v))));
                    rgb = add(rgb, shade(scene, eye, dir));
                }
            }
            for (ch, value) in rgb.iter().enumerate() {
                out[ch * plane + py * SIDE + px] =
                    (value / (SAMPLES * SAMPLES) as f64).clamp(0.0, 1.0) as f32;
            }
        }
    }
}

/// Colour seen along the ray from `eye` in direction `dir`.
fn shade(scene: &Scene, eye: V3, dir: V3) -> V3 {
    let hit = nearer(object_hit(scene, eye, dir), room_hit(scene, eye, dir), |h| h.t);
    let Some(hit) = hit else { return [0.0; 3] };
    let point = add(eye, scale(dir, hit.t));
    let l = light();
    let direct = dot(hit.normal, l).max(0.0);
    let lit = if direct > 0.0 && object_hit(scene, add(point, scale(hit.normal, 1e-4)), l).is_some()
    {
        SHADOW
    } else {
        1.0
    };
    scale(hit.colour, AMBIENT + (1.0 - AMBIENT) * direct * lit)
}

/// Nearest hit on the floor or the walls.
fn room_hit(scene: &Scene, eye: V3, dir: V3) -> Option<Hit> {
    let planes: [(usize, f64, V3, V3); 3] = [
        (1, 0.0, [0.0, 1.0, 0.0], scene.floor),
        (2, WALL, [0.0, 0.0, -1.0], scene.wall),
        (0, WALL, [-1.0, 0.0, 0.0], scene.wall),
    ];
    planes.iter().fold(None, |best, &(axis, at, normal, colour)| {
        let t = (at - eye[axis]) / dir[axis];
        let p = add(eye, scale(dir, t));
        let inside = p[1] >= -1e-9 && p[0] <= WALL + 1e-9 && p[2] <= WALL + 1e-9;
        let hit =
            (dir[axis].abs() > 1e-12 && t > 1e-6 && inside).then_some(Hit { t, normal, colour });
        nearer(best, hit, |h| h.t)
    })
}

/// The nearer of two hits by `distance`, the first where they tie (as `Iterator::min_by`
/// picks). By hand because a `min_by` over an array of hits copies the array through
/// `memmove` for every ray, a sixth of the rendering time.
fn nearer<H>(a: Option<H>, b: Option<H>, distance: impl Fn(&H) -> f64) -> Option<H> {
    match (a, b) {
        (Some(a), Some(b)) => {
            Some(if distance(&b).total_cmp(&distance(&a)).is_lt() { b } else { a })
        }
        (a, b) => a.or(b),
    }
}

/// Nearest hit on the object, if any.
fn object_hit(scene: &Scene, eye: V3, dir: V3) -> Option<Hit> {
    if misses_bounding_sphere(eye, dir, scene.size) {
        return None;
    }
    let (t, normal) = exact_object_hit(scene.shape, scene.size, eye, dir)?;
    Some(Hit { t, normal, colour: scene.object })
}

/// Nearest hit on the object of `shape` and half-height `s`: distance and normal.
fn exact_object_hit(shape: usize, s: f64, eye: V3, dir: V3) -> Option<(f64, V3)> {
    match shape {
        0 => box_hit(eye, dir, s),
        1 => cylinder_hit(eye, dir, s, 0.0, 2.0 * s),
        2 => sphere_hit(eye, dir, [0.0, s, 0.0], s),
        _ => capsule_hit(eye, dir, 0.6 * s, 2.0 * s),
    }
}

/// Whether the ray (unit `dir`) ahead of `eye` misses the sphere about the centre of every
/// object of half-height `s`. Most primary and shadow rays miss the object, and this one test
/// spares them the exact intersections (three for the capsule); it only ever rejects rays that
/// would miss anyway, so the image is unchanged.
fn misses_bounding_sphere(eye: V3, dir: V3, s: f64) -> bool {
    // The cube's corners are the farthest points from the centre (0, s, 0): √3·s < 1.75·s.
    let radius = 1.75 * s;
    let oc = sub(eye, [0.0, s, 0.0]);
    let b = dot(oc, dir);
    let disc = b * b - (dot(oc, oc) - radius * radius);
    disc < 0.0 || -b + disc.sqrt() <= 1e-6
}

/// The cube [−s, s] × [0, 2s] × [−s, s] (slab method).
fn box_hit(eye: V3, dir: V3, s: f64) -> Option<(f64, V3)> {
    let (lo, hi) = ([-s, 0.0, -s], [s, 2.0 * s, s]);
    let (mut t0, mut t1, mut axis) = (f64::NEG_INFINITY, f64::INFINITY, 0);
    for a in 0..3 {
        if dir[a].abs() < 1e-12 {
            if eye[a] < lo[a] || eye[a] > hi[a] {
                return None;
            }
            continue;
        }
        let (ta, tb) = ((lo[a] - eye[a]) / dir[a], (hi[a] - eye[a]) / dir[a]);
        let near = ta.min(tb);
        if near > t0 {
            t0 = near;
            axis = a;
        }
        t1 = t1.min(ta.max(tb));
    }
    if t0 > t1 || t0 <= 1e-6 {
        return None;
    }
    let mut normal = [0.0; 3];
    normal[axis] = -dir[axis].signum();
    Some((t0, normal))
}

fn sphere_hit(eye: V3, dir: V3, centre: V3, r: f64) -> Option<(f64, V3)> {
    let oc = sub(eye, centre);
    let (b, c) = (dot(oc, dir), dot(oc, oc) - r * r);
    let disc = b * b - c;
    if disc < 0.0 {
        return None;
    }
    let t = -b - disc.sqrt();
    (t > 1e-6).then(|| (t, scale(sub(add(eye, scale(dir, t)), centre), 1.0 / r)))
}

/// The upright cylinder of radius `r` on the vertical axis between heights `y0` and `y1`,
/// with a top cap.
fn cylinder_hit(eye: V3, dir: V3, r: f64, y0: f64, y1: f64) -> Option<(f64, V3)> {
    let mut best = side_hit(eye, dir, r, y0, y1);
    if dir[1].abs() > 1e-12 {
        let t = (y1 - eye[1]) / dir[1];
        let p = add(eye, scale(dir, t));
        if t > 1e-6 && p[0] * p[0] + p[2] * p[2] <= r * r && best.as_ref().is_none_or(|b| t < b.0) {
            best = Some((t, [0.0, 1.0, 0.0]));
        }
    }
    best
}

/// The side of the upright cylinder of radius `r` between heights `y0` and `y1`.
fn side_hit(eye: V3, dir: V3, r: f64, y0: f64, y1: f64) -> Option<(f64, V3)> {
    let a = dir[0] * dir[0] + dir[2] * dir[2];
    if a < 1e-12 {
        return None;
    }
    let b = eye[0] * dir[0] + eye[2] * dir[2];
    let c = eye[0] * eye[0] + eye[2] * eye[2] - r * r;
    let disc = b * b - a * c;
    if disc < 0.0 {
        return None;
    }
    let t = (-b - disc.sqrt()) / a;
    let p = add(eye, scale(dir, t));
    (t > 1e-6 && p[1] >= y0 && p[1] <= y1).then(|| (t, [p[0] / r, 0.0, p[2] / r]))
}

/// The upright capsule of radius `r` standing on the floor, `height` tall.
fn capsule_hit(eye: V3, dir: V3, r: f64, height: f64) -> Option<(f64, V3)> {
    let (low, high) = (r, height - r);
    let side = side_hit(eye, dir, r, low, high);
    let bottom = sphere_hit(eye, dir, [0.0, low, 0.0], r);
    let top = sphere_hit(eye, dir, [0.0, high, 0.0], r);
    nearer(nearer(side, bottom, |h| h.0), top, |h| h.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(classes: [usize; 6]) -> Vec<f32> {
        let mut out = vec![0.0; 3 * SIDE * SIDE];
        Shapes3dRenderer.render(index_of(classes), &mut out);
        out
    }

    fn index_of(classes: [usize; 6]) -> usize {
        FACTORS.iter().zip(classes).fold(0, |acc, (f, c)| acc * f.size + c)
    }

    fn pixel(img: &[f32], x: usize, y: usize) -> V3 {
        let p = SIDE * SIDE;
        [img[y * SIDE + x] as f64, img[p + y * SIDE + x] as f64, img[2 * p + y * SIDE + x] as f64]
    }

    #[test]
    fn grid_has_the_official_size_and_order() {
        assert_eq!(grid_len(), 480_000);
        assert_eq!(grid_classes(0), vec![0; 6]);
        assert_eq!(grid_classes(1), vec![0, 0, 0, 0, 0, 1]);
        assert_eq!(grid_classes(15), vec![0, 0, 0, 0, 1, 0]);
        assert_eq!(grid_classes(index_of([9, 3, 7, 5, 2, 14])), vec![9, 3, 7, 5, 2, 14]);
    }

    #[test]
    fn hues_are_the_colour_wheel() {
        assert_eq!(hue_rgb(0.0), [1.0, 0.0, 0.0]);
        for i in 0..10 {
            let h = i as f64 / 10.0;
            assert!((hue_of(hue_rgb(h)).unwrap() - h).abs() < 1e-9, "hue {h}");
        }
    }

    #[test]
    fn rendering_is_deterministic_and_in_range() {
        let a = render([1, 2, 3, 4, 1, 7]);
        assert_eq!(a, render([1, 2, 3, 4, 1, 7]));
        assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn each_hue_factor_colours_its_own_surface() {
        // Centre: the object; bottom row: floor; top row: wall.
        let base = [0, 3, 6, 4, 0, 7];
        for (factor, (x, y)) in [(0, (32, 62)), (1, (32, 1)), (2, (32, 40))] {
            for value in [0, 2, 5, 8] {
                let mut classes = base;
                classes[factor] = value;
                let got = hue_of(pixel(&render(classes), x, y)).unwrap();
                let want = value as f64 / 10.0;
                let diff = (got - want).abs().min(1.0 - (got - want).abs());
                assert!(diff < 0.02, "factor {factor} = {value}: hue {got} at ({x}, {y})");
            }
        }
    }

    #[test]
    fn shape_changes_the_silhouette_and_scale_its_size() {
        let object_pixels = |classes: [usize; 6]| {
            let img = render(classes);
            let want = hue_rgb(classes[2] as f64 / 10.0);
            (0..SIDE * SIDE)
                .filter(|&i| {
                    hue_of(pixel(&img, i % SIDE, i / SIDE))
                        .is_some_and(|h| (h - hue_of(want).unwrap()).abs() < 0.02)
                })
                .collect::<Vec<_>>()
        };
        // Floor, wall and object hues far apart so the object's pixels are its hue alone.
        let silhouettes: Vec<Vec<usize>> =
            (0..4).map(|shape| object_pixels([0, 3, 6, 7, shape, 7])).collect();
        for a in 0..4 {
            assert!(silhouettes[a].len() > 150, "shape {a} covers {} pixels", silhouettes[a].len());
            for b in a + 1..4 {
                assert_ne!(silhouettes[a], silhouettes[b], "shapes {a} and {b} look the same");
            }
        }
        let (small, big) =
            (object_pixels([0, 3, 6, 0, 0, 7]).len(), object_pixels([0, 3, 6, 7, 0, 7]).len());
        assert!(big as f64 > 1.5 * small as f64, "scale: {small} → {big} pixels");
    }

    #[test]
    fn the_bounding_sphere_never_rejects_a_ray_that_hits_the_object() {
        use crate::rng::{Stream, stream};
        use rand::Rng;
        let mut rng = stream(7, Stream::Augment, 0);
        let s = 0.5 * 1.25;
        let (mut hits, mut rejected) = (0, 0);
        for _ in 0..200_000 {
            // Rays from around the object (camera-like and surface-like origins) towards it.
            let eye = [
                rng.random_range(-3.0..3.0),
                rng.random_range(0.0..2.5),
                rng.random_range(-5.0..3.0),
            ];
            let aim = [
                rng.random_range(-1.5 * s..1.5 * s),
                rng.random_range(-0.2..2.2 * s),
                rng.random_range(-1.5 * s..1.5 * s),
            ];
            let dir = normalize(sub(aim, eye));
            let shape = rng.random_range(0..4);
            let missed = misses_bounding_sphere(eye, dir, s);
            if exact_object_hit(shape, s, eye, dir).is_some() {
                hits += 1;
                assert!(
                    !missed,
                    "shape {shape}: the bound rejected a hit from {eye:?} along {dir:?}"
                );
            } else {
                rejected += missed as usize;
            }
        }
        assert!(
            hits > 10_000 && rejected > 10_000,
            "both cases sampled: {hits} hits, {rejected} rejected misses"
        );
    }

    #[test]
    fn orientation_moves_the_room_not_the_object_colour() {
        let (a, b) = (render([0, 3, 6, 4, 0, 0]), render([0, 3, 6, 4, 0, 14]));
        assert_ne!(a, b);
        assert!(hue_of(pixel(&a, 32, 40)).is_some_and(|h| (h - 0.6).abs() < 0.02));
        assert!(hue_of(pixel(&b, 32, 40)).is_some_and(|h| (h - 0.6).abs() < 0.02));
    }
}
