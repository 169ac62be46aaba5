//! Exact i16 x i16 -> i64 GEMM.
//!
//! The SIMD kernels multiply with `vpmaddwd` (AVX2) / `vpdpwssd` (AVX-512 VNNI): each i32 lane gets
//! `a[i][2p]*b[2p][j] + a[i][2p+1]*b[2p+1][j]`. A k-pair of A is already one 4-byte word of a
//! row-major i16 row, so A is broadcast from where it lies; B is packed into k-pair-interleaved
//! column panels (`int16_x86.rs` has the kernels, `driver.rs` the blocking). The lane sums stay in
//! i32 for a bounded number of pairs (a "run") before they are carried into i64.
//!
//! Run length: with |a| <= A and |b| <= B every pair sum is at most 2AB in magnitude (that also
//! bounds `vpmaddwd`'s own pairwise sum, whose only wrapping case is 2*(-32768)^2 = 2^31), so `r`
//! pairs are safe while r*2AB <= i32::MAX. A and B are the bounds *measured* by a scan of the
//! operands (never above the declared ones when the caller's contract holds, and safe even when
//! it does not). The scan also ORs all entries: ShiftQuant codes with the shift folded in (q * 2^E)
//! have E common trailing zero bits. Dividing 2^E out of B while packing it (and shifting the i64
//! result back, exactly) turns sq8 with E=7 (|a|, |b| <= 16256, 4 pairs per run as is) into
//! 16256 x 127 (520 pairs per run). 2^E is divided out of A too only when B alone does not give
//! long runs, because then A must be packed rather than read in place.
//! Short runs (< 32 pairs) use the "split" kernels, which carry into a second i32 register
//! instead of widening through memory. If even one pair can overflow (2AB > i32::MAX, i.e. values
//! near -32768 on both sides), the product is routed through the i32 kernel instead.

use super::driver::{run_blocked, APanel, Blocking, Micro, Problem};
#[cfg(target_arch = "x86_64")]
use super::int16_x86 as x86;
use super::{int32, scalar, want_threads, Isa};

/// OR of all entries' bit patterns and the largest |entry| (as u32 so that |-32768| fits).
#[inline(always)]
fn scan_body(x: &[i16]) -> (u16, u32) {
    // One pass with independent lane-wise reductions, which LLVM vectorises; |v| is taken as
    // u16 so that -32768 needs no special case.
    let (mut or, mut max) = (0u16, 0u16);
    for &v in x {
        or |= v as u16;
        max = max.max(v.unsigned_abs());
    }
    (or, u32::from(max))
}

fn scan_one(isa: Isa, x: &[i16]) -> (u16, u32) {
    #[cfg(target_arch = "x86_64")]
    if isa >= Isa::Avx2 {
        /// # Safety
        /// The CPU must support AVX2.
        #[target_feature(enable = "avx2")]
        unsafe fn scan_avx2(x: &[i16]) -> (u16, u32) {
            scan_body(x)
        }
        // SAFETY: `isa` was clamped to what the CPU supports; Avx2 and above imply AVX2.
        return unsafe { scan_avx2(x) };
    }
    let _ = isa;
    scan_body(x)
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
    // Serial on purpose: with AVX2 a scan runs at ~16 entries per cycle, so even 2 x 1024^2
    // entries cost ~1% of the product, less than a rayon hand-off costs at 256^3.
    let ((or_a, max_a), (or_b, max_b)) = (scan_one(isa, a), scan_one(isa, b));
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
    // Safe run length when A is scaled down by 2^sa and B by 2^sb, with `headroom` left in i32.
    let pair_bound = |sa: u32, sb: u32| 2 * u64::from(max_a >> sa) * u64::from(max_b >> sb);
    let run_for = |sa: u32, sb: u32| (i32::MAX as u64) / pair_bound(sa, sb);
    // Divide 2^E out of B always (B is packed anyway); out of A only if that is needed for runs
    // of at least LONG_RUN pairs, because an unscaled A can be read in place, unpacked.
    const LONG_RUN: u64 = 128;
    let sb = or_b.trailing_zeros();
    let sa = if run_for(0, sb) >= LONG_RUN {
        0
    } else {
        or_a.trailing_zeros()
    };
    let run = run_for(sa, sb);
    if run == 0 {
        // Not even one vpmaddwd is safe: take the wide path (rare: needs |a|,|b| close to 2^15).
        let a32: Vec<i32> = a.iter().map(|&v| i32::from(v)).collect();
        let b32: Vec<i32> = b.iter().map(|&v| i32::from(v)).collect();
        int32::gemm(isa, m, n, k, &a32, &b32, c);
        return;
    }
    // The split kernels (see int16_x86.rs) need 2^16 of headroom in i32. On AVX2 they beat the
    // widening kernel below SHORT_RUN pairs per run. On AVX-512 the split kernel measured as fast
    // or faster at every run length (a 12x32 widening tile was 3-10% slower even with long runs),
    // so it is the only AVX-512 kernel; when not even the headroom fits (|a|, |b| both above
    // ~32700), the AVX2 widening kernel with one pair per run takes over.
    const SHORT_RUN: u64 = 32;
    let split_run = (i32::MAX as u64 - 0xFFFF) / pair_bound(sa, sb);
    let split = split_run >= 1 && (isa == Isa::Avx512 || run < SHORT_RUN);
    // Runs longer than any realistic depth are capped (the kernels take min(run, depth)).
    let run = if split { split_run } else { run }.min(1 << 30) as usize;
    let shift = sa + sb;
    let ops = Operands {
        m,
        n,
        k,
        a,
        b,
        sa,
        sb,
    };
    match (isa, split) {
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx512, true) => ops.run(
            &x86::Avx512Split { run, shift },
            &x86::AVX512_SPLIT_BLOCKING,
            c,
            par,
        ),
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2, true) => ops.run(
            &x86::Avx2Split { run, shift },
            &x86::AVX2_SPLIT_BLOCKING,
            c,
            par,
        ),
        // Avx512 implies AVX2 (see `Isa::is_available`).
        #[cfg(target_arch = "x86_64")]
        (Isa::Avx2 | Isa::Avx512, false) => {
            ops.run(&x86::Avx2I16 { run, shift }, &x86::AVX2_BLOCKING, c, par)
        }
        _ => scalar::gemm_i16(m, n, k, a, b, c, par),
    }
}

