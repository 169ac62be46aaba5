//! The ShiftQuant tensor format, SPEC §2: signed b-bit codes with one power-of-two exponent per
//! channel inside a window 0..=E, over one base scale per tensor.

use crate::error::{Error, Result};
use crate::format::Axis;
use crate::matrix::Matrix;
use rayon::prelude::*;
use shiftkit_hw::config::{MAX_WINDOW, SQ_BITS};

/// Bit-width and exponent window of one SQ-b tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqParams {
    pub bits: u32,
    pub window: u32,
}

impl SqParams {
    pub fn new(bits: u32, window: u32) -> Result<Self> {
        if !SQ_BITS.contains(&bits) {
            return Err(Error::Usage(format!(
                "sq{bits} is not supported: use sq4, sq6 or sq8"
            )));
        }
        if window > MAX_WINDOW {
            return Err(Error::Usage(format!(
                "window {window} is out of range: use --window 0..={MAX_WINDOW}"
            )));
        }
        Ok(SqParams { bits, window })
    }

    /// Largest code magnitude, Q = 2^(b-1) - 1.
    pub fn q(&self) -> i32 {
        (1 << (self.bits - 1)) - 1
    }
}

/// How a real value becomes a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Round half to even: forward tensors and `shiftkit gemm`.
    NearestEven,
    /// floor(v + u), u uniform in [0, 1) drawn with `rng::uniform_at(seed, flat index)`: gradients.
    Stochastic { seed: u64 },
}

/// A quantized matrix: `codes` row-major, one exponent per channel along `axis`.
#[derive(Clone, Debug, PartialEq)]
pub struct SqMatrix {
    pub rows: usize,
    pub cols: usize,
    pub params: SqParams,
    pub axis: Axis,
    /// Base scale s (f64).
    pub scale: f64,
    /// One exponent in 0..=E per channel (per row when `axis` is Rows, per column otherwise).
    pub exps: Vec<u8>,
    pub codes: Vec<i8>,
}

/// Rows per parallel task: below this, threads cost more than they save.
const PAR_ROWS_MIN_ELEMS: usize = 1 << 15;

/// Quantize `x` (named `name` in errors) along `axis`, exactly as SPEC §2.
pub fn quantize(
    x: &Matrix,
    name: &str,
    params: SqParams,
    axis: Axis,
    rounding: Rounding,
) -> Result<SqMatrix> {
    let (rows, cols) = (x.rows, x.cols);
    let plan = ChannelPlan::new(x, name, params, axis)?;
    let mut codes = vec![0i8; rows * cols];
    if !plan.is_zero() {
        let quantize_row =
            |(r, out): (usize, &mut [i8])| plan.row_codes(x.row(r), r, 0, rounding, out);
        if rows * cols >= PAR_ROWS_MIN_ELEMS {
            codes
                .par_chunks_mut(cols)
                .enumerate()
                .for_each(quantize_row);
        } else {
            codes.chunks_mut(cols).enumerate().for_each(quantize_row);
        }
    }
    Ok(SqMatrix {
        rows,
        cols,
        params,
        axis,
        scale: plan.scale,
        exps: plan.exps,
        codes,
    })
}

/// The per-tensor half of SPEC §2 quantization: the base scale and every channel's exponent
/// and step, from one pass over the tensor. `quantize` and the fused golden path
/// (`sq_fused`) both build their codes from it, so they cannot disagree.
#[derive(Clone, Debug)]
pub struct ChannelPlan {
    pub params: SqParams,
    pub axis: Axis,
    /// Base scale s (1.0 for an all-zero tensor).
    pub scale: f64,
    /// One exponent in 0..=E per channel.
    pub exps: Vec<u8>,
    /// Step of each channel, s * 2^e (exact: a power-of-two multiple of s); empty when the
    /// tensor is all zero (every code is 0).
    steps: Vec<f64>,
    /// `1 / step` of each channel (rounded once), for the fast loop.
    invs: Vec<f64>,
    /// The same rounded to f32, when every one is a usable f32 (`inv32`).
    invs32: Option<Vec<f32>>,
    /// Row-major width of the tensor (for the stochastic stream's flat index).
    cols: usize,
    /// For a per-column plan of short rows: `steps`, `invs`, `invs32` repeated for `tile`
    /// rows, so `rows_codes` can take that many rows in one call.
    tiled: Option<Tiled>,
    /// Vectors not in use (the channel maxima, unused f32 tables), kept for `into_bufs`.
    spare: Spare,
}

type Spare = (Vec<f32>, Vec<f32>, Vec<f64>, Vec<f64>, Vec<f32>);

#[derive(Clone, Debug)]
struct Tiled {
    rows: usize,
    steps: Vec<f64>,
    invs: Vec<f64>,
    invs32: Option<Vec<f32>>,
}

/// The vectors a `ChannelPlan` is built in, kept between plans by callers that build many
/// small ones (`sq_fused`'s small-GEMM path): a plan of a 50 x 64 operand was a dozen
/// allocations, about a tenth of the whole GEMM.
#[derive(Debug, Default)]
pub struct PlanBufs {
    maxima: Vec<f32>,
    exps: Vec<u8>,
    steps: Vec<f64>,
    invs: Vec<f64>,
    invs32: Vec<f32>,
    tiled_steps: Vec<f64>,
    tiled_invs: Vec<f64>,
    tiled_invs32: Vec<f32>,
}

