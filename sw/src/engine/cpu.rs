//! The `cpu` engine: fp32 on the host through `matrixmultiply` (both cores). The accuracy
//! reference every quantized format is compared against.

use super::{Counters, Engine, EngineKind, GemmOp};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::matrix::{check_gemm_shapes, Matrix};

#[derive(Default)]
pub struct CpuEngine {
    counters: Counters,
}

/// C = A x B in fp32 (row-major, no checks).
pub fn sgemm(a: &Matrix, b: &Matrix) -> Matrix {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut c = Matrix::zeros(m, n);
    // SAFETY: the pointers and strides describe the three row-major buffers exactly:
    // a is m x k, b is k x n, c is m x n, all owned and alive for the call.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            k as isize,
            1,
            b.data.as_ptr(),
            n as isize,
            1,
            0.0,
            c.data.as_mut_ptr(),
            n as isize,
            1,
        );
    }
    c
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

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn reset_counters(&mut self) {
        self.counters = Counters::default();
    }
}
