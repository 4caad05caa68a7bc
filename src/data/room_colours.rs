//! Shapes3D's component-preserving view: the floor and the walls repainted in other hues of
//! the official palette, the object left as it is. Object hue, shape and scale (the kept
//! factors) keep their values while two of the three nuisances take new ones, so the ten
//! labelled images of a component are seen with every floor and wall colour.
//!
//! Every surface is one palette hue at full saturation times a scalar shade (Lambert, ambient,
//! shadow), so a pixel is a non-negative mix of at most two surface colours (two where an
//! edge is anti-aliased). The mix is solved per pixel and re-mixed with the new colours; no
//! image library does this, hence by hand.

use rand::Rng;

use super::shapes3d::{hue_of, hue_rgb};

/// Hues of the official palette: 0, 0.1, …, 0.9.
const HUES: usize = 10;
/// Fewest pixels of a hue other than the floor's and the walls' for the object to count as
/// found. An object that shares its hue with the floor or the walls cannot be told apart from
/// them, and its image is left as it is.
const MIN_OBJECT_PIXELS: usize = 12;

type Rgb = [f64; 3];

/// The image with floor and walls repainted in random palette hues (possibly their own); the
/// image itself where the floor, walls or object cannot be found.
pub fn recolour_room(image: &[f32], side: usize, rng: &mut impl Rng) -> Vec<f32> {
    let (floor, wall) = (rng.random_range(0..HUES), rng.random_range(0..HUES));
    recolour_room_to(image, side, floor, wall).unwrap_or_else(|| image.to_vec())
}

/// The image (3 planes of `side`²) with the floor in palette hue `new_floor` and the walls in
/// `new_wall` (in `new_floor` too when they had one hue), or None when the floor, the walls or
/// a distinct object cannot be found.
pub fn recolour_room_to(
    image: &[f32],
    side: usize,
    new_floor: usize,
    new_wall: usize,
) -> Option<Vec<f32>> {
    let old = room_hues(image, side)?;
    Some(repaint(image, side, old, RoomHues { floor: new_floor, wall: new_wall, ..old }))
}

/// The image with the object, whose palette hue is `object`, repainted in palette hue
/// `new_object`, floor and walls kept: the true counterfactual of a change of the object's
/// hue, shading and anti-aliased edges included. None when the room cannot be found or its
/// object is not of hue `object`.
pub fn repaint_object(
    image: &[f32],
    side: usize,
    object: usize,
    new_object: usize,
) -> Option<Vec<f32>> {
    let old = room_hues(image, side)?;
    if old.object != object {
        return None;
    }
    Some(repaint(image, side, old, RoomHues { object: new_object, ..old }))
}

/// A room image's surfaces, found once ([`find_room`]) for every counterfactual drawn from or
/// into it: the counterfactual targets try each image with several donors and relations.
#[derive(Clone, Copy)]
pub struct Room(RoomHues);

/// The image's room, None when the floor, the walls or a distinct object are not found (then
/// [`recolour_room`] leaves the image as it is).
pub fn find_room(image: &[f32], side: usize) -> Option<Room> {
    room_hues(image, side).map(Room)
}

/// `donor` (an image of the component a relation leads to, whose room is the first) with its
/// floor and walls in the palette hues of the second room's: the true counterfactual of any
/// change of the object, up to the orientation, which is the donor's. None when the donor's
/// floor and walls share one hue where the other room's do not (one surface cannot be split
/// in two).
pub fn in_room(donor: &[f32], Room(old): Room, Room(to): Room, side: usize) -> Option<Vec<f32>> {
    if old.wall == old.floor && to.wall != to.floor {
        return None;
    }
    Some(repaint(donor, side, old, RoomHues { floor: to.floor, wall: to.wall, ..old }))
}

/// Every pixel of the image, whose surfaces' hues are `old` (as [`room_hues`] found them),
/// re-mixed from the hues `to` (walls of the floor's hue stay one surface with it).
fn repaint(image: &[f32], side: usize, old: RoomHues, to: RoomHues) -> Vec<f32> {
    let plane = side * side;
    let colour = |hue: usize| hue_rgb(hue as f64 / HUES as f64);
    let mut surfaces =
        vec![(colour(old.object), colour(to.object)), (colour(old.floor), colour(to.floor))];
    if old.wall != old.floor {
        surfaces.push((colour(old.wall), colour(to.wall)));
    }
    let mut out = vec![0.0; 3 * plane];
    for i in 0..plane {
        let mixed = remix(pixel(image, plane, i), &surfaces);
        for (ch, value) in mixed.iter().enumerate() {
            out[ch * plane + i] = value.clamp(0.0, 1.0) as f32;
        }
    }
    out
}

/// Palette hues of the floor, the walls and the object of a room image.
#[derive(Clone, Copy)]
struct RoomHues {
    floor: usize,
    wall: usize,
    object: usize,
}

