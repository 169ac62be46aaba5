//! The AVX2 form of the 8-bit kernel (`vnni8`), for CPUs without AVX-512 VNNI (the Zen 1
//! machines this project also runs on). Same packed layouts, schedule (`KPlan`) and fused
//! store, hence the same bits; only the multiply-add differs:
//!
//! - `vpmaddubsw` multiplies A's unsigned bytes (`u = a + Q`, `0..=2Q`) by B's signed codes and
//!   adds adjacent pairs into i16 with signed saturation. A pair is at most `2 * 2Q * Q` in
//!   magnitude, so it never saturates for `Q <= 63` (SQ-7 and narrower); SQ-8 stays on the
//!   reference path here (`path_for`).
//! - The i16 pair sums of up to `L = 32767 / (4 Q^2)` quads (8 for sq6, 167 for sq4) are added
//!   in i16 (`vpaddw`), then widened once into the i32 accumulators (`vpmaddwd` by ones): on
//!   Zen 1 every integer multiply issues on one pipe, so widening per quad would halve the
//!   rate. The i32 accumulators hold exactly what `vpdpbusd` would have summed, so the plan's
//!   shifts and flushes apply unchanged (each widens first).
//!
//! Registers: AVX2 has 16 ymm. A 6 x 32 tile runs as two 6 x 16 halves: 12 i16 accumulators,
//! 2 B vectors, 1 broadcast, the ones; the i32 accumulators live in a stack array, touched once
//! per `L` quads.

use super::{Op, Store, MR, NR};
use crate::kernels::driver::unroll;
use std::arch::x86_64::*;

/// Columns of one half tile.
const HALF: usize = NR / 2;

/// Quads whose pair sums an i16 lane can add without overflow, for codes of magnitude `q`.
pub(super) fn i16_run(q: u32) -> usize {
    let pair = 4 * u64::from(q).max(1) * u64::from(q).max(1);
    (i16::MAX as u64 / pair).max(1) as usize
}

/// Runs the plan for one MR x NR tile and stores it, as `vnni8::x86::run`.
///
/// # Safety
/// AVX2 and FMA present; `a`: MR rows of `lda` bytes; `b`: `lda * NR` bytes; the plan's quads
/// sum to `lda / 4`; codes of magnitude at most `q` with `i16_run(q)` computed from it.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run<const FLUSH: bool>(
    ops: &[Op],
    a: *const u8,
    lda: usize,
    b: *const i8,
    st: &Store,
    l16: usize,
) {
    for h in 0..2 {
        let lo = h * HALF;
        if lo >= st.cols {
            break;
        }
        // SAFETY: forwarded; the half's columns are lo..lo+16 of the panel.
        unsafe { half::<FLUSH>(ops, a, lda, b, st, l16, lo) };
    }
}

