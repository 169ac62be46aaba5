//! Multi-head self-attention over a batch of token sequences, with an optional causal mask.
//!
//! Tokens are rows: `x` is `(B * T) x d`, image (or sequence) `b`'s tokens in rows
//! `b*T..(b+1)*T`, head `h` in columns `h*d_head..(h+1)*d_head`. Every product is a GEMM through
//! `Offload`: the Q/K/V/O projections (`Linear`, roles Forward / InputGrad / WeightGrad) and, per
//! sequence and head, the scores `S = Q K^T` and the context `Z = P V` with their four backward
//! products (the `Attn*` roles of `nn/offload.rs`). Scaling by `d_head^-0.5` (after the score
//! GEMM, as transformers' eager attention does), the mask and the softmax run on the host.

use super::linear::Linear;
use super::residual::add;
use super::softmax::{softmax_backward_row, softmax_prefix};
use super::{GemmKind, Offload, Param};
use crate::error::{Error, Result};
use crate::matrix::Matrix;

pub struct MultiHeadAttention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub heads: usize,
    /// Token i attends to tokens 0..=i only.
    pub causal: bool,
}

/// The forward activations the backward pass needs.
pub struct AttentionCache {
    seq: usize,
    x: Matrix,
    q: Matrix,
    k: Matrix,
    v: Matrix,
    /// Softmax probabilities, one T x T matrix per (sequence, head), sequence-major.
    probs: Vec<Matrix>,
    z: Matrix,
}

/// Columns `h*w..(h+1)*w` of rows `b*t..(b+1)*t`: one head of one sequence.
fn head_block(m: &Matrix, b: usize, t: usize, h: usize, w: usize) -> Matrix {
    let mut out = Matrix::zeros(t, w);
    for (i, row) in out.data.chunks_mut(w).enumerate() {
        let src = (b * t + i) * m.cols + h * w;
        row.copy_from_slice(&m.data[src..src + w]);
    }
    out
}

/// Write `block` (t x w) back into head `h` of sequence `b`.
fn put_head_block(m: &mut Matrix, b: usize, t: usize, h: usize, block: &Matrix) {
    let w = block.cols;
    for (i, row) in block.data.chunks(w).enumerate() {
        let dst = (b * t + i) * m.cols + h * w;
        m.data[dst..dst + w].copy_from_slice(row);
    }
}

impl MultiHeadAttention {
    pub fn new(q: Linear, k: Linear, v: Linear, o: Linear, heads: usize, causal: bool) -> Self {
        MultiHeadAttention {
            q,
            k,
            v,
            o,
            heads,
            causal,
        }
    }

    fn dims(&self, x: &Matrix, seq: usize) -> Result<(usize, usize)> {
        let d = self.q.weight.value.cols;
        if seq == 0 || !x.rows.is_multiple_of(seq) || !d.is_multiple_of(self.heads) || x.cols != d {
            return Err(Error::Shape(format!(
                "attention over {} x {} tokens in sequences of {seq} with {} heads of width \
                 {d}: rows must be a multiple of the sequence length and the width a multiple of \
                 the head count",
                x.rows, x.cols, self.heads
            )));
        }
        Ok((x.rows / seq, d / self.heads))
    }

    /// y = attention(x) for sequences of `seq` tokens, and what `backward` needs.
    pub fn forward(
        &self,
        ctx: &mut Offload,
        x: &Matrix,
        seq: usize,
    ) -> Result<(Matrix, AttentionCache)> {
        let (batch, dh) = self.dims(x, seq)?;
        let scale = 1.0 / (dh as f32).sqrt();
        let q = self.q.forward(ctx, x)?;
        let k = self.k.forward(ctx, x)?;
        let v = self.v.forward(ctx, x)?;
        let mut z = Matrix::zeros(x.rows, x.cols);
        let mut probs = Vec::with_capacity(batch * self.heads);
        for b in 0..batch {
            for h in 0..self.heads {
                let qb = head_block(&q, b, seq, h, dh);
                let kt = head_block(&k, b, seq, h, dh).transpose();
                let mut p = ctx.gemm(&qb, &kt, GemmKind::AttnScores)?;
                for (i, row) in p.data.chunks_mut(seq).enumerate() {
                    row.iter_mut().for_each(|s| *s *= scale);
                    softmax_prefix(row, if self.causal { i + 1 } else { seq });
                }
                let vb = head_block(&v, b, seq, h, dh);
                let zb = ctx.gemm(&p, &vb, GemmKind::AttnContext)?;
                put_head_block(&mut z, b, seq, h, &zb);
                probs.push(p);
            }
        }
        let y = self.o.forward(ctx, &z)?;
        let cache = AttentionCache {
            seq,
            x: x.clone(),
            q,
            k,
            v,
            probs,
            z,
        };
        Ok((y, cache))
    }

    /// Accumulates the projections' gradients and returns dL/dx.
    pub fn backward(
        &mut self,
        ctx: &mut Offload,
        dy: &Matrix,
        c: &AttentionCache,
    ) -> Result<Matrix> {
        let seq = c.seq;
        let (batch, dh) = self.dims(&c.x, seq)?;
        let scale = 1.0 / (dh as f32).sqrt();
        let dz = required(self.o.backward(ctx, &c.z, dy, true)?)?;
        let (mut dq, mut dk, mut dv) = (
            Matrix::zeros(c.x.rows, c.x.cols),
            Matrix::zeros(c.x.rows, c.x.cols),
            Matrix::zeros(c.x.rows, c.x.cols),
        );
        for b in 0..batch {
            for h in 0..self.heads {
                let p = &c.probs[b * self.heads + h];
                let dzb = head_block(&dz, b, seq, h, dh);
                let vt = head_block(&c.v, b, seq, h, dh).transpose();
                let dp = ctx.gemm(&dzb, &vt, GemmKind::AttnProbsGrad)?;
                let dvb = ctx.gemm(&p.transpose(), &dzb, GemmKind::AttnValueGrad)?;
                put_head_block(&mut dv, b, seq, h, &dvb);
                let mut ds = Matrix::zeros(seq, seq);
                for ((d, pr), g) in ds
                    .data
                    .chunks_mut(seq)
                    .zip(p.data.chunks(seq))
                    .zip(dp.data.chunks(seq))
                {
                    softmax_backward_row(pr, g, d);
                    d.iter_mut().for_each(|v| *v *= scale);
                }
                let kb = head_block(&c.k, b, seq, h, dh);
                let qb = head_block(&c.q, b, seq, h, dh);
                let dqb = ctx.gemm(&ds, &kb, GemmKind::AttnQueryGrad)?;
                let dkb = ctx.gemm(&ds.transpose(), &qb, GemmKind::AttnKeyGrad)?;
                put_head_block(&mut dq, b, seq, h, &dqb);
                put_head_block(&mut dk, b, seq, h, &dkb);
            }
        }
        let dx = add(
            &required(self.q.backward(ctx, &c.x, &dq, true)?)?,
            &required(self.k.backward(ctx, &c.x, &dk, true)?)?,
        );
        Ok(add(&dx, &required(self.v.backward(ctx, &c.x, &dv, true)?)?))
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = self.q.params_mut();
        v.extend(self.k.params_mut());
        v.extend(self.v.params_mut());
        v.extend(self.o.params_mut());
        v
    }
}

/// The input gradient a `Linear::backward(.., need_dx = true)` returns.
pub fn required(dx: Option<Matrix>) -> Result<Matrix> {
    dx.ok_or_else(|| Error::Usage("missing input gradient".into()))
}
