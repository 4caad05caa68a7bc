//! Element-wise loops compiled for the CPU they run on, and exp, ln(1 + x), tanh and the
//! sigmoid in forms the compiler can vectorise.
//!
//! A release build targets baseline x86-64 (SSE2, four f32 lanes) so that one binary runs on
//! any x86-64 machine. [`multiversion`] compiles each driver below (for chunks of thousands of
//! values, where one dispatch per call is nothing) once more for each SIMD level (AVX, AVX2 +
//! FMA, AVX-512, …) and picks the widest the CPU has at run time (at first call; the choice is
//! cached); the closures passed in are inlined into each copy. Rust never fuses a multiply and
//! an add on its own, so every copy computes bit-identical results: the choice changes the
//! speed only.
//!
//! libm's `expf`, `log1pf` and `tanhf` are calls, one element at a time, which no compiler
//! vectorises; the polynomial forms here (Cephes' single-precision coefficients, the ones
//! SLEEF and most SIMD libraries start from) are plain arithmetic and selects, within a few
//! units in the last place of libm's (the tests bound the error against f64).

use multiversion::multiversion;

/// `out[i] = f(x[i])`.
#[multiversion(targets = "simd")]
pub fn map_into(out: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// `out[i] = f(a[i], b[i])`.
#[multiversion(targets = "simd")]
pub fn zip_map_into(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o = f(a, b);
    }
}

/// Independent partial sums, so summing loops vectorise; fixed, so sums do not depend on the
/// CPU.
const LANES: usize = 16;

/// Σ f(x, y).0 and Σ f(x, y).1 over paired values, in f32 lanes added up in f64 (callers pass
/// a few thousand values at a time, so the f32 partial sums stay accurate).
///
/// Not multiversioned itself: callers run it on short runs (a batch-norm plane can be 16
/// values), where a dispatch per call cost more than the wider lanes bought (measured: batch
/// norm twice as slow); it is inlined into the caller, multiversioned or not.
#[inline(always)]
pub fn paired_lane_sums(xs: &[f32], ys: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    let (mut a, mut b) = ([0.0f32; LANES], [0.0f32; LANES]);
    let (xc, yc) = (xs.chunks_exact(LANES), ys.chunks_exact(LANES));
    let (x_rest, y_rest) = (xc.remainder(), yc.remainder());
    for (x, y) in xc.zip(yc) {
        for i in 0..LANES {
            let (p, q) = f(x[i], y[i]);
            a[i] += p;
            b[i] += q;
        }
    }
    let wide = |lanes: [f32; LANES]| lanes.iter().map(|&v| f64::from(v)).sum::<f64>();
    x_rest.iter().zip(y_rest).fold((wide(a), wide(b)), |(sa, sb), (&x, &y)| {
        let (p, q) = f(x, y);
        (sa + f64::from(p), sb + f64::from(q))
    })
}

/// Values per f32 lane sum of [`sum_of_chunk`]: short enough that the partial sums stay
/// accurate.
const LANE_RUN: usize = 1024;

/// Σ f(a, b) over a chunk of paired values, in f64 over runs of [`LANE_RUN`].
#[multiversion(targets = "simd")]
pub fn sum_of_chunk(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    a.chunks(LANE_RUN)
        .zip(b.chunks(LANE_RUN))
        .map(|(a, b)| paired_lane_sums(a, b, |a, b| (f(a, b), 0.0)).0)
        .sum()
}

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two, so that x − n·ln 2 loses nothing for |n| ≤ 128.
const LN_2_HIGH: f32 = 0.693_359_4;
const LN_2_LOW: f32 = -2.121_944_4e-4;
/// 1.5·2²³: adding and subtracting it rounds an f32 of magnitude < 2²² to the nearest integer.
const ROUNDING: f32 = 12_582_912.0;

/// eˣ; 0 below −86.6 (no subnormal results), +∞ above 88.72, NaN for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let clamped = x.clamp(-86.6, 88.72);
    let n = (clamped * LOG2_E + ROUNDING) - ROUNDING;
    let r = clamped - n * LN_2_HIGH - n * LN_2_LOW;
    let p = (((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2)
        * r
        + 0.166_666_65)
        * r
        + 0.5)
        * r
        * r
        + r
        + 1.0;
    // 2ⁿ⁻¹ from its exponent bits (n is an integer in [−125, 128] here), then the last factor
    // 2, so that n = 128 (e^88.7 is below f32::MAX) does not overflow the exponent field.
    let half_scale = f32::from_bits(((n as i32 + 126) << 23) as u32);
    let e = p * half_scale * 2.0;
    if x > 88.72 {
        f32::INFINITY
    } else if x < -86.6 {
        0.0
    } else {
        e
    }
}

/// ln x for positive normal x.
#[inline(always)]
fn ln_positive(x: f32) -> f32 {
    let bits = x.to_bits();
    // x = m·2ᵉ with m in [√½, √2), so m − 1 is small.
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > std::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let e = e as f32;
    let t = m - 1.0;
    let z = t * t;
    let p = ((((((((7.037_683_6e-2 * t - 0.115_146_1) * t + 0.116_769_98) * t - 0.124_201_41)
        * t
        + 0.142_493_23)
        * t
        - 0.166_680_57)
        * t
        + 0.200_007_15)
        * t
        - 0.249_999_94)
        * t
        + 0.333_333_3)
        * t
        * z;
    t + (p + e * LN_2_LOW - 0.5 * z) + e * LN_2_HIGH
}

