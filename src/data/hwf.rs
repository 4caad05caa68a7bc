//! HWF (SPEC §1): the procedural renderer of handwritten symbols — digits 0–9, `+`, `-`, `×` —
//! drawn from strokes with per-sample handwriting variation (control-point jitter, stroke
//! width, slant, scale, rotation and a smooth elastic warp), 45×45 grey, ink 1 on background 0.
//! Each symbol has `STYLES` writers; a sample's variation is drawn from a generator seeded by
//! its index, so rendering is deterministic and no two samples are alike.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use super::{Factor, FactorDataset, ImageShape};
use crate::rng::{Stream, stream};

pub const SIDE: usize = 45;
/// Handwriting samples per symbol.
pub const STYLES: usize = 1000;

pub static FACTORS: [Factor; 2] = [Factor::new("symbol", 13), Factor::new("style", STYLES)];

pub const SYMBOLS: [&str; 13] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "+", "-", "×"];

type P = (f64, f64);

/// The strokes of `symbol` as polylines in the unit square (y down).
fn strokes(symbol: usize) -> Vec<Vec<P>> {
    let ellipse = |cx: f64, cy: f64, rx: f64, ry: f64, from: f64, to: f64, n: usize| -> Vec<P> {
        (0..=n)
            .map(|i| from + (to - from) * i as f64 / n as f64)
            .map(|a: f64| (cx + rx * a.cos(), cy + ry * a.sin()))
            .collect()
    };
    use std::f64::consts::PI;
    match symbol {
        0 => vec![ellipse(0.5, 0.5, 0.24, 0.38, -PI / 2.0, 1.5 * PI + 0.2, 20)],
        1 => vec![vec![(0.36, 0.26), (0.52, 0.1), (0.52, 0.9)]],
        2 => vec![vec![
            (0.26, 0.3),
            (0.34, 0.15),
            (0.5, 0.1),
            (0.66, 0.15),
            (0.72, 0.3),
            (0.64, 0.47),
            (0.26, 0.9),
            (0.76, 0.9),
        ]],
        3 => vec![vec![
            (0.28, 0.16),
            (0.5, 0.1),
            (0.7, 0.2),
            (0.68, 0.38),
            (0.46, 0.48),
            (0.7, 0.58),
            (0.72, 0.78),
            (0.5, 0.9),
            (0.26, 0.84),
        ]],
        4 => vec![vec![(0.62, 0.9), (0.62, 0.1), (0.22, 0.64), (0.8, 0.64)]],
        5 => vec![vec![
            (0.72, 0.1),
            (0.34, 0.1),
            (0.3, 0.44),
            (0.5, 0.4),
            (0.7, 0.5),
            (0.72, 0.72),
            (0.55, 0.9),
            (0.28, 0.84),
        ]],
        6 => vec![vec![
            (0.68, 0.12),
            (0.46, 0.2),
            (0.31, 0.45),
            (0.3, 0.72),
            (0.45, 0.9),
            (0.65, 0.85),
            (0.7, 0.65),
            (0.55, 0.5),
            (0.32, 0.58),
        ]],
        7 => vec![vec![(0.24, 0.12), (0.76, 0.12), (0.42, 0.9)]],
        8 => vec![
            ellipse(0.5, 0.29, 0.18, 0.18, PI / 2.0, 2.5 * PI, 14),
            ellipse(0.5, 0.69, 0.22, 0.21, -PI / 2.0, 1.5 * PI, 14),
        ],
        9 => vec![vec![
            (0.69, 0.36),
            (0.5, 0.5),
            (0.32, 0.38),
            (0.35, 0.15),
            (0.55, 0.1),
            (0.7, 0.25),
            (0.68, 0.5),
            (0.6, 0.9),
        ]],
        10 => vec![vec![(0.5, 0.2), (0.5, 0.8)], vec![(0.2, 0.5), (0.8, 0.5)]],
        11 => vec![vec![(0.2, 0.5), (0.8, 0.5)]],
        _ => vec![vec![(0.26, 0.26), (0.74, 0.74)], vec![(0.74, 0.26), (0.26, 0.74)]],
    }
}

/// One writer's hand: how a sample departs from the template.
#[derive(Clone, Debug)]
pub struct Hand {
    /// Standard deviation of each control point's displacement.
    jitter: f64,
    /// Stroke width, in units of the image side.
    width: f64,
    slant: f64,
    scale: f64,
    rotation: f64,
    /// A smooth displacement field: (amplitude x, amplitude y, frequency, phase) per term.
    warp: Vec<(f64, f64, f64, f64)>,
}

impl Hand {
    /// The hand of sample `index`.
    pub fn of_sample(index: usize) -> Hand {
        let mut rng = stream(index as u64, Stream::Render, 0);
        let mut u = |lo: f64, hi: f64| rng.random_range(lo..hi);
        Hand {
            jitter: u(0.005, 0.025),
            width: u(0.045, 0.09),
            slant: u(-0.3, 0.3),
            scale: u(0.72, 0.95),
            rotation: u(-0.2, 0.2),
            warp: (0..3)
                .map(|_| {
                    (u(-0.03, 0.03), u(-0.03, 0.03), u(2.0, 5.0), u(0.0, std::f64::consts::TAU))
                })
                .collect(),
        }
    }

