//! Hugging Face CLIP vision checkpoints: `config.json` + `model.safetensors` of a `CLIPModel`
//! (the vision tower under `vision_model.`, plus `visual_projection`), a `CLIPVisionModel` or a
//! `CLIPVisionModelWithProjection`, tensors stored as F32, F16 or BF16, into a `VisionTower`.
//!
//! Every check names what is wrong in one line: the file, the key, the shape the config implies.
//! Keys the tower does not use (the text tower, the int64 `position_ids` buffer of older
//! checkpoints, `logit_scale`) are ignored.

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::nn::activation::Activation;
use crate::nn::attention::MultiHeadAttention;
use crate::nn::embedding::Embedding;
use crate::nn::linear::Linear;
use crate::nn::norm::{Norm, NormKind};
use crate::nn::patch::{PatchEmbedding, TokenEmbeddings};
use crate::nn::text::{TextConfig, TextTower};
use crate::nn::vit::{EncoderLayer, VisionTower, VitConfig};
use crate::nn::Param;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// A vision configuration read from `config.json`: the tower's sizes, whether the architecture
/// promises a projection, and the projection width it names.
#[derive(Clone, Debug)]
pub struct CheckpointConfig {
    pub vit: VitConfig,
    pub hidden_act: String,
    pub projection_dim: usize,
    /// `architectures` names a model with a projection (`CLIPModel`, `...WithProjection`).
    pub expects_projection: bool,
}

fn field_usize(obj: &Value, key: &str, default: usize, path: &Path) -> Result<usize> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| Error::file(path, format!("{key} must be a positive integer, got {v}"))),
    }
}

/// Parse `config.json` (a `CLIPConfig` with `vision_config`, or a `CLIPVisionConfig`); missing
/// fields take `CLIPVisionConfig`'s defaults, as transformers does.
pub fn read_config(dir: &Path) -> Result<CheckpointConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::file(
            &path,
            format!("cannot read: {e} (DIR must hold a Hugging Face CLIP checkpoint)"),
        )
    })?;
    let root: Value = serde_json::from_str(&text)
        .map_err(|e| Error::file(&path, format!("not valid JSON: {e}")))?;
    let vision = root.get("vision_config").unwrap_or(&root);
    if !vision.is_object() {
        return Err(Error::file(&path, "vision_config must be an object"));
    }
    let model_type = vision.get("model_type").and_then(Value::as_str);
    if let Some(t) = model_type.filter(|t| !t.starts_with("clip")) {
        return Err(Error::file(
            &path,
            format!("model_type \"{t}\" is not a CLIP model (expected clip or clip_vision_model)"),
        ));
    }
    let u = |key: &str, default: usize| field_usize(vision, key, default, &path);
    let hidden_act = match vision.get("hidden_act") {
        None => "quick_gelu".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            return Err(Error::file(
                &path,
                format!("hidden_act must be a string, got {v}"),
            ))
        }
    };
    let act = Activation::from_hf(&hidden_act).map_err(|e| Error::file(&path, e.to_string()))?;
    let eps = match vision.get("layer_norm_eps") {
        None => 1e-5,
        Some(v) => v.as_f64().filter(|e| *e >= 0.0).ok_or_else(|| {
            Error::file(
                &path,
                format!("layer_norm_eps must be a number >= 0, got {v}"),
            )
        })? as f32,
    };
    // CLIPModel keeps projection_dim at the top level; the vision configs keep their own.
    let projection_dim = if root.get("vision_config").is_some() {
        field_usize(&root, "projection_dim", 512, &path)?
    } else {
        u("projection_dim", 512)?
    };
    let vit = VitConfig {
        hidden: u("hidden_size", 768)?,
        intermediate: u("intermediate_size", 3072)?,
        layers: u("num_hidden_layers", 12)?,
        heads: u("num_attention_heads", 12)?,
        channels: u("num_channels", 3)?,
        image: u("image_size", 224)?,
        patch: u("patch_size", 32)?,
        projection: None,
        act,
        eps,
    };
    if !vit.hidden.is_multiple_of(vit.heads) {
        return Err(Error::file(
            &path,
            format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                vit.hidden, vit.heads
            ),
        ));
    }
    if !vit.image.is_multiple_of(vit.patch) {
        return Err(Error::file(
            &path,
            format!(
                "image_size {} is not a multiple of patch_size {}",
                vit.image, vit.patch
            ),
        ));
    }
    let expects_projection = root
        .get("architectures")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .any(|s| s == "CLIPModel" || s.ends_with("WithProjection"))
        });
    Ok(CheckpointConfig {
        vit,
        hidden_act,
        projection_dim,
        expects_projection,
    })
}

