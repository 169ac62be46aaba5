//! The ShiftQuant tensor format, SPEC §2: signed b-bit codes with one power-of-two exponent per
//! channel inside a window 0..=E, over one base scale per tensor.

use crate::error::{Error, Result};
use crate::format::Axis;
use crate::matrix::Matrix;
use crate::rng::uniform_at;
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
            return Err(Error::Usage(format!("sq{bits} is not supported: use sq4, sq6 or sq8")));
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
    x.check_finite(name)?;
    let (rows, cols) = (x.rows, x.cols);
    let maxima = channel_maxima(x, axis);
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
        let xs = x.row(r);
        for (c, (o, &v)) in out.iter_mut().zip(xs).enumerate() {
            let step = match axis {
                Axis::Rows => steps[r],
                Axis::Cols => steps[c],
            };
            let t = v as f64 / step;
            let rounded = match rounding {
                Rounding::NearestEven => t.round_ties_even(),
                Rounding::Stochastic { seed } => (t + uniform_at(seed, (r * cols + c) as u64)).floor(),
            };
            *o = rounded.clamp(-q, q) as i8;
        }
    };
    if rows * cols >= PAR_ROWS_MIN_ELEMS {
        codes.par_chunks_mut(cols).enumerate().for_each(quantize_row);
    } else {
        codes.chunks_mut(cols).enumerate().for_each(quantize_row);
    }
    Ok(SqMatrix { rows, cols, params, axis, scale, exps, codes })
}

/// max |x| over each channel.
fn channel_maxima(x: &Matrix, axis: Axis) -> Vec<f32> {
    match axis {
        Axis::Rows => (0..x.rows)
            .map(|r| x.row(r).iter().fold(0.0f32, |m, v| m.max(v.abs())))
            .collect(),
        Axis::Cols => {
            let mut m = vec![0.0f32; x.cols];
            for r in 0..x.rows {
                for (mc, v) in m.iter_mut().zip(x.row(r)) {
                    *mc = mc.max(v.abs());
                }
            }
            m
        }
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
        let x = Matrix::from_fn(4, 3, |r, c| if c == 0 { 1000.0 * (r as f32 + 1.0) } else { 0.5 });
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
        assert!(err.to_string().contains("W has a non-finite value (NaN) at row 1, col 1"), "{err}");
    }

    #[test]
    fn stochastic_rounding_is_unbiased_and_seeded() {
        let x = Matrix::from_fn(1, 4096, |_, c| if c == 0 { 31.0 } else { 0.3 });
        let a = quantize(&x, "G", p(6, 0), Axis::Rows, Rounding::Stochastic { seed: 9 }).unwrap();
        let b = quantize(&x, "G", p(6, 0), Axis::Rows, Rounding::Stochastic { seed: 9 }).unwrap();
        assert_eq!(a, b);
        let mean = a.codes[1..].iter().map(|&c| c as f64).sum::<f64>() / 4095.0;
        assert!((mean - 0.3).abs() < 0.03, "mean {mean}");
    }
}