    /// Where the template point `p` lands in image coordinates (pixels).
    fn place(&self, (x, y): P) -> P {
        let (mut x, mut y) = (x - 0.5, y - 0.5);
        for &(ax, ay, f, phase) in &self.warp {
            let (dx, dy) = (ax * (f * y + phase).sin(), ay * (f * x + phase).cos());
            x += dx;
            y += dy;
        }
        x -= self.slant * y;
        let (s, c) = self.rotation.sin_cos();
        let (x, y) = (c * x - s * y, s * x + c * y);
        let side = SIDE as f64;
        ((0.5 + self.scale * x) * side, (0.5 + self.scale * y) * side)
    }
}

/// The procedural HWF dataset: symbol × style.
pub struct HwfRenderer;

impl FactorDataset for HwfRenderer {
    fn describe(&self) -> String {
        "hwf (procedural renderer)".into()
    }
    fn factors(&self) -> &[Factor] {
        &FACTORS
    }
    fn image_shape(&self) -> ImageShape {
        [1, SIDE, SIDE]
    }
    fn len(&self) -> usize {
        SYMBOLS.len() * STYLES
    }
    fn factor_classes(&self, index: usize) -> Vec<usize> {
        super::grid_classes_of(&FACTORS, index)
    }
    fn render(&self, index: usize, out: &mut [f32]) {
        render_symbol(index / STYLES, &Hand::of_sample(index), index as u64, out);
    }
    fn render_counterfactual(&self, index: usize, classes: &[usize], out: &mut [f32]) -> bool {
        render_symbol(classes[0], &Hand::of_sample(index), index as u64, out);
        true
    }
}

/// Draws `symbol` in `hand` into `out` (45·45 values in [0, 1]); `seed` draws the jitter.
pub fn render_symbol(symbol: usize, hand: &Hand, seed: u64, out: &mut [f32]) {
    let mut rng = stream(seed, Stream::Render, 1);
    let jitter = Normal::new(0.0, hand.jitter).expect("positive jitter");
    let segments: Vec<(P, P)> = strokes(symbol)
        .into_iter()
        .flat_map(|stroke| {
            let placed: Vec<P> = stroke
                .into_iter()
                .map(|(x, y)| {
                    hand.place((x + jitter.sample(&mut rng), y + jitter.sample(&mut rng)))
                })
                .collect();
            placed.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>()
        })
        .collect();
    let half_width = 0.5 * hand.width * hand.scale * SIDE as f64;
    for py in 0..SIDE {
        for px in 0..SIDE {
            let p = (px as f64 + 0.5, py as f64 + 0.5);
            let d = segments
                .iter()
                .map(|&(a, b)| distance_to_segment(p, a, b))
                .fold(f64::INFINITY, f64::min);
            // One pixel of anti-aliasing at the stroke's edge.
            out[py * SIDE + px] = (half_width + 0.5 - d).clamp(0.0, 1.0) as f32;
        }
    }
}

fn distance_to_segment(p: P, a: P, b: P) -> f64 {
    let (abx, aby) = (b.0 - a.0, b.1 - a.1);
    let len2 = abx * abx + aby * aby;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * abx + (p.1 - a.1) * aby) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (dx, dy) = (p.0 - a.0 - t * abx, p.1 - a.1 - t * aby);
    (dx * dx + dy * dy).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(index: usize) -> Vec<f32> {
        let mut out = vec![0.0; SIDE * SIDE];
        HwfRenderer.render(index, &mut out);
        out
    }

    fn ink(img: &[f32]) -> f32 {
        img.iter().sum()
    }

    #[test]
    fn samples_are_deterministic_distinct_and_inked() {
        for symbol in 0..13 {
            let a = render(symbol * STYLES + 7);
            assert_eq!(a, render(symbol * STYLES + 7));
            assert_ne!(a, render(symbol * STYLES + 8), "symbol {symbol}: two writers draw alike");
            assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
            let share = ink(&a) / (SIDE * SIDE) as f32;
            assert!((0.02..0.4).contains(&share), "symbol {symbol}: {share} of the image inked");
            // The symbol stays inside the image: the border is blank.
            let border: f32 = (0..SIDE)
                .map(|i| a[i] + a[(SIDE - 1) * SIDE + i] + a[i * SIDE] + a[i * SIDE + SIDE - 1])
                .sum();
            assert!(border < 1.0, "symbol {symbol} touches the border");
        }
    }

    #[test]
    fn classes_are_told_apart_by_their_mean_images() {
        // Nearest class mean over 40 writers (fit on the first 20, tested on the next 20):
        // handwriting varies, but each symbol stays recognisable.
        let mean = |symbol: usize, styles: std::ops::Range<usize>| {
            let mut m = vec![0.0f32; SIDE * SIDE];
            let n = styles.len() as f32;
            for s in styles {
                for (a, b) in m.iter_mut().zip(render(symbol * STYLES + s)) {
                    *a += b / n;
                }
            }
            m
        };
        let means: Vec<Vec<f32>> = (0..13).map(|s| mean(s, 0..20)).collect();
        let mut correct = 0;
        for symbol in 0..13 {
            for style in 20..40 {
                let img = render(symbol * STYLES + style);
                let dist =
                    |m: &Vec<f32>| m.iter().zip(&img).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
                let best =
                    (0..13).min_by(|&a, &b| dist(&means[a]).total_cmp(&dist(&means[b]))).unwrap();
                correct += usize::from(best == symbol);
            }
        }
        assert!(correct as f64 / 260.0 > 0.8, "{correct}/260 nearest-mean correct");
    }
}
