//! Process-level performance settings.

/// Keeps freed memory inside the process instead of returning it to the OS after every
/// training step. burn-flex frees and re-allocates the same large activation buffers each
/// step; with glibc's defaults those go back to the kernel, which must clear the pages again
/// on the next step (measured: about a fifth of step time, +40% throughput when kept).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tunables; it is called before any threads start.
    unsafe {
        // Serve large blocks from the heap (32 MiB is glibc's ceiling for this threshold)…
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        // …and never trim the heap back to the kernel.
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Hands the memory [`keep_freed_memory`] kept back to the OS, once, where training ends and
/// evaluation begins: evaluation allocates in other sizes than training's steps, so what the
/// steps kept is not reused and would stay resident under evaluation's own peak.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Makes this thread and every thread of rayon's pool (where the CPU kernels run) flush
/// subnormal floats to zero.
///
/// Once the cycle terms have converged, their gradients are posterior probabilities of
/// components a code is far from (e^-90 and below): subnormal numbers, for which x86 CPUs
/// take a microcode assist on every multiply-add. They filled the convolutions' backward
/// passes and made a dSprites decoder-only step 3.8× slower (0.66 → 0.175 s at 2 threads);
/// flushed, results differ only in values below 1.2e-38.
pub fn flush_subnormals() {
    flush_subnormals_on_this_thread();
    rayon::broadcast(|_| flush_subnormals_on_this_thread());
}

/// [`flush_subnormals`] for the calling thread only (threads outside rayon's pool that compute,
/// such as the explorer's request handlers).
///
/// Hand-written because the crates that set these flags do so only for the length of a
/// closure, and rayon's worker threads must keep them for the whole run.
pub fn flush_subnormals_on_this_thread() {
    #[cfg(target_arch = "x86_64")]
    {
        // MXCSR: FTZ (bit 15) flushes subnormal results to zero, DAZ (bit 6) reads subnormal
        // inputs as zero; they govern SSE, AVX and AVX-512 arithmetic alike.
        const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);
        let mut csr = 0u32;
        // SAFETY: stmxcsr stores this thread's MXCSR into `csr`, ldmxcsr loads it back with the
        // two flags set; neither touches any other state.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
            csr |= FTZ_DAZ;
            std::arch::asm!(
                "ldmxcsr [{}]",
                in(reg) &csr,
                options(nostack, preserves_flags, readonly)
            );
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        // FPCR bit 24 (FZ): subnormal inputs and results of single and double precision are zero.
        const FZ: u64 = 1 << 24;
        // SAFETY: reads this thread's FPCR and writes it back with FZ set; nothing else changes.
        unsafe {
            let fpcr: u64;
            std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack));
            std::arch::asm!(
                "msr fpcr, {}",
                in(reg) fpcr | FZ,
                options(nomem, nostack)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Half of the smallest normal float: a subnormal number unless flushed.
    fn half_of_smallest_normal() -> f32 {
        std::hint::black_box(f32::MIN_POSITIVE) * std::hint::black_box(0.5)
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn subnormal_results_are_zero_here_and_on_rayons_threads() {
        // On a fresh thread, so the flags of other tests' threads do not matter.
        std::thread::spawn(|| {
            assert!(half_of_smallest_normal() > 0.0, "IEEE 754 gives a subnormal number");
            flush_subnormals();
            assert_eq!(half_of_smallest_normal(), 0.0);
            let on_pool = rayon::broadcast(|_| half_of_smallest_normal());
            assert!(on_pool.iter().all(|&v| v == 0.0), "{on_pool:?}");
            // Normal numbers are untouched.
            assert_eq!(std::hint::black_box(f32::MIN_POSITIVE) * 2.0, f32::MIN_POSITIVE * 2.0);
        })
        .join()
        .unwrap();
    }
}
