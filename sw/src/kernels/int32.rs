//! Exact i32 x i32 -> i64 GEMM: the rare path for operands that do not fit i16 (and for i16
//! operands too close to -32768 for a single `vpmaddwd`). Plain blocked loops from `scalar.rs`,
//! compiled a second time with AVX2 enabled so LLVM can use `vpmuldq` (32x32->64 multiply) on
//! 4 lanes at a time, plus rayon over row bands.

use super::scalar::{for_row_bands, int_band};
use super::{want_threads, Isa};

pub(super) fn gemm(isa: Isa, m: usize, n: usize, k: usize, a: &[i32], b: &[i32], c: &mut [i64]) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let par = want_threads(m, n, k);
    for_row_bands(m, n, par, c, |r0, band| {
        let rows = band.len() / n;
        let a_rows = &a[r0 * k..][..rows * k];
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `isa` was clamped to what the CPU supports, and Avx2/Avx512 imply AVX2.
            Isa::Avx2 | Isa::Avx512 => unsafe { band_avx2(k, n, a_rows, b, band) },
            _ => int_band(k, n, a_rows, b, band),
        }
    });
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn band_avx2(k: usize, n: usize, a_rows: &[i32], b: &[i32], band: &mut [i64]) {
    int_band(k, n, a_rows, b, band);
}
