//! L1 normalization over the last axis, SPEC §5, in f32 (the host reference that the training
//! layers use and that the hardware unit is measured against).
//!
//!   mu = mean(x), d = mean|x - mu|, sigma = sqrt(pi/2) * d + eps,
//!   y_i = gamma_i * (x_i - mu) / sigma + beta_i
//!
//! Unlike LayerNorm there is no square root per row over a sum of squares: one mean absolute
//! deviation and one reciprocal, which is what makes it cheap in integer hardware.

use crate::error::{Error, Result};
use crate::kernels::rows::{add_in_order, min_blocks, product_and_sums, sign, sum_by, BLOCK_ROWS};
use crate::matrix::Matrix;
use rayon::prelude::*;

/// sqrt(pi / 2): makes sigma equal the standard deviation for Gaussian inputs.
pub const SQRT_HALF_PI: f32 = 1.253_314_1;
pub const DEFAULT_EPS: f32 = 1e-5;

/// What the backward pass needs from the forward pass.
#[derive(Clone, Debug)]
pub struct L1NormCache {
    /// x - mu, row-major.
    pub centered: Matrix,
    /// sigma per row.
    pub sigma: Vec<f32>,
}

pub struct L1NormGrads {
    pub dx: Matrix,
    pub dgamma: Vec<f32>,
    pub dbeta: Vec<f32>,
}

fn check_params(n: usize, gamma: &[f32], beta: &[f32]) -> Result<()> {
    if gamma.len() != n || beta.len() != n {
        return Err(Error::Shape(format!(
            "L1 norm over {n} features needs gamma and beta of length {n}, got {} and {}",
            gamma.len(),
            beta.len()
        )));
    }
    Ok(())
}

pub fn forward(x: &Matrix, gamma: &[f32], beta: &[f32], eps: f32) -> Result<(Matrix, L1NormCache)> {
    let n = x.cols;
    check_params(n, gamma, beta)?;
    let mut centered = Matrix::zeros(x.rows, n);
    let mut y = Matrix::zeros(x.rows, n);
    let mut sigma = vec![0.0f32; x.rows];
    if n == 0 {
        return Ok((y, L1NormCache { centered, sigma }));
    }
    let (nf, bn) = (n as f32, BLOCK_ROWS * n);
    y.data
        .par_chunks_mut(bn)
        .zip(centered.data.par_chunks_mut(bn))
        .zip(sigma.par_chunks_mut(BLOCK_ROWS))
        .zip(x.data.par_chunks(bn))
        .with_min_len(min_blocks(x.data.len()))
        .for_each(|(((yb, zb), sb), xb)| {
            for (((yr, z), s), row) in yb
                .chunks_mut(n)
                .zip(zb.chunks_mut(n))
                .zip(sb.iter_mut())
                .zip(xb.chunks(n))
            {
                let mu = sum_by(row, |v| v) / nf;
                for (zi, &xi) in z.iter_mut().zip(row) {
                    *zi = xi - mu;
                }
                *s = SQRT_HALF_PI * (sum_by(z, f32::abs) / nf) + eps;
                let inv = 1.0 / *s;
                for ((yi, &zi), (&g, &b)) in yr.iter_mut().zip(&*z).zip(gamma.iter().zip(beta)) {
                    *yi = g * (zi * inv) + b;
                }
            }
        });
    Ok((y, L1NormCache { centered, sigma }))
}

/// Exact derivative of `forward` (d|t|/dt = sign(t), 0 at 0):
///   gy = dy * gamma
///   dx_j = (gy_j - mean(gy)) / sigma - sqrt(pi/2) / (n sigma^2) * sum_i(gy_i z_i) * (s_j - mean(s))
/// with z = x - mu and s = sign(z).
pub fn backward(dy: &Matrix, gamma: &[f32], cache: &L1NormCache) -> Result<L1NormGrads> {
    let (rows, n) = (cache.centered.rows, cache.centered.cols);
    if dy.rows != rows || dy.cols != n || gamma.len() != n {
        return Err(Error::Shape(format!(
            "L1 norm backward: dy is {}x{}, gamma has {}, forward was {rows}x{n}",
            dy.rows,
            dy.cols,
            gamma.len()
        )));
    }
    let mut dx = Matrix::zeros(rows, n);
    if n == 0 {
        return Ok(L1NormGrads {
            dx,
            dgamma: vec![],
            dbeta: vec![],
        });
    }
    let (nf, bn) = (n as f32, BLOCK_ROWS * n);
    // Per block: dgamma (first n) and dbeta (last n), added in block order afterwards.
    let partials: Vec<Vec<f32>> = dx
        .data
        .par_chunks_mut(bn)
        .zip(dy.data.par_chunks(bn))
        .zip(cache.centered.data.par_chunks(bn))
        .zip(cache.sigma.par_chunks(BLOCK_ROWS))
        .with_min_len(min_blocks(dy.data.len()))
        .map(|(((db, gb), zb), sb)| {
            let mut acc = vec![0.0f32; 2 * n];
            let (dgamma, dbeta) = acc.split_at_mut(n);
            for (((o, g), z), &s) in db.chunks_mut(n).zip(gb.chunks(n)).zip(zb.chunks(n)).zip(sb) {
                let inv = 1.0 / s;
                // gy = g * gamma, kept in dx's row until dx overwrites it, and its sums.
                let [sum_gy, sum_gyz, sum_sign] =
                    product_and_sums(o, g, gamma, z, |gy, zi| [gy, gy * zi, sign(zi)]);
                let (mean_gy, mean_sign) = (sum_gy / nf, sum_sign / nf);
                let k = SQRT_HALF_PI * sum_gyz * inv * inv / nf;
                for ((((gy, &gi), &zi), dg), dbt) in o
                    .iter_mut()
                    .zip(g)
                    .zip(z)
                    .zip(dgamma.iter_mut())
                    .zip(dbeta.iter_mut())
                {
                    *dg += gi * zi * inv;
                    *dbt += gi;
                    *gy = (*gy - mean_gy) * inv - k * (sign(zi) - mean_sign);
                }
            }
            acc
        })
        .collect();
    let mut sums = add_in_order(&partials, 2 * n);
    let dbeta = sums.split_off(n);
    Ok(L1NormGrads {
        dx,
        dgamma: sums,
        dbeta,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_rows_get_unit_scale() {
        let mut g = crate::rng::SplitMix64::new(3);
        let x = Matrix::from_fn(1, 20_000, |_, _| (3.0 * g.normal() + 5.0) as f32);
        let n = x.cols;
        let (y, _) = forward(&x, &vec![1.0; n], &vec![0.0; n], DEFAULT_EPS).unwrap();
        let var = y.data.iter().map(|v| (v * v) as f64).sum::<f64>() / n as f64;
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }
}