/// `dst` cleared and filled with `src` repeated `times` times (its capacity reused).
fn fill_repeated<T: Copy>(dst: &mut Vec<T>, src: &[T], times: usize) {
    dst.clear();
    for _ in 0..times {
        dst.extend_from_slice(src);
    }
}

impl ChannelPlan {
    /// Channel maxima, scale and exponents of `x` (named `name` in errors): non-finite values
    /// are an error naming the first bad position.
    pub fn new(x: &Matrix, name: &str, params: SqParams, axis: Axis) -> Result<ChannelPlan> {
        let par = x.data.len() >= PAR_ROWS_MIN_ELEMS;
        Self::build(x, name, params, axis, par, PlanBufs::default())
    }

    /// `new` in the vectors of `bufs` (from `into_bufs` of an earlier plan), scanning on all
    /// threads only when `par`. The plan is the same whatever `bufs` held and whatever `par`.
    pub fn build(
        x: &Matrix,
        name: &str,
        params: SqParams,
        axis: Axis,
        par: bool,
        bufs: PlanBufs,
    ) -> Result<ChannelPlan> {
        let PlanBufs {
            mut maxima,
            mut exps,
            mut steps,
            mut invs,
            mut invs32,
            mut tiled_steps,
            mut tiled_invs,
            mut tiled_invs32,
        } = bufs;
        let finite = channel_maxima(x, axis, par, &mut maxima);
        if !finite {
            x.check_finite(name)?; // names the first bad position
        }
        let r_max = maxima.iter().copied().fold(0.0f32, f32::max);
        exps.clear();
        steps.clear();
        invs.clear();
        invs32.clear();
        if r_max == 0.0 {
            exps.resize(maxima.len(), 0);
            return Ok(ChannelPlan {
                params,
                axis,
                scale: 1.0,
                exps,
                steps,
                invs,
                invs32: None,
                cols: x.cols,
                tiled: None,
                spare: (maxima, invs32, tiled_steps, tiled_invs, tiled_invs32),
            });
        }
        let q = params.q() as f64;
        let scale = r_max as f64 / (q * pow2(params.window));
        let q_scale = q * scale; // rounded once, as the spec says
                                 // Per exponent value (at most 16 of them), not per channel: a per-example gradient has
                                 // tens of thousands of channels. The tables hold the same f64 operations' results.
        let top = params.window as usize;
        let values = top + 1;
        let mut bounds = [f64::INFINITY; MAX_WINDOW as usize + 1];
        let mut step_of = [0.0f64; MAX_WINDOW as usize + 1];
        let mut inv_of = [0.0f64; MAX_WINDOW as usize + 1];
        let mut inv32_of = [None; MAX_WINDOW as usize + 1];
        for e in 0..values {
            bounds[e] = q_scale * pow2(e as u32);
            step_of[e] = scale * pow2(e as u32);
            inv_of[e] = 1.0 / step_of[e];
            inv32_of[e] = inv32(inv_of[e]);
        }
        let bounds = &bounds[..values];
        // The first e with r <= q s 2^e (else E): the bounds increase, so that is the number
        // of bounds below r, counted without branches.
        exps.extend(maxima.iter().map(|&r| {
            let r = r as f64;
            bounds
                .iter()
                .map(|&b| (r > b) as usize)
                .sum::<usize>()
                .min(top) as u8
        }));
        steps.extend(exps.iter().map(|&e| step_of[e as usize]));
        invs.extend(exps.iter().map(|&e| inv_of[e as usize]));
        let all32 = exps.iter().all(|&e| inv32_of[e as usize].is_some());
        if all32 {
            invs32.extend(exps.iter().map(|&e| inv32_of[e as usize].unwrap_or(0.0)));
        }
        let tiled = (axis == Axis::Cols && x.cols > 0 && x.cols < TILE_ELEMS).then(|| {
            let rows = TILE_ELEMS.div_ceil(x.cols);
            fill_repeated(&mut tiled_steps, &steps, rows);
            fill_repeated(&mut tiled_invs, &invs, rows);
            let t32 = all32.then(|| {
                fill_repeated(&mut tiled_invs32, &invs32, rows);
                std::mem::take(&mut tiled_invs32)
            });
            Tiled {
                rows,
                steps: std::mem::take(&mut tiled_steps),
                invs: std::mem::take(&mut tiled_invs),
                invs32: t32,
            }
        });
        let invs32 = if all32 {
            Some(invs32)
        } else {
            tiled_invs32 = invs32; // keep its capacity
            None
        };
        Ok(ChannelPlan {
            params,
            axis,
            scale,
            exps,
            steps,
            invs,
            invs32,
            cols: x.cols,
            tiled,
            spare: (maxima, Vec::new(), tiled_steps, tiled_invs, tiled_invs32),
        })
    }

    /// The plan's vectors, for `build` to reuse.
    pub fn into_bufs(self) -> PlanBufs {
        let (maxima, spare32, spare_steps, spare_invs, spare_t32) = self.spare;
        let (tiled_steps, tiled_invs, tiled_t32) = match self.tiled {
            Some(t) => (t.steps, t.invs, t.invs32),
            None => (spare_steps, spare_invs, None),
        };
        let invs32 = self.invs32.unwrap_or(spare32);
        PlanBufs {
            maxima,
            exps: self.exps,
            steps: self.steps,
            invs: self.invs,
            invs32,
            tiled_steps,
            tiled_invs,
            tiled_invs32: tiled_t32.unwrap_or(spare_t32),
        }
    }

