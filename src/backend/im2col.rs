//! Convolution on CPU slices: im2col / col2im with one matrix multiply per image (the `gemm`
//! crate burn-flex itself uses), parallel over the batch.
//!
//! burn-flex computes a convolution's weight gradient as a convolution whose "kernel" is the
//! whole output gradient (a dilated convolution with a long, skinny matrix multiply), and the
//! gradients of a transposed convolution the same way; for our small channel counts that costs
//! two to eight times the forward pass. Here all six operations (forward, input gradient and
//! weight gradient of the convolution and of its transpose) are the same three products:
//!
//! - forward:         Y_b = W · im2col(X_b)
//! - input gradient:  dX_b = col2im(Wᵀ · dY_b)
//! - weight gradient: dW = Σ_b dY_b · im2col(X_b)ᵀ
//!
//! and a transposed convolution is the adjoint of a convolution (its forward is that
//! convolution's input gradient, and so on).

use rayon::prelude::*;

use super::par_output;

/// Shapes of one 2-D convolution with a square kernel, equal strides and equal padding
/// (per image; tensors are NCHW and contiguous).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvGeometry {
    pub c_in: usize,
    pub h_in: usize,
    pub w_in: usize,
    pub c_out: usize,
    pub h_out: usize,
    pub w_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvGeometry {
    /// The convolution of a `c_in`×`h_in`×`w_in` image to `c_out` channels.
    pub fn conv(
        c_in: usize,
        h_in: usize,
        w_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> ConvGeometry {
        let out = |n: usize| (n + 2 * padding - kernel) / stride + 1;
        ConvGeometry {
            c_in,
            h_in,
            w_in,
            c_out,
            h_out: out(h_in),
            w_out: out(w_in),
            kernel,
            stride,
            padding,
        }
    }

    /// The convolution whose adjoint is the transposed convolution of a `c_in`×`h_in`×`w_in`
    /// image to `c_out` channels (output padding 0): it maps the transposed convolution's output
    /// back to its input.
    pub fn transposed(
        c_in: usize,
        h_in: usize,
        w_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> ConvGeometry {
        let out = |n: usize| (n - 1) * stride + kernel - 2 * padding;
        ConvGeometry {
            c_in: c_out,
            h_in: out(h_in),
            w_in: out(w_in),
            c_out: c_in,
            h_out: h_in,
            w_out: w_in,
            kernel,
            stride,
            padding,
        }
    }

    /// Rows of the im2col matrix: one per (input channel, kernel row, kernel column).
    pub fn col_rows(&self) -> usize {
        self.c_in * self.kernel * self.kernel
    }

    /// Output pixels per channel (columns of the im2col matrix).
    pub fn out_plane(&self) -> usize {
        self.h_out * self.w_out
    }

    /// Values in one input image.
    pub fn in_len(&self) -> usize {
        self.c_in * self.h_in * self.w_in
    }

    /// Values in one output image.
    pub fn out_len(&self) -> usize {
        self.c_out * self.out_plane()
    }

    /// Input coordinate read by output coordinate `o` at kernel offset `k`, if inside.
    fn source(&self, o: usize, k: usize, size: usize) -> Option<usize> {
        (o * self.stride + k).checked_sub(self.padding).filter(|&i| i < size)
    }

    /// The output columns `lo..hi` whose input column at kernel offset `kx` is inside the
    /// image, and the input column of `lo`.
    fn inside_columns(&self, kx: usize) -> (usize, usize, usize) {
        let s = self.stride;
        // ox·s + kx − p ≥ 0  ⇔  ox ≥ ⌈(p − kx)/s⌉;  ox·s + kx − p ≤ w_in − 1.
        let lo = self.padding.saturating_sub(kx).div_ceil(s).min(self.w_out);
        let hi = match (self.w_in - 1 + self.padding).checked_sub(kx) {
            Some(last) => (last / s + 1).min(self.w_out),
            None => 0,
        }
        .max(lo);
        (lo, hi, (lo * s + kx).saturating_sub(self.padding))
    }
}

/// Writes the im2col matrix of one image (`col_rows` × `out_plane`, row-major) into `cols`.
///
/// Each input row is first split into its `stride` phases (columns ≡ r mod stride), so that
/// every im2col row is a run of contiguous copies instead of a strided gather.
pub fn im2col(image: &[f32], g: &ConvGeometry, cols: &mut [f32], phases: &mut Vec<f32>) {
    let (k, s) = (g.kernel, g.stride);
    let phase_w = g.w_in.div_ceil(s);
    phases.resize(g.c_in * s * g.h_in * phase_w, 0.0);
    for (row, phase_rows) in image.chunks_exact(g.w_in).zip(phases.chunks_exact_mut(s * phase_w)) {
        for (r, phase) in phase_rows.chunks_exact_mut(phase_w).enumerate() {
            for (p, &v) in phase.iter_mut().zip(row[r.min(row.len())..].iter().step_by(s)) {
                *p = v;
            }
        }
    }
    for c in 0..g.c_in {
        for ky in 0..k {
            for kx in 0..k {
                let (lo, hi, first) = g.inside_columns(kx);
                let (r, q) = (first % s, first / s);
                let row = &mut cols[((c * k + ky) * k + kx) * g.out_plane()..][..g.out_plane()];
                for (oy, dst) in row.chunks_exact_mut(g.w_out).enumerate() {
                    let Some(iy) = g.source(oy, ky, g.h_in) else {
                        dst.fill(0.0);
                        continue;
                    };
                    dst[..lo].fill(0.0);
                    dst[hi..].fill(0.0);
                    let start = ((c * g.h_in + iy) * s + r) * phase_w + q;
                    dst[lo..hi].copy_from_slice(&phases[start..start + hi - lo]);
                }
            }
        }
    }
}

/// Adds the im2col-shaped `cols` into one image (the adjoint of [`im2col`] when the image
/// holds zeros).
pub fn col2im(cols: &[f32], g: &ConvGeometry, image: &mut [f32]) {
    let (k, s) = (g.kernel, g.stride);
    for c in 0..g.c_in {
        let plane = &mut image[c * g.h_in * g.w_in..(c + 1) * g.h_in * g.w_in];
        for ky in 0..k {
            for kx in 0..k {
                let (lo, hi, first) = g.inside_columns(kx);
                let row = &cols[((c * k + ky) * k + kx) * g.out_plane()..][..g.out_plane()];
                for (oy, src) in row.chunks_exact(g.w_out).enumerate() {
                    let Some(iy) = g.source(oy, ky, g.h_in) else { continue };
                    let dst = &mut plane[iy * g.w_in + first..(iy + 1) * g.w_in];
                    for (j, &v) in src[lo..hi].iter().enumerate() {
                        dst[j * s] += v;
                    }
                }
            }
        }
    }
}

/// A matrix operand: pointer and strides (a transposed view is a swap of the strides).
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    row_stride: isize,
    col_stride: isize,
}

impl<'a> Mat<'a> {
    fn rows(data: &'a [f32], cols: usize) -> Mat<'a> {
        Mat { data, row_stride: cols as isize, col_stride: 1 }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    fn transposed(data: &'a [f32], cols: usize) -> Mat<'a> {
        Mat { data, row_stride: 1, col_stride: cols as isize }
    }
}

/// `dst` (m×n, row-major) = lhs (m×k) · rhs (k×n), or `dst +=` that with `accumulate`;
/// single-threaded, as callers run one product per image in parallel.
fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], lhs: Mat, rhs: Mat, accumulate: bool) {
    assert!(dst.len() >= m * n, "destination too small");
    // SAFETY: the operands cover m×k and k×n elements at their strides (checked by the
    // callers' shapes), and `dst` holds m×n row-major values.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride,
            lhs.row_stride,
            rhs.data.as_ptr(),
            rhs.col_stride,
            rhs.row_stride,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Convolution of a batch: `x` is B×`in_len`, `w` is c_out × col_rows; returns B×`out_len`.
pub fn conv_forward(x: &[f32], w: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let batch = x.len() / g.in_len();
    par_output(
        batch * g.out_len(),
        g.out_len(),
        || (vec![0.0; g.col_rows() * g.out_plane()], Vec::new()),
        |(cols, phases), b, y_b| {
            im2col(image(x, g.in_len(), b), g, cols, phases);
            matmul(
                g.c_out,
                g.out_plane(),
                g.col_rows(),
                y_b,
                Mat::rows(w, g.col_rows()),
                Mat::rows(cols, g.out_plane()),
                false,
            );
        },
    )
}

/// Image `b` of a batch of images of `len` values each.
fn image(batch: &[f32], len: usize, b: usize) -> &[f32] {
    &batch[b * len..(b + 1) * len]
}

/// Gradient of the convolution's input from the output gradient `dy` (B×`out_len`).
pub fn conv_input_grad(dy: &[f32], w: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let batch = dy.len() / g.out_len();
    par_output(
        batch * g.in_len(),
        g.in_len(),
        || vec![0.0; g.col_rows() * g.out_plane()],
        |cols, b, dx_b| {
            matmul(
                g.col_rows(),
                g.out_plane(),
                g.c_out,
                cols,
                Mat::transposed(w, g.col_rows()),
                Mat::rows(image(dy, g.out_len(), b), g.out_plane()),
                false,
            );
            col2im(cols, g, dx_b);
        },
    )
}

/// Images per partial weight gradient. Fixed, not tied to the thread count, so the sum is
/// taken in the same order on every run and machine (resume is bit-exact).
const WEIGHT_GRAD_CHUNK: usize = 4;

/// Gradient of the convolution's weight (c_out × col_rows) from its input and output gradient.
pub fn conv_weight_grad(x: &[f32], dy: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let len = g.c_out * g.col_rows();
    let partials: Vec<Vec<f32>> = x
        .par_chunks(g.in_len() * WEIGHT_GRAD_CHUNK)
        .zip(dy.par_chunks(g.out_len() * WEIGHT_GRAD_CHUNK))
        .map_init(
            || (vec![0.0; g.col_rows() * g.out_plane()], Vec::new()),
            |(cols, phases), (x_chunk, dy_chunk)| {
                let mut dw = vec![0.0; len];
                for (x_b, dy_b) in
                    x_chunk.chunks_exact(g.in_len()).zip(dy_chunk.chunks_exact(g.out_len()))
                {
                    im2col(x_b, g, cols, phases);
                    matmul(
                        g.c_out,
                        g.col_rows(),
                        g.out_plane(),
                        &mut dw,
                        Mat::rows(dy_b, g.out_plane()),
                        Mat::transposed(cols, g.out_plane()),
                        true,
                    );
                }
                dw
            },
        )
        .collect();
    partials
        .into_iter()
        .reduce(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0.0; len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The textbook definition, one multiply-add at a time.
    fn naive_conv(x: &[f32], w: &[f32], g: &ConvGeometry) -> Vec<f32> {
        let batch = x.len() / g.in_len();
        let mut y = vec![0.0; batch * g.out_len()];
        for b in 0..batch {
            for co in 0..g.c_out {
                for oy in 0..g.h_out {
                    for ox in 0..g.w_out {
                        let mut acc = 0.0f64;
                        for ci in 0..g.c_in {
                            for ky in 0..g.kernel {
                                for kx in 0..g.kernel {
                                    let (iy, ix) = (
                                        (oy * g.stride + ky) as i64 - g.padding as i64,
                                        (ox * g.stride + kx) as i64 - g.padding as i64,
                                    );
                                    if iy < 0
                                        || ix < 0
                                        || iy >= g.h_in as i64
                                        || ix >= g.w_in as i64
                                    {
                                        continue;
                                    }
                                    let xv = x[b * g.in_len()
                                        + (ci * g.h_in + iy as usize) * g.w_in
                                        + ix as usize];
                                    let wv =
                                        w[((co * g.c_in + ci) * g.kernel + ky) * g.kernel + kx];
                                    acc += (xv * wv) as f64;
                                }
                            }
                        }
                        y[b * g.out_len() + (co * g.h_out + oy) * g.w_out + ox] = acc as f32;
                    }
                }
            }
        }
        y
    }

    fn random(n: usize, rng: &mut impl Rng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    fn dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum()
    }

    fn assert_close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "element {i}: {x} vs {y}");
        }
    }

    const GEOMETRIES: [(usize, usize, usize, usize, usize); 4] =
        [(1, 16, 3, 4, 2), (3, 9, 5, 3, 1), (4, 8, 2, 4, 2), (2, 7, 3, 3, 2)];

    #[test]
    fn forward_matches_the_textbook_convolution() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for &(c_in, side, c_out, k, s) in &GEOMETRIES {
            let g = ConvGeometry::conv(c_in, side, side, c_out, k, s, 1);
            let (x, w) = (random(3 * g.in_len(), &mut rng), random(c_out * g.col_rows(), &mut rng));
            assert_close(&conv_forward(&x, &w, &g), &naive_conv(&x, &w, &g), 1e-5);
        }
    }

    /// The gradients are adjoints: ⟨dy, conv(x)⟩ = ⟨input_grad(dy), x⟩ = ⟨weight_grad(x, dy), w⟩.
    #[test]
    fn gradients_are_the_adjoints_of_the_forward_pass() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for &(c_in, side, c_out, k, s) in &GEOMETRIES {
            let g = ConvGeometry::conv(c_in, side, side, c_out, k, s, 1);
            let (x, w) = (random(3 * g.in_len(), &mut rng), random(c_out * g.col_rows(), &mut rng));
            let dy = random(3 * g.out_len(), &mut rng);
            let reference = dot(&dy, &naive_conv(&x, &w, &g));
            let via_input = dot(&conv_input_grad(&dy, &w, &g), &x);
            let via_weight = dot(&conv_weight_grad(&x, &dy, &g), &w);
            assert!(
                (reference - via_input).abs() < 1e-3 * (1.0 + reference.abs()),
                "{g:?}: {reference} vs {via_input}"
            );
            assert!(
                (reference - via_weight).abs() < 1e-3 * (1.0 + reference.abs()),
                "{g:?}: {reference} vs {via_weight}"
            );
        }
    }

    #[test]
    fn transposed_geometry_inverts_the_shapes() {
        // The decoder's 4 → 8 step: k4 s2 p1.
        let g = ConvGeometry::transposed(32, 4, 4, 16, 4, 2, 1);
        assert_eq!((g.c_in, g.h_in, g.c_out, g.h_out), (16, 8, 32, 4));
        assert_eq!(ConvGeometry::conv(16, 8, 8, 32, 4, 2, 1), g);
    }
}
