//! The golden engine's fast path for ShiftQuant GEMMs: f32 operands are quantized (SPEC §2)
//! straight into the packed layouts of the 8-bit kernel (`kernels::vnni8`), one pass over
//! each operand after its channel scan, and the kernel's store scales the exact sums to f32.
//! The result is bit-identical to `sq_gemm(quantize(A), quantize(B))`, the reference path, which
//! still serves CPUs without the kernel (and sq8 on AVX2-only ones) and accumulators beyond
//! i64's reach.
//!
//! Codes come from the same `ChannelPlan` (scale, exponents, rounding) as `quantize`; only
//! where they are written differs: A's row `i` goes to packed row `i` as `code + Q`, with its
//! columns reordered by descending per-K shift (`KOrder`), B's row `k` to byte `t` of quad
//! `pos(k)/4` of every column panel. Both passes, the two channel scans and the kernel run on
//! all threads.

use crate::error::Result;
use crate::format::Axis;
use crate::kernels::vnni8::{self, Epilogue, KPlan, Operands, MR, NR};
use crate::matrix::{check_gemm_shapes, Matrix};
use crate::sq::{pow2, ChannelPlan, PlanBufs, Rounding, SqParams};
use rayon::prelude::*;

/// How one operand is quantized.
#[derive(Clone, Copy, Debug)]
pub struct Side {
    pub axis: Axis,
    pub rounding: Rounding,
}

/// Below this many elements an operand is packed on the calling thread.
const PAR_MIN_ELEMS: usize = 1 << 15;

/// Below this many multiply-adds a GEMM is small: every pass runs on the calling thread, with
/// no pool entry (one head's 50 x 64 x 50 is 160k; `fc1`'s 128 x 512 x 128, 2^23, measured
/// 0.09 ms with parallel passes and 0.13 ms without, stays above).
const SMALL_MACS: usize = 1 << 21;

/// C = A x B in SQ-b with the given quantization of each side, exactly as the reference path
/// computes it; `Ok(None)` where this path does not apply (the caller then takes the reference
/// path, which also reports any error this one would not have reached).
pub fn gemm(
    a: &Matrix,
    b: &Matrix,
    params: SqParams,
    a_side: Side,
    b_side: Side,
) -> Result<Option<Matrix>> {
    check_gemm_shapes(a, b)?;
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if !vnni8::supports(params.q() as u32) || m == 0 || n == 0 || k == 0 || k >= u32::MAX as usize {
        return Ok(None);
    }
    let par = passes_in_parallel(m, k, n, a, b);
    if par && !in_pool() {
        // Once into the pool for the whole GEMM, not once per pass (`in_pool`).
        return rayon::scope(|_| gemm(a, b, params, a_side, b_side));
    }
    let mut s = Scratch::take();
    let (pa, pb) = plans((a, a_side.axis), (b, b_side.axis), params, par, &mut s);
    let (pa, pb) = (pa?, pb?);
    let (a_k, b_k) = per_k(a_side, b_side);
    let q = params.q();
    let Some(order) = k_order(k, q, &pa, &pb, a_k, b_k, &mut s) else {
        return Ok(None);
    };
    let a_pack = pack_a(
        a,
        &pa,
        a_side.rounding,
        &order,
        q,
        par,
        reuse::take(&reuse::A),
        &mut s.tmp,
    );
    let b_pack = pack_b(
        b,
        &pb,
        b_side.rounding,
        &order,
        par,
        reuse::take(&reuse::B),
        &mut s.tmp,
    );
    channel_pows(&pa, !a_k, m, &mut s.row_pow);
    channel_pows(&pb, !b_k, n, &mut s.col_pow);
    let c = product(
        (m, k, n),
        q,
        &order,
        a_pack,
        b_pack,
        (pa.scale, pb.scale),
        (par, false),
        &mut s,
    );
    s.give_back(pa, pb, order);
    Ok(Some(Matrix {
        rows: m,
        cols: n,
        data: c,
    }))
}

/// C = A x B with A given as its transpose `a_t` (K x M), exactly as `gemm(a_t^T, b, ..)`:
/// the weight gradient `X^T dY` without materializing `X^T`. `Ok(None)` where this path does
/// not apply, including any input the reference path must reject (its error names positions in
/// A, which only the transposed matrix has).
///
/// Computed as `C^T = B^T A^T`: `A^T = a_t` is read row by row straight into the B panels (the
/// packer's K order costs nothing there: it picks rows), and `B^T` becomes the small A side. A's
/// rounding must be nearest-even (its stochastic stream is indexed in A's layout). The store
/// keeps `scale_out`'s order `(acc * sA) * sB` whatever side each operand is on.
pub fn gemm_at(
    a_t: &Matrix,
    b: &Matrix,
    params: SqParams,
    a_side: Side,
    b_side: Side,
) -> Result<Option<Matrix>> {
    let (k, m, n) = (a_t.rows, a_t.cols, b.cols);
    if !vnni8::supports(params.q() as u32)
        || a_side.rounding != Rounding::NearestEven
        || b.rows != k
        || m == 0
        || n == 0
        || k == 0
        || k >= u32::MAX as usize
    {
        return Ok(None);
    }
    // A's channels are its rows (per-M) or columns (per-K): columns or rows of a_t.
    let a_t_axis = match a_side.axis {
        Axis::Rows => Axis::Cols,
        Axis::Cols => Axis::Rows,
    };
    let par = passes_in_parallel(m, k, n, a_t, b);
    if par && !in_pool() {
        return rayon::scope(|_| gemm_at(a_t, b, params, a_side, b_side));
    }
    let mut s = Scratch::take();
    let (pa, pb) = plans((a_t, a_t_axis), (b, b_side.axis), params, par, &mut s);
    let (Ok(pa), Ok(pb)) = (pa, pb) else {
        return Ok(None); // the reference path names the bad value
    };
    let (a_k, b_k) = per_k(a_side, b_side);
    let q = params.q();
    let Some(order) = k_order(k, q, &pa, &pb, a_k, b_k, &mut s) else {
        return Ok(None);
    };
    // The product C^T (n x m): A' = B^T, B' = a_t.
    let a_pack = pack_transposed(
        b,
        &pb,
        b_side.rounding,
        &order,
        q,
        par,
        reuse::take(&reuse::A),
    );
    let b_pack = pack_b(
        a_t,
        &pa,
        a_side.rounding,
        &order,
        par,
        reuse::take(&reuse::B),
        &mut s.tmp,
    );
    channel_pows(&pb, !b_k, n, &mut s.row_pow);
    channel_pows(&pa, !a_k, m, &mut s.col_pow);
    // C^T computed, C stored (the kernel's transposed store).
    let c = product(
        (n, k, m),
        q,
        &order,
        a_pack,
        b_pack,
        (pa.scale, pb.scale),
        (par, true),
        &mut s,
    );
    s.give_back(pa, pb, order);
    Ok(Some(Matrix {
        rows: m,
        cols: n,
        data: c,
    }))
}

/// Whether this thread is a rayon worker. A parallel pass started from any other thread (the
/// main thread of a training run) is injected into the pool and the caller sleeps until it is
/// done: a wake-up and a hand-off each way, tens of microseconds per pass on the 2-core KVM
/// target, where a worker's own passes split by work stealing. So a GEMM that will run passes
/// in parallel moves into the pool first, once.
fn in_pool() -> bool {
    rayon::current_thread_index().is_some()
}

