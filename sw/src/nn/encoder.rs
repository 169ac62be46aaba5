//! A pre-norm Transformer encoder layer, as transformers' `CLIPEncoderLayer`: norm, multi-head
//! self-attention (optionally causal), residual, norm, MLP (fc1, activation, fc2), residual.
//! Shared by the vision tower (`vit`) and the text tower (`text`).

use super::activation::Activation;
use super::attention::{required, AttentionCache, MultiHeadAttention};
use super::linear::Linear;
use super::norm::{Norm, NormCache};
use super::residual::add;
use super::{Offload, Param};
use crate::error::Result;
use crate::matrix::Matrix;

pub struct EncoderLayer {
    pub norm1: Norm,
    pub attn: MultiHeadAttention,
    pub norm2: Norm,
    pub fc1: Linear,
    pub act: Activation,
    pub fc2: Linear,
}

pub struct EncoderCache {
    n1: NormCache,
    attn: AttentionCache,
    n2: NormCache,
    /// norm2's output, fc1's output, the activation's output.
    b: Matrix,
    pre: Matrix,
    h: Matrix,
}

impl EncoderLayer {
    pub fn forward(
        &self,
        ctx: &mut Offload,
        x: &Matrix,
        seq: usize,
    ) -> Result<(Matrix, EncoderCache)> {
        let (a, n1) = self.norm1.forward(ctx, x)?;
        let (att, attn) = self.attn.forward(ctx, &a, seq)?;
        let x1 = add(x, &att);
        let (b, n2) = self.norm2.forward(ctx, &x1)?;
        let pre = self.fc1.forward(ctx, &b)?;
        let h = self.act.forward(&pre);
        let y = add(&x1, &self.fc2.forward(ctx, &h)?);
        Ok((
            y,
            EncoderCache {
                n1,
                attn,
                n2,
                b,
                pre,
                h,
            },
        ))
    }

    pub fn backward(&mut self, ctx: &mut Offload, dy: &Matrix, c: &EncoderCache) -> Result<Matrix> {
        let dh = required(self.fc2.backward(ctx, &c.h, dy, true)?)?;
        let dpre = self.act.backward(&c.pre, &dh);
        let db = required(self.fc1.backward(ctx, &c.b, &dpre, true)?)?;
        let dx1 = add(dy, &self.norm2.backward(&db, &c.n2)?);
        let da = self.attn.backward(ctx, &dx1, &c.attn)?;
        Ok(add(&dx1, &self.norm1.backward(&da, &c.n1)?))
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = self.norm1.params_mut();
        v.extend(self.attn.params_mut());
        v.extend(self.norm2.params_mut());
        v.extend(self.fc1.params_mut());
        v.extend(self.fc2.params_mut());
        v
    }
}
