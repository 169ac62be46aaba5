//! The paper's 1-layer Transformer for (x + y) mod p (its public `Transformer` with one block):
//! two tokens, no positional embedding, no LayerNorm, one causal attention head, a ReLU MLP,
//! residual connections, logits read at the last position. Init as the paper: W_E ~ N(0, 1/p),
//! W_Q/W_K/W_V/W_O/W_in/W_out ~ N(0, 1/d_model), W_U ~ N(0, 1/d_model).
//!
//! With two tokens and a causal mask only position 1's output matters, and position 0 is needed
//! only as a key and value. Every projection is a batched GEMM offloaded to the engine; the two
//! attention scores per example (a 1 x d by d x 2 product per example, no reuse across the
//! batch) are computed on the host. This is why it does not use the general
//! `nn::attention::MultiHeadAttention` (whose score and context products are GEMMs of T x T per
//! sequence and head): with its one query it would quantize a 1 x 2 product per example, and it
//! would change the published sq trajectories. Softmax and residuals are the shared layers'.

use super::data::Inputs;
use super::model::Model;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::nn::activation::Activation;
use crate::nn::attention::required;
use crate::nn::linear::Linear;
use crate::nn::residual::add;
use crate::nn::softmax::{softmax_backward_row, softmax_prefix};
use crate::nn::{Offload, Param};
use crate::rng::SplitMix64;

pub struct GrokTransformer {
    pub embed: Param, // p x d
    pub wq: Linear,
    pub wk: Linear,
    pub wv: Linear,
    pub wo: Linear,
    pub w_in: Linear,
    pub w_out: Linear,
    pub unembed: Linear,
    d: usize,
    cache: Option<Cache>,
}

struct Cache {
    tokens: Vec<[usize; 2]>,
    x: Matrix,  // [x0; x1] stacked: 2B x d
    k: Matrix,  // 2B x d
    v: Matrix,  // 2B x d
    q1: Matrix, // B x d
    alpha: Vec<[f32; 2]>,
    z: Matrix,   // B x d
    r1: Matrix,  // B x d
    pre: Matrix, // B x d_mlp
    act: Matrix, // B x d_mlp
    r2: Matrix,  // B x d
}

fn lin(name: &str, d_in: usize, d_out: usize, std: f64, rng: &mut SplitMix64) -> Linear {
    Linear::new(Param::normal(name, d_in, d_out, std, rng), None)
}

impl GrokTransformer {
    pub fn new(p: usize, d: usize, d_mlp: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let s = 1.0 / (d as f64).sqrt();
        GrokTransformer {
            embed: Param::normal("embed", p, d, 1.0 / (p as f64).sqrt(), &mut rng),
            wq: lin("attn.wq", d, d, s, &mut rng),
            wk: lin("attn.wk", d, d, s, &mut rng),
            wv: lin("attn.wv", d, d, s, &mut rng),
            wo: lin("attn.wo", d, d, s, &mut rng),
            w_in: lin("mlp.w_in", d, d_mlp, s, &mut rng),
            w_out: lin("mlp.w_out", d_mlp, d, s, &mut rng),
            unembed: lin("unembed", d, p, s, &mut rng),
            d,
            cache: None,
        }
    }