    /// Whether every code is 0 (an all-zero tensor).
    pub fn is_zero(&self) -> bool {
        self.steps.is_empty()
    }

    /// Codes of whole rows `r0..` of the tensor (`xs`, row-major) into `out` (the same layout):
    /// the codes `row_codes` gives row by row, with short rows of a per-column plan taken
    /// several at a time (their steps repeat every row, and the stochastic stream's index is
    /// flat).
    pub fn rows_codes(&self, xs: &[f32], r0: usize, rounding: Rounding, out: &mut [i8]) {
        let cols = self.cols;
        if cols == 0 {
            return;
        }
        debug_assert!(xs.len().is_multiple_of(cols) && out.len() >= xs.len());
        match &self.tiled {
            Some(t) if !self.is_zero() => {
                let q = self.params.q() as f64;
                for (i, (chunk, o)) in xs
                    .chunks(t.rows * cols)
                    .zip(out.chunks_mut(t.rows * cols))
                    .enumerate()
                {
                    let len = chunk.len();
                    let steps = Steps::PerColumn(
                        &t.steps[..len],
                        &t.invs[..len],
                        t.invs32.as_ref().map(|v| &v[..len]),
                    );
                    let first = ((r0 + i * t.rows) * cols) as u64;
                    rows_kernel::quantize_row(chunk, steps, q, rounding, first, o);
                }
            }
            None if self.axis == Axis::Rows && !self.is_zero() => {
                // A per-row plan (a per-example gradient's 16 or 48 columns): every row in one
                // call of the kernel, each with its own step (one call per short row cost more
                // than its quantization).
                let rows = xs.len() / cols;
                let q = self.params.q() as f64;
                let first = (r0 * cols) as u64;
                rows_kernel::quantize_rows(
                    xs,
                    cols,
                    (&self.steps[r0..r0 + rows], &self.invs[r0..r0 + rows]),
                    q,
                    rounding,
                    first,
                    out,
                );
            }
            _ => {
                for (i, (row, o)) in xs.chunks(cols).zip(out.chunks_mut(cols)).enumerate() {
                    self.row_codes(row, r0 + i, 0, rounding, o);
                }
            }
        }
    }

    /// Rows per call of `rows_codes` (1 where rows go one at a time).
    pub fn tile_rows(&self) -> usize {
        match &self.tiled {
            Some(t) => t.rows,
            None if self.axis == Axis::Rows && self.cols > 0 && self.cols < TILE_ELEMS => {
                TILE_ELEMS.div_ceil(self.cols)
            }
            None => 1,
        }
    }

    /// Codes of `xs` = columns `c0..c0 + xs.len()` of row `r` of the tensor, into `out`.
    pub fn row_codes(&self, xs: &[f32], r: usize, c0: usize, rounding: Rounding, out: &mut [i8]) {
        if self.is_zero() {
            out[..xs.len()].fill(0);
            return;
        }
        let cols = c0..c0 + xs.len();
        let steps = match self.axis {
            Axis::Rows => Steps::Uniform(self.steps[r], self.invs[r], inv32(self.invs[r])),
            Axis::Cols => Steps::PerColumn(
                &self.steps[cols.clone()],
                &self.invs[cols.clone()],
                self.invs32.as_ref().map(|v| &v[cols]),
            ),
        };
        let first = (r * self.cols + c0) as u64;
        let q = self.params.q() as f64;
        rows_kernel::quantize_row(xs, steps, q, rounding, first, out);
    }
}

/// The step (s * 2^e) of every element of one row.
/// Each comes with its reciprocal `1 / step` (rounded), which the fast loops multiply by, and,
/// where it is a normal f32, that reciprocal rounded to f32 (the nearest-even loop's f32 path).
#[derive(Clone, Copy)]
enum Steps<'a> {
    Uniform(f64, f64, Option<f32>),
    PerColumn(&'a [f64], &'a [f64], Option<&'a [f32]>),
}

/// `inv` as an f32 the f32 loop may use: normal, and small enough that no product of a finite
/// code-range input overflows.
fn inv32(inv: f64) -> Option<f32> {
    let r = inv as f32;
    (r.is_normal() && r < 1e30).then_some(r)
}

/// The per-element loop, compiled twice: for the baseline target and with AVX2 (where
/// `round_ties_even` and `floor` become single vector instructions instead of libm calls).
mod rows_kernel {
    use super::{Rounding, Steps};
    use crate::rng::uniform_at;

    #[inline(always)]
    fn code(t: f64, q: f64) -> i8 {
        // t is finite (finite input over a positive finite step), so after the clamp it is an
        // integer-valued f64 in [-127, 127]: the unchecked conversion is exact, and unlike a
        // saturating `as` it vectorizes.
        let t = t.clamp(-q, q);
        debug_assert!(t.is_finite());
        // SAFETY: t is finite and within i32 range (see above).
        unsafe { t.to_int_unchecked::<i32>() as i8 }
    }

    /// The spec's quotient `v / step` is what rounds; multiplying by `1 / step` instead is within
    /// 2^-44 of it (|v / step| <= Q(1 + 2^-52) <= 128, and three roundings of 2^-53 each), so the
    /// rounded code can differ only where the product lies that close to a rounding boundary
    /// (a half-integer for nearest-even, an integer after adding u for stochastic rounding).
    /// `fast` flags any element within `NEAR` of one; the row is then redone by `exact`, which
    /// divides. Data with exact ties (small integers over power-of-two scales) takes that path;
    /// random data practically never does.
    const NEAR: f64 = 1.0 / (1u64 << 40) as f64;

