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
    let (maxima, finite) = channel_maxima(x, axis);
    if !finite {
        x.check_finite(name)?; // names the first bad position
    }
    let r_max = maxima.iter().copied().fold(0.0f32, f32::max);
    let n_channels = maxima.len();
    if r_max == 0.0 {
        return Ok(SqMatrix {
            rows,
            cols,
            params,
            axis,
            scale: 1.0,
            exps: vec![0; n_channels],
            codes: vec![0; rows * cols],
        });
    }
    let q = params.q() as f64;
    let scale = r_max as f64 / (q * pow2(params.window));
    let q_scale = q * scale; // rounded once, as the spec says
    let exps: Vec<u8> = maxima
        .iter()
        .map(|&r| {
            (0..=params.window)
                .find(|&e| r as f64 <= q_scale * pow2(e))
                .unwrap_or(params.window) as u8
        })
        .collect();
    // Step of each channel, s * 2^e: exact (a power-of-two multiple of s).
    let steps: Vec<f64> = exps.iter().map(|&e| scale * pow2(e as u32)).collect();
    let mut codes = vec![0i8; rows * cols];
    let quantize_row = |(r, out): (usize, &mut [i8])| {
        let row_steps = match axis {
            Axis::Rows => Steps::Uniform(steps[r]),
            Axis::Cols => Steps::PerColumn(&steps),
        };
        let first = (r * cols) as u64;
        rows_kernel::quantize_row(x.row(r), row_steps, q, rounding, first, out);
    };
    if rows * cols >= PAR_ROWS_MIN_ELEMS {
        codes
            .par_chunks_mut(cols)
            .enumerate()
            .for_each(quantize_row);
    } else {
        codes.chunks_mut(cols).enumerate().for_each(quantize_row);
    }
    Ok(SqMatrix {
        rows,
        cols,
        params,
        axis,
        scale,
        exps,
        codes,
    })
}

/// The step (s * 2^e) of every element of one row.
#[derive(Clone, Copy)]
enum Steps<'a> {
    Uniform(f64),
    PerColumn(&'a [f64]),
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

    #[inline(always)]
    fn body(xs: &[f32], steps: Steps, q: f64, rounding: Rounding, first: u64, out: &mut [i8]) {
        match (steps, rounding) {
            (Steps::Uniform(step), Rounding::NearestEven) => {
                for (o, &v) in out.iter_mut().zip(xs) {
                    *o = code((v as f64 / step).round_ties_even(), q);
                }
            }
            (Steps::PerColumn(steps), Rounding::NearestEven) => {
                for ((o, &v), &step) in out.iter_mut().zip(xs).zip(steps) {
                    *o = code((v as f64 / step).round_ties_even(), q);
                }
            }
            (steps, Rounding::Stochastic { seed }) => {
                for (c, (o, &v)) in out.iter_mut().zip(xs).enumerate() {
                    let step = match steps {
                        Steps::Uniform(s) => s,
                        Steps::PerColumn(s) => s[c],
                    };
                    *o = code(
                        (v as f64 / step + uniform_at(seed, first + c as u64)).floor(),
                        q,
                    );
                }
            }
        }
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
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f")
                && has!("avx512dq")
                && has!("avx512vl")
                && has!("avx512bw")
                && has!("avx2")
                && has!("fma")
            {
                // SAFETY: the CPU supports every feature the function enables (checked above).
                return unsafe { body_avx512(xs, steps, q, rounding, first, out) };
            }
            if has!("avx2") && has!("fma") {
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

/// max |x| over each channel, and whether every value is finite.
fn channel_maxima(x: &Matrix, axis: Axis) -> (Vec<f32>, bool) {
    let mut finite = true;
    let maxima = match axis {
        Axis::Rows => (0..x.rows)
            .map(|r| {
                let row = x.row(r);
                finite &= all_finite(row);
                row.iter().fold(0.0f32, |m, v| m.max(v.abs()))
            })
            .collect(),
        Axis::Cols => {
            let mut m = vec![0.0f32; x.cols];
            for r in 0..x.rows {
                let row = x.row(r);
                finite &= all_finite(row);
                for (mc, v) in m.iter_mut().zip(row) {
                    *mc = mc.max(v.abs());
                }
            }
            m
        }
    };
    (maxima, finite)
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
    use super::*;

    fn p(bits: u32, window: u32) -> SqParams {
        SqParams::new(bits, window).unwrap()
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
