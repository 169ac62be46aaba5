//! A causal Transformer text tower in the layout of transformers' `CLIPTextModel`: token and
//! position embeddings, pre-norm encoder layers with a causal mask, a final LayerNorm, pooling at
//! each sequence's first `eos_token_id` (transformers' rule when `eos_token_id != 2`), and,
//! optionally, a projection without bias (`text_projection`). Every GEMM goes through `Offload`.

use super::activation::Activation;
use super::attention::{required, MultiHeadAttention};
use super::embedding::Embedding;
use super::encoder::{EncoderCache, EncoderLayer};
use super::linear::Linear;
use super::norm::{Norm, NormCache, NormKind};
use super::{Offload, Param};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::rng::SplitMix64;

/// The sizes of a text tower (the fields of a `CLIPTextConfig`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TextConfig {
    pub vocab: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    /// `max_position_embeddings`: the longest sequence.
    pub context: usize,
    /// Width of the projection, or `None` for a tower without one.
    pub projection: Option<usize>,
    #[serde(skip)]
    pub act: Activation,
    pub eps: f32,
    /// The token whose first occurrence is pooled.
    pub eos_token_id: usize,
}

pub struct TextTower {
    pub config: TextConfig,
    pub token: Embedding,
    /// context x d.
    pub position: Param,
    pub layers: Vec<EncoderLayer>,
    pub final_norm: Norm,
    pub projection: Option<Linear>,
}

/// What the tower computes for a batch of N sequences.
pub struct TextOutput {
    /// Final norm of each sequence's EOS token, N x d.
    pub pooled: Matrix,
    /// `pooled` through the projection (when the tower has one).
    pub embeds: Option<Matrix>,
}

pub struct TextCache {
    tokens: Vec<usize>,
    seq: usize,
    eos: Vec<usize>,
    layers: Vec<EncoderCache>,
    final_norm: NormCache,
    pooled: Matrix,
}

impl TextTower {
    /// A randomly initialized tower, as transformers' `CLIPPreTrainedModel` (factor 1):
    /// token embeddings N(0, 0.02^2), position embeddings N(0, 0.01^2), the encoder layers as
    /// the vision tower's, norms at gamma 1, beta 0.
    pub fn random(config: TextConfig, norm: NormKind, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let c = &config;
        let d = c.hidden;
        let in_std = (d as f64).powf(-0.5) * ((2 * c.layers) as f64).powf(-0.5);
        let mut lin = |name: &str, din: usize, dout: usize, std: f64, bias: bool| {
            let w = Param::normal(&format!("{name}.weight"), din, dout, std, &mut rng);
            let b = bias.then(|| Param::new(&format!("{name}.bias"), Matrix::zeros(1, dout)));
            Linear::new(w, b)
        };
        let norm_of = |name: &str| {
            Norm::with_params(
                norm,
                Param::new(&format!("{name}.weight"), Matrix::from_fn(1, d, |_, _| 1.0)),
                Param::new(&format!("{name}.bias"), Matrix::zeros(1, d)),
                c.eps,
            )
        };
        let mut layers = Vec::new();
        for l in 0..c.layers {
            let p = format!("text_model.encoder.layers.{l}");
            let a = format!("{p}.self_attn");
            let q = lin(&format!("{a}.q_proj"), d, d, in_std, true);
            let k = lin(&format!("{a}.k_proj"), d, d, in_std, true);
            let v = lin(&format!("{a}.v_proj"), d, d, in_std, true);
            let o = lin(&format!("{a}.out_proj"), d, d, (d as f64).powf(-0.5), true);
            let fc1 = lin(
                &format!("{p}.mlp.fc1"),
                d,
                c.intermediate,
                (2.0 * d as f64).powf(-0.5),
                true,
            );
            let fc2 = lin(&format!("{p}.mlp.fc2"), c.intermediate, d, in_std, true);
            layers.push(EncoderLayer {
                norm1: norm_of(&format!("{p}.layer_norm1")),
                attn: MultiHeadAttention::new(q, k, v, o, c.heads, true),
                norm2: norm_of(&format!("{p}.layer_norm2")),
                fc1,
                act: c.act,
                fc2,
            });
        }
        let projection = c
            .projection
            .map(|p| lin("text_projection", d, p, (d as f64).powf(-0.5), false));
        let token = Embedding {
            table: Param::normal(
                "text_model.embeddings.token_embedding.weight",
                c.vocab,
                d,
                0.02,
                &mut rng,
            ),
        };
        let position = Param::normal(
            "text_model.embeddings.position_embedding.weight",
            c.context,
            d,
            0.01,
            &mut rng,
        );
        TextTower {
            token,
            position,
            layers,
            final_norm: norm_of("text_model.final_layer_norm"),
            projection,
            config,
        }
    }

