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

use std::ops::Range;

use rayon::prelude::*;

use super::{par_output, transpose_into};

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

    /// Side of a phase plane: the input's rows (or columns) with one residue modulo the stride.
    fn plane_side(&self, side: usize) -> usize {
        side.div_ceil(self.stride)
    }

    /// Values in one phase plane.
    fn plane_len(&self) -> usize {
        self.plane_side(self.h_in) * self.plane_side(self.w_in)
    }

    /// Where image row `row_index` (over channels and rows) starts in its first phase plane,
    /// the one of column residue 0; the planes of the other residues follow at `plane_len`.
    fn first_phase_row(&self, row_index: usize) -> usize {
        let (c, iy, s) = (row_index / self.h_in, row_index % self.h_in, self.stride);
        (c * s + iy % s) * s * self.plane_len() + iy / s * self.plane_side(self.w_in)
    }

    /// Values in all phase planes of one image: stride² planes per input channel.
    fn planes_len(&self) -> usize {
        self.c_in * self.stride * self.stride * self.plane_len()
    }

    /// The phase and the shift within it read at kernel offset `k`: output coordinate `o`
    /// reads input coordinate `o·s + k − p`, which is entry `o + shift` of phase `(k − p) mod s`.
    fn phase_and_shift(&self, k: usize) -> (usize, isize) {
        let (t, s) = (k as isize - self.padding as isize, self.stride as isize);
        (t.rem_euclid(s) as usize, t.div_euclid(s))
    }

    /// Calls `visit(row, plane, shift)` for each im2col row `(c, ky, kx)` in order, with its
    /// phase plane (the index among one image's planes) and that plane's (row, column) shift.
    ///
    /// Nested loops over a table of the kernel's taps: an iterator chain here (a flat map over
    /// channels, two divisions per row) took 2% of a dSprites step, as the small layers' rows
    /// are only 16 values long.
    fn for_each_im2col_row(&self, mut visit: impl FnMut(usize, usize, [isize; 2])) {
        let s = self.stride;
        let taps: Vec<(usize, isize)> = (0..self.kernel).map(|t| self.phase_and_shift(t)).collect();
        let mut row = 0;
        for c in 0..self.c_in {
            for &(ry, dy) in &taps {
                for &(rx, dx) in &taps {
                    visit(row, (c * s + ry) * s + rx, [dy, dx]);
                    row += 1;
                }
            }
        }
    }
}

/// The output coordinates `o < out` whose shifted coordinate `o + shift` lies in `0..side`.
fn inside(out: usize, side: usize, shift: isize) -> Range<usize> {
    let lo = (-shift).clamp(0, out as isize) as usize;
    let hi = (side as isize - shift).clamp(lo as isize, out as isize) as usize;
    lo..hi
}

/// Splits one image into its phase planes: plane `(c, ry, rx)` holds the input entries
/// `(c, i·s + ry, j·s + rx)` at `(i, j)`, zero past the image's edge.
///
/// In these planes every im2col row is a shifted copy of one plane, so it is written by a few
/// long copies instead of one short strided gather per output row.
fn split_phases(image: &[f32], g: &ConvGeometry, planes: &mut Vec<f32>) {
    let (s, plane_w, plane_len) = (g.stride, g.plane_side(g.w_in), g.plane_len());
    planes.resize(g.planes_len(), 0.0);
    if !g.h_in.is_multiple_of(s) || !g.w_in.is_multiple_of(s) {
        planes.fill(0.0);
    }
    for (row_index, row) in image.chunks_exact(g.w_in).enumerate() {
        let phases = &mut planes[g.first_phase_row(row_index)..];
        if s == 2 {
            let (even, odd) = phases.split_at_mut(plane_len);
            deinterleave(row, &mut even[..plane_w], &mut odd[..plane_w]);
            continue;
        }
        for (rx, phase) in phases.chunks_mut(plane_len).take(s.min(g.w_in)).enumerate() {
            phase.iter_mut().zip(row[rx..].iter().step_by(s)).for_each(|(d, &v)| *d = v);
        }
    }
}

