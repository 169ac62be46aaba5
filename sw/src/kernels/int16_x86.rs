//! x86-64 micro-kernels for the i16 path (see `int16.rs` for packing and run lengths).
//!
//! Two families:
//! - the *widening* kernel (6x16, AVX2): i32 accumulators summed for `run` k-pairs, then
//!   sign-extended and added into the i64 C tile in memory. Best on AVX2 when runs are long.
//! - *split* kernels (3x16 AVX2 for short runs, e.g. sq8 values that carry no common power of
//!   two; 6x32 AVX-512 VNNI for all runs): after each run the i32 accumulator `acc` is split as
//!   `hi += acc >> 16; acc &= 0xFFFF`, which keeps `hi * 2^16 + acc` equal to the exact sum while
//!   leaving `acc` in [0, 2^16), so the next run only needs 2^16 of headroom. That is three cheap
//!   register ops instead of a trip through memory, at the price of a second register per
//!   accumulator (hence the smaller tile). `hi` grows by at most 2^15 per run, so it cannot
//!   overflow within a depth block. C is touched once per depth block.

use super::driver::{unroll, APanel, Blocking, Micro};
use std::arch::x86_64::*;

/// 6 x 16 tile: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16 registers.
/// kc = 256 pairs: B micro-panel 16 KiB (L1); measured flat from 128 to 512 pairs.
pub(crate) const AVX2_BLOCKING: Blocking = Blocking {
    kc: 256,
    mc_panels: 32,
};

pub(crate) struct Avx2I16 {
    /// Pairs that may be summed in i32 before widening.
    pub(crate) run: usize,
    /// Left shift restoring the power-of-two factors divided out of A and B.
    pub(crate) shift: u32,
}

impl Micro for Avx2I16 {
    type P = i32;
    type C = i64;
    const MR: usize = 6;
    const NR: usize = 16;

    unsafe fn run(&self, depth: usize, a: APanel, b: *const i32, c: *mut i64, ldc: usize, _: bool) {
        // SAFETY: the caller upholds `Micro::run`'s contract, which is this kernel's contract;
        // Avx2I16 is only constructed when AVX2 was detected.
        unsafe { kernel_avx2(depth, self.run, self.shift, a, b, c, ldc) }
    }
}

/// # Safety
/// AVX2 present; `a`: 6 rows x depth steps in bounds (see `Micro::run`), `b`: depth*16 reads,
/// `c`: 6 rows x 16 at stride `ldc`.
#[target_feature(enable = "avx2")]
unsafe fn kernel_avx2(
    depth: usize,
    run: usize,
    shift: u32,
    a: APanel,
    b: *const i32,
    c: *mut i64,
    ldc: usize,
) {
    const MR: usize = 6;
    let cnt = _mm_set_epi64x(0, i64::from(shift));
    let mut p = 0;
    while p < depth {
        let steps = run.min(depth - p);
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        for q in p..p + steps {
            // SAFETY: q < depth, so b[q*16..q*16+16] and A's step q are in bounds.
            let (b0, b1) = unsafe {
                (
                    _mm256_loadu_si256(b.add(q * 16).cast()),
                    _mm256_loadu_si256(b.add(q * 16 + 8).cast()),
                )
            };
            unroll!(R in [0, 1, 2, 3, 4, 5] {
                // SAFETY: R < 6, see above; the word may be unaligned.
                let av = _mm256_set1_epi32(unsafe {
                    a.a.add(R * a.rs + q * a.cs).cast::<i32>().read_unaligned()
                });
                acc[R][0] = _mm256_add_epi32(acc[R][0], _mm256_madd_epi16(av, b0));
                acc[R][1] = _mm256_add_epi32(acc[R][1], _mm256_madd_epi16(av, b1));
            });
        }
        // Widen: lanes 0..3 / 4..7 of each i32 vector are columns h*8+0..3 / h*8+4..7.
        unroll!(R in [0, 1, 2, 3, 4, 5] {
            unroll!(H in [0, 1] {
                let v = acc[R][H];
                let mut lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v));
                let mut hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(v));
                if shift != 0 {
                    lo = _mm256_sll_epi64(lo, cnt);
                    hi = _mm256_sll_epi64(hi, cnt);
                }
                // SAFETY: row R < 6, columns H*8..H*8+8 < 16 of the caller's C tile.
                unsafe {
                    let d0 = c.add(R * ldc + H * 8).cast::<__m256i>();
                    let d1 = c.add(R * ldc + H * 8 + 4).cast::<__m256i>();
                    _mm256_storeu_si256(d0, _mm256_add_epi64(_mm256_loadu_si256(d0), lo));
                    _mm256_storeu_si256(d1, _mm256_add_epi64(_mm256_loadu_si256(d1), hi));
                }
            });
        });
        p += steps;
    }
}

