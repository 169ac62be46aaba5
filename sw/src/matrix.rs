//! A dense row-major f32 matrix: the host-side tensor every engine takes and returns.

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::Shape(format!(
                "{rows}x{cols} matrix needs {} values, got {}",
                rows * cols,
                data.len()
            )));
        }
        Ok(Matrix { rows, cols, data })
    }

    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                data.push(f(r, c));
            }
        }
        Matrix { rows, cols, data }
    }

    #[inline]
    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Rows `from..from + n`, copied.
    pub fn row_block(&self, from: usize, n: usize) -> Matrix {
        Matrix {
            rows: n,
            cols: self.cols,
            data: self.data[from * self.cols..(from + n) * self.cols].to_vec(),
        }
    }

    /// The transpose, copied in 32 x 32 blocks so both sides stay in cache.
    pub fn transpose(&self) -> Matrix {
        const B: usize = 32;
        let (rows, cols) = (self.rows, self.cols);
        let mut out = vec![0.0f32; rows * cols];
        for r0 in (0..rows).step_by(B) {
            for c0 in (0..cols).step_by(B) {
                for r in r0..(r0 + B).min(rows) {
                    let src = &self.data[r * cols..(r + 1) * cols];
                    for c in c0..(c0 + B).min(cols) {
                        out[c * rows + r] = src[c];
                    }
                }
            }
        }
        Matrix {
            rows: cols,
            cols: rows,
            data: out,
        }
    }

    /// The first NaN or infinity, reported as an error naming the tensor and the position.
    pub fn check_finite(&self, name: &str) -> Result<()> {
        match self.data.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => Err(Error::NonFinite {
                tensor: name.to_string(),
                row: i / self.cols,
                col: i % self.cols,
                value: self.data[i],
            }),
        }
    }

    pub fn check_nonempty(&self, name: &str) -> Result<()> {
        if self.rows == 0 || self.cols == 0 {
            return Err(Error::Empty(format!(
                "{name} ({}x{})",
                self.rows, self.cols
            )));
        }
        Ok(())
    }
}

/// A and B of C = A x B must agree on K and be non-empty.
pub fn check_gemm_shapes(a: &Matrix, b: &Matrix) -> Result<()> {
    a.check_nonempty("A")?;
    b.check_nonempty("B")?;
    if a.cols != b.rows {
        return Err(Error::Shape(format!(
            "A is {}x{} and B is {}x{}: A's columns must equal B's rows",
            a.rows, a.cols, b.rows, b.cols
        )));
    }
    Ok(())
}
