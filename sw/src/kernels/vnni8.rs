//! Exact ShiftQuant GEMM on 8-bit codes: `vpdpbusd` (u8 x i8 -> i32, four products per lane) on
//! AVX-512 VNNI, or its AVX2 form (`vnni8_avx2.rs`, `vpmaddubsw` pair sums in i16 widened into
//! the same i32 accumulators, for codes of magnitude up to 63), with the per-K shifts taken out
//! of the operands and the f32 scaling done in the kernel's store. Built for the golden engine's fast path (`sq_fused`), which packs the operands.
//!
//! Why 8-bit codes and not the i16 path's folded `code << e`: a folded operand needs 16 bits, and
//! `vpdpwssd` does half the multiply-adds of `vpdpbusd` per instruction (measured on the 2-core
//! Zen 4 target: 32 vs 64 MACs per cycle per core; fp32 FMA does 16). So the shift leaves the
//! operands and goes into the order of the sum instead:
//!
//! - **Exponent groups.** Each k has one shift `e_k` (the per-K exponent of A, of B, or their sum).
//!   The packer orders K by descending `e_k` and pads every group of equal `e_k` to a multiple of
//!   four (one `vpdpbusd` step, a "quad"). The kernel sums a group in i32 and moves to the next,
//!   smaller, exponent by shifting its accumulators left by the difference (Horner's rule), so
//!   the accumulator always holds the exact partial sum in units of `2^e_cur`.
//! - **Unsigned A.** `vpdpbusd` multiplies an unsigned byte by a signed one. A's codes are stored
//!   as `u = a + Q` in `0..=2Q`; the kernel computes `S_j = sum_k u_k b_kj 2^e_k` and the store
//!   subtracts `Q * cs_j` with `cs_j = sum_k b_kj 2^e_k` (the packer computes it per column).
//! - **The i32 bound.** Every quad adds at most `4 * 2Q * Q` in magnitude, and a shift by `s`
//!   multiplies what is there by `2^s`. [`KPlan`] follows that bound along K and, where the next
//!   step could pass `i32::MAX`, flushes the accumulators into i64 (`acc64 += acc32 << e_cur`) and
//!   restarts them from zero. For sq6 with window 7 that first happens beyond K = 8,700 (all of
//!   K at the top shift), for sq4 beyond K = 43,800, for sq8 beyond K = 520; everything else
//!   accumulates in i32 from the first k to the last.
//! - **Fused store.** The exact sum `acc = acc64 + (acc32 << e_cur) - Q cs_j` (i64) becomes
//!   `f32((((acc as f64 * sA) * sB) * rp_i) * cp_j)`, the evaluation order of `sq_gemm::scale_out`
//!   (SPEC §8), so the result is bit-identical to the reference path.
//!
//! Layouts: A is row-major `m_pad x kp` bytes (`m_pad` a multiple of [`MR`], `kp` of 4), read in
//! place; B is column panels of [`NR`] columns, `panel[q*4*NR + j*4 + t] = b[k(4q+t)][j0+j]`.
//! Threading: one rayon region over rectangles of C (bands of B panels, or of rows when B has few
//! panels). Each tile runs the whole K with its accumulators in registers: a B panel is `kp*NR`
//! bytes (16 KiB at K = 512, 96 KiB at K = 3072: L1/L2) and is reused by every A panel of the band.

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
#[path = "vnni8_avx2.rs"]
mod avx2;

/// Rows of a micro-tile.
pub const MR: usize = 6;
/// Columns of a micro-tile (one B panel).
pub const NR: usize = 32;

/// Which instruction set runs the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// `vpdpbusd` (AVX-512 F, BW, VL, DQ and VNNI).
    Vnni,
    /// `vpmaddubsw` + `vpmaddwd` (AVX2): codes of magnitude up to 63 (`vnni8_avx2.rs`).
    Avx2,
}

/// The path that runs products of codes of magnitude at most `q` on this CPU, if any.
pub fn path_for(q: u32) -> Option<Path> {
    if available() {
        return Some(Path::Vnni);
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if q <= 63 && has!("avx2") && has!("fma") {
            return Some(Path::Avx2);
        }
    }
    let _ = q;
    None
}