/// Whether the passes (channel scans, packing) run on all threads: an operand is big enough
/// to split, and the GEMM is not small (`SMALL_MACS`).
fn passes_in_parallel(m: usize, k: usize, n: usize, a: &Matrix, b: &Matrix) -> bool {
    let macs = m.saturating_mul(k).saturating_mul(n);
    macs >= SMALL_MACS && (big(a) || big(b))
}

/// Whether an operand is big enough for its passes to run on all threads.
fn big(x: &Matrix) -> bool {
    x.data.len() >= PAR_MIN_ELEMS
}

/// The channel plans of A and B (named so in errors), side by side when `par`, built in the
/// scratch's plan vectors.
fn plans(
    (a, a_axis): (&Matrix, Axis),
    (b, b_axis): (&Matrix, Axis),
    params: SqParams,
    par: bool,
    s: &mut Scratch,
) -> (Result<ChannelPlan>, Result<ChannelPlan>) {
    let (bufs_a, bufs_b) = (std::mem::take(&mut s.plan_a), std::mem::take(&mut s.plan_b));
    let pa = || ChannelPlan::build(a, "A", params, a_axis, par, bufs_a);
    let pb = || ChannelPlan::build(b, "B", params, b_axis, par, bufs_b);
    if par {
        rayon::join(pa, pb)
    } else {
        (pa(), pb())
    }
}

/// Whether A's and B's channel axes are K: A has one exponent per column, B one per row.
fn per_k(a_side: Side, b_side: Side) -> (bool, bool) {
    (a_side.axis == Axis::Cols, b_side.axis == Axis::Rows)
}

/// K's order by shift (A's per-K exponent, B's, or their sum), or `None` where the sums could
/// leave this path's reach (`within_reach`). `pa.exps` / `pb.exps` are indexed by k on a per-K
/// side.
fn k_order(
    k: usize,
    q: i32,
    pa: &ChannelPlan,
    pb: &ChannelPlan,
    a_k: bool,
    b_k: bool,
    s: &mut Scratch,
) -> Option<KOrder> {
    let shifts = &mut s.shifts;
    shifts.clear();
    match (a_k, b_k) {
        (true, true) => shifts.extend(pa.exps[..k].iter().zip(&pb.exps[..k]).map(|(&x, &y)| x + y)),
        (true, false) => shifts.extend_from_slice(&pa.exps[..k]),
        (false, true) => shifts.extend_from_slice(&pb.exps[..k]),
        (false, false) => shifts.resize(k, 0),
    };
    let mut count = [0usize; 2 * MAX_EXP + 1];
    for &sh in shifts.iter() {
        count[sh as usize] += 1;
    }
    let bufs = (std::mem::take(&mut s.src), std::mem::take(&mut s.quad_exps));
    within_reach(k, q, pa, pb, a_k, b_k, &count).then(|| KOrder::new(shifts, &count, bufs))
}

/// Exponents are at most `MAX_WINDOW` (15), so a shift (a sum of two) at most 30.
const MAX_EXP: usize = shiftkit_hw::config::MAX_WINDOW as usize;

/// Each channel's power of two `2^e` where the exponent is applied on drain (`on_drain`), else
/// 1, into `out`.
fn channel_pows(plan: &ChannelPlan, on_drain: bool, len: usize, out: &mut Vec<f64>) {
    out.clear();
    if on_drain {
        out.extend(plan.exps[..len].iter().map(|&e| pow2(e.into())));
    } else {
        out.resize(len, 1.0);
    }
}

/// The kernel over packed operands (returned to the thread's reuse slots afterwards): C is
/// m x n, returned row-major or, when `transposed`, as its transpose (n x m); `(sa, sb)` are
/// the original A's and B's scales, applied in that order; the channel powers are in
/// `s.row_pow` (m) and `s.col_pow` (n).
#[allow(clippy::too_many_arguments)]
fn product(
    (m, k, n): (usize, usize, usize),
    q: i32,
    order: &KOrder,
    a_pack: Vec<u8>,
    b_pack: Vec<i8>,
    (sa, sb): (f64, f64),
    (par, transposed): (bool, bool),
    s: &mut Scratch,
) -> Vec<f32> {
    let kp = order.src.len();
    let plan = KPlan::new_in(&order.quad_exps, q as u32, std::mem::take(&mut s.ops));
    let cols = n.div_ceil(NR) * NR; // the kernel reads whole panels' worth of these
    let q_cs = &mut s.q_cs;
    column_sums(&b_pack, n, kp, &order.quad_exps, par, q_cs);
    q_cs.iter_mut().for_each(|v| *v *= i64::from(q));
    q_cs.resize(cols, 0);
    s.col_pow.resize(cols, 1.0);
    let epi = Epilogue {
        q_cs,
        sa,
        sb,
        row_pow: &s.row_pow,
        col_pow: &s.col_pow,
        transposed,
    };
    let ops = Operands {
        m,
        n,
        kp,
        a: &a_pack,
        b: &b_pack,
    };
    let mut c = Vec::with_capacity(m * n);
    let par = crate::kernels::want_threads(m, n, k);
    vnni8::gemm(&ops, &plan, &epi, &mut c.spare_capacity_mut()[..m * n], par);
    // SAFETY: `vnni8::gemm` stores every element of the m x n C (its tiles cover it).
    unsafe { c.set_len(m * n) };
    reuse::give(&reuse::A, a_pack);
    reuse::give(&reuse::B, b_pack);
    s.ops = plan.ops;
    c
}

/// Everything else a GEMM call builds and drops (plans, K order, column sums, channel powers,
/// the schedule, a row's codes), kept by the calling thread between calls: about twenty small
/// allocations were a tenth of a 50 x 64 x 50 GEMM. Taken whole for a call, so a call that
/// starts while another on the same thread is in flight (rayon work stealing) gets fresh ones.
#[derive(Default)]
struct Scratch {
    plan_a: PlanBufs,
    plan_b: PlanBufs,
    shifts: Vec<u8>,
    src: Vec<u32>,
    quad_exps: Vec<u32>,
    row_pow: Vec<f64>,
    col_pow: Vec<f64>,
    q_cs: Vec<i64>,
    tmp: Vec<i8>,
    ops: Vec<vnni8::Op>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

impl Scratch {
    fn take() -> Scratch {
        SCRATCH.with(|c| {
            c.try_borrow_mut()
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default()
        })
    }