/// Adds the phase planes back into one image (the adjoint of [`split_phases`]).
fn merge_phases(planes: &[f32], g: &ConvGeometry, image: &mut [f32]) {
    let (s, plane_w, plane_len) = (g.stride, g.plane_side(g.w_in), g.plane_len());
    for (row_index, row) in image.chunks_exact_mut(g.w_in).enumerate() {
        let phases = &planes[g.first_phase_row(row_index)..];
        if s == 2 {
            interleave_add(&phases[..plane_w], &phases[plane_len..][..plane_w], row);
            continue;
        }
        for (rx, phase) in phases.chunks(plane_len).take(s.min(g.w_in)).enumerate() {
            row[rx..].iter_mut().step_by(s).zip(&phase[..plane_w]).for_each(|(d, &v)| *d += v);
        }
    }
}

/// Even entries of `row` to `even`, odd ones to `odd` (stride 2's phase split, in a form the
/// compiler vectorises).
fn deinterleave(row: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let pairs = row.chunks_exact(2);
    if let [last] = pairs.remainder() {
        even[row.len() / 2] = *last;
    }
    for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
        (*e, *o) = (pair[0], pair[1]);
    }
}

/// Adds `even` and `odd` into the even and odd entries of `row` (the adjoint of
/// [`deinterleave`]).
fn interleave_add(even: &[f32], odd: &[f32], row: &mut [f32]) {
    let len = row.len();
    let mut pairs = row.chunks_exact_mut(2);
    for ((e, o), pair) in even.iter().zip(odd).zip(&mut pairs) {
        pair[0] += e;
        pair[1] += o;
    }
    if let [last] = pairs.into_remainder() {
        *last += even[len / 2];
    }
}

/// Writes `dst` (rows of `w`) with entry `(o_y + dy, o_x + dx)` of `plane` (rows of
/// `plane_w`) at `(o_y, o_x)`, zero where that lies outside the plane.
fn copy_shifted(plane: &[f32], plane_w: usize, [dy, dx]: [isize; 2], dst: &mut [f32], w: usize) {
    let (rows, cols) = (inside(dst.len() / w, plane.len() / plane_w, dy), inside(w, plane_w, dx));
    let (before, rest) = dst.split_at_mut(rows.start * w);
    let (block, after) = rest.split_at_mut(rows.len() * w);
    before.fill(0.0);
    after.fill(0.0);
    if cols.is_empty() {
        block.fill(0.0);
        return;
    }
    let source =
        |oy: usize| ((oy as isize + dy) as usize) * plane_w + (cols.start as isize + dx) as usize;
    if w == plane_w {
        // The plane's rows follow one another as the output's do, so one copy writes them all;
        // the entries it carries across a row's end are the ones zeroed below.
        let len = (rows.len() - 1) * w + cols.len();
        let from = source(rows.start);
        block[cols.start..cols.start + len].copy_from_slice(&plane[from..from + len]);
        for column in (0..cols.start).chain(cols.end..w) {
            block[column..].iter_mut().step_by(w).for_each(|v| *v = 0.0);
        }
    } else {
        for (oy, row) in rows.zip(block.chunks_exact_mut(w)) {
            let from = source(oy);
            row[cols.clone()].copy_from_slice(&plane[from..from + cols.len()]);
            row[..cols.start].fill(0.0);
            row[cols.end..].fill(0.0);
        }
    }
}