/// Whether this CPU runs the kernel for codes of magnitude at most `q`.
pub fn supports(q: u32) -> bool {
    path_for(q).is_some()
}

/// Whether this CPU runs the VNNI form (AVX-512 F, BW, VL, DQ and VNNI).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        has!("avx512f")
            && has!("avx512bw")
            && has!("avx512vl")
            && has!("avx512dq")
            && has!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One step of the accumulation schedule along K.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Multiply-accumulate this many quads at the current exponent.
    Run(u32),
    /// Shift the accumulators left by this many bits (the exponent drops by as much).
    Shift(u32),
    /// `acc64 += acc32 << e_cur`, then `acc32 = 0`.
    Flush,
}

/// The accumulation schedule of one GEMM: which quads run at which exponent, and where the
/// i32 accumulators must be flushed to stay exact.
#[derive(Clone, Debug)]
pub struct KPlan {
    pub ops: Vec<Op>,
    /// Exponent of the accumulators after the last op (the unit of the final `acc32`).
    pub e_end: u32,
    /// Whether any `Flush` occurs (else the i64 part is zero).
    pub flushes: bool,
    /// The largest code magnitude the schedule was made for.
    pub q: u32,
}

impl KPlan {
    /// The schedule for quads whose exponents are `quad_exps` (non-increasing), with codes of
    /// magnitude at most `q` (A stored as `u = a + q`).
    pub fn new(quad_exps: &[u32], q: u32) -> KPlan {
        Self::new_in(quad_exps, q, Vec::new())
    }

    /// `new`, with the ops in `ops` (cleared first; a caller's vector kept between GEMMs).
    pub fn new_in(quad_exps: &[u32], q: u32, mut ops: Vec<Op>) -> KPlan {
        debug_assert!(quad_exps.windows(2).all(|w| w[0] >= w[1]));
        let per_quad = 4 * 2 * u64::from(q) * u64::from(q);
        let limit = i32::MAX as u64;
        ops.clear();
        let mut flushes = false;
        let mut bound = 0u64; // largest |acc32| so far, in units of 2^e_cur
        let mut e_cur = quad_exps.first().copied().unwrap_or(0);
        let mut run = 0u32;
        for &e in quad_exps {
            if e < e_cur {
                if run > 0 {
                    ops.push(Op::Run(run));
                    run = 0;
                }
                let s = e_cur - e;
                if bound != 0 && (s >= 32 || bound << s > limit) {
                    ops.push(Op::Flush);
                    flushes = true;
                    bound = 0;
                }
                ops.push(Op::Shift(s));
                bound <<= s.min(31);
                e_cur = e;
            }
            if bound + per_quad > limit {
                if run > 0 {
                    ops.push(Op::Run(run));
                    run = 0;
                }
                ops.push(Op::Flush);
                flushes = true;
                bound = 0;
            }
            bound += per_quad;
            run += 1;
        }
        if run > 0 {
            ops.push(Op::Run(run));
        }
        KPlan {
            ops,
            e_end: e_cur,
            flushes,
            q,
        }
    }
}

/// Everything the store needs to turn `S_j` into C (see the module docs). The per-column
/// slices cover every column of every panel (`n.div_ceil(NR) * NR`; padding columns are never
/// stored, so their values do not matter).
pub struct Epilogue<'a> {
    /// `Q * cs_j` with `cs_j = sum_k b_kj 2^e_k` over the real (unpadded) k; A is stored as
    /// `u = a + Q`.
    pub q_cs: &'a [i64],
    pub sa: f64,
    pub sb: f64,
    /// Per-row factor (2^ea_m, or 1), one per row of C.
    pub row_pow: &'a [f64],
    /// Per-column factor (2^eb_n, or 1).
    pub col_pow: &'a [f64],
    /// Store C transposed: element (i, j) of the m x n product at `c[j * m + i]` (a weight
    /// gradient computed as `(dY^T X)^T`; transposing afterwards was a quarter of the ViT
    /// MLP's 768 x 400 x 3072 weight gradient).
    pub transposed: bool,
}

