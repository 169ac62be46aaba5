//! L1 normalization as a layer (SPEC §5), and the choice between it and LayerNorm that every
//! model built from these layers offers (`--norm layer|l1`).
//!
//! In an SQ format the L1 norm's forward runs on the accelerator's L1-norm unit
//! (`Engine::l1norm`, `golden` and `rtl` alike): each row is scaled by its own power of two to
//! the unit's 16-bit integer inputs (`to_unit_inputs`; the normalization does not depend on the
//! row's scale), the unit returns SQ-b codes `q * 2^-f` of (x - mu) / sigma, and the host applies
//! gamma and beta. In fp32 (and fp16, whose top has no unit) it runs on the host in f32
//! (`crate::l1norm::forward`).
//!
//! The backward pass is the exact derivative of the f32 expression of SPEC §5 at the same input
//! (`crate::l1norm::backward`): the unit's rounding to codes is passed straight through, as
//! quantizers in training are. dgamma uses the normalized values the forward actually produced
//! (the codes), so it is the exact gradient of the forward that ran.

use super::layer_norm::{LayerNorm, LayerNormCache};
use super::{Offload, Param};
use crate::error::Result;
use crate::l1norm::{self, L1NormCache};
use crate::matrix::Matrix;

pub struct L1Norm {
    pub gamma: Param,
    pub beta: Param,
    pub eps: f32,
}

/// What `L1Norm::backward_offload` needs: the host statistics of the input and the normalized
/// values the forward produced.
pub struct L1OffloadCache {
    host: L1NormCache,
    normalized: Matrix,
}

/// Which normalization a model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    /// LayerNorm on the host.
    Layer,
    /// L1 normalization, on the accelerator's L1-norm unit in SQ formats.
    L1,
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
        add_to(&mut self.gamma, &g.dgamma);
        add_to(&mut self.beta, &g.dbeta);
        Ok(g.dx)
    }

    /// The forward on `ctx`'s L1-norm unit (SQ formats) or on the host (fp32, fp16).
    pub fn forward_offload(
        &self,
        ctx: &mut Offload,
        x: &Matrix,
    ) -> Result<(Matrix, L1OffloadCache)> {
        let (host_y, host) = self.forward(x)?;
        if ctx.format().sq_bits().is_none() {
            let normalized = unit_normalized(x, &host);
            return Ok((host_y, L1OffloadCache { host, normalized }));
        }
        let codes = ctx.l1norm(&to_unit_inputs(x))?;
        let step = codes.step() as f32;
        let n = x.cols;
        let mut normalized = Matrix::zeros(x.rows, n);
        for (dst, row) in normalized.data.chunks_mut(n).zip(&codes.rows) {
            dst.iter_mut()
                .zip(row)
                .for_each(|(d, &q)| *d = f32::from(q) * step);
        }
        let (gamma, beta) = (&self.gamma.value.data, &self.beta.value.data);
        let mut y = normalized.clone();
        for row in y.data.chunks_mut(n) {
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = *v * g + b;
            }
        }
        Ok((y, L1OffloadCache { host, normalized }))
    }

    /// The backward of `forward_offload` (see the module docs).
    pub fn backward_offload(&mut self, dy: &Matrix, cache: &L1OffloadCache) -> Result<Matrix> {
        let g = l1norm::backward(dy, &self.gamma.value.data, &cache.host)?;
        let n = dy.cols;
        for (d, yh) in dy.data.chunks(n).zip(cache.normalized.data.chunks(n)) {
            for i in 0..n {
                self.gamma.grad.data[i] += d[i] * yh[i];
            }
        }
        add_to(&mut self.beta, &g.dbeta);
        Ok(g.dx)
    }
}

/// (x - mu) / sigma of the host forward.
fn unit_normalized(x: &Matrix, c: &L1NormCache) -> Matrix {
    let n = x.cols;
    let mut out = c.centered.clone();
    for (row, s) in out.data.chunks_mut(n).zip(&c.sigma) {
        let inv = 1.0 / s;
        row.iter_mut().for_each(|v| *v *= inv);
    }
    out
}

fn add_to(p: &mut Param, g: &[f32]) {
    p.grad.data.iter_mut().zip(g).for_each(|(a, b)| *a += b);
}

/// Bits of the L1-norm unit's two's-complement inputs (`accel::default_l1norm`: W = 16).
const UNIT_INPUT_BITS: i32 = 16;

/// Each row scaled by the power of two that puts its largest magnitude in
/// [2^(W-2), 2^(W-1)), rounded half to even to integers (an all-zero row stays zero).
pub fn to_unit_inputs(x: &Matrix) -> Vec<Vec<i64>> {
    let lim = (1i64 << (UNIT_INPUT_BITS - 1)) - 1;
    x.data
        .chunks(x.cols)
        .map(|row| {
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if max == 0.0 {
                return vec![0; row.len()];
            }
            // max < 2^(e+1) with e = floor(log2 max); scale by 2^(W-2-e).
            let e = f64::from(max).log2().floor() as i32;
            let scale = 2f64.powi(UNIT_INPUT_BITS - 2 - e);
            row.iter()
                .map(|&v| ((f64::from(v) * scale).round_ties_even() as i64).clamp(-lim, lim))
                .collect()
        })
        .collect()
}

/// LayerNorm or L1Norm, chosen per model.
pub enum Norm {
    Layer(LayerNorm),
    L1(L1Norm),
}

pub enum NormCache {
    Layer(LayerNormCache),
    L1(L1OffloadCache),
}

impl Norm {
    /// A norm of `kind` with the given affine parameters (1 x n each) and eps.
    pub fn with_params(kind: NormKind, gamma: Param, beta: Param, eps: f32) -> Self {
        match kind {
            NormKind::Layer => Norm::Layer(LayerNorm { gamma, beta, eps }),
            NormKind::L1 => Norm::L1(L1Norm { gamma, beta, eps }),
        }
    }

    pub fn forward(&self, ctx: &mut Offload, x: &Matrix) -> Result<(Matrix, NormCache)> {
        match self {
            Norm::Layer(n) => {
                let (y, c) = n.forward(x);
                Ok((y, NormCache::Layer(c)))
            }
            Norm::L1(n) => {
                let (y, c) = n.forward_offload(ctx, x)?;
                Ok((y, NormCache::L1(c)))
            }
        }
    }

    pub fn backward(&mut self, dy: &Matrix, cache: &NormCache) -> Result<Matrix> {
        match (self, cache) {
            (Norm::Layer(n), NormCache::Layer(c)) => Ok(n.backward(dy, c)),
            (Norm::L1(n), NormCache::L1(c)) => n.backward_offload(dy, c),
            _ => Err(crate::error::Error::Usage(
                "norm backward with the other norm's cache".into(),
            )),
        }
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        match self {
            Norm::Layer(n) => vec![&mut n.gamma, &mut n.beta],
            Norm::L1(n) => vec![&mut n.gamma, &mut n.beta],
        }
    }
}
