//! L1 normalization over the last axis, SPEC §5, in f32 (the host reference that the training
//! layers use and that the hardware unit is measured against).
//!
//!   mu = mean(x), d = mean|x - mu|, sigma = sqrt(pi/2) * d + eps,
//!   y_i = gamma_i * (x_i - mu) / sigma + beta_i
//!
//! Unlike LayerNorm there is no square root per row over a sum of squares: one mean absolute
//! deviation and one reciprocal, which is what makes it cheap in integer hardware.

use crate::error::{Error, Result};
use crate::matrix::Matrix;

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
    let mut sigma = Vec::with_capacity(x.rows);
    for r in 0..x.rows {
        let row = x.row(r);
        let mu = row.iter().sum::<f32>() / n as f32;
        let z = &mut centered.data[r * n..(r + 1) * n];
        for (zi, &xi) in z.iter_mut().zip(row) {
            *zi = xi - mu;
        }
        let d = z.iter().map(|v| v.abs()).sum::<f32>() / n as f32;
        let s = SQRT_HALF_PI * d + eps;
        let inv = 1.0 / s;
        for (i, yi) in y.data[r * n..(r + 1) * n].iter_mut().enumerate() {
            *yi = gamma[i] * (z[i] * inv) + beta[i];
        }
        sigma.push(s);
    }
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
    let mut dgamma = vec![0.0f32; n];
    let mut dbeta = vec![0.0f32; n];
    let nf = n as f32;
    for r in 0..rows {
        let z = cache.centered.row(r);
        let g = dy.row(r);
        let s = cache.sigma[r];
        let mut sum_gy = 0.0f32;
        let mut sum_gyz = 0.0f32;
        let mut sum_sign = 0.0f32;
        for i in 0..n {
            let gy = g[i] * gamma[i];
            sum_gy += gy;
            sum_gyz += gy * z[i];
            sum_sign += sign(z[i]);
            dgamma[i] += g[i] * z[i] / s;
            dbeta[i] += g[i];
        }
        let mean_gy = sum_gy / nf;
        let mean_sign = sum_sign / nf;
        let k = SQRT_HALF_PI * sum_gyz / (nf * s * s);
        for (j, o) in dx.data[r * n..(r + 1) * n].iter_mut().enumerate() {
            *o = (g[j] * gamma[j] - mean_gy) / s - k * (sign(z[j]) - mean_sign);
        }
    }
    Ok(L1NormGrads { dx, dgamma, dbeta })
}

#[inline]
fn sign(t: f32) -> f32 {
    if t > 0.0 {
        1.0
    } else if t < 0.0 {
        -1.0
    } else {
        0.0
    }
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