    /// Back to the thread, with the vectors of this call's plans and K order.
    fn give_back(mut self, pa: ChannelPlan, pb: ChannelPlan, order: KOrder) {
        self.plan_a = pa.into_bufs();
        self.plan_b = pb.into_bufs();
        self.src = order.src;
        self.quad_exps = order.quad_exps;
        SCRATCH.with(|c| {
            if let Ok(mut slot) = c.try_borrow_mut() {
                *slot = self;
            }
        });
    }
}

/// `B^T` as the kernel's A (n x kp bytes, row j, packed column pos(k) = code(k, j) + Q): B's
/// codes in its own layout (so its stochastic stream is indexed as the reference path's), then
/// gathered in K order a block of positions at a time, so the block's source rows stay in L1
/// while every output row takes its byte of each.
#[allow(clippy::too_many_arguments)]
fn pack_transposed(
    b: &Matrix,
    plan: &ChannelPlan,
    rounding: Rounding,
    order: &KOrder,
    q: i32,
    par: bool,
    mut out: Vec<u8>,
) -> Vec<u8> {
    let n = b.cols;
    let kp = order.src.len();
    // Row k (the padding source) holds -Q, which stores 0.
    let codes = codes_of(b, plan, rounding, -(q as i8), par);
    // Padding rows n..n_pad are never stored: a reused buffer needs no clearing there.
    out.resize(n.div_ceil(MR) * MR * kp, 0);
    let dst = SharedOut(out.as_mut_ptr().cast::<i8>());
    // SAFETY (both calls): each task writes columns p0..p1 of the n rows of `out`, disjoint
    // from every other task's, and `out` holds n rows of kp bytes.
    let gather = |(p0, p1): (usize, usize)| unsafe {
        gather_transposed(
            &codes,
            n,
            q,
            &order.src,
            (p0, p1),
            dst.at(0).cast::<u8>(),
            kp,
        )
    };
    let threads = rayon::current_num_threads().max(1);
    let blocks = kp.div_ceil(16);
    if par && threads > 1 && blocks > 1 {
        let tasks = (4 * threads).min(blocks);
        (0..tasks)
            .into_par_iter()
            .map(|t| {
                (
                    16 * (t * blocks / tasks),
                    (16 * ((t + 1) * blocks / tasks)).min(kp),
                )
            })
            .for_each(gather);
    } else {
        gather((0, kp));
    }
    reuse::give(&reuse::CODES, codes);
    out
}

/// `out[j * kp + p] = codes[src[p] * n + j] + Q` for every row j < n and position p in
/// `p0..p1`: 16 x 16 byte blocks go through a register transpose, the edges byte by byte.
///
/// # Safety
/// `out` points to n rows of `kp >= p1` bytes that the caller may write (columns p0..p1).
unsafe fn gather_transposed(
    codes: &[i8],
    n: usize,
    q: i32,
    src: &[u32],
    (p0, p1): (usize, usize),
    out: *mut u8,
    kp: usize,
) {
    let one = |p: usize, j: usize| {
        let v = (i32::from(codes[src[p] as usize * n + j]) + q) as u8;
        // SAFETY: j < n and p < p1 <= kp (the caller's contract).
        unsafe { *out.add(j * kp + p) = v };
    };
    let mut p = p0;
    #[cfg(target_arch = "x86_64")]
    while p + 16 <= p1 {
        let rows: [usize; 16] = std::array::from_fn(|i| src[p + i] as usize * n);
        let mut j = 0;
        while j + 16 <= n {
            assert!(rows.iter().all(|&r| r + j + 16 <= codes.len()));
            // SAFETY: every 16-byte load is inside `codes` (asserted), every store inside
            // row j0 + jj's columns p..p + 16 (the caller's contract, p + 16 <= p1).
            unsafe { transpose_block(codes.as_ptr(), &rows, j, q as u8, out.add(j * kp + p), kp) };
            j += 16;
        }
        for jj in j..n {
            for pp in p..p + 16 {
                one(pp, jj);
            }
        }
        p += 16;
    }
    for pp in p..p1 {
        for j in 0..n {
            one(pp, j);
        }
    }
}

/// One 16 x 16 block of `gather_transposed`: load 16 bytes at `codes[rows[i] + j]` for each
/// of 16 positions i, add Q, transpose, store row jj at `out + jj * kp`. The transpose is four
/// rounds of byte interleaves of rows i and i + 8 (each round rotates the 8-bit element index
/// (row, column) left by one bit; four rounds swap row and column).
///
/// # Safety
/// The loads and stores described are in bounds (SSE2 is part of x86-64).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn transpose_block(
    codes: *const i8,
    rows: &[usize; 16],
    j: usize,
    q: u8,
    out: *mut u8,
    kp: usize,
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's contract.
    unsafe {
        let qv = _mm_set1_epi8(q as i8);
        let mut r: [__m128i; 16] = std::array::from_fn(|i| {
            _mm_add_epi8(
                _mm_loadu_si128(codes.add(rows[i] + j).cast::<__m128i>()),
                qv,
            )
        });
        for _ in 0..4 {
            let t: [__m128i; 16] = std::array::from_fn(|o| {
                let i = o / 2;
                if o % 2 == 0 {
                    _mm_unpacklo_epi8(r[i], r[i + 8])
                } else {
                    _mm_unpackhi_epi8(r[i], r[i + 8])
                }
            });
            r = t;
        }
        for (jj, v) in r.iter().enumerate() {
            _mm_storeu_si128(out.add(jj * kp).cast::<__m128i>(), *v);
        }
    }
}

/// The codes of `x` in its own layout, `(rows + 1) x cols` with the extra row (the packers'
/// padding source) set to `pad`, in the thread's reused codes buffer (give it back with
/// `reuse::give(&reuse::CODES, ..)`). Short rows go a tile at a time (`ChannelPlan::rows_codes`).
fn codes_of(x: &Matrix, plan: &ChannelPlan, rounding: Rounding, pad: i8, par: bool) -> Vec<i8> {
    let (rows, cols) = (x.rows, x.cols);
    let mut codes = reuse::take(&reuse::CODES);
    // Every element is written below: no clearing needed.
    codes.resize((rows + 1) * cols, 0);
    codes[rows * cols..].fill(pad);
    let tile = plan.tile_rows();
    // Tasks of a few thousand elements: enough for work stealing, few enough to be cheap.
    let chunk_rows = if par {
        tile * (4096 / (tile * cols).max(1)).max(1)
    } else {
        rows.max(1)
    };
    let fill = |(ci, out): (usize, &mut [i8])| {
        let r0 = ci * chunk_rows;
        let len = out.len();
        plan.rows_codes(&x.data[r0 * cols..r0 * cols + len], r0, rounding, out);
    };
    if par {
        codes[..rows * cols]
            .par_chunks_mut(chunk_rows * cols)
            .enumerate()
            .for_each(fill);
    } else if rows * cols > 0 {
        fill((0, &mut codes[..rows * cols]));
    }
    codes
}

/// Whether every partial sum fits i64 (|S| <= sum_k 2Q^2 2^e_k < 2^62), and the reference path
/// would not have refused the product (its wide fallback rejects K |A| |B| >= 2^63 with the
/// largest shifts, see `sq_gemm::accumulate`): there the reference path must answer. `count[s]`
/// is how many k have shift s.
fn within_reach(
    k: usize,
    q: i32,
    pa: &ChannelPlan,
    pb: &ChannelPlan,
    a_k: bool,
    b_k: bool,
    count: &[usize],
) -> bool {
    let q2 = 2 * (q as u128) * (q as u128);
    let total: u128 = count
        .iter()
        .enumerate()
        .map(|(s, &c)| (c as u128 * q2) << s)
        .sum();
    if total >= 1 << 62 {
        return false;
    }
    let max_shift = |p: &ChannelPlan, per_k: bool| {
        if per_k {
            p.exps.iter().copied().max().unwrap_or(0) as u32
        } else {
            0
        }
    };
    let (fa, fb) = (
        (q as u128) << max_shift(pa, a_k),
        (q as u128) << max_shift(pb, b_k),
    );
    let fits_i16 = fa <= i16::MAX as u128 && fb <= i16::MAX as u128;
    fits_i16 || (k as u128) * fa * fb < 1 << 63
}

