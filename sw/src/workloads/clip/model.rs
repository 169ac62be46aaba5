//! The mini CLIP: a vision tower, a text tower and the learned temperature, saved and loaded in
//! the Hugging Face `CLIPModel` layout (`vision_model.*`, `visual_projection`, `text_model.*`,
//! `text_projection`, `logit_scale`; `text_config.eos_token_id`), so that `clip embed` and any
//! other reader of CLIP checkpoints take it. The directory also holds `vocab.json` (word -> id)
//! and `preprocessor_config.json` (the pixel mean and std the tower was trained on).

use super::captions::{self, EOS};
use super::checkpoint::{self, text_tensors, vision_config_json, vision_tensors};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::nn::activation::Activation;
use crate::nn::contrastive::cosine_matrix;
use crate::nn::loss::l2_normalize_rows;
use crate::nn::norm::NormKind;
use crate::nn::patch::Images;
use crate::nn::text::{TextConfig, TextTower};
use crate::nn::vit::{VisionTower, VitConfig};
use crate::nn::{Offload, Param};
use serde_json::json;
use std::path::Path;

/// MNIST's pixel mean and standard deviation: the towers see (x - mean) / std.
pub const PIXEL_MEAN: f32 = 0.1307;
pub const PIXEL_STD: f32 = 0.3081;

/// CLIP's initial temperature 0.07 (`logit_scale_init_value` 2.6592) and its cap, 100.
pub const LOGIT_SCALE_INIT: f32 = 2.6592;
pub const LOGIT_SCALE_MAX: f32 = 4.6052;

pub struct ClipModel {
    pub vision: VisionTower,
    pub text: TextTower,
    /// 1 x 1: log of the inverse temperature.
    pub logit_scale: Param,
}

/// The mini CLIP's sizes.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ClipSizes {
    pub hidden: usize,
    pub intermediate: usize,
    pub vision_layers: usize,
    pub text_layers: usize,
    pub heads: usize,
    pub patch: usize,
    pub projection: usize,
}

impl ClipSizes {
    pub const DEFAULT: ClipSizes = ClipSizes {
        hidden: 64,
        intermediate: 256,
        vision_layers: 3,
        text_layers: 2,
        heads: 4,
        patch: 7,
        projection: 64,
    };

    pub fn vision(&self) -> VitConfig {
        VitConfig {
            hidden: self.hidden,
            intermediate: self.intermediate,
            layers: self.vision_layers,
            heads: self.heads,
            channels: 1,
            image: 28,
            patch: self.patch,
            projection: Some(self.projection),
            act: Activation::QuickGelu,
            eps: 1e-5,
        }
    }

    pub fn text(&self) -> TextConfig {
        TextConfig {
            vocab: captions::vocabulary().len(),
            hidden: self.hidden,
            intermediate: self.intermediate,
            layers: self.text_layers,
            heads: self.heads,
            context: captions::CONTEXT,
            projection: Some(self.projection),
            act: Activation::QuickGelu,
            eps: 1e-5,
            eos_token_id: EOS,
        }
    }
}

/// (x - mean) / std of MNIST pixels in [0, 1].
pub fn normalize_pixels(pixels: &[f32]) -> Vec<f32> {
    pixels
        .iter()
        .map(|&v| (v - PIXEL_MEAN) / PIXEL_STD)
        .collect()
}

/// Parameters a tower is made of, counted.
pub fn count(params: &[&mut Param]) -> usize {
    params.iter().map(|p| p.len()).sum()
}

impl ClipModel {
    pub fn random(sizes: &ClipSizes, seed: u64) -> Self {
        ClipModel {
            vision: VisionTower::random(sizes.vision(), NormKind::Layer, seed, false),
            text: TextTower::random(
                sizes.text(),
                NormKind::Layer,
                crate::rng::mix64(seed ^ 0x7E47),
            ),
            logit_scale: Param::new(
                "logit_scale",
                Matrix::from_fn(1, 1, |_, _| LOGIT_SCALE_INIT),
            ),
        }
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = self.vision.params_mut();
        v.extend(self.text.params_mut());
        v.push(&mut self.logit_scale);
        v
    }

    pub fn scale(&self) -> f32 {
        self.logit_scale.value.data[0]
    }