/// The tensors of `model.safetensors`, with the checks that name file, key and shape.
struct Weights<'a> {
    path: PathBuf,
    st: SafeTensors<'a>,
}

impl Weights<'_> {
    fn has(&self, key: &str) -> bool {
        self.st.tensor(key).is_ok()
    }

    /// The values of `key` as f32, which must have `shape` (`why` says what in the config
    /// implies it).
    fn get(&self, key: &str, shape: &[usize], why: &str) -> Result<Vec<f32>> {
        let t = self.st.tensor(key).map_err(|_| {
            Error::file(
                &self.path,
                format!(
                    "tensor {key} is missing: this is not a CLIP vision checkpoint of the \
                     configured depth and kind (its keys start with vision_model.)"
                ),
            )
        })?;
        if t.shape() != shape {
            return Err(Error::file(
                &self.path,
                format!(
                    "{key} has shape {:?}, but config.json ({why}) implies {shape:?}: the config \
                     does not match the weights",
                    t.shape()
                ),
            ));
        }
        let bytes = t.data();
        let values = match t.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            other => {
                return Err(Error::file(
                    &self.path,
                    format!(
                        "{key} has dtype {other:?}: only F32, F16 and BF16 weights are supported"
                    ),
                ))
            }
        };
        Ok(values)
    }

    fn param(
        &self,
        key: &str,
        rows: usize,
        cols: usize,
        shape: &[usize],
        why: &str,
    ) -> Result<Param> {
        let data = self.get(key, shape, why)?;
        Ok(Param::new(key, Matrix::new(rows, cols, data)?))
    }

    /// A `torch.nn.Linear` (`weight` out x in, `bias` out) as a `Linear` (in x out).
    fn linear(
        &self,
        prefix: &str,
        din: usize,
        dout: usize,
        bias: bool,
        why: &str,
    ) -> Result<Linear> {
        let key = format!("{prefix}.weight");
        let w = self.param(&key, dout, din, &[dout, din], why)?;
        let weight = Param::new(&key, w.value.transpose());
        let bias = if bias {
            let key = format!("{prefix}.bias");
            Some(self.param(&key, 1, dout, &[dout], why)?)
        } else {
            None
        };
        Ok(Linear::new(weight, bias))
    }

    fn norm(&self, prefix: &str, d: usize, kind: NormKind, eps: f32) -> Result<Norm> {
        let why = format!("hidden_size {d}");
        let g = self.param(&format!("{prefix}.weight"), 1, d, &[d], &why)?;
        let b = self.param(&format!("{prefix}.bias"), 1, d, &[d], &why)?;
        Ok(Norm::with_params(kind, g, b, eps))
    }
}