/// K reordered by descending shift, each group of equal shift padded to whole quads.
struct KOrder {
    /// Source k of each packed position (`k` itself for padding).
    src: Vec<u32>,
    /// Shift of each quad (non-increasing).
    quad_exps: Vec<u32>,
    /// Whether `pos[k] == k` for every k (one group: the rows copy straight).
    identity: bool,
}

impl KOrder {
    /// From each k's shift and the number of k at each shift, in the vectors `(src,
    /// quad_exps)` (their contents are replaced).
    fn new(
        shifts: &[u8],
        count: &[usize],
        (mut src, mut quad_exps): (Vec<u32>, Vec<u32>),
    ) -> KOrder {
        let k = shifts.len();
        let groups = count.iter().filter(|&&c| c > 0).count();
        src.clear();
        src.reserve(k + 4 * groups + 1);
        quad_exps.clear();
        // Highest shift first; each group's k ascending, then padded to whole quads with k.
        for e in (0..count.len()).rev().filter(|&e| count[e] > 0) {
            let start = src.len();
            if count[e] == k {
                src.extend(0..k as u32);
            } else if groups <= 4 {
                // A branch-free pass per group (a few groups: per-example exponents mostly take
                // the top two or three values): every k is written, the slot kept only where
                // its shift is e. The counter of a scatter by shift would chain every k
                // through a store and a load.
                src.resize(start + count[e] + 1, 0);
                let mut p = start;
                for (kk, &sh) in shifts.iter().enumerate() {
                    src[p] = kk as u32;
                    p += usize::from(sh as usize == e);
                }
                src.truncate(start + count[e]);
            } else {
                // Many groups: one scatter pass for this and every later group.
                return Self::scattered(shifts, count, (src, quad_exps));
            }
            let quads = count[e].div_ceil(4);
            src.resize(start + 4 * quads, k as u32);
            quad_exps.extend(std::iter::repeat_n(e as u32, quads));
        }
        let identity = src[..k].iter().enumerate().all(|(p, &kk)| kk as usize == p);
        KOrder {
            src,
            quad_exps,
            identity,
        }
    }

    /// `new` by one scatter pass (each k to the next free slot of its group).
    fn scattered(
        shifts: &[u8],
        count: &[usize],
        (mut src, mut quad_exps): (Vec<u32>, Vec<u32>),
    ) -> KOrder {
        let k = shifts.len();
        let mut start = [0usize; 2 * MAX_EXP + 1];
        debug_assert!(count.len() <= start.len());
        quad_exps.clear();
        let mut at = 0;
        for e in (0..count.len()).rev() {
            start[e] = at;
            let quads = count[e].div_ceil(4);
            quad_exps.extend(std::iter::repeat_n(e as u32, quads));
            at += 4 * quads;
        }
        src.clear();
        src.resize(at, k as u32);
        let mut next = start;
        let mut identity = true;
        for (kk, &s) in shifts.iter().enumerate() {
            let p = next[s as usize];
            next[s as usize] += 1;
            identity &= p == kk;
            src[p] = kk as u32;
        }
        KOrder {
            src,
            quad_exps,
            identity,
        }
    }
}

/// A as `m_pad x kp` bytes: row i, packed column pos(k) = code(i, k) + Q; padding 0. `tmp`
/// is the serial pass's scratch row.
#[allow(clippy::too_many_arguments)]
fn pack_a(
    a: &Matrix,
    plan: &ChannelPlan,
    rounding: Rounding,
    order: &KOrder,
    q: i32,
    par: bool,
    mut out: Vec<u8>,
    tmp: &mut Vec<i8>,
) -> Vec<u8> {
    let (m, k) = (a.rows, a.cols);
    let kp = order.src.len();
    // Every byte the kernel uses is written below, except the padding rows m..m_pad (whose
    // results are never stored) and, in the identity order, the padding columns k..kp (which
    // meet B's zero padding): a reused buffer needs no clearing.
    out.resize(m.div_ceil(MR) * MR * kp, 0);
    let tile = plan.tile_rows();
    if order.identity && tile > 1 {
        // Short rows in the identity order: `tile` rows quantized in one call, then each row
        // copied to its packed place (stride kp) as code + Q.
        let chunk = |tmp: &mut Vec<i8>, (ci, dst): (usize, &mut [u8])| {
            let (r0, rows) = (ci * tile, dst.len() / kp);
            plan.rows_codes(&a.data[r0 * k..(r0 + rows) * k], r0, rounding, tmp);
            for (d, c) in dst.chunks_mut(kp).zip(tmp.chunks(k)) {
                add_offset(&mut d[..k], c, q);
            }
        };
        let size = |v: &mut Vec<i8>| v.resize(tile * k, 0);
        for_each_chunk(&mut out[..m * kp], tile * kp, par, (tmp, size), chunk);
        return out;
    }
    // A row's codes and one more, -Q, that padding reads (it stores 0).
    let padded = |v: &mut Vec<i8>| {
        v.resize(k + 1, 0);
        v[k] = -(q as i8);
    };
    if tile > 1 {
        // Short rows in a reordered K: all codes first, a tile at a time, then each row
        // gathered in K order (padding reads the extra row, -Q, which stores 0).
        let codes = codes_of(a, plan, rounding, -(q as i8), par);
        if let Some(perm) = BytePerm::new(&order.src, k) {
            // Up to 128 bytes a row: one byte permute per 64 positions.
            let gather = |_: &mut Vec<i8>, (i, dst): (usize, &mut [u8])| {
                perm.apply(&codes[i * k..(i + 1) * k], q, dst)
            };
            for_each_chunk(
                &mut out[..m * kp],
                kp,
                par,
                (tmp, |_: &mut Vec<i8>| {}),
                gather,
            );
            reuse::give(&reuse::CODES, codes);
            return out;
        }
        let gather = |tmp: &mut Vec<i8>, (i, dst): (usize, &mut [u8])| {
            tmp[..k].copy_from_slice(&codes[i * k..(i + 1) * k]);
            for (d, &kk) in dst.iter_mut().zip(&order.src) {
                *d = (i32::from(tmp[kk as usize]) + q) as u8;
            }
        };
        for_each_chunk(&mut out[..m * kp], kp, par, (tmp, padded), gather);
        reuse::give(&reuse::CODES, codes);
        return out;
    }
    let row = |tmp: &mut Vec<i8>, (i, dst): (usize, &mut [u8])| {
        plan.row_codes(a.row(i), i, 0, rounding, tmp);
        // Codes are in -Q..=Q, so code + Q is in 0..=2Q <= 254.
        if order.identity {
            for (d, &c) in dst.iter_mut().zip(tmp.iter()) {
                *d = (i32::from(c) + q) as u8;
            }
        } else {
            // A gather (sequential writes); padding reads tmp[k] = -Q, which stores 0.
            assert!(tmp.len() > k && order.src.len() <= dst.len());
            for (d, &kk) in dst.iter_mut().zip(&order.src) {
                debug_assert!(kk as usize <= k);
                // SAFETY: every source index is at most k (`KOrder::new`), and tmp has k + 1.
                *d = (i32::from(unsafe { *tmp.get_unchecked(kk as usize) }) + q) as u8;
            }
        }
    };
    for_each_chunk(&mut out[..m * kp], kp, par, (tmp, padded), row);
    out
}

