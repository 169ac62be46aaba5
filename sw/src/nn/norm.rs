//! L1 normalization as a layer (SPEC §5), on the host in f32.

use super::Param;
use crate::error::Result;
use crate::l1norm::{self, L1NormCache};
use crate::matrix::Matrix;

pub struct L1Norm {
    pub gamma: Param,
    pub beta: Param,
    pub eps: f32,
}

impl L1Norm {
    pub fn new(name: &str, n: usize) -> Self {
        L1Norm {
            gamma: Param::new(&format!("{name}.gamma"), Matrix::from_fn(1, n, |_, _| 1.0)),
            beta: Param::new(&format!("{name}.beta"), Matrix::zeros(1, n)),
            eps: l1norm::DEFAULT_EPS,
        }
    }

    pub fn forward(&self, x: &Matrix) -> Result<(Matrix, L1NormCache)> {
        l1norm::forward(x, &self.gamma.value.data, &self.beta.value.data, self.eps)
    }

    pub fn backward(&mut self, dy: &Matrix, cache: &L1NormCache) -> Result<Matrix> {
        let g = l1norm::backward(dy, &self.gamma.value.data, cache)?;
        self.gamma
            .grad
            .data
            .iter_mut()
            .zip(&g.dgamma)
            .for_each(|(a, b)| *a += b);
        self.beta
            .grad
            .data
            .iter_mut()
            .zip(&g.dbeta)
            .for_each(|(a, b)| *a += b);
        Ok(g.dx)
    }
}