    /// The nearest-even loop in f32 (twice the lanes): with `inv32 = f32(1 / step)` and
    /// `t32 = f32(v * inv32)`, |t32 - v / step| <= |v / step| (2^-24 + 2^-53 + 2^-24) < 2^-16
    /// (|v / step| <= 128), so away from `NEAR32 = 2^-14` of a half-integer t32 rounds as the
    /// spec's f64 quotient does. About 1 element in 8,000 is that close, and sends its row through
    /// `exact`.
    const NEAR32: f32 = 1.0 / (1u32 << 14) as f32;

    #[inline(always)]
    fn code32(t: f32, q: f32) -> i8 {
        // t is finite (finite input times a normal f32 below 1e30, and |t| <= 128 for inputs in
        // their channel's range), so after the clamp it is an integer in [-127, 127].
        let t = t.clamp(-q, q);
        debug_assert!(t.is_finite());
        // SAFETY: t is finite and within i32 range (see above).
        unsafe { t.to_int_unchecked::<i32>() as i8 }
    }

    /// Elements per block of the fast loops: whole blocks compile to straight vector code (the
    /// loops LLVM vectorizes on its own left rows of 48 or 67 elements mostly to their scalar
    /// remainder loops, and gradient rows are that short).
    const BLOCK: usize = 16;

    /// `body` (an expression of `s` and `len` giving near flags) over `0..n` in blocks of
    /// `BLOCK` (a constant length), then once for the rest; the flags of all or'ed. A macro, not
    /// a closure: a closure is a function of its own, compiled without the caller's target
    /// features (and so without vector rounding).
    macro_rules! blocks {
        ($n:expr, |$s:ident, $len:ident| $body:expr) => {{
            let n: usize = $n;
            let full = n / BLOCK * BLOCK;
            let mut near = 0u32;
            let mut start = 0usize;
            while start < full {
                let ($s, $len) = (start, BLOCK);
                near |= $body;
                start += BLOCK;
            }
            if full < n {
                let ($s, $len) = (full, n - full);
                near |= $body;
            }
            near
        }};
    }

    #[inline(always)]
    fn fast(
        xs: &[f32],
        steps: Steps,
        q: f64,
        rounding: Rounding,
        first: u64,
        out: &mut [i8],
    ) -> bool {
        let n = xs.len();
        let out = &mut out[..n];
        // Each arm's block body: codes of elements s..s+len into `out`, returning the near flags.
        let near = match (steps, rounding) {
            (Steps::Uniform(_, _, Some(inv)), Rounding::NearestEven) => blocks!(n, |s, len| {
                let (o, x) = (&mut out[s..s + len], &xs[s..s + len]);
                let mut near = 0u32;
                for j in 0..len {
                    let t = x[j] * inv;
                    let r = t.round_ties_even();
                    near |= ((t - r).abs() > 0.5 - NEAR32) as u32;
                    o[j] = code32(r, q as f32);
                }
                near
            }),
            (Steps::PerColumn(_, _, Some(invs)), Rounding::NearestEven) => blocks!(n, |s, len| {
                let (o, x, iv) = (&mut out[s..s + len], &xs[s..s + len], &invs[s..s + len]);
                let mut near = 0u32;
                for j in 0..len {
                    let t = x[j] * iv[j];
                    let r = t.round_ties_even();
                    near |= ((t - r).abs() > 0.5 - NEAR32) as u32;
                    o[j] = code32(r, q as f32);
                }
                near
            }),
            (Steps::Uniform(_, inv, None), Rounding::NearestEven) => blocks!(n, |s, len| {
                let (o, x) = (&mut out[s..s + len], &xs[s..s + len]);
                let mut near = 0u32;
                for j in 0..len {
                    let t = x[j] as f64 * inv;
                    let r = t.round_ties_even();
                    near |= ((t - r).abs() > 0.5 - NEAR) as u32;
                    o[j] = code(r, q);
                }
                near
            }),
            (Steps::PerColumn(_, invs, None), Rounding::NearestEven) => blocks!(n, |s, len| {
                let (o, x, iv) = (&mut out[s..s + len], &xs[s..s + len], &invs[s..s + len]);
                let mut near = 0u32;
                for j in 0..len {
                    let t = x[j] as f64 * iv[j];
                    let r = t.round_ties_even();
                    near |= ((t - r).abs() > 0.5 - NEAR) as u32;
                    o[j] = code(r, q);
                }
                near
            }),
            // One loop per step kind: a `match` inside the loop kept LLVM from vectorizing it.
            (Steps::Uniform(_, inv, _), Rounding::Stochastic { seed }) => blocks!(n, |s, len| {
                let (o, x) = (&mut out[s..s + len], &xs[s..s + len]);
                let base = first + s as u64;
                let mut near = 0u32;
                for j in 0..len {
                    let t = x[j] as f64 * inv + uniform_at(seed, base + j as u64);
                    near |= ((t - t.round_ties_even()).abs() < NEAR) as u32;
                    o[j] = code(t.floor(), q);
                }
                near
            }),
            (Steps::PerColumn(_, invs, _), Rounding::Stochastic { seed }) => {
                blocks!(n, |s, len| {
                    let (o, x, iv) = (&mut out[s..s + len], &xs[s..s + len], &invs[s..s + len]);
                    let base = first + s as u64;
                    let mut near = 0u32;
                    for j in 0..len {
                        let t = x[j] as f64 * iv[j] + uniform_at(seed, base + j as u64);
                        near |= ((t - t.round_ties_even()).abs() < NEAR) as u32;
                        o[j] = code(t.floor(), q);
                    }
                    near
                })
            }
        };
        near == 0
    }