/// Load the checkpoint in `dir` as a tower whose norms are `norm` (LayerNorm as trained, or the
/// L1 norm with the same affine parameters).
pub fn load(dir: &Path, norm: NormKind) -> Result<VisionTower> {
    let cfg = read_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = std::fs::read(&path).map_err(|e| {
        let hint = if dir.join("model.safetensors.index.json").exists() {
            " (sharded checkpoints are not supported: save the model as one file)"
        } else if dir.join("pytorch_model.bin").exists() {
            " (convert pytorch_model.bin with save_pretrained(..., safe_serialization=True))"
        } else {
            ""
        };
        Error::file(&path, format!("cannot read: {e}{hint}"))
    })?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        Error::file(
            &path,
            format!("not a valid safetensors file ({e}): the file is truncated or corrupt"),
        )
    })?;
    let w = Weights { path, st };
    let mut vit = cfg.vit.clone();
    let (d, m, c, p) = (vit.hidden, vit.intermediate, vit.channels, vit.patch);
    check_depth(&w, vit.layers)?;
    let e = "vision_model.embeddings";
    let conv_key = format!("{e}.patch_embedding.weight");
    let conv_why = format!("hidden_size {d}, num_channels {c}, patch_size {p}");
    let conv = w.get(&conv_key, &[d, c, p, p], &conv_why)?;
    let conv = Matrix::new(d, c * p * p, conv)?.transpose();
    let tokens = TokenEmbeddings {
        class: w.param(
            &format!("{e}.class_embedding"),
            1,
            d,
            &[d],
            &format!("hidden_size {d}"),
        )?,
        position: w.param(
            &format!("{e}.position_embedding.weight"),
            vit.tokens(),
            d,
            &[vit.tokens(), d],
            &format!("image_size {}, patch_size {p}, hidden_size {d}", vit.image),
        )?,
    };
    let mut layers = Vec::with_capacity(vit.layers);
    for l in 0..vit.layers {
        let pre = format!("vision_model.encoder.layers.{l}");
        let a = format!("{pre}.self_attn");
        let dw = format!("hidden_size {d}");
        let mw = format!("hidden_size {d}, intermediate_size {m}");
        layers.push(EncoderLayer {
            norm1: w.norm(&format!("{pre}.layer_norm1"), d, norm, vit.eps)?,
            attn: MultiHeadAttention::new(
                w.linear(&format!("{a}.q_proj"), d, d, true, &dw)?,
                w.linear(&format!("{a}.k_proj"), d, d, true, &dw)?,
                w.linear(&format!("{a}.v_proj"), d, d, true, &dw)?,
                w.linear(&format!("{a}.out_proj"), d, d, true, &dw)?,
                vit.heads,
                false,
            ),
            norm2: w.norm(&format!("{pre}.layer_norm2"), d, norm, vit.eps)?,
            fc1: w.linear(&format!("{pre}.mlp.fc1"), d, m, true, &mw)?,
            act: vit.act,
            fc2: w.linear(&format!("{pre}.mlp.fc2"), m, d, true, &mw)?,
        });
    }
    let pre_norm = w.norm("vision_model.pre_layrnorm", d, norm, vit.eps)?;
    let post_norm = w.norm("vision_model.post_layernorm", d, norm, vit.eps)?;
    let projection = if w.has("visual_projection.weight") || cfg.expects_projection {
        let why = format!("hidden_size {d}, projection_dim {}", cfg.projection_dim);
        vit.projection = Some(cfg.projection_dim);
        Some(w.linear("visual_projection", d, cfg.projection_dim, false, &why)?)
    } else {
        None
    };
    Ok(VisionTower {
        config: vit,
        patch: PatchEmbedding {
            proj: Linear::new(Param::new(&conv_key, conv), None),
            patch: p,
        },
        tokens,
        pre_norm,
        layers,
        post_norm,
        projection,
    })
}