/// One 6 x 16 half of the tile: columns `lo..lo + 16` of the panel.
#[target_feature(enable = "avx2,fma")]
#[allow(unused_assignments)] // the last widen's `pending = 0`
unsafe fn half<const FLUSH: bool>(
    ops: &[Op],
    a: *const u8,
    lda: usize,
    b: *const i8,
    st: &Store,
    l16: usize,
    lo: usize,
) {
    let zero = _mm256_setzero_si256();
    let ones = _mm256_set1_epi16(1);
    let mut acc16 = [[zero; 2]; MR];
    let mut acc32 = [[zero; 2]; MR];
    let mut acc64 = [[0i64; HALF]; MR];
    let mut pending = 0usize;
    let e_end = st.e_end;
    let mut e_cur = e_end
        + ops
            .iter()
            .map(|op| if let Op::Shift(s) = op { *s } else { 0 })
            .sum::<u32>();
    // Moves the i16 pair sums into the i32 accumulators.
    macro_rules! widen {
        () => {
            if pending > 0 {
                unroll!(R in [0, 1, 2, 3, 4, 5] {
                    unroll!(V in [0, 1] {
                        acc32[R][V] = _mm256_add_epi32(acc32[R][V], _mm256_madd_epi16(acc16[R][V], ones));
                        acc16[R][V] = zero;
                    });
                });
                pending = 0;
            }
        };
    }
    let mut q = 0usize;
    for &op in ops {
        match op {
            Op::Run(count) => {
                let end = q + count as usize;
                while q < end {
                    let chunk = (l16 - pending).min(end - q);
                    for qq in q..q + chunk {
                        // SAFETY: qq < lda/4: B's quad qq (NR*4 bytes) and A's word at column
                        // 4qq of each of the MR rows are in bounds.
                        let bq = unsafe { b.add(qq * 4 * NR + 4 * lo) };
                        let (b0, b1) = unsafe {
                            (
                                _mm256_loadu_si256(bq.cast()),
                                _mm256_loadu_si256(bq.add(32).cast()),
                            )
                        };
                        unroll!(R in [0, 1, 2, 3, 4, 5] {
                            // SAFETY: see above; the word may be unaligned.
                            let av = _mm256_set1_epi32(unsafe {
                                a.add(R * lda + 4 * qq).cast::<i32>().read_unaligned()
                            });
                            acc16[R][0] = _mm256_add_epi16(acc16[R][0], _mm256_maddubs_epi16(av, b0));
                            acc16[R][1] = _mm256_add_epi16(acc16[R][1], _mm256_maddubs_epi16(av, b1));
                        });
                    }
                    q += chunk;
                    pending += chunk;
                    if pending == l16 {
                        widen!();
                    }
                }
            }
            Op::Shift(s) => {
                widen!();
                let cnt = _mm_cvtsi32_si128(s as i32);
                unroll!(R in [0, 1, 2, 3, 4, 5] {
                    unroll!(V in [0, 1] {
                        acc32[R][V] = _mm256_sll_epi32(acc32[R][V], cnt);
                    });
                });
                e_cur -= s;
            }
            Op::Flush if FLUSH => {
                widen!();
                for r in 0..MR {
                    let mut lanes = [0i32; HALF];
                    // SAFETY: two 8-lane stores into a 16-lane array.
                    unsafe {
                        _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc32[r][0]);
                        _mm256_storeu_si256(lanes.as_mut_ptr().add(8).cast(), acc32[r][1]);
                    }
                    for (d, &v) in acc64[r].iter_mut().zip(&lanes) {
                        *d += i64::from(v) << e_cur;
                    }
                    acc32[r] = [zero; 2];
                }
            }
            Op::Flush => unreachable!("a flush in a plan without flushes"),
        }
    }
    widen!();
    let (sa, sb) = (_mm256_set1_pd(st.sa), _mm256_set1_pd(st.sb));
    for r in 0..st.rows {
        let rp = _mm256_set1_pd(st.row_pow[r]);
        for v in 0..2 {
            let c0 = lo + 8 * v;
            if c0 >= st.cols {
                break;
            }
            let mut out = [0f32; 8];
            if FLUSH {
                let mut lanes = [0i32; 8];
                // SAFETY: one 8-lane store into an 8-lane array.
                unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), acc32[r][v]) };
                for (j, o) in out.iter_mut().enumerate() {
                    // i64: (acc32 << e_end) + flushed - Q cs, in absolute units; the f64
                    // conversion rounds to nearest as `vcvtqq2pd` does.
                    let exact =
                        (i64::from(lanes[j]) << e_end) + acc64[r][8 * v + j] - st.q_cs[c0 + j];
                    let x = (((exact as f64 * st.sa) * st.sb) * st.row_pow[r]) * st.col_fac[c0 + j];
                    *o = x as f32;
                }
            } else {
                // i32, in units of 2^e_end (see `vnni8::x86::run`).
                // SAFETY: the per-column slices hold NR entries; c0 + 8 <= NR.
                let qcs = unsafe { _mm256_loadu_si256(st.q_cs_units.as_ptr().add(c0).cast()) };
                let exact = _mm256_sub_epi32(acc32[r][v], qcs);
                let halves = [
                    _mm256_cvtepi32_pd(_mm256_castsi256_si128(exact)),
                    _mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(exact)),
                ];
                for (i, &e) in halves.iter().enumerate() {
                    // SAFETY: columns c0 + 4i .. + 4 < NR of the column factors.
                    let cf = unsafe { _mm256_loadu_pd(st.col_fac.as_ptr().add(c0 + 4 * i)) };
                    let mut x = _mm256_mul_pd(e, sa);
                    x = _mm256_mul_pd(x, sb);
                    x = _mm256_mul_pd(x, rp);
                    x = _mm256_mul_pd(x, cf);
                    // SAFETY: four lanes into out[4i..4i + 4].
                    unsafe { _mm_storeu_ps(out.as_mut_ptr().add(4 * i), _mm256_cvtpd_ps(x)) };
                }
            }
            let w = 8.min(st.cols - c0);
            // SAFETY: row i0 + r < m and columns j0 + c0 .. + w <= n belong to this tile.
            unsafe {
                if st.transposed {
                    for (t, &v) in out[..w].iter().enumerate() {
                        *st.c.add((st.j0 + c0 + t) * st.ldc + st.i0 + r) = v;
                    }
                } else {
                    let dst = st.c.add((st.i0 + r) * st.ldc + st.j0 + c0);
                    std::ptr::copy_nonoverlapping(out.as_ptr(), dst, w);
                }
            }
        }
    }
}