/// The room's palette hues, None when the floor, the walls or a distinct object are not found.
fn room_hues(image: &[f32], side: usize) -> Option<RoomHues> {
    let plane = side * side;
    let classes: Vec<Option<usize>> =
        (0..plane).map(|i| hue_class(pixel(image, plane, i))).collect();
    // The bottom row always shows the floor and the top row the back walls.
    let floor = most_common(classes[plane - side..].iter().flatten().copied())?.0;
    let wall = most_common(classes[..side].iter().flatten().copied())?.0;
    let (object, count) =
        most_common(classes.iter().flatten().copied().filter(|&c| c != floor && c != wall))?;
    (count >= MIN_OBJECT_PIXELS).then_some(RoomHues { floor, wall, object })
}

/// Pixel `i` of a channel-major RGB image with `plane` pixels per channel.
fn pixel(image: &[f32], plane: usize, i: usize) -> Rgb {
    [image[i] as f64, image[plane + i] as f64, image[2 * plane + i] as f64]
}

/// Palette hue of a saturated pixel, None for dark, pale or in-between (edge) pixels.
fn hue_class(p: Rgb) -> Option<usize> {
    let (max, min) = (p[0].max(p[1]).max(p[2]), p[0].min(p[1]).min(p[2]));
    if max < 0.05 || (max - min) / max < 0.9 {
        return None;
    }
    let position = hue_of(p)? * HUES as f64;
    let nearest = position.round();
    ((position - nearest).abs() < 0.15).then_some(nearest as usize % HUES)
}

/// The most common class and its count, None when there is none.
fn most_common(classes: impl Iterator<Item = usize>) -> Option<(usize, usize)> {
    let mut counts = [0usize; HUES];
    for c in classes {
        counts[c] += 1;
    }
    let (class, &count) =
        counts.iter().enumerate().max_by_key(|&(c, n)| (*n, std::cmp::Reverse(c)))?;
    (count > 0).then_some((class, count))
}

/// `p` written as the best non-negative mix of one or two old surface colours, re-mixed with
/// the same weights from their new colours.
fn remix(p: Rgb, surfaces: &[(Rgb, Rgb)]) -> Rgb {
    let mut best = (f64::INFINITY, [0.0; 3]);
    for (i, (a, a_new)) in surfaces.iter().enumerate() {
        let w = (dot(p, *a) / dot(*a, *a)).max(0.0);
        consider(&mut best, p, &[(w, *a, *a_new)]);
        for (b, b_new) in &surfaces[i + 1..] {
            if let Some((wa, wb)) = two_colour_weights(p, *a, *b) {
                consider(&mut best, p, &[(wa, *a, *a_new), (wb, *b, *b_new)]);
            }
        }
    }
    best.1
}

/// Keeps the mix with the smaller residual: (weight, old colour, new colour) per surface.
fn consider(best: &mut (f64, Rgb), p: Rgb, mix: &[(f64, Rgb, Rgb)]) {
    let (mut old, mut new) = ([0.0; 3], [0.0; 3]);
    for &(w, a, a_new) in mix {
        for ch in 0..3 {
            old[ch] += w * a[ch];
            new[ch] += w * a_new[ch];
        }
    }
    let residual = (0..3).map(|ch| (p[ch] - old[ch]).powi(2)).sum::<f64>();
    if residual < best.0 {
        *best = (residual, new);
    }
}

/// Least-squares weights of `p ≈ wa·a + wb·b`, None when not both non-negative.
fn two_colour_weights(p: Rgb, a: Rgb, b: Rgb) -> Option<(f64, f64)> {
    let (aa, bb, ab) = (dot(a, a), dot(b, b), dot(a, b));
    let det = aa * bb - ab * ab;
    if det < 1e-9 {
        return None;
    }
    let (pa, pb) = (dot(p, a), dot(p, b));
    let (wa, wb) = ((pa * bb - pb * ab) / det, (pb * aa - pa * ab) / det);
    (wa >= 0.0 && wb >= 0.0).then_some((wa, wb))
}