/// 3 x 16 split tile: 6 accumulators + 6 `hi` + 2 B + 1 broadcast = 15 of 16 ymm registers.
pub(crate) const AVX2_SPLIT_BLOCKING: Blocking = Blocking {
    kc: 256,
    mc_panels: 64,
};

pub(crate) struct Avx2Split {
    /// Pairs per run; run * max pair sum + 0xFFFF must fit i32.
    pub(crate) run: usize,
    pub(crate) shift: u32,
}

impl Micro for Avx2Split {
    type P = i32;
    type C = i64;
    const MR: usize = 3;
    const NR: usize = 16;

    unsafe fn run(&self, depth: usize, a: APanel, b: *const i32, c: *mut i64, ldc: usize, _: bool) {
        // SAFETY: the caller upholds `Micro::run`'s contract, which is this kernel's contract;
        // Avx2Split is only constructed when AVX2 was detected.
        unsafe { kernel_avx2_split(depth, self.run, self.shift, a, b, c, ldc) }
    }
}

/// # Safety
/// AVX2 present; `a`: 3 rows x depth steps in bounds (see `Micro::run`), `b`: depth*16 reads,
/// `c`: 3 rows x 16 at stride `ldc`.
#[target_feature(enable = "avx2")]
unsafe fn kernel_avx2_split(
    depth: usize,
    run: usize,
    shift: u32,
    a: APanel,
    b: *const i32,
    c: *mut i64,
    ldc: usize,
) {
    const MR: usize = 3;
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    let mut hi = [[_mm256_setzero_si256(); 2]; MR];
    let mask = _mm256_set1_epi32(0xFFFF);
    let mut p = 0;
    while p < depth {
        let steps = run.min(depth - p);
        for q in p..p + steps {
            // SAFETY: q < depth, so b[q*16..q*16+16] and A's step q are in bounds.
            let (b0, b1) = unsafe {
                (
                    _mm256_loadu_si256(b.add(q * 16).cast()),
                    _mm256_loadu_si256(b.add(q * 16 + 8).cast()),
                )
            };
            unroll!(R in [0, 1, 2] {
                // SAFETY: R < 3, see above; the word may be unaligned.
                let av = _mm256_set1_epi32(unsafe {
                    a.a.add(R * a.rs + q * a.cs).cast::<i32>().read_unaligned()
                });
                acc[R][0] = _mm256_add_epi32(acc[R][0], _mm256_madd_epi16(av, b0));
                acc[R][1] = _mm256_add_epi32(acc[R][1], _mm256_madd_epi16(av, b1));
            });
        }
        unroll!(R in [0, 1, 2] {
            unroll!(H in [0, 1] {
                hi[R][H] = _mm256_add_epi32(hi[R][H], _mm256_srai_epi32::<16>(acc[R][H]));
                acc[R][H] = _mm256_and_si256(acc[R][H], mask);
            });
        });
        p += steps;
    }
    let cnt = _mm_set_epi64x(0, i64::from(shift));
    unroll!(R in [0, 1, 2] {
        unroll!(H in [0, 1] {
            // sum = hi * 2^16 + acc, per 4-lane half, then the power-of-two rescale.
            let (v, h) = (acc[R][H], hi[R][H]);
            let mut lo = _mm256_add_epi64(
                _mm256_slli_epi64::<16>(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(h))),
                _mm256_cvtepi32_epi64(_mm256_castsi256_si128(v)),
            );
            let mut up = _mm256_add_epi64(
                _mm256_slli_epi64::<16>(_mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(h))),
                _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(v)),
            );
            if shift != 0 {
                lo = _mm256_sll_epi64(lo, cnt);
                up = _mm256_sll_epi64(up, cnt);
            }
            // SAFETY: row R < 3, columns H*8..H*8+8 < 16 of the caller's C tile.
            unsafe {
                let d0 = c.add(R * ldc + H * 8).cast::<__m256i>();
                let d1 = c.add(R * ldc + H * 8 + 4).cast::<__m256i>();
                _mm256_storeu_si256(d0, _mm256_add_epi64(_mm256_loadu_si256(d0), lo));
                _mm256_storeu_si256(d1, _mm256_add_epi64(_mm256_loadu_si256(d1), up));
            }
        });
    });
}