    /// `config.json` (a `CLIPConfig`), `model.safetensors` (F32), `vocab.json` and
    /// `preprocessor_config.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let (v, t) = (&self.vision.config, &self.text.config);
        if v.projection != t.projection || v.projection.is_none() {
            return Err(Error::Usage(
                "the towers' projections differ: a CLIPModel has one projection_dim".into(),
            ));
        }
        let mut tensors = vision_tensors(&self.vision);
        tensors.extend(text_tensors(&self.text));
        tensors.push(("logit_scale".into(), vec![], vec![self.scale()]));
        let config = json!({
            "architectures": ["CLIPModel"],
            "model_type": "clip",
            "projection_dim": v.projection,
            "logit_scale_init_value": LOGIT_SCALE_INIT,
            "vision_config": vision_config_json(v, "quick_gelu"),
            "text_config": {
                "model_type": "clip_text_model",
                "vocab_size": t.vocab,
                "hidden_size": t.hidden,
                "intermediate_size": t.intermediate,
                "num_hidden_layers": t.layers,
                "num_attention_heads": t.heads,
                "max_position_embeddings": t.context,
                "hidden_act": "quick_gelu",
                "layer_norm_eps": t.eps,
                "projection_dim": t.projection,
                "pad_token_id": captions::PAD,
                "bos_token_id": captions::BOS,
                "eos_token_id": t.eos_token_id,
            },
        });
        checkpoint::write_checkpoint(dir, &tensors, &config)?;
        let vocab: serde_json::Map<String, serde_json::Value> = captions::vocabulary()
            .iter()
            .enumerate()
            .map(|(i, w)| (w.to_string(), json!(i)))
            .collect();
        crate::workloads::report::write_json(&dir.join("vocab.json"), &vocab)?;
        crate::workloads::report::write_json(
            &dir.join("preprocessor_config.json"),
            &json!({
                "image_processor_type": "CLIPImageProcessor",
                "do_resize": false,
                "do_center_crop": false,
                "do_rescale": true,
                "rescale_factor": 1.0 / 255.0,
                "do_normalize": true,
                "image_mean": [PIXEL_MEAN],
                "image_std": [PIXEL_STD],
                "crop_size": {"height": v.image, "width": v.image},
            }),
        )
    }

    /// A checkpoint `save` wrote (or any `CLIPModel` checkpoint with an `eos_token_id`).
    pub fn load(dir: &Path) -> Result<Self> {
        let vision = checkpoint::load(dir, NormKind::Layer)?;
        let (text, scale) = checkpoint::load_text(dir, NormKind::Layer)?;
        Ok(ClipModel {
            vision,
            text,
            logit_scale: Param::new("logit_scale", Matrix::from_fn(1, 1, |_, _| scale)),
        })
    }

    /// Image embeddings (`visual_projection` outputs) of normalized 28x28 images, `batch` at a
    /// time.
    pub fn encode_images(&self, ctx: &mut Offload, pixels: &[f32], batch: usize) -> Result<Matrix> {
        let c = &self.vision.config;
        let per = c.channels * c.image * c.image;
        let n = pixels.len() / per;
        let p = c.projection.unwrap_or(c.hidden);
        let mut out = Matrix::zeros(n, p);
        for start in (0..n).step_by(batch.max(1)) {
            let m = batch.min(n - start);
            let img = Images {
                data: &pixels[start * per..(start + m) * per],
                n: m,
                channels: c.channels,
                height: c.image,
                width: c.image,
            };
            let o = self.vision.forward(ctx, &img)?;
            let e = o.embeds.unwrap_or(o.pooled);
            out.data[start * p..(start + m) * p].copy_from_slice(&e.data);
        }
        Ok(out)
    }

    /// One embedding per class: the mean of its prompts' normalized text embeddings,
    /// renormalized (CLIP's prompt ensembling).
    pub fn class_embeddings(&self, ctx: &mut Offload) -> Result<Matrix> {
        let mut rows = Vec::new();
        for label in 0..captions::DIGITS.len() {
            let seqs: Vec<Vec<usize>> = captions::class_prompts(label)
                .iter()
                .map(|p| captions::tokenize(p))
                .collect();
            let o = self.text.forward(ctx, &seqs)?;
            let (e, _) = l2_normalize_rows(&o.embeds.unwrap_or(o.pooled));
            let mut mean = vec![0.0f32; e.cols];
            for r in 0..e.rows {
                mean.iter_mut().zip(e.row(r)).for_each(|(m, v)| *m += v);
            }
            rows.push(mean);
        }
        let cols = rows[0].len();
        let m = Matrix::new(rows.len(), cols, rows.concat())?;
        Ok(l2_normalize_rows(&m).0)
    }

    /// Zero-shot predictions of normalized images: the class whose prompt embedding is the
    /// most similar.
    pub fn zero_shot(&self, ctx: &mut Offload, pixels: &[f32], batch: usize) -> Result<Vec<usize>> {
        let classes = self.class_embeddings(ctx)?;
        let img = self.encode_images(ctx, pixels, batch)?;
        let sims = cosine_matrix(ctx, &img, &classes)?;
        Ok((0..sims.rows)
            .map(|i| crate::nn::loss::argmax(sims.row(i)))
            .collect())
    }
}