/// Weights of an encoder layer beyond `num_hidden_layers` mean the config is not this model's.
fn check_depth(w: &Weights, layers: usize) -> Result<()> {
    let prefix = "vision_model.encoder.layers.";
    let deepest =
        w.st.names()
            .iter()
            .filter_map(|k| {
                k.strip_prefix(prefix)?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .max();
    match deepest {
        Some(l) if l >= layers => Err(Error::file(
            &w.path,
            format!(
                "the weights have encoder layer {l} ({prefix}{l}.*) but config.json says \
                 num_hidden_layers {layers}: the config does not match the weights"
            ),
        )),
        _ => Ok(()),
    }
}

/// A tensor to be written: key, shape, f32 values.
pub type Tensor = (String, Vec<usize>, Vec<f32>);

fn norm_params(n: &Norm) -> (&[f32], &[f32]) {
    match n {
        Norm::Layer(l) => (&l.gamma.value.data, &l.beta.value.data),
        Norm::L1(l) => (&l.gamma.value.data, &l.beta.value.data),
    }
}

/// A `Linear` (in x out) as a `torch.nn.Linear` (`weight` out x in, `bias` out).
fn put_linear(out: &mut Vec<Tensor>, prefix: &str, l: &Linear) {
    let w = l.weight.value.transpose();
    out.push((format!("{prefix}.weight"), vec![w.rows, w.cols], w.data));
    if let Some(b) = &l.bias {
        out.push((
            format!("{prefix}.bias"),
            vec![b.value.cols],
            b.value.data.clone(),
        ));
    }
}

fn put_norm(out: &mut Vec<Tensor>, prefix: &str, n: &Norm) {
    let (g, b) = norm_params(n);
    out.push((format!("{prefix}.weight"), vec![g.len()], g.to_vec()));
    out.push((format!("{prefix}.bias"), vec![b.len()], b.to_vec()));
}

fn put_layer(out: &mut Vec<Tensor>, prefix: &str, layer: &EncoderLayer) {
    put_norm(out, &format!("{prefix}.layer_norm1"), &layer.norm1);
    put_norm(out, &format!("{prefix}.layer_norm2"), &layer.norm2);
    let a = &layer.attn;
    for (name, lin) in [
        ("q_proj", &a.q),
        ("k_proj", &a.k),
        ("v_proj", &a.v),
        ("out_proj", &a.o),
    ] {
        put_linear(out, &format!("{prefix}.self_attn.{name}"), lin);
    }
    put_linear(out, &format!("{prefix}.mlp.fc1"), &layer.fc1);
    put_linear(out, &format!("{prefix}.mlp.fc2"), &layer.fc2);
}

/// The tensors of a vision tower under `vision_model.` (and `visual_projection`).
pub fn vision_tensors(tower: &VisionTower) -> Vec<Tensor> {
    let c = &tower.config;
    let mut out = Vec::new();
    let (d, p) = (c.hidden, c.patch);
    let e = "vision_model.embeddings";
    let conv = tower.patch.proj.weight.value.transpose();
    out.push((
        format!("{e}.patch_embedding.weight"),
        vec![d, c.channels, p, p],
        conv.data,
    ));
    out.push((
        format!("{e}.class_embedding"),
        vec![d],
        tower.tokens.class.value.data.clone(),
    ));
    out.push((
        format!("{e}.position_embedding.weight"),
        vec![c.tokens(), d],
        tower.tokens.position.value.data.clone(),
    ));
    put_norm(&mut out, "vision_model.pre_layrnorm", &tower.pre_norm);
    for (l, layer) in tower.layers.iter().enumerate() {
        put_layer(&mut out, &format!("vision_model.encoder.layers.{l}"), layer);
    }
    put_norm(&mut out, "vision_model.post_layernorm", &tower.post_norm);
    if let Some(proj) = &tower.projection {
        put_linear(&mut out, "visual_projection", proj);
    }
    out
}

/// The tensors of a text tower under `text_model.` (and `text_projection`).
pub fn text_tensors(tower: &TextTower) -> Vec<Tensor> {
    let c = &tower.config;
    let e = "text_model.embeddings";
    let mut out = vec![
        (
            format!("{e}.token_embedding.weight"),
            vec![c.vocab, c.hidden],
            tower.token.table.value.data.clone(),
        ),
        (
            format!("{e}.position_embedding.weight"),
            vec![c.context, c.hidden],
            tower.position.value.data.clone(),
        ),
    ];
    for (l, layer) in tower.layers.iter().enumerate() {
        put_layer(&mut out, &format!("text_model.encoder.layers.{l}"), layer);
    }
    put_norm(&mut out, "text_model.final_layer_norm", &tower.final_norm);
    if let Some(proj) = &tower.projection {
        put_linear(&mut out, "text_projection", proj);
    }
    out
}

/// The `vision_config` of a tower.
pub fn vision_config_json(c: &VitConfig, hidden_act: &str) -> Value {
    serde_json::json!({
        "model_type": "clip_vision_model",
        "hidden_size": c.hidden,
        "intermediate_size": c.intermediate,
        "num_hidden_layers": c.layers,
        "num_attention_heads": c.heads,
        "num_channels": c.channels,
        "image_size": c.image,
        "patch_size": c.patch,
        "projection_dim": c.projection.unwrap_or(512),
        "hidden_act": hidden_act,
        "layer_norm_eps": c.eps,
    })
}

/// `config.json` and `model.safetensors` (F32) into `dir`; nothing half-written on error.
pub fn write_checkpoint(dir: &Path, tensors: &[Tensor], config: &Value) -> Result<()> {
    use safetensors::tensor::TensorView;
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((k, shape, _), b)| {
            TensorView::new(Dtype::F32, shape.clone(), b)
                .map(|v| (k.clone(), v))
                .map_err(|e| Error::Usage(format!("{k}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let st = safetensors::serialize(views, None)
        .map_err(|e| Error::Usage(format!("cannot serialize the weights: {e}")))?;
    let text = serde_json::to_string_pretty(config)
        .map_err(|e| Error::Usage(format!("cannot encode config.json: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::file(dir, format!("cannot create: {e}")))?;
    crate::npy::write_bytes(&dir.join(WEIGHTS_FILE), &st)?;
    crate::npy::write_bytes(&dir.join(CONFIG_FILE), text.as_bytes())
}

/// Write `tower` as a Hugging Face checkpoint (`CLIPVisionModelWithProjection`, or
/// `CLIPVisionModel` without a projection; F32), which `load` reads back exactly.
pub fn save(dir: &Path, tower: &VisionTower, hidden_act: &str) -> Result<()> {
    let mut config = vision_config_json(&tower.config, hidden_act);
    config["architectures"] = serde_json::json!([if tower.config.projection.is_some() {
        "CLIPVisionModelWithProjection"
    } else {
        "CLIPVisionModel"
    }]);
    write_checkpoint(dir, &vision_tensors(tower), &config)
}

/// The text tower of a `CLIPModel` checkpoint (`text_config`, keys under `text_model.` and
/// `text_projection`) and its `logit_scale`.
pub fn load_text(dir: &Path, norm: NormKind) -> Result<(TextTower, f32)> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
    let root: Value = serde_json::from_str(&text)
        .map_err(|e| Error::file(&path, format!("not valid JSON: {e}")))?;
    let tc = root
        .get("text_config")
        .filter(|v| v.is_object())
        .ok_or_else(|| {
            Error::file(
                &path,
                "no text_config: the text tower needs a full CLIPModel checkpoint",
            )
        })?;
    let u = |key: &str, default: usize| field_usize(tc, key, default, &path);
    let act_name = tc
        .get("hidden_act")
        .and_then(Value::as_str)
        .unwrap_or("quick_gelu");
    let act = Activation::from_hf(act_name).map_err(|e| Error::file(&path, e.to_string()))?;
    let eps = tc
        .get("layer_norm_eps")
        .and_then(Value::as_f64)
        .unwrap_or(1e-5) as f32;
    let eos = tc
        .get("eos_token_id")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            Error::file(
                &path,
                "text_config has no eos_token_id: the EOS pooling needs it",
            )
        })? as usize;
    if eos == 2 {
        return Err(Error::file(
            &path,
            "eos_token_id 2 means transformers' legacy argmax pooling, which is not supported",
        ));
    }
    let cfg = TextConfig {
        vocab: u("vocab_size", 49408)?,
        hidden: u("hidden_size", 512)?,
        intermediate: u("intermediate_size", 2048)?,
        layers: u("num_hidden_layers", 12)?,
        heads: u("num_attention_heads", 8)?,
        context: u("max_position_embeddings", 77)?,
        projection: Some(field_usize(&root, "projection_dim", 512, &path)?),
        act,
        eps,
        eos_token_id: eos,
    };
    let wpath = dir.join(WEIGHTS_FILE);
    let bytes =
        std::fs::read(&wpath).map_err(|e| Error::file(&wpath, format!("cannot read: {e}")))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        Error::file(
            &wpath,
            format!("not a valid safetensors file ({e}): the file is truncated or corrupt"),
        )
    })?;
    let w = Weights { path: wpath, st };
    let (d, m) = (cfg.hidden, cfg.intermediate);
    let dw = format!("hidden_size {d}");
    let mw = format!("hidden_size {d}, intermediate_size {m}");
    let e = "text_model.embeddings";
    let token = w.param(
        &format!("{e}.token_embedding.weight"),
        cfg.vocab,
        d,
        &[cfg.vocab, d],
        &format!("vocab_size {}, {dw}", cfg.vocab),
    )?;
    let position = w.param(
        &format!("{e}.position_embedding.weight"),
        cfg.context,
        d,
        &[cfg.context, d],
        &format!("max_position_embeddings {}, {dw}", cfg.context),
    )?;
    let mut layers = Vec::with_capacity(cfg.layers);
    for l in 0..cfg.layers {
        let pre = format!("text_model.encoder.layers.{l}");
        let a = format!("{pre}.self_attn");
        layers.push(EncoderLayer {
            norm1: w.norm(&format!("{pre}.layer_norm1"), d, norm, eps)?,
            attn: MultiHeadAttention::new(
                w.linear(&format!("{a}.q_proj"), d, d, true, &dw)?,
                w.linear(&format!("{a}.k_proj"), d, d, true, &dw)?,
                w.linear(&format!("{a}.v_proj"), d, d, true, &dw)?,
                w.linear(&format!("{a}.out_proj"), d, d, true, &dw)?,
                cfg.heads,
                true,
            ),
            norm2: w.norm(&format!("{pre}.layer_norm2"), d, norm, eps)?,
            fc1: w.linear(&format!("{pre}.mlp.fc1"), d, m, true, &mw)?,
            act,
            fc2: w.linear(&format!("{pre}.mlp.fc2"), m, d, true, &mw)?,
        });
    }
    let final_norm = w.norm("text_model.final_layer_norm", d, norm, eps)?;
    let p = cfg.projection.unwrap_or(512);
    let projection = Some(w.linear(
        "text_projection",
        d,
        p,
        false,
        &format!("{dw}, projection_dim {p}"),
    )?);
    let scale = w.get("logit_scale", &[], "a scalar")?;
    Ok((
        TextTower {
            config: cfg,
            token: Embedding { table: token },
            position,
            layers,
            final_norm,
            projection,
        },
        scale[0],
    ))
}
