//! Exact i16 x i16 -> i64 GEMM.
//!
//! The SIMD kernels multiply with `vpmaddwd` (AVX2) / `vpdpwssd` (AVX-512 VNNI): each i32 lane gets
//! `a[2p]*b[2p][j] + a[2p+1]*b[2p+1][j]`, so A and B are packed as *k-pairs* (one i32 holding two
//! i16, low half = even k). The lane sums stay in i32 for a bounded number of pairs (a "run"), then
//! are sign-extended and added into the i64 C tile.
//!
//! Run length: with |a| <= A and |b| <= B every pair sum is at most 2AB in magnitude (that also
//! bounds `vpmaddwd`'s own pairwise sum, whose only wrapping case is 2*(-32768)^2 = 2^31), so `r`
//! pairs are safe while r*2AB <= i32::MAX. The bounds used are the ones *measured* by a scan of the
//! operands, which also ORs all entries: ShiftQuant codes with the shift folded in (q * 2^E) have
//! E common trailing zero bits, which we shift out of A and B before packing and shift back into
//! the i64 result (exact). E.g. sq8 with E=7 (|a| <= 16256) only allows 4 pairs per run as is, but
//! after removing 2^7 from both operands |q| <= 127 allows 66572 pairs per run.
//! If even one pair can overflow (2AB > i32::MAX, i.e. values near -32768 on both sides), the
//! product is routed through the i32 kernel instead.

use super::driver::{pack_panels, run_blocked, Blocking, Micro, Packed};
use super::{int32, scalar, want_threads, Isa};

/// OR of all entries' bit patterns and the largest |entry| (as u32 so that |-32768| fits).
fn scan(x: &[i16]) -> (u16, u32) {
    // Two plain reductions that LLVM vectorises; a pass over A and B is O(mk + kn), noise next
    // to the O(mnk) product.
    let or = x.iter().fold(0u16, |acc, &v| acc | v as u16);
    let max = x.iter().fold(0u16, |acc, &v| acc.max(v.unsigned_abs()));
    (or, u32::from(max))
}

/// Two k-consecutive i16 as one i32: `lo` (even k) in the low half, as `vpmaddwd` pairs them.
#[inline(always)]
fn pair(lo: i16, hi: i16) -> i32 {
    (u32::from(lo as u16) | (u32::from(hi as u16) << 16)) as i32
}

#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: &[i16],
    b: &[i16],
    max_abs_a: i32,
    max_abs_b: i32,
    c: &mut [i64],
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let par = want_threads(m, n, k);
    let t0 = std::time::Instant::now();
    let (or_a, max_a) = scan(a);
    let (or_b, max_b) = scan(b);
    if std::env::var("KT_TIMING").is_ok() { eprintln!("scan {:?}", t0.elapsed()); }
    debug_assert!(
        i64::from(max_a) <= i64::from(max_abs_a) && i64::from(max_b) <= i64::from(max_abs_b),
        "gemm_i16: entries exceed the declared bounds (|a| {max_a} > {max_abs_a} or |b| {max_b} > {max_abs_b})"
    );
    if or_a == 0 || or_b == 0 {
        return; // an all-zero operand adds nothing
    }
    if isa == Isa::Scalar {
        scalar::gemm_i16(m, n, k, a, b, c, par);
        return;
    }
    let (sa, sb) = (or_a.trailing_zeros(), or_b.trailing_zeros());
    let pair_bound = 2 * u64::from(max_a >> sa) * u64::from(max_b >> sb);
    let run = (i32::MAX as u64) / pair_bound;
    if run == 0 {
        // Not even one vpmaddwd is safe: take the wide path (rare: needs |a|,|b| close to 2^15).
        let a32: Vec<i32> = a.iter().map(|&v| i32::from(v)).collect();
        let b32: Vec<i32> = b.iter().map(|&v| i32::from(v)).collect();
        int32::gemm(isa, m, n, k, &a32, &b32, c);
        return;
    }
    // Runs longer than any realistic depth are capped (the kernel takes min(run, depth)).
    let run = run.min(1 << 30) as usize;
    let shift = sa + sb;
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            let kern = x86::Avx512I16 { run, shift };
            drive(&kern, &x86::AVX512_BLOCKING, m, n, k, a, b, sa, sb, c, par);
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            let kern = x86::Avx2I16 { run, shift };
            drive(&kern, &x86::AVX2_BLOCKING, m, n, k, a, b, sa, sb, c, par);
        }
        _ => scalar::gemm_i16(m, n, k, a, b, c, par),
    }
}