/// A short row's K order as a byte permute (AVX-512 VBMI `vpermi2b`): `dst[p] = row[src[p]] + Q`
/// for every packed position p, with `src[p] == k` (padding) storing 0. For rows of up to 127
/// codes and 128 positions (the input gradients' K of 32 or 48, conv1's 25, a head's 64): the
/// byte-by-byte gather was a fifth of a 50 x 64 x 50 GEMM.
struct BytePerm {
    /// `src` as bytes, padded to 128 (positions past kp are never stored).
    idx: [u8; 128],
    k: usize,
    kp: usize,
}

impl BytePerm {
    /// The permute of `src` (positions of a row of k codes, k meaning padding), where this CPU
    /// and the sizes allow it.
    fn new(src: &[u32], k: usize) -> Option<BytePerm> {
        if k > 127 || src.len() > 128 || !vbmi() {
            return None;
        }
        let mut idx = [0u8; 128];
        for (i, &s) in idx.iter_mut().zip(src) {
            *i = s as u8; // at most k <= 127
        }
        Some(BytePerm {
            idx,
            k,
            kp: src.len(),
        })
    }

    /// `dst[..kp]` from the k codes of `row`.
    fn apply(&self, row: &[i8], q: i32, dst: &mut [u8]) {
        assert!(row.len() >= self.k && dst.len() >= self.kp);
        // SAFETY: VBMI was detected in `new`; the masked loads read row[..k] and the masked
        // stores write dst[..kp] (asserted above).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            permute_row(
                &self.idx,
                row.as_ptr(),
                self.k,
                q as i8,
                dst.as_mut_ptr(),
                self.kp,
            )
        }
    }
}

fn vbmi() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        has!("avx512f") && has!("avx512bw") && has!("avx512vbmi")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `BytePerm::apply`'s body: the row's bytes (positions k.. read as -Q) as a 128-byte table in
/// two registers, permuted by the index, plus Q.
///
/// # Safety
/// AVX-512 F/BW/VBMI present; `row` holds k <= 127 bytes, `dst` kp <= 128.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn permute_row(idx: &[u8; 128], row: *const i8, k: usize, q: i8, dst: *mut u8, kp: usize) {
    use std::arch::x86_64::*;
    let mask = |len: usize| -> u64 {
        if len >= 64 {
            u64::MAX
        } else {
            (1u64 << len) - 1
        }
    };
    let pad = _mm512_set1_epi8(-q);
    let qv = _mm512_set1_epi8(q);
    // SAFETY: masked-off bytes are neither read nor written (the caller's bounds).
    unsafe {
        let lo = _mm512_mask_loadu_epi8(pad, mask(k), row);
        let hi = if k > 64 {
            _mm512_mask_loadu_epi8(pad, mask(k - 64), row.add(64))
        } else {
            pad
        };
        for half in 0..kp.div_ceil(64) {
            let ix = _mm512_loadu_si512(idx.as_ptr().add(64 * half).cast());
            let v = _mm512_add_epi8(_mm512_permutex2var_epi8(lo, ix, hi), qv);
            _mm512_mask_storeu_epi8(dst.add(64 * half).cast(), mask(kp - 64 * half), v);
        }
    }
}

/// `f(scratch, (i, chunk i))` over `out` in chunks of `len` bytes, with one scratch buffer per
/// thread set up by `init`: on both cores when `par` (fresh buffers), else in order on this one
/// in `tmp`.
fn for_each_chunk<I, F>(out: &mut [u8], len: usize, par: bool, (tmp, init): (&mut Vec<i8>, I), f: F)
where
    I: Fn(&mut Vec<i8>) + Sync + Send,
    F: Fn(&mut Vec<i8>, (usize, &mut [u8])) + Sync + Send,
{
    if par {
        let fresh = || {
            let mut v = Vec::new();
            init(&mut v);
            v
        };
        out.par_chunks_mut(len).enumerate().for_each_init(fresh, f);
    } else {
        init(tmp);
        out.chunks_mut(len).enumerate().for_each(|c| f(tmp, c));
    }
}

/// `dst[i] = src[i] + q` (codes in -Q..=Q become 0..=2Q), in blocks of 16 so that short rows
/// stay in vector code.
fn add_offset(dst: &mut [u8], src: &[i8], q: i32) {
    let q = q as u8;
    let mut d = dst.chunks_exact_mut(16);
    let mut s = src.chunks_exact(16);
    for (d, s) in (&mut d).zip(&mut s) {
        for j in 0..16 {
            d[j] = (s[j] as u8).wrapping_add(q);
        }
    }
    for (d, &s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = (s as u8).wrapping_add(q);
    }
}

/// B as column panels: `panel[q*4*NR + j*4 + t] = code(src(4q+t), j0 + j)`; padding 0.
///
/// Tasks are ranges of quads: each quantizes the four rows of a quad whole (one call per row,
/// not one per panel) and writes each column's four codes as one 4-byte word into every panel.
/// `tmp` is the serial pass's scratch.
fn pack_b(
    b: &Matrix,
    plan: &ChannelPlan,
    rounding: Rounding,
    order: &KOrder,
    par: bool,
    mut out: Vec<i8>,
    tmp: &mut Vec<i8>,
) -> Vec<i8> {
    let n = b.cols;
    let kp = order.src.len();
    let quads = kp / 4;
    let panels = n.div_ceil(NR);
    // Every quad of every panel is written below (padding quads as zeros) except the columns
    // past n of the last panel, whose results are never stored: a reused buffer needs no
    // clearing.
    out.resize(panels * NR * kp, 0);
    let dst = SharedOut(out.as_mut_ptr());
    // Short rows (im2col's 25 columns) are quantized first, in their own order and a tile at a
    // time, into a codes buffer whose extra row is the zero padding: one call per row in K's
    // order cost a call per 25 elements and read the f32 rows scattered over the operand. So
    // are long rows in a reordered K (a weight gradient's X, rows picked by dY's per-example
    // exponents): 4 rows of 1.6 kB from random places of a 13 MB operand per quad left the
    // quantization loop waiting on loads (75 % of its samples on the load at 400x8192x32);
    // in their own order they stream, and the gather reads a quarter of the bytes.
    let codes =
        (plan.tile_rows() > 1 || !order.identity).then(|| codes_of(b, plan, rounding, 0, par));
    let fill = |rows: &mut Vec<i8>, (q0, q1): (usize, usize)| {
        for q in q0..q1 {
            let [r0, r1, r2, r3]: [&[i8]; 4] = match &codes {
                Some(codes) => std::array::from_fn(|t| {
                    let kk = order.src[4 * q + t] as usize;
                    &codes[kk * n..(kk + 1) * n]
                }),
                None => {
                    for t in 0..4 {
                        let row = &mut rows[t * n..(t + 1) * n];
                        match order.src[4 * q + t] as usize {
                            kk if kk == b.rows => row.fill(0), // padding
                            kk => plan.row_codes(b.row(kk), kk, 0, rounding, row),
                        }
                    }
                    let (r0, rest) = rows.split_at(n);
                    let (r1, rest) = rest.split_at(n);
                    let (r2, r3) = rest.split_at(n);
                    [r0, r1, r2, r3]
                }
            };
            for jp in 0..panels {
                let j0 = jp * NR;
                let w = NR.min(n - j0);
                // SAFETY: quad q of panel jp is `4 * NR` bytes inside `out`, and only the task
                // that owns quad q writes it.
                let quad = unsafe {
                    std::slice::from_raw_parts_mut(dst.at(jp * NR * kp + q * 4 * NR), 4 * NR)
                };
                for j in 0..w {
                    let c = j0 + j;
                    let word =
                        u32::from_le_bytes([r0[c] as u8, r1[c] as u8, r2[c] as u8, r3[c] as u8]);
                    quad[4 * j..4 * j + 4]
                        .copy_from_slice(&(word as i32).to_le_bytes().map(|x| x as i8));
                }
            }
        }
    };
    let tasks = if par {
        (8 * rayon::current_num_threads().max(1)).min(quads)
    } else {
        1
    };
    let rows_len = if codes.is_some() { 0 } else { 4 * n };
    if tasks > 1 {
        let range = |i: usize| (i * quads / tasks, (i + 1) * quads / tasks);
        (0..tasks)
            .into_par_iter()
            .map(range)
            .for_each_init(|| vec![0i8; rows_len], fill);
    } else {
        tmp.resize(rows_len, 0);
        fill(tmp, (0, quads));
    }
    if let Some(codes) = codes {
        reuse::give(&reuse::CODES, codes);
    }
    out
}