/// Adds `src` (rows of `w`) into `plane` (rows of `plane_w`) at the shift `[dy, dx]` (the
/// adjoint of [`copy_shifted`]): what falls outside the plane is dropped.
fn add_shifted(src: &[f32], w: usize, [dy, dx]: [isize; 2], plane: &mut [f32], plane_w: usize) {
    let (rows, cols) = (inside(src.len() / w, plane.len() / plane_w, dy), inside(w, plane_w, dx));
    if cols.len() == plane_w && w == plane_w {
        // Whole rows, laid out alike: one run.
        let at = ((rows.start as isize + dy) as usize) * plane_w;
        let from = &src[rows.start * w..rows.end * w];
        plane[at..at + from.len()].iter_mut().zip(from).for_each(|(p, &v)| *p += v);
        return;
    }
    for oy in rows {
        let at = ((oy as isize + dy) as usize) * plane_w + (cols.start as isize + dx) as usize;
        let from = &src[oy * w + cols.start..oy * w + cols.end];
        plane[at..at + cols.len()].iter_mut().zip(from).for_each(|(p, &v)| *p += v);
    }
}

/// Writes the im2col matrix of one image (`col_rows` × `out_plane`, row-major) into `cols`;
/// `planes` is scratch space for its phase planes.
pub fn im2col(image: &[f32], g: &ConvGeometry, cols: &mut [f32], planes: &mut Vec<f32>) {
    split_phases(image, g, planes);
    let (plane_w, plane_len) = (g.plane_side(g.w_in), g.plane_len());
    let out_plane = g.out_plane();
    g.for_each_im2col_row(|row, plane, shift| {
        let dst = &mut cols[row * out_plane..][..out_plane];
        copy_shifted(&planes[plane * plane_len..][..plane_len], plane_w, shift, dst, g.w_out);
    });
}

/// Adds the im2col-shaped `cols` into one image (the adjoint of [`im2col`]); `planes` is
/// scratch space. Each image entry receives its terms in the order of the im2col rows.
pub fn col2im(cols: &[f32], g: &ConvGeometry, image: &mut [f32], planes: &mut Vec<f32>) {
    planes.clear();
    planes.resize(g.planes_len(), 0.0);
    let (plane_w, plane_len) = (g.plane_side(g.w_in), g.plane_len());
    let out_plane = g.out_plane();
    g.for_each_im2col_row(|row, plane, shift| {
        let src = &cols[row * out_plane..][..out_plane];
        add_shifted(src, g.w_out, shift, &mut planes[plane * plane_len..][..plane_len], plane_w);
    });
    merge_phases(planes, g, image);
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
    matmul_strided(m, n, k, dst, [n as isize, 1], lhs, rhs, accumulate);
}

/// [`matmul`] into `dst` stored at (row, column) strides `dst_strides`.
#[allow(clippy::too_many_arguments)]
fn matmul_strided(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    [dst_rs, dst_cs]: [isize; 2],
    lhs: Mat,
    rhs: Mat,
    accumulate: bool,
) {
    assert!(dst.len() >= m * n, "destination too small");
    // SAFETY: the operands cover m×k and k×n elements at their strides (checked by the
    // callers' shapes), and `dst` holds m×n values at its strides.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs,
            dst_rs,
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
        |(cols, planes), b, y_b| {
            im2col(image(x, g.in_len(), b), g, cols, planes);
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
        || (vec![0.0; g.col_rows() * g.out_plane()], Vec::new()),
        |(cols, planes), b, dx_b| {
            matmul(
                g.col_rows(),
                g.out_plane(),
                g.c_out,
                cols,
                Mat::transposed(w, g.col_rows()),
                Mat::rows(image(dy, g.out_len(), b), g.out_plane()),
                false,
            );
            col2im(cols, g, dx_b, planes);
        },
    )
}

/// Images per partial weight gradient. Fixed, not tied to the thread count, so the sum is
/// taken in the same order on every run and machine (resume is bit-exact).
const WEIGHT_GRAD_CHUNK: usize = 4;