    /// The sequences must be non-empty, of one length at most `context`, with ids below the
    /// vocabulary size and an EOS token each; returns the EOS positions.
    fn check(&self, seqs: &[Vec<usize>]) -> Result<Vec<usize>> {
        let c = &self.config;
        let t = seqs.first().map_or(0, Vec::len);
        if seqs.is_empty() || t == 0 || t > c.context {
            return Err(Error::Shape(format!(
                "{} token sequences of length {t}: the text tower takes N >= 1 sequences of 1 to \
                 {} tokens",
                seqs.len(),
                c.context
            )));
        }
        let mut eos = Vec::with_capacity(seqs.len());
        for (i, s) in seqs.iter().enumerate() {
            if s.len() != t {
                return Err(Error::Shape(format!(
                    "token sequence {i} has {} tokens, sequence 0 has {t}: pad them to one length",
                    s.len()
                )));
            }
            if let Some(&bad) = s.iter().find(|&&id| id >= c.vocab) {
                return Err(Error::Shape(format!(
                    "token sequence {i} holds id {bad}, outside the vocabulary of {}",
                    c.vocab
                )));
            }
            let at = s
                .iter()
                .position(|&id| id == c.eos_token_id)
                .ok_or_else(|| {
                    Error::Shape(format!(
                        "token sequence {i} has no eos token (id {})",
                        c.eos_token_id
                    ))
                })?;
            eos.push(at);
        }
        Ok(eos)
    }

    pub fn forward(&self, ctx: &mut Offload, seqs: &[Vec<usize>]) -> Result<TextOutput> {
        Ok(self.run(ctx, seqs, false)?.0)
    }

    /// The forward pass keeping what `backward` needs.
    pub fn forward_train(
        &self,
        ctx: &mut Offload,
        seqs: &[Vec<usize>],
    ) -> Result<(TextOutput, TextCache)> {
        let (out, cache) = self.run(ctx, seqs, true)?;
        Ok((out, cache.expect("kept")))
    }

    fn run(
        &self,
        ctx: &mut Offload,
        seqs: &[Vec<usize>],
        keep: bool,
    ) -> Result<(TextOutput, Option<TextCache>)> {
        let eos = self.check(seqs)?;
        let t = seqs[0].len();
        let d = self.config.hidden;
        let tokens: Vec<usize> = seqs.iter().flatten().copied().collect();
        let mut h = self.token.forward_rows(&tokens);
        for (r, row) in h.data.chunks_mut(d).enumerate() {
            row.iter_mut()
                .zip(self.position.value.row(r % t))
                .for_each(|(v, p)| *v += p);
        }
        let mut caches = Vec::new();
        for layer in &self.layers {
            let (y, c) = layer.forward(ctx, &h, t)?;
            if keep {
                caches.push(c);
            }
            h = y;
        }
        let mut last = Matrix::zeros(seqs.len(), d);
        for (i, &e) in eos.iter().enumerate() {
            last.data[i * d..(i + 1) * d].copy_from_slice(h.row(i * t + e));
        }
        let (pooled, final_norm) = self.final_norm.forward(ctx, &last)?;
        let embeds = match &self.projection {
            Some(p) => Some(p.forward(ctx, &pooled)?),
            None => None,
        };
        let cache = keep.then(|| TextCache {
            tokens,
            seq: t,
            eos,
            layers: caches,
            final_norm,
            pooled: pooled.clone(),
        });
        Ok((TextOutput { pooled, embeds }, cache))
    }

    /// Accumulate every parameter's gradient from dL/d(embeds), or dL/d(pooled) for a tower
    /// without a projection.
    pub fn backward(&mut self, ctx: &mut Offload, dout: &Matrix, c: &TextCache) -> Result<()> {
        let dpooled = match &mut self.projection {
            Some(p) => required(p.backward(ctx, &c.pooled, dout, true)?)?,
            None => dout.clone(),
        };
        let dlast = self.final_norm.backward(&dpooled, &c.final_norm)?;
        let (t, d) = (c.seq, self.config.hidden);
        let mut dh = Matrix::zeros(c.tokens.len(), d);
        for (i, &e) in c.eos.iter().enumerate() {
            dh.data[(i * t + e) * d..(i * t + e + 1) * d].copy_from_slice(dlast.row(i));
        }
        for (layer, lc) in self.layers.iter_mut().zip(&c.layers).rev() {
            dh = layer.backward(ctx, &dh, lc)?;
        }
        for (r, row) in dh.data.chunks(d).enumerate() {
            let p = &mut self.position.grad.data[(r % t) * d..(r % t + 1) * d];
            p.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        self.token.backward_rows(&c.tokens, &dh);
        Ok(())
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = vec![&mut self.token.table, &mut self.position];
        for l in &mut self.layers {
            v.extend(l.params_mut());
        }
        v.extend(self.final_norm.params_mut());
        if let Some(p) = &mut self.projection {
            v.extend(p.params_mut());
        }
        v
    }
}