/// Packing buffers kept by the calling thread between GEMMs: training repeats the same shapes,
/// and a fresh megabyte per operand per call was measurable in page faults.
mod reuse {
    use std::cell::RefCell;

    thread_local! {
        pub(super) static A: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        pub(super) static B: RefCell<Vec<i8>> = const { RefCell::new(Vec::new()) };
        pub(super) static CODES: RefCell<Vec<i8>> = const { RefCell::new(Vec::new()) };
    }

    /// Buffers larger than this are not kept.
    const KEEP_MAX: usize = 64 << 20;

    pub(super) fn take<T>(key: &'static std::thread::LocalKey<RefCell<Vec<T>>>) -> Vec<T> {
        key.with(|c| {
            c.try_borrow_mut()
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default()
        })
    }

    pub(super) fn give<T>(key: &'static std::thread::LocalKey<RefCell<Vec<T>>>, v: Vec<T>) {
        if v.capacity() * std::mem::size_of::<T>() <= KEEP_MAX {
            key.with(|c| {
                if let Ok(mut slot) = c.try_borrow_mut() {
                    *slot = v;
                }
            });
        }
    }
}

/// A packed buffer written by tasks that own disjoint parts of it (`pack_b`'s quads,
/// `pack_transposed`'s columns).
#[derive(Clone, Copy)]
struct SharedOut(*mut i8);
// SAFETY: only used inside `pack_b`, whose tasks write disjoint byte ranges of a buffer that
// outlives them.
unsafe impl Send for SharedOut {}
// SAFETY: as above.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    fn at(self, offset: usize) -> *mut i8 {
        // SAFETY (for callers): the offset stays inside the buffer; see `pack_b`.
        self.0.wrapping_add(offset)
    }
}