/// Packs A (shifted right by `sa`) and B (by `sb`) into k-pair panels and runs the kernel.
#[allow(clippy::too_many_arguments)]
fn drive<K: Micro<P = i32, C = i64>>(
    kern: &K,
    blk: &Blocking,
    m: usize,
    n: usize,
    k: usize,
    a: &[i16],
    b: &[i16],
    sa: u32,
    sb: u32,
    c: &mut [i64],
    par: bool,
) {
    let (mr, nr) = (K::MR, K::NR);
    let kp = k.div_ceil(2);
    let t0 = std::time::Instant::now();
    let mut ap = Packed::<i32>::zeroed(m.div_ceil(mr) * kp * mr);
    pack_panels(ap.as_mut_slice(), kp * mr, par, |ip, panel| {
        // Rows past m stay zero (fresh buffer); an odd k pairs its last step with a zero.
        for r in 0..mr.min(m - ip * mr) {
            let row = &a[(ip * mr + r) * k..][..k];
            let mut pairs = row.chunks_exact(2);
            for (p, two) in pairs.by_ref().enumerate() {
                panel[p * mr + r] = pair(two[0] >> sa, two[1] >> sa);
            }
            if let [last] = pairs.remainder() {
                panel[(kp - 1) * mr + r] = pair(*last >> sa, 0);
            }
        }
    });
    if std::env::var("KT_TIMING").is_ok() { eprintln!("packA {:?}", t0.elapsed()); }
    let t0 = std::time::Instant::now();
    let mut bp = Packed::<i32>::zeroed(n.div_ceil(nr) * kp * nr);
    pack_panels(bp.as_mut_slice(), kp * nr, par, |jp, panel| {
        let j0 = jp * nr;
        let w = nr.min(n - j0);
        for p in 0..kp {
            let even = &b[2 * p * n + j0..][..w];
            let dst = &mut panel[p * nr..][..w];
            if 2 * p + 1 < k {
                let odd = &b[(2 * p + 1) * n + j0..][..w];
                for ((d, &e), &o) in dst.iter_mut().zip(even).zip(odd) {
                    *d = pair(e >> sb, o >> sb);
                }
            } else {
                for (d, &e) in dst.iter_mut().zip(even) {
                    *d = pair(e >> sb, 0);
                }
            }
        }
    });
    if std::env::var("KT_TIMING").is_ok() { eprintln!("packB {:?}", t0.elapsed()); }
    let t0 = std::time::Instant::now();
    let kp_depth = kp;
    run_blocked(
        kern,
        blk,
        m,
        n,
        kp_depth,
        ap.as_slice(),
        bp.as_slice(),
        c,
        par,
        &|_| {},
        &|_| {},
    );
    if std::env::var("KT_TIMING").is_ok() { eprintln!("run {:?}", t0.elapsed()); }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::driver::{unroll, Blocking, Micro};
    use std::arch::x86_64::*;

    /// 6 x 16 tile: 12 ymm accumulators + 2 B vectors + 1 broadcast = 15 of 16 registers.
    /// kc = 128 pairs: B micro-panel 8 KiB (L1), A block 16 panels * 3 KiB (L2).
    pub(super) const AVX2_BLOCKING: Blocking = Blocking {
        kc: 128,
        mc_panels: 16,
    };

    pub(super) struct Avx2I16 {
        /// Pairs that may be summed in i32 before widening.
        pub(super) run: usize,
        /// Left shift restoring the power-of-two factors divided out of A and B.
        pub(super) shift: u32,
    }

    impl Micro for Avx2I16 {
        type P = i32;
        type C = i64;
        const MR: usize = 6;
        const NR: usize = 16;

        unsafe fn run(&self, depth: usize, a: *const i32, b: *const i32, c: *mut i64, ldc: usize) {
            // SAFETY: the caller upholds `Micro::run`'s contract, which is this kernel's contract;
            // Avx2I16 is only constructed when AVX2 was detected.
            unsafe { kernel_avx2(depth, self.run, self.shift, a, b, c, ldc) }
        }
    }

    /// # Safety
    /// AVX2 present; `a`: depth*6 reads, `b`: depth*16 reads, `c`: 6 rows x 16 at stride `ldc`.
    #[target_feature(enable = "avx2")]
    unsafe fn kernel_avx2(
        depth: usize,
        run: usize,
        shift: u32,
        a: *const i32,
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
                // SAFETY: q < depth, so b[q*16..q*16+16] and a[q*6..q*6+6] are in bounds.
                let (b0, b1) = unsafe {
                    (
                        _mm256_loadu_si256(b.add(q * 16).cast()),
                        _mm256_loadu_si256(b.add(q * 16 + 8).cast()),
                    )
                };
                unroll!(R in [0, 1, 2, 3, 4, 5] {
                    // SAFETY: R < 6, see above.
                    let av = _mm256_set1_epi32(unsafe { *a.add(q * MR + R) });
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

    /// 12 x 32 tile: 24 zmm accumulators + 2 B vectors + broadcasts, of 32 registers.
    /// kc = 128 pairs: B micro-panel 16 KiB (L1), A block 8 panels * 6 KiB (L2).
    pub(super) const AVX512_BLOCKING: Blocking = Blocking {
        kc: 128,
        mc_panels: 8,
    };

    pub(super) struct Avx512I16 {
        pub(super) run: usize,
        pub(super) shift: u32,
    }

    impl Micro for Avx512I16 {
        type P = i32;
        type C = i64;
        const MR: usize = 12;
        const NR: usize = 32;

        unsafe fn run(&self, depth: usize, a: *const i32, b: *const i32, c: *mut i64, ldc: usize) {
            // SAFETY: as for Avx2I16; Avx512I16 is only built when AVX-512 F/BW/VNNI were detected.
            unsafe { kernel_avx512(depth, self.run, self.shift, a, b, c, ldc) }
        }
    }

    /// # Safety
    /// AVX-512 F/BW/VL/VNNI present; `a`: depth*12 reads, `b`: depth*32 reads, `c`: 12 rows x 32 at
    /// stride `ldc`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn kernel_avx512(
        depth: usize,
        run: usize,
        shift: u32,
        a: *const i32,
        b: *const i32,
        c: *mut i64,
        ldc: usize,
    ) {
        const MR: usize = 12;
        let cnt = _mm_set_epi64x(0, i64::from(shift));
        let mut p = 0;
        while p < depth {
            let steps = run.min(depth - p);
            let mut acc = [[_mm512_setzero_si512(); 2]; MR];
            for q in p..p + steps {
                // SAFETY: q < depth, so b[q*32..q*32+32] and a[q*12..q*12+12] are in bounds.
                let (b0, b1) = unsafe {
                    (
                        _mm512_loadu_si512(b.add(q * 32).cast()),
                        _mm512_loadu_si512(b.add(q * 32 + 16).cast()),
                    )
                };
                unroll!(R in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] {
                    // SAFETY: R < 12, see above.
                    let av = _mm512_set1_epi32(unsafe { *a.add(q * MR + R) });
                    acc[R][0] = _mm512_dpwssd_epi32(acc[R][0], av, b0);
                    acc[R][1] = _mm512_dpwssd_epi32(acc[R][1], av, b1);
                });
            }
            unroll!(R in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] {
                unroll!(H in [0, 1] {
                    let v = acc[R][H];
                    let mut lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v));
                    let mut hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(v));
                    if shift != 0 {
                        lo = _mm512_sll_epi64(lo, cnt);
                        hi = _mm512_sll_epi64(hi, cnt);
                    }
                    // SAFETY: row R < 12, columns H*16..H*16+16 < 32 of the caller's C tile.
                    unsafe {
                        let d0 = c.add(R * ldc + H * 16);
                        let d1 = c.add(R * ldc + H * 16 + 8);
                        _mm512_storeu_si512(d0.cast(), _mm512_add_epi64(_mm512_loadu_si512(d0.cast()), lo));
                        _mm512_storeu_si512(d1.cast(), _mm512_add_epi64(_mm512_loadu_si512(d1.cast()), hi));
                    }
                });
            });
            p += steps;
        }
    }
}
