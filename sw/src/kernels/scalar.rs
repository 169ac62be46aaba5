//! Portable kernels: the fallback on CPUs without AVX2+FMA and the oracle the tests compare
//! the SIMD variants against. They are written for obviousness first; the generic bodies are
//! `#[inline(always)]` so that `int32.rs` can also instantiate them inside an AVX2 function.

use rayon::prelude::*;

/// Splits row-major `c` (m x n) into bands of whole rows and runs `f(first_row, band)` on each,
/// on both cores when `par`.
pub(super) fn for_row_bands<T: Send>(
    m: usize,
    n: usize,
    par: bool,
    c: &mut [T],
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if m == 0 || n == 0 {
        return;
    }
    let threads = if par {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    // A few bands per thread so that uneven rows still balance.
    let rows = m.div_ceil(4 * threads).max(1);
    let c = &mut c[..m * n];
    if par {
        c.par_chunks_mut(rows * n)
            .enumerate()
            .for_each(|(t, band)| f(t * rows, band));
    } else {
        c.chunks_mut(rows * n)
            .enumerate()
            .for_each(|(t, band)| f(t * rows, band));
    }
}

/// `band (rows x n) += a_rows (rows x k) * b (k x n)` exactly in i64. Additions wrap modulo 2^64,
/// so the result is exact whenever the final sums fit i64 even if a partial sum does not.
/// Blocked over (n, k) so the touched B block stays in L2 and the C row segment in L1.
#[inline(always)]
pub(super) fn int_band<T: Copy + Into<i64>>(
    k: usize,
    n: usize,
    a_rows: &[T],
    b: &[T],
    band: &mut [i64],
) {
    const KC: usize = 128;
    const NC: usize = 512;
    for j0 in (0..n).step_by(NC) {
        let w = NC.min(n - j0);
        for k0 in (0..k).step_by(KC) {
            let d = KC.min(k - k0);
            for (i, crow) in band.chunks_exact_mut(n).enumerate() {
                let crow = &mut crow[j0..j0 + w];
                for kk in k0..k0 + d {
                    let av: i64 = a_rows[i * k + kk].into();
                    let brow = &b[kk * n + j0..][..w];
                    for (cv, &bv) in crow.iter_mut().zip(brow) {
                        *cv = cv.wrapping_add(av.wrapping_mul(bv.into()));
                    }
                }
            }
        }
    }
}

/// Scalar exact i16 GEMM (c += a*b).
pub(super) fn gemm_i16(
    m: usize,
    n: usize,
    k: usize,
    a: &[i16],
    b: &[i16],
    c: &mut [i64],
    par: bool,
) {
    for_row_bands(m, n, par, c, |r0, band| {
        let rows = band.len() / n;
        int_band(k, n, &a[r0 * k..][..rows * k], b, band);
    });
}

/// Scalar sequential-order f32 GEMM band: each output starts at +0.0 and adds its products in
/// ascending k with separate multiply and add (both f32 round-to-nearest-even), then
/// `finish_f16_outputs`.
pub(super) fn f16_seq_band(k: usize, n: usize, a_rows: &[f32], b: &[f32], band: &mut [f32]) {
    band.fill(0.0);
    for (i, crow) in band.chunks_exact_mut(n).enumerate() {
        for kk in 0..k {
            let av = a_rows[i * k + kk];
            for (cv, &bv) in crow.iter_mut().zip(&b[kk * n..][..n]) {
                *cv += av * bv;
            }
        }
    }
    finish_f16_outputs(band);
}

/// Final pass of `gemm_f16_seq` on every variant: a subnormal becomes a zero of the same sign
/// (the datapath's contract), and any NaN becomes the canonical quiet NaN `f32::NAN`. IEEE 754
/// leaves the payload and sign of a propagated NaN to the implementation, and x86 picks a
/// different operand's NaN for `vfmadd` than for `mulss` + `addss`, so without this the SIMD and
/// scalar variants would differ in NaN bits when NaN or inf*0 occurs.
pub(super) fn finish_f16_outputs(x: &mut [f32]) {
    for v in x {
        if v.is_nan() {
            *v = f32::NAN;
        } else if v.is_subnormal() {
            *v = 0.0f32.copysign(*v);
        }
    }
}
