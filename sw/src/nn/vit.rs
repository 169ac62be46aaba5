//! A Vision Transformer tower in the layout of transformers' `CLIPVisionModel`: patch embedding,
//! class token, position embeddings, a LayerNorm ("pre_layrnorm"), pre-norm encoder layers
//! (norm, attention, residual, norm, MLP, residual), then the pooled output = post-norm of the
//! class token and, optionally, a projection without bias. Every GEMM goes through `Offload`.

use super::activation::Activation;
use super::attention::{required, MultiHeadAttention};
pub use super::encoder::{EncoderCache, EncoderLayer};
use super::linear::Linear;
use super::norm::{Norm, NormCache, NormKind};
use super::patch::{Images, PatchEmbedding, TokenEmbeddings};
use super::{Offload, Param};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::rng::SplitMix64;

/// The sizes of a tower (the fields of a `CLIPVisionConfig`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct VitConfig {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub channels: usize,
    pub image: usize,
    pub patch: usize,
    /// Width of the projection, or `None` for a tower without one.
    pub projection: Option<usize>,
    #[serde(skip)]
    pub act: Activation,
    pub eps: f32,
}

impl VitConfig {
    pub fn patches(&self) -> usize {
        (self.image / self.patch).pow(2)
    }

    /// Tokens per image: the class token and the patches.
    pub fn tokens(&self) -> usize {
        1 + self.patches()
    }
}

pub struct VisionTower {
    pub config: VitConfig,
    pub patch: PatchEmbedding,
    pub tokens: TokenEmbeddings,
    pub pre_norm: Norm,
    pub layers: Vec<EncoderLayer>,
    pub post_norm: Norm,
    pub projection: Option<Linear>,
}

/// What the tower computes for a batch of N images.
pub struct TowerOutput {
    /// The last encoder layer's output, (N * T) x d (no post-norm).
    pub hidden: Matrix,
    /// Post-norm of each image's class token, N x d.
    pub pooled: Matrix,
    /// `pooled` through the projection, N x projection (when the tower has one).
    pub embeds: Option<Matrix>,
}

pub struct TowerCache {
    patches: Matrix,
    pre: NormCache,
    layers: Vec<EncoderCache>,
    cls: Matrix,
    post: NormCache,
    pooled: Matrix,
}

impl VisionTower {
    /// A randomly initialized tower, initialized as transformers' `CLIPPreTrainedModel`
    /// (factor 1), with biases and norm parameters drawn around their defaults when `perturb`
    /// (so that tests see every parameter matter).
    pub fn random(config: VitConfig, norm: NormKind, seed: u64, perturb: bool) -> Self {
        let mut rng = SplitMix64::new(seed);
        let c = &config;
        let d = c.hidden;
        let mut normal = |name: &str, rows: usize, cols: usize, std: f64| {
            Param::normal(name, rows, cols, std, &mut rng)
        };
        let in_std = (d as f64).powf(-0.5) * ((2 * c.layers) as f64).powf(-0.5);
        let mut lin = |name: &str, din: usize, dout: usize, std: f64, bias: bool| {
            let w = normal(&format!("{name}.weight"), din, dout, std);
            let b = bias.then(|| {
                normal(
                    &format!("{name}.bias"),
                    1,
                    dout,
                    if perturb { 0.1 } else { 0.0 },
                )
            });
            Linear::new(w, b)
        };
        let mut layer_lins = Vec::new();
        for l in 0..c.layers {
            let p = format!("vision_model.encoder.layers.{l}");
            layer_lins.push([
                lin(&format!("{p}.self_attn.q_proj"), d, d, in_std, true),
                lin(&format!("{p}.self_attn.k_proj"), d, d, in_std, true),
                lin(&format!("{p}.self_attn.v_proj"), d, d, in_std, true),
                lin(
                    &format!("{p}.self_attn.out_proj"),
                    d,
                    d,
                    (d as f64).powf(-0.5),
                    true,
                ),
                lin(
                    &format!("{p}.mlp.fc1"),
                    d,
                    c.intermediate,
                    (2.0 * d as f64).powf(-0.5),
                    true,
                ),
                lin(&format!("{p}.mlp.fc2"), c.intermediate, d, in_std, true),
            ]);
        }
        let cpp = c.channels * c.patch * c.patch;
        let patch = lin(
            "vision_model.embeddings.patch_embedding",
            cpp,
            d,
            0.02,
            false,
        );
        let projection = c
            .projection
            .map(|p| lin("visual_projection", d, p, (d as f64).powf(-0.5), false));
        let mut rng = SplitMix64::new(seed ^ 0x5EED);
        let mut norm_of = |name: &str| {
            let s = if perturb { 0.1 } else { 0.0 };
            let g = Matrix::from_fn(1, d, |_, _| (1.0 + s * rng.normal()) as f32);
            let b = Matrix::from_fn(1, d, |_, _| (s * rng.normal()) as f32);
            Norm::with_params(
                norm,
                Param::new(&format!("{name}.weight"), g),
                Param::new(&format!("{name}.bias"), b),
                c.eps,
            )
        };
        let mut layers = Vec::new();
        for (l, [q, k, v, o, fc1, fc2]) in layer_lins.into_iter().enumerate() {
            let p = format!("vision_model.encoder.layers.{l}");
            layers.push(EncoderLayer {
                norm1: norm_of(&format!("{p}.layer_norm1")),
                attn: MultiHeadAttention::new(q, k, v, o, c.heads, false),
                norm2: norm_of(&format!("{p}.layer_norm2")),
                fc1,
                act: c.act,
                fc2,
            });
        }
        let pre_norm = norm_of("vision_model.pre_layrnorm");
        let post_norm = norm_of("vision_model.post_layernorm");
        let tokens = TokenEmbeddings {
            class: Param::normal(
                "vision_model.embeddings.class_embedding",
                1,
                d,
                (d as f64).powf(-0.5),
                &mut rng,
            ),
            position: Param::normal(
                "vision_model.embeddings.position_embedding.weight",
                c.tokens(),
                d,
                0.02,
                &mut rng,
            ),
        };
        let patch = PatchEmbedding {
            proj: patch,
            patch: c.patch,
        };
        VisionTower {
            patch,
            tokens,
            pre_norm,
            layers,
            post_norm,
            projection,
            config,
        }
    }