    fn gather(&self, tokens: &[[usize; 2]]) -> Matrix {
        let (b, d) = (tokens.len(), self.d);
        let mut x = Matrix::zeros(2 * b, d);
        for (i, t) in tokens.iter().enumerate() {
            for (pos, &tok) in t.iter().enumerate() {
                x.data[(pos * b + i) * d..(pos * b + i + 1) * d]
                    .copy_from_slice(self.embed.value.row(tok));
            }
        }
        x
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Model for GrokTransformer {
    fn forward(&mut self, ctx: &mut Offload, inputs: &Inputs, train: bool) -> Result<Matrix> {
        let Inputs::Tokens(toks) = inputs else {
            return Err(Error::Usage(
                "the grokking Transformer takes token inputs".into(),
            ));
        };
        let tokens: Vec<[usize; 2]> = toks.iter().map(|t| [t[0], t[1]]).collect();
        let (b, d) = (tokens.len(), self.d);
        let x = self.gather(&tokens);
        let k = self.wk.forward(ctx, &x)?;
        let v = self.wv.forward(ctx, &x)?;
        let x1 = x.row_block(b, b);
        let q1 = self.wq.forward(ctx, &x1)?;
        let scale = 1.0 / (d as f32).sqrt();
        let mut alpha = Vec::with_capacity(b);
        let mut z = Matrix::zeros(b, d);
        for i in 0..b {
            let q = q1.row(i);
            let mut a = [dot(k.row(i), q) * scale, dot(k.row(b + i), q) * scale];
            softmax_prefix(&mut a, 2);
            for (j, zj) in z.data[i * d..(i + 1) * d].iter_mut().enumerate() {
                *zj = a[0] * v.data[i * d + j] + a[1] * v.data[(b + i) * d + j];
            }
            alpha.push(a);
        }
        let r1 = add(&x1, &self.wo.forward(ctx, &z)?);
        let pre = self.w_in.forward(ctx, &r1)?;
        let act = Activation::Relu.forward(&pre);
        let r2 = add(&r1, &self.w_out.forward(ctx, &act)?);
        let logits = self.unembed.forward(ctx, &r2)?;
        self.cache = train.then_some(Cache {
            tokens,
            x,
            k,
            v,
            q1,
            alpha,
            z,
            r1,
            pre,
            act,
            r2,
        });
        Ok(logits)
    }

    fn backward(&mut self, ctx: &mut Offload, dout: &Matrix) -> Result<()> {
        let c = self
            .cache
            .take()
            .ok_or_else(|| Error::Usage("backward without a training forward pass".into()))?;
        let (b, d) = (c.tokens.len(), self.d);
        let dr2 = required(self.unembed.backward(ctx, &c.r2, dout, true)?)?;
        let dact = required(self.w_out.backward(ctx, &c.act, &dr2, true)?)?;
        let dpre = Activation::Relu.backward(&c.pre, &dact);
        let dr1 = add(
            &dr2,
            &required(self.w_in.backward(ctx, &c.r1, &dpre, true)?)?,
        );
        let dz = required(self.wo.backward(ctx, &c.z, &dr1, true)?)?;
        // Attention on the host: z = a0 v0 + a1 v1, a = softmax(s), s_j = k_j . q1 / sqrt(d).
        let scale = 1.0 / (d as f32).sqrt();
        let mut dk = Matrix::zeros(2 * b, d);
        let mut dv = Matrix::zeros(2 * b, d);
        let mut dq1 = Matrix::zeros(b, d);
        for i in 0..b {
            let a = c.alpha[i];
            let dzi = dz.row(i);
            let (v0, v1) = (c.v.row(i), c.v.row(b + i));
            let da = [dot(dzi, v0), dot(dzi, v1)];
            let mut ds = [0.0f32; 2];
            softmax_backward_row(&a, &da, &mut ds);
            let ds = ds.map(|v| v * scale);
            let q = c.q1.row(i);
            let (k0, k1) = (c.k.row(i), c.k.row(b + i));
            for j in 0..d {
                dv.data[i * d + j] = a[0] * dzi[j];
                dv.data[(b + i) * d + j] = a[1] * dzi[j];
                dk.data[i * d + j] = ds[0] * q[j];
                dk.data[(b + i) * d + j] = ds[1] * q[j];
                dq1.data[i * d + j] = ds[0] * k0[j] + ds[1] * k1[j];
            }
        }
        let x1 = c.x.row_block(b, b);
        let mut dx = add(
            &required(self.wk.backward(ctx, &c.x, &dk, true)?)?,
            &required(self.wv.backward(ctx, &c.x, &dv, true)?)?,
        );
        let dx1 = add(&required(self.wq.backward(ctx, &x1, &dq1, true)?)?, &dr1);
        for (o, g) in dx.data[b * d..].iter_mut().zip(&dx1.data) {
            *o += g;
        }
        for (i, t) in c.tokens.iter().enumerate() {
            for (pos, &tok) in t.iter().enumerate() {
                let g = &mut self.embed.grad.data[tok * d..(tok + 1) * d];
                g.iter_mut()
                    .zip(dx.row(pos * b + i))
                    .for_each(|(gi, v)| *gi += v);
            }
        }
        Ok(())
    }

    fn params(&self) -> Vec<&Param> {
        vec![
            &self.embed,
            &self.wq.weight,
            &self.wk.weight,
            &self.wv.weight,
            &self.wo.weight,
            &self.w_in.weight,
            &self.w_out.weight,
            &self.unembed.weight,
        ]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![
            &mut self.embed,
            &mut self.wq.weight,
            &mut self.wk.weight,
            &mut self.wv.weight,
            &mut self.wo.weight,
            &mut self.w_in.weight,
            &mut self.w_out.weight,
            &mut self.unembed.weight,
        ]
    }
}
