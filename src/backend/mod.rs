//! Where the tensors run, and our CPU kernels as burn backend extensions.
//!
//! Training runs on burn's pure-Rust Flex backend by default and on CUDA with the `cuda`
//! feature ([`training_device`]). On Flex, the ops that profiles showed burn's generic forms
//! to be slow at are our own kernels: convolutions ([`conv`], over [`im2col`]), batch norm
//! fused with LeakyReLU ([`norm`]), binary cross-entropy and tanh ([`pointwise`]), dense
//! layers' input gradient ([`dense`]), and Adam ([`adam`]), their loops compiled for the CPU
//! they run on ([`vector`]). Each falls back to burn's own op on any other device, so the GPU
//! path never sees this code, and each is tested against burn's op in values and gradients.

pub mod adam;
pub mod conv;
pub mod dense;
pub mod im2col;
pub mod norm;
pub mod pointwise;
pub mod vector;

use std::mem::MaybeUninit;

use burn::backend::DispatchDevice;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::DType;

pub use conv::{conv_options, conv_transpose2d, conv2d, transpose_options};

use rayon::prelude::*;

use crate::Result;

/// The device training runs on, and the backend's name: Flex (CPU) by default, CUDA with the
/// `cuda` feature.
pub fn training_device() -> Result<(Device, &'static str)> {
    // Every run's CPU work (Flex's kernels, and evaluation's on any backend) flushes
    // subnormals, so a run computes the same from the library as from the binary.
    crate::perf::flush_subnormals();
    #[cfg(feature = "cuda")]
    {
        cuda_driver_present()?;
        Ok((Device::cuda(0), "cuda"))
    }
    #[cfg(not(feature = "cuda"))]
    {
        Ok((Device::flex(), "flex"))
    }
}

/// cudarc panics on a worker thread when it cannot load the NVIDIA driver, which would leave
/// the user a backtrace; looking for the library first gives one clear error instead.
#[cfg(feature = "cuda")]
fn cuda_driver_present() -> Result<()> {
    let loads = |name: &str| {
        let name = std::ffi::CString::new(name).expect("no NUL in a library name");
        // SAFETY: dlopen with a valid C string; the handle is only tested, never used.
        !unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_LAZY) }.is_null()
    };
    if ["libcuda.so.1", "libcuda.so"].into_iter().any(loads) {
        Ok(())
    } else {
        Err(crate::Error::Invalid(
            "this relatent was built with --features cuda, but no NVIDIA driver (libcuda.so) is installed here; build without the feature to train on the CPU".into(),
        ))
    }
}

/// Whether tensors on `device` run on Flex (directly or under autodiff).
pub(crate) fn on_flex(device: &Device) -> bool {
    matches!(device.as_dispatch().clone().inner(), DispatchDevice::Flex(_))
}

/// Dimensions of a `D`-dimensional Flex tensor.
fn dims<const D: usize>(t: &FlexTensor) -> [usize; D] {
    let s = t.layout().shape();
    std::array::from_fn(|i| s[i])
}

/// A Flex tensor of `shape` holding `values` (row-major).
fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// A contiguous f32 Flex tensor's values.
fn values(t: &FlexTensor) -> &[f32] {
    t.storage::<f32>()
}

