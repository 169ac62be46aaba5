//! Sequential-order f32 GEMM (the FP16 reference datapath).
//!
//! Contract per output: `acc = +0.0; for kk ascending { acc = acc + a*b }`, then subnormal flush.
//! A broadcast-FMA outer-product micro-kernel already performs exactly that sequence per output
//! lane: each lane of each accumulator is one (i, j) and receives its products in ascending k.
//! Depth blocking keeps the order because each block resumes from the value stored in C by the
//! previous block (f32 in memory is exact), and the first block starts from +0.0.
//!
//! Why FMA is bit-identical to multiply-then-add here: binary16 values have 11-bit significands,
//! so a product has at most 22 significant bits, and its exponent lies in [2^-48, 2^32) (smallest
//! binary16 subnormal 2^-24 squared; largest 65504^2), all inside f32's normal range. So `a*b` is
//! exact in f32 and `fma(a, b, acc) = round(a*b + acc) = round(round(a*b) + acc)`. Signed zeros
//! agree too: `+0 + (-0) = +0` both ways, which is why the accumulators start at +0.0 rather than
//! at the first product.
//!
//! Why the subnormal flush can never trigger for binary16-valued inputs: every binary16 value is
//! an integer multiple of 2^-24, so every product is a multiple of 2^-48. Inductively the running
//! sum is a multiple of 2^-48: the exact sum s of two such multiples is one; if |s| >= 2^-25 the
//! f32 ulp at s is at least 2^-48, so rounding lands on a multiple of the ulp, hence of 2^-48; if
//! |s| < 2^-25 then s = q*2^-48 with |q| < 2^23 is exactly representable and not rounded at all.
//! A nonzero multiple of 2^-48 has magnitude >= 2^-48, far above the subnormal range (< 2^-126).
//! The flush is still applied (a scalar pass over each band of C while it is hot in cache,
//! O(mn) next to O(mnk)) so the function is correct for any f32 input. The same pass replaces
//! NaNs by the canonical `f32::NAN`: binary16 has inf and NaN, and which NaN an operation
//! propagates differs between FMA and separate multiply/add, so only canonical NaNs keep the
//! variants bit-identical.

use super::driver::{run_blocked, APanel, Blocking, Micro, Problem};
use super::scalar::{f16_seq_band, finish_f16_outputs, for_row_bands};
use super::{want_threads, Isa};