    /// SPEC §2 to the letter: the f64 quotient, then the rounding.
    #[inline(always)]
    fn exact(xs: &[f32], steps: Steps, q: f64, rounding: Rounding, first: u64, out: &mut [i8]) {
        match (steps, rounding) {
            (Steps::Uniform(step, _, _), Rounding::NearestEven) => {
                for (o, &v) in out.iter_mut().zip(xs) {
                    *o = code((v as f64 / step).round_ties_even(), q);
                }
            }
            (Steps::PerColumn(steps, _, _), Rounding::NearestEven) => {
                for ((o, &v), &step) in out.iter_mut().zip(xs).zip(steps) {
                    *o = code((v as f64 / step).round_ties_even(), q);
                }
            }
            (steps, Rounding::Stochastic { seed }) => {
                for (c, (o, &v)) in out.iter_mut().zip(xs).enumerate() {
                    let step = match steps {
                        Steps::Uniform(s, _, _) => s,
                        Steps::PerColumn(s, _, _) => s[c],
                    };
                    *o = code(
                        (v as f64 / step + uniform_at(seed, first + c as u64)).floor(),
                        q,
                    );
                }
            }
        }
    }

    #[inline(always)]
    fn body(xs: &[f32], steps: Steps, q: f64, rounding: Rounding, first: u64, out: &mut [i8]) {
        if !fast(xs, steps, q, rounding, first, out) {
            exact(xs, steps, q, rounding, first, out);
        }
    }