/// 6 x 32 split tile: 12 accumulators + 12 `hi` + 2 B + broadcasts, of 32 zmm registers.
/// kc = 256 pairs (B micro-panel 32 KiB): 5% faster than 128 at 512^3, 512 pairs no better.
pub(crate) const AVX512_SPLIT_BLOCKING: Blocking = Blocking {
    kc: 256,
    mc_panels: 32,
};

pub(crate) struct Avx512Split {
    /// Pairs per run; run * max pair sum + 0xFFFF must fit i32.
    pub(crate) run: usize,
    pub(crate) shift: u32,
}

impl Micro for Avx512Split {
    type P = i32;
    type C = i64;
    const MR: usize = 6;
    const NR: usize = 32;

    unsafe fn run(&self, depth: usize, a: APanel, b: *const i32, c: *mut i64, ldc: usize, _: bool) {
        // SAFETY: as for Avx2Split; Avx512Split is only built when AVX-512 F/BW/VL/VNNI were
        // detected.
        unsafe { kernel_avx512_split(depth, self.run, self.shift, a, b, c, ldc) }
    }
}

/// # Safety
/// AVX-512 F/BW/VL/VNNI present; `a`: 6 rows x depth steps in bounds (see `Micro::run`), `b`:
/// depth*32 reads, `c`: 6 rows x 32 at stride `ldc`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn kernel_avx512_split(
    depth: usize,
    run: usize,
    shift: u32,
    a: APanel,
    b: *const i32,
    c: *mut i64,
    ldc: usize,
) {
    const MR: usize = 6;
    let mut acc = [[_mm512_setzero_si512(); 2]; MR];
    let mut hi = [[_mm512_setzero_si512(); 2]; MR];
    let mask = _mm512_set1_epi32(0xFFFF);
    let mut p = 0;
    while p < depth {
        let steps = run.min(depth - p);
        for q in p..p + steps {
            // SAFETY: q < depth, so b[q*32..q*32+32] and A's step q are in bounds.
            let (b0, b1) = unsafe {
                (
                    _mm512_loadu_si512(b.add(q * 32).cast()),
                    _mm512_loadu_si512(b.add(q * 32 + 16).cast()),
                )
            };
            unroll!(R in [0, 1, 2, 3, 4, 5] {
                // SAFETY: R < 6, see above; the word may be unaligned.
                let av = _mm512_set1_epi32(unsafe {
                    a.a.add(R * a.rs + q * a.cs).cast::<i32>().read_unaligned()
                });
                acc[R][0] = _mm512_dpwssd_epi32(acc[R][0], av, b0);
                acc[R][1] = _mm512_dpwssd_epi32(acc[R][1], av, b1);
            });
        }
        unroll!(R in [0, 1, 2, 3, 4, 5] {
            unroll!(H in [0, 1] {
                hi[R][H] = _mm512_add_epi32(hi[R][H], _mm512_srai_epi32::<16>(acc[R][H]));
                acc[R][H] = _mm512_and_si512(acc[R][H], mask);
            });
        });
        p += steps;
    }
    let cnt = _mm_set_epi64x(0, i64::from(shift));
    unroll!(R in [0, 1, 2, 3, 4, 5] {
        unroll!(H in [0, 1] {
            let (v, h) = (acc[R][H], hi[R][H]);
            let mut lo = _mm512_add_epi64(
                _mm512_slli_epi64::<16>(_mm512_cvtepi32_epi64(_mm512_castsi512_si256(h))),
                _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)),
            );
            let mut up = _mm512_add_epi64(
                _mm512_slli_epi64::<16>(_mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(h))),
                _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(v)),
            );
            if shift != 0 {
                lo = _mm512_sll_epi64(lo, cnt);
                up = _mm512_sll_epi64(up, cnt);
            }
            // SAFETY: row R < 6, columns H*16..H*16+16 < 32 of the caller's C tile.
            unsafe {
                let d0 = c.add(R * ldc + H * 16);
                let d1 = c.add(R * ldc + H * 16 + 8);
                _mm512_storeu_si512(d0.cast(), _mm512_add_epi64(_mm512_loadu_si512(d0.cast()), lo));
                _mm512_storeu_si512(d1.cast(), _mm512_add_epi64(_mm512_loadu_si512(d1.cast()), up));
            }
        });
    });
}
