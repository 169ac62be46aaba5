//! BatchNorm1d over the rows of a batch x features matrix (host, f32), as `torch.nn.BatchNorm1d`:
//! in training mode y = (x - mean_B) / sqrt(var_B + eps) * gamma + beta with the batch's mean and
//! biased variance, and the running statistics move towards the batch's (mean, unbiased
//! variance) by `momentum`; in evaluation mode the running statistics normalize.

use super::Param;
use crate::error::{Error, Result};
use crate::matrix::Matrix;

pub struct BatchNorm1d {
    pub gamma: Param,
    pub beta: Param,
    pub running_mean: Vec<f32>,
    pub running_var: Vec<f32>,
    pub eps: f32,
    pub momentum: f32,
}

/// What the training-mode backward pass needs: the normalized rows and 1 / sqrt(var + eps) per
/// feature.
pub struct BatchNormCache {
    xhat: Matrix,
    inv_std: Vec<f32>,
}

impl BatchNorm1d {
    /// gamma = 1, beta = 0, running mean 0 and variance 1, eps 1e-5, momentum 0.1 (torch's).
    pub fn new(name: &str, n: usize) -> Self {
        BatchNorm1d {
            gamma: Param::new(&format!("{name}.weight"), Matrix::from_fn(1, n, |_, _| 1.0)),
            beta: Param::new(&format!("{name}.bias"), Matrix::zeros(1, n)),
            running_mean: vec![0.0; n],
            running_var: vec![1.0; n],
            eps: 1e-5,
            momentum: 0.1,
        }
    }

    fn check(&self, x: &Matrix) -> Result<()> {
        if x.cols != self.gamma.len() {
            return Err(Error::Shape(format!(
                "{} normalizes {} features, got {}",
                self.gamma.name,
                self.gamma.len(),
                x.cols
            )));
        }
        Ok(())
    }

    /// Training mode: normalize by the batch's statistics (at least two rows) and update the
    /// running ones.
    pub fn forward_train(&mut self, x: &Matrix) -> Result<(Matrix, BatchNormCache)> {
        self.check(x)?;
        let (b, n) = (x.rows, x.cols);
        if b < 2 {
            return Err(Error::Shape(format!(
                "{} in training mode needs at least 2 rows, got {b}",
                self.gamma.name
            )));
        }
        let mut mean = vec![0.0f64; n];
        for r in 0..b {
            mean.iter_mut()
                .zip(x.row(r))
                .for_each(|(m, &v)| *m += v as f64);
        }
        mean.iter_mut().for_each(|m| *m /= b as f64);
        let mut var = vec![0.0f64; n];
        for r in 0..b {
            for ((s, &v), &m) in var.iter_mut().zip(x.row(r)).zip(&mean) {
                *s += (v as f64 - m).powi(2);
            }
        }
        let inv_std: Vec<f32> = var
            .iter()
            .map(|&s| (1.0 / (s / b as f64 + self.eps as f64).sqrt()) as f32)
            .collect();
        let mom = self.momentum;
        for i in 0..n {
            let unbiased = (var[i] / (b - 1) as f64) as f32;
            self.running_mean[i] = (1.0 - mom) * self.running_mean[i] + mom * mean[i] as f32;
            self.running_var[i] = (1.0 - mom) * self.running_var[i] + mom * unbiased;
        }
        let mut xhat = Matrix::zeros(b, n);
        let mut y = Matrix::zeros(b, n);
        let (g, be) = (&self.gamma.value.data, &self.beta.value.data);
        for r in 0..b {
            let row = x.row(r);
            for i in 0..n {
                let xh = ((row[i] as f64 - mean[i]) as f32) * inv_std[i];
                xhat.data[r * n + i] = xh;
                y.data[r * n + i] = xh * g[i] + be[i];
            }
        }
        Ok((y, BatchNormCache { xhat, inv_std }))
    }

    /// Evaluation mode: normalize by the running statistics.
    pub fn forward_eval(&self, x: &Matrix) -> Result<Matrix> {
        self.check(x)?;
        let n = x.cols;
        let mut y = x.clone();
        for row in y.data.chunks_mut(n) {
            for (i, v) in row.iter_mut().enumerate() {
                let inv = 1.0 / (self.running_var[i] + self.eps).sqrt();
                *v = (*v - self.running_mean[i]) * inv * self.gamma.value.data[i]
                    + self.beta.value.data[i];
            }
        }
        Ok(y)
    }

    /// Training-mode backward: accumulates dgamma and dbeta and returns dx =
    /// inv_std * (g - mean_B(g) - xhat * mean_B(g * xhat)), g = dy * gamma.
    pub fn backward(&mut self, dy: &Matrix, cache: &BatchNormCache) -> Matrix {
        let (b, n) = (dy.rows, dy.cols);
        let mut sum_g = vec![0.0f64; n];
        let mut sum_gx = vec![0.0f64; n];
        let gamma = &self.gamma.value.data;
        for r in 0..b {
            let (d, xh) = (dy.row(r), cache.xhat.row(r));
            for i in 0..n {
                let g = (d[i] * gamma[i]) as f64;
                sum_g[i] += g;
                sum_gx[i] += g * xh[i] as f64;
                self.gamma.grad.data[i] += d[i] * xh[i];
                self.beta.grad.data[i] += d[i];
            }
        }
        let mut dx = Matrix::zeros(b, n);
        for r in 0..b {
            let (d, xh) = (dy.row(r), cache.xhat.row(r));
            for i in 0..n {
                let g = (d[i] * gamma[i]) as f64;
                let v = g - sum_g[i] / b as f64 - xh[i] as f64 * sum_gx[i] / b as f64;
                dx.data[r * n + i] = (cache.inv_std[i] as f64 * v) as f32;
            }
        }
        dx
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.gamma, &mut self.beta]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_mode_normalizes_the_batch_and_eval_mode_uses_running_statistics() {
        let x = Matrix::new(4, 2, vec![1., 10., 2., 20., 3., 30., 4., 40.]).unwrap();
        let mut bn = BatchNorm1d::new("bn", 2);
        let (y, _) = bn.forward_train(&x).unwrap();
        for c in 0..2 {
            let col: Vec<f32> = (0..4).map(|r| y.at(r, c)).collect();
            let mean: f32 = col.iter().sum::<f32>() / 4.0;
            let var: f32 = col.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-4, "{col:?}");
        }
        // Running: 0.9 * 0 + 0.1 * 2.5, 0.9 * 1 + 0.1 * var_unbiased(1..4) = 0.9 + 0.1 * 5/3.
        assert!((bn.running_mean[0] - 0.25).abs() < 1e-6);
        assert!((bn.running_var[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6);
        let e = bn.forward_eval(&x).unwrap();
        let want = (1.0 - 0.25) / (bn.running_var[0] + 1e-5).sqrt();
        assert!((e.at(0, 0) - want).abs() < 1e-6);
        assert!(bn.forward_train(&x.row_block(0, 1)).is_err());
    }
}