/// `cs[j] = sum_k b_kj 2^e_k` from the packed panels (padding contributes 0), into `cs`.
fn column_sums(
    packed: &[i8],
    n: usize,
    kp: usize,
    quad_exps: &[u32],
    par: bool,
    cs: &mut Vec<i64>,
) {
    let panel_sums = |jp: usize, panel: &[i8], out: &mut [i64]| {
        let mut sums = [0i64; 4 * NR];
        let mut q = 0;
        while q < quad_exps.len() {
            // One group at a time: sum its bytes in i32 (|b| <= 127, fewer than 2^24 quads),
            // then add the sum once at the group's weight.
            let e = quad_exps[q];
            let end = q + quad_exps[q..].iter().take_while(|&&x| x == e).count();
            let mut group = [0i32; 4 * NR];
            for quad in panel[q * 4 * NR..end * 4 * NR].chunks_exact(4 * NR) {
                for (g, &v) in group.iter_mut().zip(quad) {
                    *g += i32::from(v);
                }
            }
            for (s, &g) in sums.iter_mut().zip(&group) {
                *s += i64::from(g) << e;
            }
            q = end;
        }
        let w = NR.min(n - jp * NR);
        for (o, s) in out.iter_mut().zip(sums.chunks_exact(4)).take(w) {
            *o = s.iter().sum::<i64>();
        }
    };
    // Panel jp's sums go to columns jp*NR.. (the last panel's past n are dropped below).
    cs.clear();
    cs.resize(n.div_ceil(NR) * NR, 0);
    let panels = packed[..n.div_ceil(NR) * NR * kp].chunks(NR * kp);
    if par {
        cs.par_chunks_mut(NR)
            .zip(panels.collect::<Vec<_>>())
            .enumerate()
            .for_each(|(jp, (out, panel))| panel_sums(jp, panel, out));
    } else {
        for (jp, (out, panel)) in cs.chunks_mut(NR).zip(panels).enumerate() {
            panel_sums(jp, panel, out);
        }
    }
    cs.truncate(n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;
    use crate::sq::quantize;
    use crate::sq_gemm::sq_gemm;

    fn reference(a: &Matrix, b: &Matrix, p: SqParams, sa: Side, sb: Side) -> Matrix {
        let qa = quantize(a, "A", p, sa.axis, sa.rounding).unwrap();
        let qb = quantize(b, "B", p, sb.axis, sb.rounding).unwrap();
        sq_gemm(&qa, &qb).unwrap()
    }

    /// Whether this CPU runs the fused path for SQ-`bits` (AVX-512 VNNI: all; AVX2: up to 7).
    fn fused(bits: u32) -> bool {
        vnni8::supports(SqParams::new(bits, 7).unwrap().q() as u32)
    }

    /// The fused path is not silently skipped on the machines CI runs on: an x86-64 CPU with
    /// AVX2 runs it for the training formats.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn fused_path_runs_sq4_and_sq6_where_avx2_is() {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            assert!(fused(4) && fused(6));
        }
    }

    /// Whether two matrices hold the same f32 bit patterns.
    fn same_bits(x: &Matrix, y: &Matrix) -> bool {
        x.data.len() == y.data.len()
            && x.data
                .iter()
                .zip(&y.data)
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }

    /// Operands with a few outlier channels on both axes, so exponents spread over the window.
    fn operand(rows: usize, cols: usize, g: &mut SplitMix64) -> Matrix {
        Matrix::from_fn(rows, cols, |r, c| {
            let s = if c % 7 == 3 {
                40.0
            } else if r % 11 == 5 {
                9.0
            } else {
                1.0
            };
            (s * g.normal()) as f32
        })
    }

    fn check(m: usize, k: usize, n: usize, bits: u32, window: u32, seed: u64) {
        if !fused(bits) {
            return;
        }
        let mut g = SplitMix64::new(seed);
        let (a, b) = (operand(m, k, &mut g), operand(k, n, &mut g));
        let p = SqParams::new(bits, window).unwrap();
        let ne = Rounding::NearestEven;
        let st = |s| Rounding::Stochastic { seed: s };
        // The three training roles, plus both-per-K and neither-per-K.
        let cases = [
            (
                Side {
                    axis: Axis::Cols,
                    rounding: ne,
                },
                Side {
                    axis: Axis::Cols,
                    rounding: ne,
                },
            ),
            (
                Side {
                    axis: Axis::Cols,
                    rounding: st(seed),
                },
                Side {
                    axis: Axis::Cols,
                    rounding: ne,
                },
            ),
            (
                Side {
                    axis: Axis::Rows,
                    rounding: ne,
                },
                Side {
                    axis: Axis::Rows,
                    rounding: st(seed + 1),
                },
            ),
            (
                Side {
                    axis: Axis::Cols,
                    rounding: ne,
                },
                Side {
                    axis: Axis::Rows,
                    rounding: ne,
                },
            ),
            (
                Side {
                    axis: Axis::Rows,
                    rounding: st(3),
                },
                Side {
                    axis: Axis::Cols,
                    rounding: st(4),
                },
            ),
        ];
        for (sa, sb) in cases {
            let want = reference(&a, &b, p, sa, sb);
            let got = gemm(&a, &b, p, sa, sb).unwrap().expect("fast path applies");
            assert!(
                same_bits(&want, &got),
                "{m}x{k}x{n} sq{bits} E{window} {sa:?} {sb:?}"
            );
        }
    }

    #[test]
    fn matches_the_reference_path_bit_for_bit() {
        for (i, &(m, k, n)) in [
            (1, 1, 1),
            (5, 3, 7),
            (6, 4, 32),
            (7, 9, 33),
            (13, 64, 70),
            (64, 129, 65),
            (100, 37, 16),
            (33, 300, 95),
        ]
        .iter()
        .enumerate()
        {
            for bits in [4, 6, 8] {
                check(m, k, n, bits, 7, i as u64 * 10 + bits as u64);
            }
        }
    }

    /// `gemm_at(A^T, B)` against the reference on A, for the roles with a nearest-even A.
    fn check_at(m: usize, k: usize, n: usize, bits: u32, seed: u64) {
        if !fused(bits) {
            return;
        }
        let mut g = SplitMix64::new(seed);
        let (a, b) = (operand(m, k, &mut g), operand(k, n, &mut g));
        let a_t = a.transpose();
        let p = SqParams::new(bits, 7).unwrap();
        let ne = Rounding::NearestEven;
        let st = Rounding::Stochastic { seed };
        let cases = [
            // The weight gradient: X^T per-M, dY per-K stochastic.
            (
                Side {
                    axis: Axis::Rows,
                    rounding: ne,
                },
                Side {
                    axis: Axis::Rows,
                    rounding: st,
                },
            ),
            (
                Side {
                    axis: Axis::Cols,
                    rounding: ne,
                },
                Side {
                    axis: Axis::Cols,
                    rounding: st,
                },
            ),
            (
                Side {
                    axis: Axis::Cols,
                    rounding: ne,
                },
                Side {
                    axis: Axis::Rows,
                    rounding: ne,
                },
            ),
        ];
        for (sa, sb) in cases {
            let want = reference(&a, &b, p, sa, sb);
            let got = gemm_at(&a_t, &b, p, sa, sb)
                .unwrap()
                .expect("fast path applies");
            assert!(
                same_bits(&want, &got) && got.rows == m && got.cols == n,
                "{m}x{k}x{n} sq{bits} {sa:?} {sb:?}"
            );
        }
        // A stochastic A, a shape mismatch and a NaN are left to the reference path.
        let sa = Side {
            axis: Axis::Rows,
            rounding: st,
        };
        assert!(gemm_at(&a_t, &b, p, sa, sa).unwrap().is_none());
        let mut bad = a_t.clone();
        bad.data[0] = f32::NAN;
        let s = Side {
            axis: Axis::Rows,
            rounding: ne,
        };
        assert!(gemm_at(&bad, &b, p, s, s).unwrap().is_none());
    }

    /// The small-GEMM path (serial passes, the thread's kept scratch; most shapes here are under
    /// `SMALL_MACS`, the rest and fc1 take parallel passes) on random shapes in
    /// sequence, so every call builds in vectors a call of another shape left behind: the
    /// three training roles (forward, input gradient with a stochastic A, weight gradient
    /// through `gemm_at`) against `quantize` + `sq_gemm`, with the workloads' two small shapes
    /// (fc1, one attention head's scores) among them, and now and then an all-zero operand.
    #[test]
    fn small_gemms_in_reused_scratch_match() {
        if !fused(6) {
            return;
        }
        let mut g = SplitMix64::new(2026);
        let ne = Rounding::NearestEven;
        let side = |axis, rounding| Side { axis, rounding };
        let mut shapes = vec![(128, 512, 128), (50, 64, 50)];
        for _ in 0..40 {
            let dim = |g: &mut SplitMix64, top: u64| 1 + (g.next_u64() % top) as usize;
            shapes.push((dim(&mut g, 140), dim(&mut g, 600), dim(&mut g, 140)));
        }
        for (i, &(m, k, n)) in shapes.iter().enumerate() {
            let bits = if i % 3 == 2 { 4 } else { 6 };
            let p = SqParams::new(bits, (g.next_u64() % 8) as u32).unwrap();
            let (mut a, mut b) = (operand(m, k, &mut g), operand(k, n, &mut g));
            match i % 7 {
                5 => a.data.fill(0.0),
                6 => b.data.fill(0.0),
                _ => {}
            }
            let st = Rounding::Stochastic { seed: i as u64 };
            let roles = [
                (side(Axis::Cols, ne), side(Axis::Cols, ne)),
                (side(Axis::Cols, st), side(Axis::Cols, ne)),
            ];
            for (sa, sb) in roles {
                let want = reference(&a, &b, p, sa, sb);
                let got = gemm(&a, &b, p, sa, sb).unwrap().expect("fast path applies");
                assert!(same_bits(&want, &got), "{m}x{k}x{n} sq{bits} {sa:?} {sb:?}");
            }
            let (sa, sb) = (side(Axis::Rows, ne), side(Axis::Rows, st));
            let want = reference(&a, &b, p, sa, sb);
            let got = gemm_at(&a.transpose(), &b, p, sa, sb)
                .unwrap()
                .expect("fast path applies");
            assert!(same_bits(&want, &got), "gemm_at {m}x{k}x{n} sq{bits}");
        }
    }

    #[test]
    fn transposed_a_matches_the_reference_path() {
        for (i, &(m, k, n)) in [
            (1, 1, 1),
            (7, 9, 33),
            (48, 300, 40),
            (65, 130, 5),
            (301, 517, 70),
        ]
        .iter()
        .enumerate()
        {
            for bits in [4, 6, 8] {
                check_at(m, k, n, bits, 100 + i as u64 * 10 + bits as u64);
            }
        }
    }

    /// The weight gradients of the workloads: a long K of examples whose per-example exponents
    /// (dY's rows: `operand` spreads them) reorder K, 16-48 columns of dY (the transposed
    /// side, 16 x 16 register transposes plus edges) and short rows of X (quantized a tile at a
    /// time, then gathered into quads); on one thread and, past 32,768 elements, on all.
    #[test]
    fn weight_gradients_of_short_rows_match() {
        for (i, &(m, k, n)) in [
            (25, 3001, 16),
            (25, 777, 5),
            (9, 20_000, 48),
            (33, 5000, 17),
            (25, 9000, 16),
        ]
        .iter()
        .enumerate()
        {
            for bits in [4, 6] {
                check_at(m, k, n, bits, 300 + i as u64 * 10 + bits as u64);
            }
        }
    }

    /// The per-group passes give the scatter's order, for few groups and for many.
    #[test]
    fn k_order_passes_equal_the_scatter() {
        let mut g = SplitMix64::new(78);
        let mut bufs = ((Vec::new(), Vec::new()), (Vec::new(), Vec::new()));
        for trial in 0..200 {
            let k = 1 + (g.next_u64() % 500) as usize;
            let spread = 1 + g.next_u64() % 31;
            let base = g.next_u64() % (31 - spread + 1);
            let shifts: Vec<u8> = (0..k)
                .map(|kk| match trial % 3 {
                    0 => (base + g.next_u64() % spread) as u8,
                    1 => (base + (kk as u64 * spread / k as u64)) as u8, // sorted ascending
                    _ => (base + spread - 1 - (kk as u64 * spread / k as u64)) as u8, // descending
                })
                .collect();
            let mut count = [0usize; 2 * MAX_EXP + 1];
            for &s in &shifts {
                count[s as usize] += 1;
            }
            // Each trial builds in the previous trial's vectors (stale contents, as in reuse).
            let (a, b) = (
                KOrder::new(&shifts, &count, std::mem::take(&mut bufs.0)),
                KOrder::scattered(&shifts, &count, std::mem::take(&mut bufs.1)),
            );
            assert_eq!(a.src, b.src, "trial {trial}");
            assert_eq!(a.quad_exps, b.quad_exps);
            assert_eq!(a.identity, b.identity);
            bufs = ((a.src, a.quad_exps), (b.src, b.quad_exps));
        }
    }

    /// `BytePerm` (where the CPU has VBMI) against the byte gather it replaces, on random K
    /// orders of rows of 1..=127 codes with padding positions.
    #[test]
    fn byte_permute_is_the_gather() {
        let mut g = SplitMix64::new(91);
        for trial in 0..300 {
            let k = 1 + (g.next_u64() % 127) as usize;
            let kp = (k + (g.next_u64() % 8) as usize).div_ceil(4) * 4;
            if kp > 128 {
                continue;
            }
            let src: Vec<u32> = (0..kp)
                .map(|_| (g.next_u64() % (k as u64 + 1)) as u32)
                .collect();
            let Some(perm) = BytePerm::new(&src, k) else {
                return; // no VBMI here
            };
            let q = [7, 31, 127][trial % 3];
            let row: Vec<i8> = (0..k)
                .map(|_| (g.next_u64() % (2 * q as u64 + 1)) as i32 - q)
                .map(|c| c as i8)
                .collect();
            let mut got = vec![0xAAu8; kp + 3];
            perm.apply(&row, q, &mut got);
            let want: Vec<u8> = src
                .iter()
                .map(|&s| match row.get(s as usize) {
                    Some(&c) => (i32::from(c) + q) as u8,
                    None => 0,
                })
                .collect();
            assert_eq!(&got[..kp], &want[..], "trial {trial} k {k} kp {kp}");
            assert!(got[kp..].iter().all(|&b| b == 0xAA), "wrote past kp");
        }
    }

    /// `gather_transposed` against its definition, on random sources, widths and ranges.
    #[test]
    fn transposed_gather_is_its_definition() {
        let mut g = SplitMix64::new(77);
        for trial in 0..60 {
            let n = 1 + (g.next_u64() % 70) as usize;
            let k = 1 + (g.next_u64() % 300) as usize;
            let kp = k + (g.next_u64() % 40) as usize;
            let codes: Vec<i8> = (0..(k + 1) * n)
                .map(|_| (g.next_u64() % 63) as i8 - 31)
                .collect();
            let src: Vec<u32> = (0..kp)
                .map(|_| (g.next_u64() % (k as u64 + 1)) as u32)
                .collect();
            let p0 = (g.next_u64() % (kp as u64 + 1)) as usize;
            let p1 = p0 + (g.next_u64() % ((kp - p0) as u64 + 1)) as usize;
            let mut out = vec![0u8; n * kp];
            // SAFETY: out holds n rows of kp bytes.
            unsafe { gather_transposed(&codes, n, 31, &src, (p0, p1), out.as_mut_ptr(), kp) };
            for j in 0..n {
                for p in 0..kp {
                    let want = if (p0..p1).contains(&p) {
                        (i32::from(codes[src[p] as usize * n + j]) + 31) as u8
                    } else {
                        0
                    };
                    assert_eq!(out[j * kp + p], want, "trial {trial} j {j} p {p}");
                }
            }
        }
    }

    #[test]
    fn large_products_on_all_threads_match() {
        // Past the thresholds of the parallel packers (32,768 elements) and of the parallel
        // kernel (8M MACs), with edges in every dimension.
        check(301, 517, 70, 6, 7, 21);
        check(70, 1100, 131, 4, 7, 22);
    }

    /// A C past the kernel's non-temporal store threshold (8 MB: 2090 x 1004 f32), with a
    /// partial last panel (1004 = 31 x 32 + 12 columns) and a partial last row tile.
    #[test]
    fn large_outputs_stored_non_temporally_match() {
        check(2090, 3, 1004, 6, 7, 23);
    }

    #[test]
    fn wide_windows_and_long_k_flush_exactly() {
        // sq8 flushes its i32 accumulators beyond ~520 k at shift 7; window 15 both per-K sums
        // to shifts of 30 (a flush before the shift).
        check(9, 2100, 40, 8, 7, 1);
        check(7, 700, 20, 8, 15, 2);
        check(5, 9000, 8, 6, 7, 3);
        // The same in the formats the AVX2 form runs (sq8 stays on the reference path there).
        check(7, 700, 20, 6, 15, 4);
        check(5, 12_000, 9, 6, 7, 5); // long enough that its plan flushes for these operands
        check(7, 3000, 20, 4, 15, 6);
    }

    #[test]
    fn short_rows_quantized_in_tiles_match() {
        // Plain normal operands: every per-K exponent equal (the identity order), rows far
        // shorter than a tile (im2col's 25 columns), on one thread and on all.
        if !fused(6) {
            return;
        }
        for (i, &(m, k, n)) in [(301, 25, 16), (77, 48, 40), (9000, 25, 16), (5, 255, 3)]
            .iter()
            .enumerate()
        {
            let mut g = SplitMix64::new(40 + i as u64);
            let a = Matrix::from_fn(m, k, |_, _| g.normal() as f32);
            let b = Matrix::from_fn(k, n, |_, _| g.normal() as f32);
            let p = SqParams::new(6, 7).unwrap();
            for rounding in [Rounding::NearestEven, Rounding::Stochastic { seed: 9 }] {
                let sa = Side {
                    axis: Axis::Cols,
                    rounding,
                };
                let sb = Side {
                    axis: Axis::Cols,
                    rounding: Rounding::NearestEven,
                };
                let want = reference(&a, &b, p, sa, sb);
                let got = gemm(&a, &b, p, sa, sb).unwrap().unwrap();
                assert!(same_bits(&want, &got), "{m}x{k}x{n} {rounding:?}");
            }
        }
    }

    #[test]
    fn all_zero_operands_and_window_zero() {
        if !fused(6) {
            return;
        }
        let p = SqParams::new(6, 0).unwrap();
        let s = Side {
            axis: Axis::Cols,
            rounding: Rounding::NearestEven,
        };
        let a = Matrix::zeros(4, 5);
        let mut g = SplitMix64::new(5);
        let b = operand(5, 6, &mut g);
        let got = gemm(&a, &b, p, s, s).unwrap().unwrap();
        assert_eq!(got, reference(&a, &b, p, s, s));
        check(20, 30, 40, 4, 0, 9);
    }
}
