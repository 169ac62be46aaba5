//! LayerNorm over the last axis (host, f32), as `torch.nn.LayerNorm`:
//! y = (x - mean) / sqrt(var + eps) * gamma + beta, with the biased variance.

use super::Param;
use crate::matrix::Matrix;

pub struct LayerNorm {
    pub gamma: Param,
    pub beta: Param,
    pub eps: f32,
}

/// What the backward pass needs: the normalized rows and 1 / sqrt(var + eps) per row.
pub struct LayerNormCache {
    xhat: Matrix,
    inv_std: Vec<f32>,
}

impl LayerNorm {
    /// gamma = 1, beta = 0.
    pub fn new(name: &str, n: usize, eps: f32) -> Self {
        LayerNorm {
            gamma: Param::new(&format!("{name}.weight"), Matrix::from_fn(1, n, |_, _| 1.0)),
            beta: Param::new(&format!("{name}.bias"), Matrix::zeros(1, n)),
            eps,
        }
    }

    pub fn forward(&self, x: &Matrix) -> (Matrix, LayerNormCache) {
        let n = x.cols;
        let mut xhat = Matrix::zeros(x.rows, n);
        let mut y = Matrix::zeros(x.rows, n);
        let mut inv_std = Vec::with_capacity(x.rows);
        let (gamma, beta) = (&self.gamma.value.data, &self.beta.value.data);
        for r in 0..x.rows {
            let row = x.row(r);
            // Two passes in f32, as the host L1 norm (`crate::l1norm::forward`) does, so that
            // the two are compared like for like.
            let mean = row.iter().sum::<f32>() / n as f32;
            let var = row.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
            let inv = 1.0 / (var + self.eps).sqrt();
            let xh = &mut xhat.data[r * n..(r + 1) * n];
            let yr = &mut y.data[r * n..(r + 1) * n];
            for i in 0..n {
                xh[i] = (row[i] - mean) * inv;
                yr[i] = xh[i] * gamma[i] + beta[i];
            }
            inv_std.push(inv);
        }
        (y, LayerNormCache { xhat, inv_std })
    }

    /// Accumulates dgamma and dbeta and returns dx:
    /// dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
    pub fn backward(&mut self, dy: &Matrix, cache: &LayerNormCache) -> Matrix {
        let n = dy.cols;
        let mut dx = Matrix::zeros(dy.rows, n);
        let gamma = &self.gamma.value.data;
        for r in 0..dy.rows {
            let (d, xh) = (dy.row(r), cache.xhat.row(r));
            let mut sum_g = 0.0f32;
            let mut sum_gx = 0.0f32;
            for i in 0..n {
                let g = d[i] * gamma[i];
                sum_g += g;
                sum_gx += g * xh[i];
                self.gamma.grad.data[i] += d[i] * xh[i];
                self.beta.grad.data[i] += d[i];
            }
            let (mg, mgx) = (sum_g / n as f32, sum_gx / n as f32);
            let inv = cache.inv_std[r];
            for (i, o) in dx.data[r * n..(r + 1) * n].iter_mut().enumerate() {
                *o = inv * (d[i] * gamma[i] - mg - xh[i] * mgx);
            }
        }
        dx
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.gamma, &mut self.beta]
    }
}
