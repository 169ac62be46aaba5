//! The `cpu` engine: fp32 on the host through `matrixmultiply` (both cores). The accuracy
//! reference every quantized format is compared against.

use super::{Counters, Engine, EngineKind, GemmOp};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::matrix::{all_finite, check_gemm_shapes, Matrix};

#[derive(Default)]
pub struct CpuEngine {
    counters: Counters,
}

/// C = A x B in fp32 (row-major, no checks).
pub fn sgemm(a: &Matrix, b: &Matrix) -> Matrix {
    sgemm_strided(a, false, b)
}

/// C = A x B in fp32 with A given as its transpose when `a_transposed` (row-major, no checks):
/// matrixmultiply takes A's strides, so the transpose costs nothing.
fn sgemm_strided(a: &Matrix, a_transposed: bool, b: &Matrix) -> Matrix {
    let (m, k) = if a_transposed {
        (a.cols, a.rows)
    } else {
        (a.rows, a.cols)
    };
    let n = b.cols;
    // Element (i, kk) of A: a[i * k + kk], or a_t[kk * m + i].
    let (rsa, csa) = if a_transposed {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    // With beta = 0 matrixmultiply writes every element of C without reading it, so C needs no
    // zeroing (a memset of the output was 5 % of a CNN training step).
    let mut data: Vec<f32> = Vec::with_capacity(m * n);
    // SAFETY: the pointers and strides describe the three row-major buffers exactly:
    // A is m x k (or its transpose k x m), b is k x n, C's m x n values fit its capacity and are
    // all written by sgemm (beta = 0) before `set_len` exposes them.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            rsa,
            csa,
            b.data.as_ptr(),
            n as isize,
            1,
            0.0,
            data.as_mut_ptr(),
            n as isize,
            1,
        );
        data.set_len(m * n);
    }
    Matrix {
        rows: m,
        cols: n,
        data,
    }
}

impl Engine for CpuEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Cpu
    }

    fn gemm(&mut self, a: &Matrix, b: &Matrix, op: &GemmOp) -> Result<Matrix> {
        if op.format != Format::Fp32 {
            return Err(Error::Unsupported(format!(
                "the cpu engine computes fp32 only: use --engine golden for {}",
                op.format
            )));
        }
        check_gemm_shapes(a, b)?;
        a.check_finite("A")?;
        b.check_finite("B")?;
        let c = sgemm(a, b);
        self.counters.gemms += 1;
        self.counters.macs += (a.rows * a.cols * b.cols) as u64;
        Ok(c)
    }

    fn gemm_at(&mut self, a_t: &Matrix, b: &Matrix, op: &GemmOp) -> Result<Matrix> {
        if op.format != Format::Fp32 || a_t.rows != b.rows {
            return self.gemm(&a_t.transpose(), b, op); // the same checks and messages
        }
        a_t.check_nonempty("A")?;
        b.check_nonempty("B")?;
        if !all_finite(&a_t.data) {
            a_t.transpose().check_finite("A")?; // names the position in A
        }
        b.check_finite("B")?;
        let c = sgemm_strided(a_t, true, b);
        self.counters.gemms += 1;
        self.counters.macs += (a_t.rows * a_t.cols * b.cols) as u64;
        Ok(c)
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn reset_counters(&mut self) {
        self.counters = Counters::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn transposed_a_gives_the_same_bits_and_errors() {
        let mut g = SplitMix64::new(3);
        let a = Matrix::from_fn(37, 53, |_, _| g.normal() as f32);
        let b = Matrix::from_fn(53, 29, |_, _| g.normal() as f32);
        let op = GemmOp::new(Format::Fp32);
        let mut e = CpuEngine::default();
        let want = e.gemm(&a, &b, &op).unwrap();
        let got = e.gemm_at(&a.transpose(), &b, &op).unwrap();
        assert!(want
            .data
            .iter()
            .zip(&got.data)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        assert_eq!(e.counters().gemms, 2);
        let mut bad = a.clone();
        bad.data[5] = f32::INFINITY;
        let msg = |r: Result<Matrix>| r.unwrap_err().to_string();
        assert_eq!(
            msg(e.gemm(&bad, &b, &op)),
            msg(e.gemm_at(&bad.transpose(), &b, &op))
        );
    }
}