/// Whether our kernels take these tensors (f32; other dtypes use burn's ops).
fn f32_inputs(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

/// A kernel's output of `len` values, written in parallel: `fill(scratch, i, piece)` writes
/// piece `i` (values `i·chunk..`, the last piece possibly shorter), which it receives zeroed;
/// `scratch` is a worker's state made by `init`.
///
/// `vec![0.0; len]` zeroed the whole output on the calling thread before any worker started:
/// a profile of a dSprites training step at 2 threads found that serial memset at 7% of its
/// wall time. Here each worker zeroes the piece it is about to write, while it is in cache.
fn par_output<S>(
    len: usize,
    chunk: usize,
    init: impl Fn() -> S + Sync + Send,
    fill: impl Fn(&mut S, usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len].par_chunks_mut(chunk).enumerate().for_each_init(
        init,
        |scratch, (i, piece)| {
            piece.fill(MaybeUninit::new(0.0));
            // SAFETY: every value of `piece` was written on the line above.
            let piece = unsafe { &mut *(piece as *mut [MaybeUninit<f32>] as *mut [f32]) };
            fill(scratch, i, piece);
        },
    );
    // SAFETY: the capacity is `len`, and for_each_init returned only after zeroing every piece
    // (a panic in `fill` unwinds past this line, and `out` is dropped with length 0).
    unsafe { out.set_len(len) };
    out
}

/// Side of the blocks [`transpose_into`] moves through a local copy.
const TRANSPOSE_BLOCK: usize = 16;

/// Writes the transpose of the row-major `rows` × `cols` matrix `a` into `out`.
///
/// gemm packs an operand whose rows are not contiguous by reading it a column at a time; for
/// an output gradient of 1 024-value rows those reads are 4 KiB apart and collide in the
/// cache, so packing cost a dSprites step's first weight gradient four times its arithmetic.
/// Here each 16 × 16 block is read by rows into a local array and written out by rows (a
/// 32 × 1 024 matrix in 13 µs where an element-by-element tiled loop took 17 µs, and gemm's
/// packing about 50 µs); the ragged edges go element by element.
pub(crate) fn transpose_into(a: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    for (band, out_band) in out[..rows * cols].chunks_mut(TRANSPOSE_BLOCK * rows).enumerate() {
        transpose_band(a, rows, cols, band * TRANSPOSE_BLOCK, out_band);
    }
}

/// [`transpose_into`] with its bands of columns shared among the threads: for a dense layer's
/// weight, which gemm would otherwise have packed on every thread at once (a 1 024 × 1 024
/// transpose takes 0.8 ms on one, bound by memory).
pub(crate) fn par_transpose_into(a: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    out[..rows * cols].par_chunks_mut(TRANSPOSE_BLOCK * rows).enumerate().for_each(
        |(band, out_band)| transpose_band(a, rows, cols, band * TRANSPOSE_BLOCK, out_band),
    );
}

/// Writes columns `c0..` of `a` (as many as `out_band` has rows of `rows` values) into
/// `out_band`, the rows of the transpose they become.
fn transpose_band(a: &[f32], rows: usize, cols: usize, c0: usize, out_band: &mut [f32]) {
    const B: usize = TRANSPOSE_BLOCK;
    let width = out_band.len() / rows;
    let mut block = [[0.0f32; B]; B];
    for r0 in (0..rows).step_by(B) {
        let height = B.min(rows - r0);
        if height < B || width < B {
            for r in r0..r0 + height {
                for c in 0..width {
                    out_band[c * rows + r] = a[r * cols + c0 + c];
                }
            }
            continue;
        }
        for (i, block_row) in block.iter_mut().enumerate() {
            block_row.copy_from_slice(&a[(r0 + i) * cols + c0..][..B]);
        }
        for j in 0..B {
            let out_row = &mut out_band[j * rows + r0..][..B];
            for (i, v) in out_row.iter_mut().enumerate() {
                *v = block[i][j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_output_hands_every_piece_zeroed_with_its_index() {
        // Freed memory of the same size, full of NaN, is what the allocator hands out next.
        drop(std::hint::black_box(vec![f32::NAN; 10]));
        // 10 values in pieces of 4: two full pieces and a short last one.
        let out = par_output(
            10,
            4,
            || (),
            |_, i, piece| {
                assert!(piece.iter().all(|&v| v == 0.0), "piece {i} arrives zeroed");
                assert_eq!(piece.len(), if i == 2 { 2 } else { 4 });
                for (j, v) in piece.iter_mut().enumerate() {
                    *v = (i * 4 + j) as f32;
                }
            },
        );
        assert_eq!(out, (0..10).map(|v| v as f32).collect::<Vec<_>>());
        assert!(par_output(0, 4, || (), |_, _, _| unreachable!("no pieces")).is_empty());
    }

    #[test]
    fn transposes_move_every_value_in_whole_blocks_and_ragged_edges() {
        // Whole 16 × 16 blocks only, ragged rows and columns, and smaller than one block.
        for (rows, cols) in [(32, 64), (20, 81), (6, 441), (3, 5)] {
            let a: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
            let mut out = vec![f32::NAN; rows * cols];
            transpose_into(&a, rows, cols, &mut out);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(out[c * rows + r], a[r * cols + c], "{rows}×{cols} at ({r}, {c})");
                }
            }
            let mut shared = vec![f32::NAN; rows * cols];
            par_transpose_into(&a, rows, cols, &mut shared);
            assert_eq!(shared, out, "{rows}×{cols} on every thread");
        }
    }
}