pub(super) fn gemm(isa: Isa, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(0.0); // every sum is empty: +0.0
        return;
    }
    let par = want_threads(m, n, k);
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => drive(
            &x86::Avx512F32,
            &x86::AVX512_BLOCKING,
            m,
            n,
            k,
            a,
            b,
            c,
            par,
        ),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => drive(&x86::Avx2F32, &x86::AVX2_BLOCKING, m, n, k, a, b, c, par),
        _ => for_row_bands(m, n, par, c, |r0, band| {
            let rows = band.len() / n;
            f16_seq_band(k, n, &a[r0 * k..][..rows * k], b, band);
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn drive<K: Micro<P = f32, C = f32>>(
    kern: &K,
    blk: &Blocking,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    par: bool,
) {
    let (mr, nr) = (K::MR, K::NR);
    let pb = Problem::<K> {
        m,
        n,
        depth: k,
        // panel[p*nr + j] = b[p][j0 + j], columns past n zero.
        fill_b: &|jp, panel| {
            let j0 = jp * nr;
            let w = nr.min(n - j0);
            for (p, dst) in panel.chunks_exact_mut(nr).enumerate() {
                dst[..w].copy_from_slice(&b[p * n + j0..][..w]);
                dst[w..].fill(0.0);
            }
        },
        // Full panels are read in place: element (r, p) at a[(row + r)*k + p0 + p].
        direct_a: &|row, p0| {
            (row + mr <= m).then(|| APanel {
                a: a[row * k + p0..].as_ptr().cast(),
                rs: 4 * k,
                cs: 4,
            })
        },
        // The last, partial panel: dst[p*mr + r] = a[row + r][p0 + p], rows past the band zero
        // (they only feed discarded rows of edge tiles).
        pack_a: &|row, rows, p0, d, dst| {
            for r in 0..mr {
                if r < rows {
                    for (p, &v) in a[(row + r) * k + p0..][..d].iter().enumerate() {
                        dst[p * mr + r] = v;
                    }
                } else {
                    for p in 0..d {
                        dst[p * mr + r] = 0.0;
                    }
                }
            }
        },
        finish: Some(&|seg| finish_f16_outputs(seg)),
    };
    run_blocked(kern, blk, &pb, c, par);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::driver::{unroll, APanel, Blocking, Micro};
    use std::arch::x86_64::*;

    /// 6 x 16 tile, 12 ymm accumulators. kc = 256: B micro-panel 16 KiB, A panel 6 KiB.
    pub(super) const AVX2_BLOCKING: Blocking = Blocking {
        kc: 256,
        mc_panels: 16,
    };

    pub(super) struct Avx2F32;

    impl Micro for Avx2F32 {
        type P = f32;
        type C = f32;
        const MR: usize = 6;
        const NR: usize = 16;

        unsafe fn run(
            &self,
            depth: usize,
            a: APanel,
            b: *const f32,
            c: *mut f32,
            ldc: usize,
            first: bool,
        ) {
            // SAFETY: the caller upholds `Micro::run`'s contract; Avx2F32 is only used when
            // AVX2 and FMA were detected.
            unsafe { kernel_avx2(depth, a, b, c, ldc, first) }
        }
    }

    /// # Safety
    /// AVX2+FMA present; `a`: 6 rows x depth steps in bounds (see `Micro::run`), `b`: depth*16
    /// reads, `c`: 6 rows x 16 at stride `ldc`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn kernel_avx2(
        depth: usize,
        a: APanel,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        first: bool,
    ) {
        const MR: usize = 6;
        // Each output's running sum: +0.0 on the first depth block, else where the last block
        // left it.
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        if !first {
            unroll!(R in [0, 1, 2, 3, 4, 5] {
                // SAFETY: row R < 6, columns 0..16 of the C tile.
                unsafe {
                    acc[R][0] = _mm256_loadu_ps(c.add(R * ldc));
                    acc[R][1] = _mm256_loadu_ps(c.add(R * ldc + 8));
                }
            });
        }
        for q in 0..depth {
            // SAFETY: q < depth, so b[q*16..q*16+16] and A's step q are in bounds.
            let (b0, b1) = unsafe {
                (
                    _mm256_loadu_ps(b.add(q * 16)),
                    _mm256_loadu_ps(b.add(q * 16 + 8)),
                )
            };
            unroll!(R in [0, 1, 2, 3, 4, 5] {
                // SAFETY: R < 6, see above; the value may be unaligned.
                let av = _mm256_set1_ps(unsafe {
                    a.a.add(R * a.rs + q * a.cs).cast::<f32>().read_unaligned()
                });
                // acc + av*b in one rounding; equal to the separate ops (see module docs).
                acc[R][0] = _mm256_fmadd_ps(av, b0, acc[R][0]);
                acc[R][1] = _mm256_fmadd_ps(av, b1, acc[R][1]);
            });
        }
        unroll!(R in [0, 1, 2, 3, 4, 5] {
            // SAFETY: row R < 6, columns 0..16 of the C tile.
            unsafe {
                _mm256_storeu_ps(c.add(R * ldc), acc[R][0]);
                _mm256_storeu_ps(c.add(R * ldc + 8), acc[R][1]);
            }
        });
    }

    /// 12 x 32 tile, 24 zmm accumulators. kc = 256: B micro-panel 32 KiB, A panel 12 KiB.
    pub(super) const AVX512_BLOCKING: Blocking = Blocking {
        kc: 256,
        mc_panels: 8,
    };

    pub(super) struct Avx512F32;

    impl Micro for Avx512F32 {
        type P = f32;
        type C = f32;
        const MR: usize = 12;
        const NR: usize = 32;

        unsafe fn run(
            &self,
            depth: usize,
            a: APanel,
            b: *const f32,
            c: *mut f32,
            ldc: usize,
            first: bool,
        ) {
            // SAFETY: the caller upholds `Micro::run`'s contract; Avx512F32 is only used when
            // AVX-512 F was detected.
            unsafe { kernel_avx512(depth, a, b, c, ldc, first) }
        }
    }

    /// # Safety
    /// AVX-512 F present; `a`: 12 rows x depth steps in bounds (see `Micro::run`), `b`: depth*32
    /// reads, `c`: 12 rows x 32 at stride `ldc`.
    #[target_feature(enable = "avx512f,avx512vl")]
    unsafe fn kernel_avx512(
        depth: usize,
        a: APanel,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        first: bool,
    ) {
        const MR: usize = 12;
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        if !first {
            unroll!(R in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] {
                // SAFETY: row R < 12, columns 0..32 of the C tile.
                unsafe {
                    acc[R][0] = _mm512_loadu_ps(c.add(R * ldc));
                    acc[R][1] = _mm512_loadu_ps(c.add(R * ldc + 16));
                }
            });
        }
        for q in 0..depth {
            // SAFETY: q < depth, so b[q*32..q*32+32] and A's step q are in bounds.
            let (b0, b1) = unsafe {
                (
                    _mm512_loadu_ps(b.add(q * 32)),
                    _mm512_loadu_ps(b.add(q * 32 + 16)),
                )
            };
            unroll!(R in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] {
                // SAFETY: R < 12, see above; the value may be unaligned.
                let av = _mm512_set1_ps(unsafe {
                    a.a.add(R * a.rs + q * a.cs).cast::<f32>().read_unaligned()
                });
                acc[R][0] = _mm512_fmadd_ps(av, b0, acc[R][0]);
                acc[R][1] = _mm512_fmadd_ps(av, b1, acc[R][1]);
            });
        }
        unroll!(R in [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] {
            // SAFETY: row R < 12, columns 0..32 of the C tile.
            unsafe {
                _mm512_storeu_ps(c.add(R * ldc), acc[R][0]);
                _mm512_storeu_ps(c.add(R * ldc + 16), acc[R][1]);
            }
        });
    }
}