fn dot(a: Rgb, b: Rgb) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shapes3d::{SIDE, Scene, render_scene};
    use crate::rng::{Stream, stream};

    fn render(classes: [usize; 6]) -> Vec<f32> {
        let mut out = vec![0.0; 3 * SIDE * SIDE];
        render_scene(&Scene::from_classes(&classes), &mut out);
        out
    }

    fn mean_abs_diff(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (x - y).abs() as f64).sum::<f64>() / a.len() as f64
    }

    #[test]
    fn repainting_matches_the_renderer_with_the_new_hues() {
        // (floor, wall, object, scale, shape, orientation) → new floor and wall hues.
        for (classes, floor, wall) in [
            ([0, 3, 6, 4, 0, 7], 8, 1),
            ([2, 2, 9, 7, 3, 0], 5, 5),
            ([7, 1, 4, 0, 2, 14], 1, 7),
            ([5, 9, 0, 3, 1, 3], 5, 2),
        ] {
            assert!(find_room(&render(classes), SIDE).is_some(), "{classes:?}");
            let got =
                recolour_room_to(&render(classes), SIDE, floor, wall).expect("distinct object");
            let mut want_classes = classes;
            (want_classes[0], want_classes[1]) =
                (floor, if classes[0] == classes[1] { floor } else { wall });
            let want = render(want_classes);
            let diff = mean_abs_diff(&got, &want);
            assert!(diff < 1e-3, "{classes:?} → floor {floor}, wall {wall}: mean |diff| {diff}");
            let before = mean_abs_diff(&render(classes), &want);
            assert!(before > 0.05, "{classes:?}: the new hues should change the image ({before})");
        }
    }

    #[test]
    fn repainting_the_object_matches_the_renderer_with_its_new_hue() {
        // (floor, wall, object, scale, shape, orientation) → new object hue.
        for (classes, object) in [
            ([0, 3, 6, 4, 0, 7], 7),
            ([2, 2, 9, 7, 3, 0], 8),
            ([7, 1, 4, 0, 2, 14], 5),
            ([5, 9, 0, 3, 1, 3], 9),
            ([5, 9, 1, 7, 1, 3], 5),
        ] {
            let got = repaint_object(&render(classes), SIDE, classes[2], object).expect("found");
            let mut want_classes = classes;
            want_classes[2] = object;
            let want = render(want_classes);
            let diff = mean_abs_diff(&got, &want);
            assert!(diff < 1e-3, "{classes:?} → object {object}: mean |diff| {diff}");
            let before = mean_abs_diff(&render(classes), &want);
            assert!(before > 1e-3, "{classes:?}: the new hue should change the image ({before})");
        }
    }

    #[test]
    fn an_object_of_another_hue_than_its_label_is_not_repainted() {
        let image = render([0, 3, 6, 4, 0, 7]);
        assert_eq!(repaint_object(&image, SIDE, 5, 7), None);
        assert_eq!(repaint_object(&render([3, 6, 3, 4, 0, 7]), SIDE, 3, 4), None);
        let same = repaint_object(&image, SIDE, 6, 6).unwrap();
        assert!(mean_abs_diff(&image, &same) < 1e-4);
    }

    /// `donor` in the room of the image `room`, both rooms found from the images.
    fn in_room_of(donor: &[f32], room: &[f32], side: usize) -> Option<Vec<f32>> {
        in_room(donor, find_room(donor, side)?, find_room(room, side)?, side)
    }

    #[test]
    fn a_donor_in_the_room_of_another_image_is_that_room_with_the_donor_object() {
        // (floor, wall, object, scale, shape, orientation): donor, room.
        for (donor, room) in [
            ([0, 3, 6, 4, 0, 7], [8, 1, 2, 7, 3, 0]),
            ([7, 1, 4, 0, 2, 14], [5, 5, 0, 3, 1, 3]),
            ([2, 9, 5, 7, 1, 3], [9, 2, 5, 0, 0, 10]),
        ] {
            let got = in_room_of(&render(donor), &render(room), SIDE).expect("both rooms found");
            let want = render([room[0], room[1], donor[2], donor[3], donor[4], donor[5]]);
            let diff = mean_abs_diff(&got, &want);
            assert!(diff < 1e-3, "{donor:?} in {room:?}: mean |diff| {diff}");
        }
        // The donor's floor and walls share a hue the room's do not.
        assert_eq!(
            in_room_of(&render([4, 4, 1, 0, 0, 0]), &render([2, 3, 1, 0, 0, 0]), SIDE),
            None
        );
        assert_eq!(
            in_room_of(&render([3, 6, 3, 4, 0, 7]), &render([2, 3, 1, 0, 0, 0]), SIDE),
            None
        );
    }

    #[test]
    fn keeping_the_hues_keeps_the_image() {
        let image = render([4, 8, 1, 5, 2, 9]);
        let same = recolour_room_to(&image, SIDE, 4, 8).unwrap();
        assert!(mean_abs_diff(&image, &same) < 1e-4);
    }

    #[test]
    fn an_object_in_the_floor_or_wall_hue_is_left_alone() {
        for classes in [[3, 6, 3, 4, 0, 7], [1, 6, 6, 7, 2, 0]] {
            let image = render(classes);
            assert!(find_room(&image, SIDE).is_none(), "{classes:?}");
            assert_eq!(recolour_room_to(&image, SIDE, 0, 0), None, "{classes:?}");
            let mut rng = stream(0, Stream::Augment, 0);
            assert_eq!(recolour_room(&image, SIDE, &mut rng), image);
        }
    }

    #[test]
    fn a_grey_image_has_no_room_to_repaint() {
        let grey = vec![0.5; 3 * SIDE * SIDE];
        assert!(find_room(&grey, SIDE).is_none());
        assert_eq!(recolour_room_to(&grey, SIDE, 1, 2), None);
    }

    #[test]
    fn hue_classes_of_the_palette_and_of_shaded_pixels() {
        for k in 0..HUES {
            let c = hue_rgb(k as f64 / 10.0);
            assert_eq!(hue_class(c), Some(k));
            assert_eq!(hue_class([c[0] * 0.4, c[1] * 0.4, c[2] * 0.4]), Some(k), "shaded hue {k}");
        }
        assert_eq!(hue_class(hue_rgb(0.05)), None, "between two palette hues");
        assert_eq!(hue_class([0.5, 0.5, 0.5]), None);
        assert_eq!(hue_class([0.01, 0.0, 0.0]), None, "too dark");
    }
}
