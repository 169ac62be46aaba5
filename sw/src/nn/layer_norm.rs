//! LayerNorm over the last axis (host, f32), as `torch.nn.LayerNorm`:
//! y = (x - mean) / sqrt(var + eps) * gamma + beta, with the biased variance.

use super::Param;
use crate::kernels::rows::{add_in_order, min_blocks, product_and_sums, sum_by, BLOCK_ROWS};
use crate::matrix::Matrix;
use rayon::prelude::*;

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
        let mut inv_std = vec![0.0f32; x.rows];
        if n == 0 {
            return (y, LayerNormCache { xhat, inv_std });
        }
        let (gamma, beta) = (&self.gamma.value.data, &self.beta.value.data);
        let (nf, bn, eps) = (n as f32, BLOCK_ROWS * n, self.eps);
        // The same sweeps as the host L1 norm (`crate::l1norm::forward`, `kernels::rows`), so
        // that the two are compared like for like: two passes in f32.
        y.data
            .par_chunks_mut(bn)
            .zip(xhat.data.par_chunks_mut(bn))
            .zip(inv_std.par_chunks_mut(BLOCK_ROWS))
            .zip(x.data.par_chunks(bn))
            .with_min_len(min_blocks(x.data.len()))
            .for_each(|(((yb, hb), ib), xb)| {
                for (((yr, xh), inv), row) in yb
                    .chunks_mut(n)
                    .zip(hb.chunks_mut(n))
                    .zip(ib.iter_mut())
                    .zip(xb.chunks(n))
                {
                    let mean = sum_by(row, |v| v) / nf;
                    let var = sum_by(row, |v| (v - mean) * (v - mean)) / nf;
                    *inv = 1.0 / (var + eps).sqrt();
                    let i = *inv;
                    for (((h, yi), &xi), (&g, &b)) in xh
                        .iter_mut()
                        .zip(yr.iter_mut())
                        .zip(row)
                        .zip(gamma.iter().zip(beta))
                    {
                        *h = (xi - mean) * i;
                        *yi = *h * g + b;
                    }
                }
            });
        (y, LayerNormCache { xhat, inv_std })
    }

    /// Accumulates dgamma and dbeta and returns dx:
    /// dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
    pub fn backward(&mut self, dy: &Matrix, cache: &LayerNormCache) -> Matrix {
        let n = dy.cols;
        let mut dx = Matrix::zeros(dy.rows, n);
        if n == 0 {
            return dx;
        }
        let gamma = &self.gamma.value.data;
        let (nf, bn) = (n as f32, BLOCK_ROWS * n);
        // Per block: dgamma (first n) and dbeta (last n), added in block order afterwards.
        let partials: Vec<Vec<f32>> = dx
            .data
            .par_chunks_mut(bn)
            .zip(dy.data.par_chunks(bn))
            .zip(cache.xhat.data.par_chunks(bn))
            .zip(cache.inv_std.par_chunks(BLOCK_ROWS))
            .with_min_len(min_blocks(dy.data.len()))
            .map(|(((ob, db), hb), ib)| {
                let mut acc = vec![0.0f32; 2 * n];
                let (dgamma, dbeta) = acc.split_at_mut(n);
                for (((o, d), xh), &inv) in
                    ob.chunks_mut(n).zip(db.chunks(n)).zip(hb.chunks(n)).zip(ib)
                {
                    // g = d * gamma, kept in dx's row until dx overwrites it, and its sums.
                    let [sum_g, sum_gx] = product_and_sums(o, d, gamma, xh, |g, h| [g, g * h]);
                    let (mg, mgx) = (sum_g / nf, sum_gx / nf);
                    for ((((g, &di), &h), dg), dbt) in o
                        .iter_mut()
                        .zip(d)
                        .zip(xh)
                        .zip(dgamma.iter_mut())
                        .zip(dbeta.iter_mut())
                    {
                        *dg += di * h;
                        *dbt += di;
                        *g = inv * (*g - mg - h * mgx);
                    }
                }
                acc
            })
            .collect();
        let sums = add_in_order(&partials, 2 * n);
        let (dgamma, dbeta) = sums.split_at(n);
        for (p, &v) in self.gamma.grad.data.iter_mut().zip(dgamma) {
            *p += v;
        }
        for (p, &v) in self.beta.grad.data.iter_mut().zip(dbeta) {
            *p += v;
        }
        dx
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.gamma, &mut self.beta]
    }
}