/// The per-column values the store reads, in the form of its path (see `x86::run`).
#[derive(Default)]
struct Derived {
    q_cs: Vec<i64>,
    q_cs_units: Vec<i32>,
    col_fac: Vec<f64>,
}

thread_local! {
    /// The calling thread's `Derived` vectors, kept between GEMMs (small products paid three
    /// allocations per call for them).
    static DERIVED: std::cell::RefCell<Derived> = std::cell::RefCell::default();
}

impl Derived {
    /// In the calling thread's kept vectors (fresh ones if they are in use); `give` them back.
    fn new(epi: &Epilogue, plan: &KPlan, cols: usize) -> Derived {
        let mut d = DERIVED.with(|c| {
            c.try_borrow_mut()
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default()
        });
        let e = plan.e_end;
        d.q_cs.clear();
        d.q_cs.extend_from_slice(&epi.q_cs[..cols]);
        d.q_cs_units.clear();
        d.col_fac.clear();
        if plan.flushes {
            d.q_cs_units.resize(cols, 0);
            d.col_fac.extend_from_slice(&epi.col_pow[..cols]);
        } else {
            // Every k's shift is >= e_end, so Q cs_j is a multiple of 2^e_end.
            d.q_cs_units
                .extend(epi.q_cs[..cols].iter().map(|&v| (v >> e) as i32));
            let scale = pow2(e);
            d.col_fac
                .extend(epi.col_pow[..cols].iter().map(|&p| p * scale));
        }
        d
    }

    fn give(self) {
        DERIVED.with(|c| {
            if let Ok(mut slot) = c.try_borrow_mut() {
                *slot = self;
            }
        });
    }
}

fn pow2(e: u32) -> f64 {
    f64::from_bits(u64::from(1023 + e) << 52)
}

/// The packed operands of one product.
pub struct Operands<'a> {
    pub m: usize,
    pub n: usize,
    /// Packed depth in bytes (a multiple of 4).
    pub kp: usize,
    /// `m_pad x kp`, row-major, `m_pad = m.div_ceil(MR) * MR`.
    pub a: &'a [u8],
    /// `n.div_ceil(NR)` panels of `kp * NR` bytes.
    pub b: &'a [i8],
}

/// The store modes of `x86::run`: row-major, transposed (`Store::transposed`), row-major
/// non-temporal (`Store::stream`).
const PLAIN: u8 = 0;
const TRANSPOSED: u8 = 1;
const STREAM: u8 = 2;

/// C of at least this many bytes is stored non-temporally (beyond the 2 x 2 MB of L2).
const STREAM_MIN_BYTES: usize = 8 << 20;