/// Gradient of the convolution's weight (c_out × col_rows) from its input and output gradient.
///
/// Each partial sum is kept transposed (col_rows × c_out, row-major), which is the product's
/// column-major form: gemm then streams the im2col matrix as it is, where a row-major product
/// made it repack that whole matrix per image to spare the far smaller output gradient (about
/// 4% of a dSprites step at one thread, of the 12% gemm spent packing, in a profile).
pub fn conv_weight_grad(x: &[f32], dy: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let len = g.c_out * g.col_rows();
    let partials: Vec<Vec<f32>> = x
        .par_chunks(g.in_len() * WEIGHT_GRAD_CHUNK)
        .zip(dy.par_chunks(g.out_len() * WEIGHT_GRAD_CHUNK))
        .map_init(
            || (vec![0.0; g.col_rows() * g.out_plane()], Vec::new(), vec![0.0; g.out_len()]),
            |(cols, planes, dy_t), (x_chunk, dy_chunk)| {
                let mut dw_t = vec![0.0; len];
                for (x_b, dy_b) in
                    x_chunk.chunks_exact(g.in_len()).zip(dy_chunk.chunks_exact(g.out_len()))
                {
                    im2col(x_b, g, cols, planes);
                    transpose_into(dy_b, g.c_out, g.out_plane(), dy_t);
                    matmul_strided(
                        g.c_out,
                        g.col_rows(),
                        g.out_plane(),
                        &mut dw_t,
                        [1, g.c_out as isize],
                        Mat::transposed(dy_t, g.c_out),
                        Mat::transposed(cols, g.out_plane()),
                        true,
                    );
                }
                dw_t
            },
        )
        .collect();
    let dw_t = partials
        .into_iter()
        .reduce(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0.0; len]);
    transpose(&dw_t, g.col_rows(), g.c_out)
}

/// The transpose of a row-major `rows` × `cols` matrix.
fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * cols];
    transpose_into(a, rows, cols, &mut out);
    out
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

    const GEOMETRIES: [(usize, usize, usize, usize, usize); 6] = [
        (1, 16, 3, 4, 2),
        (3, 9, 5, 3, 1),
        (4, 8, 2, 4, 2),
        (2, 7, 3, 3, 2),
        (2, 9, 3, 5, 1),
        (3, 8, 2, 2, 2),
    ];

    /// im2col row `(c, ky, kx)`, column `(oy, ox)` holds input `(c, oy·s + ky − p, ox·s + kx − p)`,
    /// or zero outside the image: checked exactly, with the output rows as wide as the phase
    /// planes (one copy per im2col row) and not (one copy per output row), with image sides the
    /// stride does and does not divide.
    #[test]
    fn im2col_gathers_what_its_definition_says() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (c_in, side, k, s, p) in [
            (3, 64, 4, 2, 1),
            (2, 7, 3, 2, 1),
            (2, 9, 5, 1, 1),
            (3, 8, 2, 2, 1),
            (2, 7, 4, 2, 0),
            (2, 6, 3, 3, 2),
        ] {
            let g = ConvGeometry::conv(c_in, side, side, 1, k, s, p);
            let x = random(g.in_len(), &mut rng);
            let (mut cols, mut planes) = (vec![f32::NAN; g.col_rows() * g.out_plane()], Vec::new());
            im2col(&x, &g, &mut cols, &mut planes);
            let mut expected = Vec::with_capacity(cols.len());
            for (c, ky, kx) in (0..c_in).flat_map(|c| (0..k * k).map(move |t| (c, t / k, t % k))) {
                for (oy, ox) in (0..g.h_out).flat_map(|oy| (0..g.w_out).map(move |ox| (oy, ox))) {
                    let at = |o: usize, t: usize| (o * s + t).checked_sub(p).filter(|&i| i < side);
                    expected.push(match (at(oy, ky), at(ox, kx)) {
                        (Some(iy), Some(ix)) => x[(c * side + iy) * side + ix],
                        _ => 0.0,
                    });
                }
            }
            assert_eq!(cols, expected, "c_in {c_in}, side {side}, k{k} s{s} p{p}");
        }
    }

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
