//! Golden model of the FP16 reference datapath, SPEC §4: binary16 operands (f32 -> f16 with
//! round-to-nearest-even), exact products, binary32 accumulation in ascending k from +0,
//! binary32 results below 2^-126 flushed to a zero of the same sign.

use crate::error::{Error, Result};
use crate::kernels;
use crate::matrix::Matrix;
use half::f16;
use half::slice::HalfFloatSliceExt;

/// A binary16 matrix, row-major: what the FP16 array is fed.
#[derive(Clone, Debug, PartialEq)]
pub struct HalfMatrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f16>,
}

/// Round every value to binary16 (RNE). Non-finite inputs and values that would overflow to
/// infinity are errors naming the tensor and position.
pub fn to_half(x: &Matrix, name: &str) -> Result<HalfMatrix> {
    x.check_finite(name)?;
    // The slice conversion uses the F16C instructions where the CPU has them (RNE either way).
    let mut data = vec![f16::ZERO; x.data.len()];
    data.convert_from_f32_slice(&x.data);
    if let Some(i) = data.iter().position(|h| h.is_infinite()) {
        return Err(Error::Fp16Overflow {
            tensor: name.to_string(),
            row: i / x.cols,
            col: i % x.cols,
            value: x.data[i],
        });
    }
    Ok(HalfMatrix {
        rows: x.rows,
        cols: x.cols,
        data,
    })
}

impl HalfMatrix {
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.data.len()];
        self.data.convert_to_f32_slice(&mut out);
        out
    }
}

/// Flush a binary32 value below 2^-126 in magnitude to a zero of the same sign.
#[inline]
pub fn flush_subnormal(x: f32) -> f32 {
    if x.is_subnormal() {
        0.0f32.copysign(x)
    } else {
        x
    }
}

/// C = A x B on the FP16 reference datapath.
pub fn fp16_gemm(a: &HalfMatrix, b: &HalfMatrix) -> Result<Matrix> {
    if a.cols != b.rows {
        return Err(Error::Shape(format!(
            "A is {}x{} and B is {}x{}: A's columns must equal B's rows",
            a.rows, a.cols, b.rows, b.cols
        )));
    }
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut c = vec![0.0f32; m * n];
    kernels::gemm_f16_seq(m, n, k, &a.to_f32(), &b.to_f32(), &mut c);
    Matrix::new(m, n, c)
}

/// `x` rounded to binary16 (RNE) and back to f32, in one pass on all threads: the FP16 array's
/// operands as the sequential kernel takes them, without a `HalfMatrix` in between. Errors are
/// exactly `to_half`'s (a non-finite value or an overflow sends the tensor through it).
pub fn round_to_half(x: &Matrix, name: &str) -> Result<Vec<f32>> {
    round_to_half_into(x, name, Vec::new())
}

/// [`round_to_half`] into a reused buffer (its old contents are overwritten).
fn round_to_half_into(x: &Matrix, name: &str, mut out: Vec<f32>) -> Result<Vec<f32>> {
    use rayon::prelude::*;
    const CHUNK: usize = 4096;
    out.resize(x.data.len(), 0.0);
    // F16C converts both ways (through `half`'s slice conversions); a non-finite result means a
    // non-finite input or an overflow to infinity.
    let round = |(src, dst): (&[f32], &mut [f32])| -> bool {
        let mut half = [f16::ZERO; CHUNK];
        let half = &mut half[..src.len()];
        half.convert_from_f32_slice(src);
        half.convert_to_f32_slice(dst);
        dst.iter().all(|v| v.is_finite())
    };
    let ok = if x.data.len() >= 1 << 16 {
        x.data
            .par_chunks(CHUNK)
            .zip(out.par_chunks_mut(CHUNK))
            .map(round)
            .reduce(|| true, |a, b| a && b)
    } else {
        x.data.chunks(CHUNK).zip(out.chunks_mut(CHUNK)).all(round)
    };
    if !ok {
        to_half(x, name)?; // names the first bad value
    }
    Ok(out)
}

/// C = A x B on the FP16 reference datapath, from f32 operands (rounded to binary16 first):
/// `fp16_gemm(to_half(A), to_half(B))` with one pass over each operand instead of three.
pub fn fp16_gemm_f32(a: &Matrix, b: &Matrix) -> Result<Matrix> {
    use std::cell::RefCell;
    thread_local! {
        // The rounded operands, kept by the calling thread: training repeats the same shapes.
        static BUFS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    }
    crate::matrix::check_gemm_shapes(a, b)?;
    let (ba, bb) = BUFS.with(|c| {
        c.try_borrow_mut()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    });
    let ra = round_to_half_into(a, "A", ba)?;
    let rb = round_to_half_into(b, "B", bb)?;
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut c = vec![0.0f32; m * n];
    kernels::gemm_f16_seq(m, n, k, &ra, &rb, &mut c);
    if (ra.capacity() + rb.capacity()) * 4 <= 64 << 20 {
        BUFS.with(|c| {
            if let Ok(mut slot) = c.try_borrow_mut() {
                *slot = (ra, rb);
            }
        });
    }
    Matrix::new(m, n, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_is_an_error_but_rounding_down_to_max_is_not() {
        let ok = Matrix::new(1, 2, vec![65504.0, 65519.0]).unwrap();
        assert_eq!(to_half(&ok, "A").unwrap().data[1], f16::MAX);
        let bad = Matrix::new(1, 2, vec![1.0, 65520.0]).unwrap();
        let err = to_half(&bad, "B").unwrap_err().to_string();
        assert!(
            err.contains("B value 65520 at row 0, col 1 overflows binary16"),
            "{err}"
        );
    }

    #[test]
    fn flush_keeps_the_sign() {
        let tiny = f32::from_bits(1);
        assert_eq!(flush_subnormal(tiny).to_bits(), 0);
        assert_eq!(flush_subnormal(-tiny).to_bits(), 0x8000_0000);
        assert_eq!(flush_subnormal(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
    }
}