    /// `body` for each row of `xs` (rows of `cols` elements) with that row's step and
    /// reciprocal, the flat index running on across rows.
    #[inline(always)]
    fn body_rows(
        xs: &[f32],
        cols: usize,
        (steps, invs): (&[f64], &[f64]),
        q: f64,
        rounding: Rounding,
        first: u64,
        out: &mut [i8],
    ) {
        for (i, ((x, o), (&step, &inv))) in xs
            .chunks_exact(cols)
            .zip(out.chunks_exact_mut(cols))
            .zip(steps.iter().zip(invs))
            .enumerate()
        {
            let steps = Steps::Uniform(step, inv, super::inv32(inv));
            body(x, steps, q, rounding, first + (i * cols) as u64, o);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn body_rows_avx2(
        xs: &[f32],
        cols: usize,
        steps: (&[f64], &[f64]),
        q: f64,
        rounding: Rounding,
        first: u64,
        out: &mut [i8],
    ) {
        body_rows(xs, cols, steps, q, rounding, first, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
    unsafe fn body_rows_avx512(
        xs: &[f32],
        cols: usize,
        steps: (&[f64], &[f64]),
        q: f64,
        rounding: Rounding,
        first: u64,
        out: &mut [i8],
    ) {
        body_rows(xs, cols, steps, q, rounding, first, out)
    }

    /// Rows of `cols` elements, row `i` with step `steps.0[i]` (reciprocal `steps.1[i]`):
    /// exactly `quantize_row` row by row, in one call.
    pub(super) fn quantize_rows(
        xs: &[f32],
        cols: usize,
        steps: (&[f64], &[f64]),
        q: f64,
        rounding: Rounding,
        first: u64,
        out: &mut [i8],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx512() {
                // SAFETY: the CPU supports every feature the function enables (checked).
                return unsafe { body_rows_avx512(xs, cols, steps, q, rounding, first, out) };
            }
            if has_avx2() {
                // SAFETY: the CPU supports AVX2 and FMA (checked).
                return unsafe { body_rows_avx2(xs, cols, steps, q, rounding, first, out) };
            }
        }
        body_rows(xs, cols, steps, q, rounding, first, out)
    }

    #[cfg(target_arch = "x86_64")]
    fn has_avx512() -> bool {
        use std::arch::is_x86_feature_detected as has;
        has!("avx512f") && has!("avx512dq") && has!("avx512vl") && has!("avx512bw") && has_avx2()
    }

    #[cfg(target_arch = "x86_64")]
    fn has_avx2() -> bool {
        use std::arch::is_x86_feature_detected as has;
        has!("avx2") && has!("fma")
    }

    /// The exact loop alone (tests hold the fast one against it).
    #[cfg(test)]
    pub(super) fn quantize_row_exact(
        xs: &[f32],
        steps: Steps,
        q: f64,
        rounding: Rounding,
        first: u64,
        out: &mut [i8],
    ) {
        exact(xs, steps, q, rounding, first, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn body_avx2(
        xs: &[f32],
        steps: Steps,
        q: f64,
        rounding: Rounding,
        first: u64,
        out: &mut [i8],
    ) {
        body(xs, steps, q, rounding, first, out)
    }

    /// AVX-512DQ has the 64-bit multiplies and u64 -> f64 conversions of the stochastic stream.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")]
    unsafe fn body_avx512(
        xs: &[f32],
        steps: Steps,
        q: f64,
        rounding: Rounding,
        first: u64,
        out: &mut [i8],
    ) {
        body(xs, steps, q, rounding, first, out)
    }

    pub(super) fn quantize_row(
        xs: &[f32],
        steps: Steps,
        q: f64,
        rounding: Rounding,
        first: u64,
        out: &mut [i8],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if has_avx512() {
                // SAFETY: the CPU supports every feature the function enables (checked above).
                return unsafe { body_avx512(xs, steps, q, rounding, first, out) };
            }
            if has_avx2() {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                return unsafe { body_avx2(xs, steps, q, rounding, first, out) };
            }
        }
        body(xs, steps, q, rounding, first, out)
    }
}

/// No NaN or infinity in `xs` (an all-ones exponent field); branch-free so it vectorizes.
fn all_finite(xs: &[f32]) -> bool {
    xs.iter().fold(0u32, |bad, v| {
        bad | ((v.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32
    }) == 0
}

/// About how many elements one call of a per-row loop should see: rows shorter than this are
/// handled several at a time.
pub(crate) const TILE_ELEMS: usize = 256;

/// max |x| over each channel into `out` (cleared first), and whether every value is finite.
/// When `par`, large tensors are scanned on all threads: max is exact in any order, so the
/// result does not depend on the split. The serial scans allocate nothing beyond `out`.
fn channel_maxima(x: &Matrix, axis: Axis, par: bool, out: &mut Vec<f32>) -> bool {
    let cols = x.cols.max(1);
    out.clear();
    match axis {
        Axis::Rows => {
            // Blocks of rows per call (short rows would otherwise cost a call each).
            let block_rows = TILE_ELEMS.div_ceil(cols).max(1) * 16;
            if !par {
                out.resize(x.data.len() / cols, 0.0);
                let mut finite = true;
                for (rows, m) in x
                    .data
                    .chunks(block_rows * cols)
                    .zip(out.chunks_mut(block_rows))
                {
                    finite &= all_finite(rows);
                    maxima_kernel::row_maxima(rows, cols, m);
                }
                return finite;
            }
            let block = |rows: &[f32]| {
                let mut m = vec![0.0f32; rows.len() / cols];
                let finite = all_finite(rows);
                maxima_kernel::row_maxima(rows, cols, &mut m);
                (m, finite)
            };
            let parts: Vec<(Vec<f32>, bool)> =
                x.data.par_chunks(block_rows * cols).map(block).collect();
            let finite = parts.iter().all(|&(_, f)| f);
            out.extend(parts.into_iter().flat_map(|(m, _)| m));
            finite
        }
        Axis::Cols => {
            // Short rows (im2col's 25 columns, say) are folded `tile` rows at a time into a
            // `tile * cols` running maximum, so each call streams a few hundred elements instead
            // of one short row; the tiles are folded together at the end (max is exact in any
            // order).
            let tile = TILE_ELEMS.div_ceil(cols).max(1);
            let block = |rows: &[f32], mt: &mut Vec<f32>| {
                mt.clear();
                mt.resize(tile * cols, 0.0);
                let mut finite = true;
                for chunk in rows.chunks(tile * cols) {
                    finite &= all_finite(chunk);
                    maxima_kernel::fold_abs_max(&mut mt[..chunk.len()], chunk);
                }
                let (m, rest) = mt.split_at_mut(cols);
                for other in rest.chunks(cols) {
                    maxima_kernel::fold_abs_max(m, other);
                }
                mt.truncate(cols);
                finite
            };
            if !par || x.rows < 2 {
                return block(&x.data, out);
            }
            let parts = 2 * rayon::current_num_threads().max(1);
            let rows_per = x.rows.div_ceil(parts);
            let (m, finite) = x
                .data
                .par_chunks(rows_per * cols)
                .map(|rows| {
                    let mut m = Vec::new();
                    let f = block(rows, &mut m);
                    (m, f)
                })
                .reduce_with(|(mut m, fa), (o, fb)| {
                    maxima_kernel::fold_abs_max(&mut m, &o);
                    (m, fa && fb)
                })
                .unwrap_or_else(|| (vec![0.0; x.cols], true));
            *out = m;
            finite
        }
    }
}

/// The max-|x| loops, also compiled with AVX2 (LLVM vectorizes them there).
mod maxima_kernel {
    /// The larger of two non-NaN values: one `maxps` (f32::max's NaN rule costs a compare and a
    /// blend per step, and NaNs never reach a plan: finiteness is checked beside the scan).
    #[inline(always)]
    fn fmax(a: f32, b: f32) -> f32 {
        if a > b {
            a
        } else {
            b
        }
    }

    #[inline(always)]
    fn abs_max_body(xs: &[f32]) -> f32 {
        // Sixteen running maxima (one vector), folded at the end: max is exact in any order,
        // and a single running maximum is a dependency chain LLVM does not vectorize.
        let mut lanes = [0.0f32; 16];
        let mut chunks = xs.chunks_exact(16);
        for c in &mut chunks {
            for (l, v) in lanes.iter_mut().zip(c) {
                *l = fmax(*l, v.abs());
            }
        }
        let rest = chunks
            .remainder()
            .iter()
            .fold(0.0f32, |m, v| fmax(m, v.abs()));
        // A tree, not a chain: short rows (16 elements) are mostly this fold.
        let mut w = 16;
        while w > 1 {
            w /= 2;
            for i in 0..w {
                lanes[i] = fmax(lanes[i], lanes[i + w]);
            }
        }
        fmax(lanes[0], rest)
    }

    #[inline(always)]
    fn row_maxima_body(xs: &[f32], cols: usize, out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(xs.chunks_exact(cols)) {
            *o = abs_max_body(row);
        }
    }

    #[inline(always)]
    fn fold_body(m: &mut [f32], row: &[f32]) {
        for (mc, v) in m.iter_mut().zip(row) {
            *mc = fmax(*mc, v.abs());
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn fold_avx2(m: &mut [f32], row: &[f32]) {
        fold_body(m, row)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row_maxima_avx2(xs: &[f32], cols: usize, out: &mut [f32]) {
        row_maxima_body(xs, cols, out)
    }

    fn has_avx2() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// `out[r]` = max |x| over row r of `xs` (rows of `cols` elements), for `out.len()` rows.
    pub(super) fn row_maxima(xs: &[f32], cols: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: AVX2 and FMA were detected just above.
            return unsafe { row_maxima_avx2(xs, cols, out) };
        }
        row_maxima_body(xs, cols, out)
    }

    /// m[c] = max(m[c], |row[c]|).
    pub(super) fn fold_abs_max(m: &mut [f32], row: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: AVX2 and FMA were detected just above.
            return unsafe { fold_avx2(m, row) };
        }
        fold_body(m, row)
    }
}

#[inline]
pub fn pow2(e: u32) -> f64 {
    (1u64 << e) as f64
}

impl SqMatrix {
    /// Exponent of element (r, c).
    #[inline]
    pub fn exp_at(&self, r: usize, c: usize) -> u32 {
        match self.axis {
            Axis::Rows => self.exps[r] as u32,
            Axis::Cols => self.exps[c] as u32,
        }
    }

    /// Dequantized value q * s * 2^e, as f32.
    pub fn dequantize(&self) -> Matrix {
        Matrix::from_fn(self.rows, self.cols, |r, c| {
            (self.codes[r * self.cols + c] as f64 * self.scale * pow2(self.exp_at(r, c))) as f32
        })
    }
}

#[cfg(test)]
mod tests {

    /// The reciprocal loop (with its fallback) against the dividing one, on data built to sit on
    /// and next to rounding boundaries: v = fl32((n + 1/2 + tiny) * step) for random steps.
    #[test]
    fn reciprocal_quantization_equals_division() {
        let mut g = crate::rng::SplitMix64::new(11);
        for trial in 0..400 {
            let len = 1 + (g.next_u64() % 300) as usize;
            let steps: Vec<f64> = (0..len)
                .map(|_| (0.5 + g.uniform()) * 2f64.powi((g.next_u64() % 40) as i32 - 20))
                .collect();
            let invs: Vec<f64> = steps.iter().map(|s| 1.0 / s).collect();
            let invs32: Vec<f32> = invs.iter().map(|&i| inv32(i).unwrap()).collect();
            let xs: Vec<f32> = steps
                .iter()
                .map(|&st| {
                    let n = (g.next_u64() % 63) as f64 - 31.0;
                    let off = match g.next_u64() % 3 {
                        0 => 0.5,
                        1 => 0.5 + (g.uniform() - 0.5) * 1e-7,
                        _ => g.uniform(),
                    };
                    ((n + off) * st) as f32
                })
                .collect();
            let q = 31.0;
            for rounding in [Rounding::NearestEven, Rounding::Stochastic { seed: trial }] {
                for steps in [
                    Steps::PerColumn(&steps, &invs, None),
                    Steps::Uniform(steps[0], invs[0], None),
                    Steps::PerColumn(&steps, &invs, Some(&invs32)),
                    Steps::Uniform(steps[0], invs[0], Some(invs32[0])),
                ] {
                    let (mut fast, mut exact) = (vec![0i8; len], vec![0i8; len]);
                    rows_kernel::quantize_row(&xs, steps, q, rounding, 7, &mut fast);
                    rows_kernel::quantize_row_exact(&xs, steps, q, rounding, 7, &mut exact);
                    assert_eq!(fast, exact, "trial {trial}");
                }
            }
        }
    }

    use super::*;

    fn p(bits: u32, window: u32) -> SqParams {
        SqParams::new(bits, window).unwrap()
    }

    #[test]
    fn rows_codes_equal_row_codes_row_by_row() {
        let mut g = crate::rng::SplitMix64::new(8);
        for (rows, cols) in [(37, 25), (10, 1), (3, 300), (64, 16), (500, 48), (130, 17)] {
            let x = Matrix::from_fn(rows, cols, |_, c| {
                (g.normal() * if c % 5 == 2 { 30.0 } else { 1.0 }) as f32
            });
            for axis in [Axis::Rows, Axis::Cols] {
                let plan = ChannelPlan::new(&x, "x", p(6, 7), axis).unwrap();
                for rounding in [Rounding::NearestEven, Rounding::Stochastic { seed: 4 }] {
                    let mut want = vec![0i8; rows * cols];
                    for (r, o) in want.chunks_mut(cols).enumerate() {
                        plan.row_codes(x.row(r), r, 0, rounding, o);
                    }
                    // From row 1 on, as a packer's later chunk would.
                    let mut got = vec![0i8; (rows - 1) * cols];
                    plan.rows_codes(&x.data[cols..], 1, rounding, &mut got);
                    assert_eq!(got, want[cols..], "{rows}x{cols} {axis:?} {rounding:?}");
                }
            }
        }
    }

    /// The tabulated exponents and steps are the spec's formula channel by channel: the first
    /// e with r <= (Q s) 2^e, and s 2^e, also for maxima at the f32 nearest a bound.
    #[test]
    fn channel_exponents_follow_the_formula() {
        let mut g = crate::rng::SplitMix64::new(12);
        for trial in 0..50u64 {
            let (rows, cols) = (1 + (trial % 7) as usize * 13, 1 + (trial % 5) as usize * 9);
            let mut x = Matrix::from_fn(rows, cols, |_, _| {
                (g.normal() * 2f64.powi((g.next_u64() % 12) as i32 - 6)) as f32
            });
            let params = p([4, 6, 8][trial as usize % 3], (trial % 16) as u32);
            // Put some channel maxima at the f32 nearest a bound q s 2^e of the first plan (below
            // the tensor's maximum, so the scale stays).
            let first = ChannelPlan::new(&x, "x", params, Axis::Rows).unwrap();
            let q_scale = params.q() as f64 * first.scale;
            for r in (0..rows).step_by(3) {
                let e = (g.next_u64() % (params.window as u64 + 1)) as u32;
                let b = (q_scale * pow2(e)) as f32;
                if (b as f64) < first.scale * params.q() as f64 * pow2(params.window) {
                    x.data[r * cols] = b;
                }
            }
            for axis in [Axis::Rows, Axis::Cols] {
                let plan = ChannelPlan::new(&x, "x", params, axis).unwrap();
                let q_scale = params.q() as f64 * plan.scale;
                let maxima: Vec<f32> = match axis {
                    Axis::Rows => (0..rows)
                        .map(|r| x.row(r).iter().fold(0.0f32, |m, v| m.max(v.abs())))
                        .collect(),
                    Axis::Cols => (0..cols)
                        .map(|c| (0..rows).fold(0.0f32, |m, r| m.max(x.data[r * cols + c].abs())))
                        .collect(),
                };
                for (ch, &r) in maxima.iter().enumerate() {
                    let want = (0..=params.window)
                        .find(|&e| r as f64 <= q_scale * pow2(e))
                        .unwrap_or(params.window) as u8;
                    assert_eq!(plan.exps[ch], want, "trial {trial} {axis:?} channel {ch}");
                    let step = plan.scale * pow2(want as u32);
                    assert_eq!(plan.steps[ch].to_bits(), step.to_bits());
                    assert_eq!(plan.invs[ch].to_bits(), (1.0 / step).to_bits());
                }
            }
        }
    }

    #[test]
    fn all_zero_tensor_has_unit_scale_and_zero_codes() {
        let x = Matrix::zeros(3, 4);
        let q = quantize(&x, "X", p(6, 7), Axis::Rows, Rounding::NearestEven).unwrap();
        assert_eq!(q.scale, 1.0);
        assert!(q.exps.iter().all(|&e| e == 0) && q.codes.iter().all(|&c| c == 0));
    }

    #[test]
    fn outlier_channel_takes_the_top_exponent() {
        // Channel 0 is 1000x larger than the others: it gets E, the others small exponents.
        let x = Matrix::from_fn(4, 3, |r, c| {
            if c == 0 {
                1000.0 * (r as f32 + 1.0)
            } else {
                0.5
            }
        });
        let q = quantize(&x, "X", p(4, 7), Axis::Cols, Rounding::NearestEven).unwrap();
        assert_eq!(q.exps[0], 7);
        assert_eq!(q.codes[3 * 3], 7); // the max of the outlier channel maps to Q
        assert!(q.exps[1] < 7);
    }

    #[test]
    fn window_zero_is_per_tensor_scaling() {
        let x = Matrix::from_fn(2, 2, |r, c| (r * 2 + c) as f32 - 1.5);
        let q = quantize(&x, "X", p(8, 0), Axis::Rows, Rounding::NearestEven).unwrap();
        assert!(q.exps.iter().all(|&e| e == 0));
        assert_eq!(q.scale, 1.5 / 127.0);
    }

    #[test]
    fn nan_is_an_error_naming_the_position() {
        let mut x = Matrix::zeros(2, 3);
        x.data[4] = f32::NAN;
        let err = quantize(&x, "W", p(6, 7), Axis::Rows, Rounding::NearestEven).unwrap_err();
        assert!(
            err.to_string()
                .contains("W has a non-finite value (NaN) at row 1, col 1"),
            "{err}"
        );
    }

    #[test]
    fn stochastic_rounding_is_unbiased_and_seeded() {
        let x = Matrix::from_fn(1, 4096, |_, c| if c == 0 { 31.0 } else { 0.3 });
        let a = quantize(
            &x,
            "G",
            p(6, 0),
            Axis::Rows,
            Rounding::Stochastic { seed: 9 },
        )
        .unwrap();
        let b = quantize(
            &x,
            "G",
            p(6, 0),
            Axis::Rows,
            Rounding::Stochastic { seed: 9 },
        )
        .unwrap();
        assert_eq!(a, b);
        let mean = a.codes[1..].iter().map(|&c| c as f64).sum::<f64>() / 4095.0;
        assert!((mean - 0.3).abs() < 0.03, "mean {mean}");
    }
}
