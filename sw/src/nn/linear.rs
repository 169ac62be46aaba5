//! y = x W (+ b), W stored in x out so the forward GEMM needs no transpose.

use super::residual::add_into;
use super::{GemmKind, Offload, Param};
use crate::error::Result;
use crate::matrix::Matrix;

pub struct Linear {
    pub weight: Param,
    pub bias: Option<Param>,
}

impl Linear {
    pub fn new(weight: Param, bias: Option<Param>) -> Self {
        Linear { weight, bias }
    }

    pub fn forward(&self, ctx: &mut Offload, x: &Matrix) -> Result<Matrix> {
        let mut y = ctx.gemm(x, &self.weight.value, GemmKind::Forward)?;
        if let Some(b) = &self.bias {
            for row in y.data.chunks_mut(y.cols) {
                row.iter_mut()
                    .zip(&b.value.data)
                    .for_each(|(v, bv)| *v += bv);
            }
        }
        Ok(y)
    }

    /// Accumulates dW (and db) and returns dx; `x` is the forward input. Skips dx when the input
    /// needs no gradient.
    pub fn backward(
        &mut self,
        ctx: &mut Offload,
        x: &Matrix,
        dy: &Matrix,
        need_dx: bool,
    ) -> Result<Option<Matrix>> {
        let (dw, dx) = if need_dx {
            let (dw, dx) = ctx.gradients(x, dy, &self.weight.value.transpose())?;
            (dw, Some(dx))
        } else {
            (ctx.gemm_at(x, dy, GemmKind::WeightGrad)?, None)
        };
        add_into(&mut self.weight.grad, &dw);
        if let Some(b) = &mut self.bias {
            for row in dy.data.chunks(dy.cols) {
                b.grad.data.iter_mut().zip(row).for_each(|(g, d)| *g += d);
            }
        }
        Ok(dx)
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = vec![&mut self.weight];
        if let Some(b) = &mut self.bias {
            v.push(b);
        }
        v
    }
}