    /// The images' shape must be the configuration's.
    fn check_images(&self, img: &Images) -> Result<()> {
        let c = &self.config;
        let want = (c.channels, c.image, c.image);
        let got = (img.channels, img.height, img.width);
        if img.n == 0 || want != got {
            return Err(Error::Shape(format!(
                "pixels are {} x {} x {} x {}: the model takes N x {} x {} x {} (N >= 1)",
                img.n, got.0, got.1, got.2, want.0, want.1, want.2
            )));
        }
        if img.data.len() != img.n * got.0 * got.1 * got.2 {
            return Err(Error::Shape("pixel data does not fill its shape".into()));
        }
        Ok(())
    }

    pub fn forward(&self, ctx: &mut Offload, img: &Images) -> Result<TowerOutput> {
        Ok(self.run(ctx, img, false)?.0)
    }

    /// The forward pass keeping what `backward` needs.
    pub fn forward_train(
        &self,
        ctx: &mut Offload,
        img: &Images,
    ) -> Result<(TowerOutput, TowerCache)> {
        let (out, cache) = self.run(ctx, img, true)?;
        Ok((out, cache.expect("kept")))
    }

    fn run(
        &self,
        ctx: &mut Offload,
        img: &Images,
        keep: bool,
    ) -> Result<(TowerOutput, Option<TowerCache>)> {
        self.check_images(img)?;
        let t = self.tokens.tokens();
        let (pe, patches) = self.patch.forward(ctx, img)?;
        let x = self.tokens.forward(&pe)?;
        let (mut h, pre) = self.pre_norm.forward(ctx, &x)?;
        let mut caches = Vec::new();
        for layer in &self.layers {
            let (y, c) = layer.forward(ctx, &h, t)?;
            if keep {
                caches.push(c);
            }
            h = y;
        }
        let n = h.rows / t;
        let mut cls = Matrix::zeros(n, h.cols);
        for i in 0..n {
            cls.data[i * h.cols..(i + 1) * h.cols].copy_from_slice(h.row(i * t));
        }
        let (pooled, post) = self.post_norm.forward(ctx, &cls)?;
        let embeds = match &self.projection {
            Some(p) => Some(p.forward(ctx, &pooled)?),
            None => None,
        };
        let cache = keep.then(|| TowerCache {
            patches,
            pre,
            layers: caches,
            cls,
            post,
            pooled: pooled.clone(),
        });
        Ok((
            TowerOutput {
                hidden: h,
                pooled,
                embeds,
            },
            cache,
        ))
    }

    /// Accumulate every parameter's gradient from dL/d(embeds), or dL/d(pooled) for a tower
    /// without a projection.
    pub fn backward(&mut self, ctx: &mut Offload, dout: &Matrix, c: &TowerCache) -> Result<()> {
        let dpooled = match &mut self.projection {
            Some(p) => required(p.backward(ctx, &c.pooled, dout, true)?)?,
            None => dout.clone(),
        };
        let dcls = self.post_norm.backward(&dpooled, &c.post)?;
        let t = self.tokens.tokens();
        let d = c.cls.cols;
        let mut dh = Matrix::zeros(c.cls.rows * t, d);
        for i in 0..c.cls.rows {
            dh.data[i * t * d..(i * t + 1) * d].copy_from_slice(dcls.row(i));
        }
        for (layer, lc) in self.layers.iter_mut().zip(&c.layers).rev() {
            dh = layer.backward(ctx, &dh, lc)?;
        }
        let dx = self.pre_norm.backward(&dh, &c.pre)?;
        let dpe = self.tokens.backward(&dx);
        self.patch.backward(ctx, &c.patches, &dpe)
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = self.patch.proj.params_mut();
        v.push(&mut self.tokens.class);
        v.push(&mut self.tokens.position);
        v.extend(self.pre_norm.params_mut());
        for l in &mut self.layers {
            v.extend(l.params_mut());
        }
        v.extend(self.post_norm.params_mut());
        if let Some(p) = &mut self.projection {
            v.extend(p.params_mut());
        }
        v
    }
}