/// Row-major operands plus the power-of-two shifts divided out of them while packing.
struct Operands<'a> {
    m: usize,
    n: usize,
    k: usize,
    a: &'a [i16],
    b: &'a [i16],
    sa: u32,
    sb: u32,
}

impl Operands<'_> {
    fn run<K: Micro<P = i32, C = i64>>(&self, kern: &K, blk: &Blocking, c: &mut [i64], par: bool) {
        let pb = Problem::<K> {
            m: self.m,
            n: self.n,
            depth: self.k.div_ceil(2),
            fill_b: &|jp, panel| self.fill_b(K::NR, jp, panel),
            direct_a: &|row, p0| self.direct_a(K::MR, row, p0),
            pack_a: &|row, rows, p0, d, dst| self.pack_a(K::MR, row, rows, p0, d, dst),
            finish: None,
        };
        run_blocked(kern, blk, &pb, c, par);
    }

    /// Column panel `jp` of B as k-pairs: `panel[p*nr + j] = (b[2p][j0+j], b[2p+1][j0+j])`, an odd
    /// k's last pair and columns past n padded with zeros.
    fn fill_b(&self, nr: usize, jp: usize, panel: &mut [i32]) {
        let (n, k, sb) = (self.n, self.k, self.sb);
        let j0 = jp * nr;
        let w = nr.min(n - j0);
        for (p, dst) in panel.chunks_exact_mut(nr).enumerate() {
            let (dst, pad) = dst.split_at_mut(w);
            let even = &self.b[2 * p * n + j0..][..w];
            if 2 * p + 1 < k {
                let odd = &self.b[(2 * p + 1) * n + j0..][..w];
                for ((d, &e), &o) in dst.iter_mut().zip(even).zip(odd) {
                    *d = pair(e >> sb, o >> sb);
                }
            } else {
                for (d, &e) in dst.iter_mut().zip(even) {
                    *d = pair(e >> sb, 0);
                }
            }
            pad.fill(0);
        }
    }

    /// Rows `row..row+mr` read in place: an i16 k-pair is one 4-byte word of a row-major row.
    /// Not possible if A must be rescaled, nor for the matrix's last row when k is odd (its last
    /// pair would read one element past the end; for other rows that element is the next row's
    /// first, harmless because B's padding pairs it with 0).
    fn direct_a(&self, mr: usize, row: usize, p0: usize) -> Option<APanel> {
        let (m, k) = (self.m, self.k);
        let ends_matrix = row + mr == m;
        if self.sa != 0 || row + mr > m || (k % 2 == 1 && ends_matrix) {
            return None;
        }
        Some(APanel {
            a: self.a[row * k + 2 * p0..].as_ptr().cast(),
            rs: 2 * k,
            cs: 4,
        })
    }

    /// One packed row panel: `dst[p*mr + r] = (a[row+r][2(p0+p)], a[row+r][2(p0+p)+1]) >> sa`
    /// for r < rows, zero for r >= rows and for an odd k's missing last element.
    fn pack_a(&self, mr: usize, row: usize, rows: usize, p0: usize, d: usize, dst: &mut [i32]) {
        let (k, sa) = (self.k, self.sa);
        for r in 0..mr {
            if r >= rows {
                for p in 0..d {
                    dst[p * mr + r] = 0;
                }
                continue;
            }
            let src = &self.a[(row + r) * k..][..k];
            let (lo, hi) = (2 * p0, (2 * (p0 + d)).min(k));
            let mut pairs = src[lo..hi].chunks_exact(2);
            for (p, two) in pairs.by_ref().enumerate() {
                dst[p * mr + r] = pair(two[0] >> sa, two[1] >> sa);
            }
            if let [last] = pairs.remainder() {
                dst[(d - 1) * mr + r] = pair(*last >> sa, 0);
            }
        }
    }
}