/// Output pointer shared by tasks that write disjoint tiles.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: tasks write disjoint rectangles of C (see `gemm`), which `gemm` borrows mutably for the
// whole region.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// C (m x n, row-major f32) from the packed operands: every element of `c[..m * n]` is
/// stored, so it may start uninitialized. `par`: use every rayon thread.
///
/// # Panics
/// If the buffers are shorter than the shapes say, or the CPU lacks the kernel's features.
pub fn gemm(
    ops: &Operands,
    plan: &KPlan,
    epi: &Epilogue,
    c: &mut [std::mem::MaybeUninit<f32>],
    par: bool,
) {
    let path = path_for(plan.q).expect("vnni8::gemm needs AVX-512 VNNI, or AVX2 and Q <= 63");
    let (m, n, kp) = (ops.m, ops.n, ops.kp);
    if m == 0 || n == 0 {
        return;
    }
    let (apanels, bpanels) = (m.div_ceil(MR), n.div_ceil(NR));
    assert!(kp % 4 == 0 && ops.a.len() >= apanels * MR * kp && ops.b.len() >= bpanels * NR * kp);
    let cols = bpanels * NR;
    assert!(c.len() >= m * n && epi.q_cs.len() >= cols && epi.col_pow.len() >= cols);
    assert!(epi.row_pow.len() >= m);
    let quads: u64 = plan
        .ops
        .iter()
        .map(|op| {
            if let Op::Run(q) = op {
                u64::from(*q)
            } else {
                0
            }
        })
        .sum();
    assert_eq!(
        quads as usize * 4,
        kp,
        "vnni8::gemm: the plan does not cover K"
    );
    let threads = if par {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    let want = if threads > 1 { 2 * threads } else { 1 };
    // Rectangle i of `rects`: (first A panel, end A panel, first B panel, end B panel).
    let by_columns = bpanels >= want || apanels < want;
    let rects = if by_columns { want.min(bpanels) } else { want };
    let rect = |i: usize| {
        if by_columns {
            (0, apanels, i * bpanels / rects, (i + 1) * bpanels / rects)
        } else {
            (i * apanels / rects, (i + 1) * apanels / rects, 0, bpanels)
        }
    };
    let derived = Derived::new(epi, plan, cols);
    let out = OutPtr(c.as_mut_ptr().cast::<f32>());
    // A C larger than the caches goes out around them: a normal store first reads the line it
    // writes, which for conv2's 13 MB input gradient doubled the memory traffic of the call.
    let stream = path == Path::Vnni
        && !epi.transposed
        && m * n * 4 >= STREAM_MIN_BYTES
        && n.is_multiple_of(4)
        && (out.0 as usize).is_multiple_of(16);
    let task = |(ip0, ip1, jp0, jp1): (usize, usize, usize, usize)| {
        for jp in jp0..jp1 {
            let panel = &ops.b[jp * NR * kp..][..NR * kp];
            for ip in ip0..ip1 {
                let a = &ops.a[ip * MR * kp..][..MR * kp];
                // SAFETY: features checked above; `a` holds MR rows of kp bytes and `panel`
                // kp*NR bytes (asserted), and the plan's quads sum to kp/4; the tile
                // (rows ip*MR.., columns jp*NR..) belongs to this task alone.
                unsafe {
                    tile(
                        path,
                        ops,
                        plan,
                        epi,
                        &derived,
                        a,
                        panel,
                        out,
                        (ip * MR, jp * NR),
                        stream,
                    )
                };
            }
        }
        if stream {
            // Non-temporal stores are weakly ordered: fence them before the task ends, so
            // whoever joins it sees C.
            #[cfg(target_arch = "x86_64")]
            // SAFETY: SSE is part of x86-64.
            unsafe {
                std::arch::x86_64::_mm_sfence()
            };
        }
    };
    if rects > 1 {
        (0..rects).into_par_iter().map(rect).for_each(task);
    } else {
        (0..rects).map(rect).for_each(task);
    }
    derived.give();
}

/// One MR x NR tile: accumulate over K, then the fused store of its valid part.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ/VNNI present; `a`: MR rows of `ops.kp` bytes; `panel`: `kp * NR` bytes;
/// rows `i0..`, columns `j0..` of C (clipped to m x n) are owned by the caller.
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    path: Path,
    ops: &Operands,
    plan: &KPlan,
    epi: &Epilogue,
    derived: &Derived,
    a: &[u8],
    panel: &[i8],
    out: OutPtr,
    (i0, j0): (usize, usize),
    stream: bool,
) {
    let rows = MR.min(ops.m - i0);
    let cols = NR.min(ops.n - j0);
    let store = Store {
        c: out.0,
        ldc: if epi.transposed { ops.m } else { ops.n },
        transposed: epi.transposed,
        stream,
        i0,
        j0,
        rows,
        cols,
        q_cs: &derived.q_cs[j0..j0 + NR],
        q_cs_units: &derived.q_cs_units[j0..j0 + NR],
        col_fac: &derived.col_fac[j0..j0 + NR],
        row_pow: &epi.row_pow[i0..i0 + rows],
        sa: epi.sa,
        sb: epi.sb,
        e_end: plan.e_end,
    };
    // SAFETY: forwarded from the caller's contract (slices sized above).
    let (a, kp, b) = (a.as_ptr(), ops.kp, panel.as_ptr());
    unsafe {
        match (path, plan.flushes) {
            // The store's mode as a constant: a runtime test per stored row cost the plain
            // store 5-10 % at 1795x48x500 (engine-only alternation of the binaries).
            (Path::Vnni, true) => match (store.transposed, store.stream) {
                (true, _) => x86::run::<true, TRANSPOSED>(&plan.ops, a, kp, b, &store),
                (false, true) => x86::run::<true, STREAM>(&plan.ops, a, kp, b, &store),
                _ => x86::run::<true, PLAIN>(&plan.ops, a, kp, b, &store),
            },
            (Path::Vnni, false) => match (store.transposed, store.stream) {
                (true, _) => x86::run::<false, TRANSPOSED>(&plan.ops, a, kp, b, &store),
                (false, true) => x86::run::<false, STREAM>(&plan.ops, a, kp, b, &store),
                _ => x86::run::<false, PLAIN>(&plan.ops, a, kp, b, &store),
            },
            #[cfg(target_arch = "x86_64")]
            (Path::Avx2, flushes) => {
                let l16 = avx2::i16_run(plan.q);
                if flushes {
                    avx2::run::<true>(&plan.ops, a, kp, b, &store, l16)
                } else {
                    avx2::run::<false>(&plan.ops, a, kp, b, &store, l16)
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            (Path::Avx2, _) => unreachable!("AVX2 is x86-64 only"),
        }
    };
}

/// Where and how one tile is stored: the valid `rows x cols` part of the tile at (i0, j0)
/// of the row-major C (row stride `ldc`); the per-column slices hold NR entries.
struct Store<'a> {
    c: *mut f32,
    ldc: usize,
    /// Element (i, j) at `c[j * ldc + i]` instead of `c[i * ldc + j]`.
    transposed: bool,
    /// Whole 8-column rows go out as non-temporal stores (`STREAM_MIN_BYTES`).
    stream: bool,
    i0: usize,
    j0: usize,
    rows: usize,
    cols: usize,
    /// Q cs_j, absolute (the flush path).
    q_cs: &'a [i64],
    /// Q cs_j / 2^e_end (the i32 path).
    q_cs_units: &'a [i32],
    /// cp_j, times 2^e_end on the i32 path.
    col_fac: &'a [f64],
    row_pow: &'a [f64],
    sa: f64,
    sb: f64,
    e_end: u32,
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Op, Store, MR, NR};
    use crate::kernels::driver::unroll;
    use std::arch::x86_64::*;

    /// Runs the plan for one MR x NR tile, then stores it: per 8 columns, the i32 sums are
    /// widened to i64, shifted to absolute units, joined with what flushes moved out, corrected
    /// by `Q cs_j`, converted to f64 and scaled in `scale_out`'s order, then rounded to f32.
    ///
    /// 24 ymm accumulators (6 rows x 4 vectors of 8 columns) + 4 B vectors + 1 broadcast: 29 of
    /// the 32 registers AVX-512VL gives 256-bit code. ymm rather than zmm: on the Zen 4 target
    /// both issue the same multiply-adds per cycle, and 32 columns per panel keep narrow layers'
    /// padding small.
    ///
    /// # Safety
    /// AVX-512 F/BW/VL/VNNI present; `a`: MR rows of `lda` bytes; `b`: `lda * NR` bytes; the
    /// plan's quads sum to `lda / 4`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2")]
    /// `FLUSH`: whether the plan has flushes. Without, the i64 tile is never read, and this
    /// instance neither zeroes it (1.5 kB of stack per tile, which short-K products paid for
    /// every 192 outputs) nor takes the i64 store.
    pub(super) unsafe fn run<const FLUSH: bool, const MODE: u8>(
        ops: &[Op],
        a: *const u8,
        lda: usize,
        b: *const i8,
        st: &Store,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 4]; MR];
        let mut acc64 = [[0i64; NR]; MR];
        let e_end = st.e_end;
        // The exponent the accumulators are in, to place a flush (starts at the first group's).
        let mut e_cur = e_end
            + ops
                .iter()
                .map(|op| if let Op::Shift(s) = op { *s } else { 0 })
                .sum::<u32>();
        let mut q = 0usize;
        for &op in ops {
            match op {
                Op::Run(count) => {
                    let end = q + count as usize;
                    while q < end {
                        // SAFETY: q < lda/4, so B's quad q (NR*4 bytes) and A's 4-byte word
                        // at column 4q of each of the MR rows are in bounds.
                        let bq = unsafe { b.add(q * 4 * NR) };
                        let (b0, b1, b2, b3) = unsafe {
                            (
                                _mm256_loadu_si256(bq.cast()),
                                _mm256_loadu_si256(bq.add(32).cast()),
                                _mm256_loadu_si256(bq.add(64).cast()),
                                _mm256_loadu_si256(bq.add(96).cast()),
                            )
                        };
                        unroll!(R in [0, 1, 2, 3, 4, 5] {
                            // SAFETY: see above; the word may be unaligned.
                            let av = _mm256_set1_epi32(unsafe {
                                a.add(R * lda + 4 * q).cast::<i32>().read_unaligned()
                            });
                            acc[R][0] = _mm256_dpbusd_epi32(acc[R][0], av, b0);
                            acc[R][1] = _mm256_dpbusd_epi32(acc[R][1], av, b1);
                            acc[R][2] = _mm256_dpbusd_epi32(acc[R][2], av, b2);
                            acc[R][3] = _mm256_dpbusd_epi32(acc[R][3], av, b3);
                        });
                        q += 1;
                    }
                }
                Op::Shift(s) => {
                    let cnt = _mm_cvtsi32_si128(s as i32);
                    unroll!(R in [0, 1, 2, 3, 4, 5] {
                        unroll!(V in [0, 1, 2, 3] {
                            acc[R][V] = _mm256_sll_epi32(acc[R][V], cnt);
                        });
                    });
                    e_cur -= s;
                }
                Op::Flush if FLUSH => {
                    let cnt = _mm_cvtsi32_si128(e_cur as i32);
                    unroll!(R in [0, 1, 2, 3, 4, 5] {
                        unroll!(V in [0, 1, 2, 3] {
                            let wide = _mm512_sll_epi64(_mm512_cvtepi32_epi64(acc[R][V]), cnt);
                            // SAFETY: row R < MR, columns 8V..8V+8 < NR of the i64 tile.
                            unsafe {
                                let d = acc64[R].as_mut_ptr().add(8 * V).cast::<__m512i>();
                                _mm512_storeu_si512(d, _mm512_add_epi64(_mm512_loadu_si512(d), wide));
                            }
                            acc[R][V] = _mm256_setzero_si256();
                        });
                    });
                }
                Op::Flush => unreachable!("a flush in a plan without flushes"),
            }
        }
        let (sa, sb) = (_mm512_set1_pd(st.sa), _mm512_set1_pd(st.sb));
        unroll!(V in [0, 1, 2, 3] {
            let lo = 8 * V;
            if lo < st.cols {
                // Columns lo..lo+8 of the tile; the mask keeps the store inside C.
                let mask: __mmask8 = if st.cols - lo >= 8 { 0xFF } else { (1u8 << (st.cols - lo)) - 1 };
                unroll!(R in [0, 1, 2, 3, 4, 5] {
                    if R < st.rows {
                        let exact = if FLUSH {
                            // i64: (acc32 << e_end) + flushed - Q cs, in absolute units.
                            let cnt = _mm_cvtsi32_si128(e_end as i32);
                            // SAFETY: row R < MR, columns lo..lo+8 <= NR of the i64 tile and of
                            // the NR-entry per-column slices.
                            let (flushed, qcs) = unsafe {
                                (
                                    _mm512_loadu_si512(acc64[R].as_ptr().add(lo).cast()),
                                    _mm512_loadu_si512(st.q_cs.as_ptr().add(lo).cast()),
                                )
                            };
                            let wide = _mm512_sll_epi64(_mm512_cvtepi32_epi64(acc[R][V]), cnt);
                            _mm512_cvtepi64_pd(_mm512_sub_epi64(_mm512_add_epi64(wide, flushed), qcs))
                        } else {
                            // i32, in units of 2^e_end: acc32 - Q cs / 2^e_end (an integer, since
                            // every k's shift is >= e_end; the difference is the exact sum over
                            // 2^e_end, below 2^31). The 2^e_end goes into the column factor.
                            // SAFETY: the per-column slices hold NR entries.
                            let qcs = unsafe { _mm256_loadu_si256(st.q_cs_units.as_ptr().add(lo).cast()) };
                            _mm512_cvtepi32_pd(_mm256_sub_epi32(acc[R][V], qcs))
                        };
                        // SAFETY: the per-column slices hold NR entries.
                        let cf = unsafe { _mm512_loadu_pd(st.col_fac.as_ptr().add(lo)) };
                        // `scale_out`'s ((((acc * sa) * sb) * rp) * cp): the two rounding
                        // multiplies in order, then the powers of two, which scale exactly.
                        let mut v = _mm512_mul_pd(exact, sa);
                        v = _mm512_mul_pd(v, sb);
                        v = _mm512_mul_pd(v, _mm512_set1_pd(st.row_pow[R]));
                        v = _mm512_mul_pd(v, cf);
                        let f = _mm512_cvtpd_ps(v);
                        // SAFETY: row i0+R < m, and the mask limits the columns to j0+lo.. < n.
                        unsafe {
                            if MODE == super::TRANSPOSED {
                                // Eight rows of C, one element each (lanes t at row j0+lo+t).
                                let dst = st.c.add((st.j0 + lo) * st.ldc + st.i0 + R);
                                let ix = _mm256_mullo_epi32(
                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                    _mm256_set1_epi32(st.ldc as i32),
                                );
                                _mm256_mask_i32scatter_ps::<4>(dst.cast(), mask, ix, f);
                            } else {
                                let dst = st.c.add((st.i0 + R) * st.ldc + st.j0 + lo);
                                if MODE == super::STREAM && mask == 0xFF {
                                    // 16-byte aligned: C's start is, and ldc and j0 + lo are
                                    // multiples of 4 (checked in `gemm`).
                                    _mm_stream_ps(dst, _mm256_castps256_ps128(f));
                                    _mm_stream_ps(dst.add(4), _mm256_extractf128_ps::<1>(f));
                                } else {
                                    _mm256_mask_storeu_ps(dst, mask, f);
                                }
                            }
                        }
                    }
                });
            }
        });
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    use super::{Op, Store};
    pub(super) unsafe fn run<const FLUSH: bool, const MODE: u8>(
        _: &[Op],
        _: *const u8,
        _: usize,
        _: *const i8,
        _: &Store,
    ) {
        unreachable!("vnni8 is x86-64 only (available() is false)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_shifts_between_groups_and_flushes_before_overflow() {
        // sq6 (Q = 31): 7,688 per quad; shifting by 7 multiplies the bound by 128.
        let plan = KPlan::new(&[7, 7, 3, 3, 0], 31);
        assert_eq!(
            plan.ops,
            vec![
                Op::Run(2),
                Op::Shift(4),
                Op::Run(2),
                Op::Shift(3),
                Op::Run(1)
            ]
        );
        assert_eq!((plan.e_end, plan.flushes), (0, false));
        // sq8 (Q = 127): 129,032 per quad; 16,643 quads fit 2^31 - 1, so a long run flushes.
        let long = vec![0u32; 20_000];
        let plan = KPlan::new(&long, 127);
        assert_eq!(plan.ops, vec![Op::Run(16_643), Op::Flush, Op::Run(3_357)]);
        assert!(plan.flushes);
        // A shift that would overflow flushes first.
        let plan = KPlan::new(&[30, 0], 127);
        assert_eq!(
            plan.ops,
            vec![Op::Run(1), Op::Flush, Op::Shift(30), Op::Run(1)]
        );
    }
}
