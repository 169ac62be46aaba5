//! The ND paper's embedding projection from a student's width to its teacher's: BatchNorm1d ->
//! dropout -> linear (with bias). The linear layer's three GEMMs go through `Offload`; the
//! normalization and dropout run on the host.

use super::batch_norm::{BatchNorm1d, BatchNormCache};
use super::dropout::{Dropout, DropoutMask};
use super::linear::Linear;
use super::{Offload, Param};
use crate::error::Result;
use crate::matrix::Matrix;
use crate::rng::SplitMix64;

pub struct Projection {
    pub bn: BatchNorm1d,
    pub dropout: Dropout,
    pub linear: Linear,
}

pub struct ProjectionCache {
    bn: BatchNormCache,
    mask: DropoutMask,
    /// The linear layer's input (after dropout).
    dropped: Matrix,
}

impl Projection {
    /// `from` -> `to` features; the linear weights as torch's default (uniform in
    /// +-1/sqrt(from)), the dropout masks and the weights seeded by `seed`.
    pub fn new(name: &str, from: usize, to: usize, dropout: f32, seed: u64) -> Self {
        let mut rng = SplitMix64::new(crate::rng::mix64(seed ^ 0x9B0_7EC7));
        let bound = 1.0 / (from as f64).sqrt();
        let mut uniform = |rows, cols| {
            Matrix::from_fn(rows, cols, |_, _| {
                (bound * (2.0 * rng.uniform() - 1.0)) as f32
            })
        };
        let w = uniform(from, to);
        let b = uniform(1, to);
        Projection {
            bn: BatchNorm1d::new(&format!("{name}.bn"), from),
            dropout: Dropout::new(dropout, crate::rng::mix64(seed ^ 0xD20_9007)),
            linear: Linear::new(
                Param::new(&format!("{name}.linear.weight"), w),
                Some(Param::new(&format!("{name}.linear.bias"), b)),
            ),
        }
    }

    /// Training mode (batch statistics, a fresh dropout mask).
    pub fn forward_train(
        &mut self,
        ctx: &mut Offload,
        x: &Matrix,
    ) -> Result<(Matrix, ProjectionCache)> {
        let (n, bn) = self.bn.forward_train(x)?;
        let (dropped, mask) = self.dropout.forward_train(&n);
        let y = self.linear.forward(ctx, &dropped)?;
        Ok((y, ProjectionCache { bn, mask, dropped }))
    }

    /// Evaluation mode (running statistics, no dropout).
    pub fn forward_eval(&self, ctx: &mut Offload, x: &Matrix) -> Result<Matrix> {
        let n = self.bn.forward_eval(x)?;
        self.linear.forward(ctx, &n)
    }

    /// Accumulates the parameters' gradients and returns dx.
    pub fn backward(
        &mut self,
        ctx: &mut Offload,
        dy: &Matrix,
        cache: &ProjectionCache,
    ) -> Result<Matrix> {
        let dd = self
            .linear
            .backward(ctx, &cache.dropped, dy, true)?
            .expect("dx requested");
        let dn = self.dropout.backward(&dd, &cache.mask);
        Ok(self.bn.backward(&dn, &cache.bn))
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = self.bn.params_mut();
        v.extend(self.linear.params_mut());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ArrayShape, EngineKind};
    use crate::format::Format;
    use crate::nn::loss::{mean_cosine_to_rows, mean_row_norm, nd};
    use crate::nn::optim::SgdMomentum;

    /// ND alone, trained through the projection on features that carry their class, drives the
    /// projected features (evaluation mode) to the class means' directions and at least the
    /// teacher's norm.
    #[test]
    fn nd_through_the_projection_aligns_features_with_class_means() {
        let mut ctx =
            Offload::new(Format::Fp32, EngineKind::Cpu, ArrayShape::default(), 7, 0).unwrap();
        let mut rng = SplitMix64::new(5);
        let (classes, ds, dt, b) = (4usize, 6usize, 10usize, 32usize);
        let proto = Matrix::from_fn(classes, ds, |_, _| rng.normal() as f32);
        let centers = Matrix::from_fn(classes, dt, |_, _| rng.normal() as f32);
        let labels: Vec<usize> = (0..b).map(|i| i % classes).collect();
        let batch = |rng: &mut SplitMix64| {
            Matrix::from_fn(b, ds, |r, c| {
                proto.at(labels[r], c) + 0.3 * rng.normal() as f32
            })
        };
        // Teacher embeddings: its class means scaled to norm 5.
        let t = Matrix::from_fn(b, dt, |r, c| {
            let row = centers.row(labels[r]);
            let n: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            5.0 * row[c] / n
        });
        let mut p = Projection::new("p", ds, dt, 0.1, 1);
        let mut opt = SgdMomentum::new(0.5, 0.9, 0.0);
        let before = mean_cosine_to_rows(
            &p.forward_eval(&mut ctx, &batch(&mut rng)).unwrap(),
            &centers,
            &labels,
        );
        for _ in 0..300 {
            let x = batch(&mut rng);
            let (y, cache) = p.forward_train(&mut ctx, &x).unwrap();
            let out = nd(&y, &t, &centers, &labels, 1.0);
            p.params_mut().iter_mut().for_each(|q| q.zero_grad());
            p.backward(&mut ctx, &out.grad, &cache).unwrap();
            opt.step(&mut p.params_mut());
        }
        let y = p.forward_eval(&mut ctx, &batch(&mut rng)).unwrap();
        let cos = mean_cosine_to_rows(&y, &centers, &labels);
        assert!(cos > 0.9 && cos > before + 0.3, "cosine {before} -> {cos}");
        assert!(mean_row_norm(&y) >= 4.5, "norm {}", mean_row_norm(&y));
    }
}