/// ln(1 + u) for u in [0, 1]: ln w · u / (w − 1) with w = 1 + u, which cancels the rounding
/// of w (Goldberg's form), and u itself where w rounds to 1.
#[inline(always)]
pub fn ln_1p_unit(u: f32) -> f32 {
    let w = 1.0 + u;
    if w == 1.0 { u } else { ln_positive(w) * u / (w - 1.0) }
}

/// softplus(l) = ln(1 + eˡ), without overflow for large l.
#[inline(always)]
pub fn softplus(l: f32) -> f32 {
    l.max(0.0) + ln_1p_unit(exp(-l.abs()))
}

/// 1 / (1 + e⁻ˡ).
#[inline(always)]
pub fn sigmoid(l: f32) -> f32 {
    1.0 / (1.0 + exp(-l))
}

/// tanh x: an odd polynomial below 0.625, 1 − 2/(e²ˣ + 1) above (which is 1 in f32 from 9.1).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let small = ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 0.133_314_42)
        * z
        - 0.333_332_8)
        * z
        * x
        + x;
    let large = (1.0 - 2.0 / (exp(2.0 * a.min(10.0)) + 1.0)).copysign(x);
    if a < 0.625 || a.is_nan() { small } else { large }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every f32 in [lo, hi] at `count` evenly spaced points, the ends included.
    fn grid(lo: f32, hi: f32, count: usize) -> impl Iterator<Item = f32> {
        (0..count).map(move |i| lo + (hi - lo) * i as f32 / (count - 1) as f32)
    }

    /// Largest error of `f` against the f64 `reference`, relative where the true value is
    /// above `floor` in magnitude and absolute below.
    fn worst_error(
        f: impl Fn(f32) -> f32,
        reference: impl Fn(f64) -> f64,
        points: impl Iterator<Item = f32>,
        floor: f64,
    ) -> f64 {
        points
            .map(|x| {
                let (got, want) = (f64::from(f(x)), reference(f64::from(x)));
                (got - want).abs() / want.abs().max(floor)
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn exp_is_within_a_few_ulps_of_f64() {
        let error = worst_error(exp, f64::exp, grid(-86.5, 88.7, 200_001), 0.0);
        assert!(error < 4.0 * f64::from(f32::EPSILON), "relative error {error}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn ln_1p_is_within_a_few_ulps_of_f64_down_to_tiny_arguments() {
        let error = worst_error(ln_1p_unit, f64::ln_1p, grid(0.0, 1.0, 200_001), 0.0);
        assert!(error < 4.0 * f64::from(f32::EPSILON), "relative error {error}");
        let tiny = (1..=40).map(|k| 2f32.powi(-k));
        let error = worst_error(ln_1p_unit, f64::ln_1p, tiny, 0.0);
        assert!(error < 4.0 * f64::from(f32::EPSILON), "relative error {error}");
    }

    #[test]
    fn softplus_sigmoid_and_tanh_match_f64() {
        let eps = f64::from(f32::EPSILON);
        let softplus_64 = |l: f64| l.max(0.0) + (-l.abs()).exp().ln_1p();
        let error = worst_error(softplus, softplus_64, grid(-40.0, 40.0, 200_001), 0.0);
        assert!(error < 6.0 * eps, "softplus relative error {error}");
        let sigmoid_64 = |l: f64| 1.0 / (1.0 + (-l).exp());
        let error = worst_error(sigmoid, sigmoid_64, grid(-40.0, 40.0, 200_001), 0.0);
        assert!(error < 6.0 * eps, "sigmoid relative error {error}");
        let error = worst_error(tanh, f64::tanh, grid(-12.0, 12.0, 200_001), 1e-30);
        assert!(error < 6.0 * eps, "tanh relative error {error}");
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(20.0), 1.0);
        assert_eq!(tanh(-20.0), -1.0);
        assert!(tanh(f32::NAN).is_nan());
        assert!(sigmoid(f32::NAN).is_nan() && softplus(f32::NAN).is_nan());
    }

    #[test]
    fn drivers_apply_the_function_to_every_element() {
        let x: Vec<f32> = (0..1000).map(|i| i as f32 * 0.01 - 5.0).collect();
        let mut out = vec![0.0; x.len()];
        map_into(&mut out, &x, |v| 2.0 * v + 1.0);
        assert!(out.iter().zip(&x).all(|(o, v)| *o == 2.0 * v + 1.0));
        zip_map_into(&mut out, &x, &x, |a, b| a * b);
        assert!(out.iter().zip(&x).all(|(o, v)| *o == v * v));
        // 1000 = 62 full lanes of 16 and a remainder of 8.
        let (s, q) = paired_lane_sums(&x, &x, |a, b| (a, a * b));
        let (want_s, want_q) =
            x.iter().fold((0.0, 0.0), |(s, q), &v| (s + f64::from(v), q + f64::from(v * v)));
        assert!((s - want_s).abs() < 1e-3 && (q - want_q).abs() < 1e-2, "{s} {q}");
        // 3000 values: two full runs of 1024 and a shorter one.
        let long: Vec<f32> = (0..3000).map(|i| (i % 7) as f32).collect();
        let want: f64 = long.iter().map(|&v| f64::from(v * v)).sum();
        assert_eq!(sum_of_chunk(&long, &long, |a, b| a * b), want);
    }
}
