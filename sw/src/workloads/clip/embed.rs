//! `shiftkit clip embed`: images (N x C x H x W, already normalized) through a checkpoint's
//! vision tower, in batches, with every GEMM on the chosen engine and format. A quantized run is
//! also run in fp32 on the host, and the report says how far its output is from that.

use super::checkpoint;
use crate::engine::{ArrayShape, Counters, EngineKind};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::nn::norm::NormKind;
use crate::nn::patch::Images;
use crate::nn::vit::{TowerOutput, VisionTower};
use crate::nn::Offload;
use crate::npy;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Which output of the tower to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OutputKind {
    /// Post-LayerNorm class token (`pooler_output`), N x hidden.
    Pooled,
    /// `pooled` through `visual_projection` (`image_embeds`), N x projection_dim.
    Embeds,
    /// The last encoder layer's output (`last_hidden_state`), N x tokens x hidden.
    Hidden,
}

pub struct EmbedConfig {
    pub model: PathBuf,
    pub pixels: PathBuf,
    pub out: PathBuf,
    pub output: OutputKind,
    pub format: Format,
    pub engine: EngineKind,
    pub shape: ArrayShape,
    pub window: u32,
    pub norm: NormKind,
    pub batch: usize,
    pub json: Option<PathBuf>,
    pub progress: bool,
}

/// How a quantized run's output compares with the fp32 run's, per image.
#[derive(Clone, Debug, Serialize)]
pub struct Agreement {
    pub cosine_mean: f64,
    pub cosine_min: f64,
    pub max_abs_error: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EmbedReport {
    pub model: PathBuf,
    pub format: Format,
    pub engine: EngineKind,
    pub norm: NormKind,
    pub output: OutputKind,
    pub shape: Vec<usize>,
    pub images: usize,
    pub batch: usize,
    /// The run's accelerator counters (all GEMMs and L1NORMs); host-only work has no cycles.
    pub counters: Counters,
    /// The part of `counters` spent by the L1-norm unit (`--norm l1` on an SQ format).
    pub l1norm_counters: Counters,
    /// Against the fp32 run on the host (absent for an fp32 run).
    pub vs_fp32: Option<Agreement>,
    pub wall_s: f64,
    pub images_per_s: f64,
}

/// The shape of one image's output.
pub fn output_shape(tower: &VisionTower, output: OutputKind) -> Result<Vec<usize>> {
    let c = &tower.config;
    match output {
        OutputKind::Pooled => Ok(vec![c.hidden]),
        OutputKind::Hidden => Ok(vec![c.tokens(), c.hidden]),
        OutputKind::Embeds => match c.projection {
            Some(p) => Ok(vec![p]),
            None => Err(Error::Usage(
                "this checkpoint has no visual_projection (a CLIPVisionModel): use --output \
                 pooled or hidden"
                    .into(),
            )),
        },
    }
}

fn select(out: TowerOutput, output: OutputKind) -> Vec<f32> {
    match output {
        OutputKind::Pooled => out.pooled.data,
        OutputKind::Hidden => out.hidden.data,
        OutputKind::Embeds => out.embeds.map(|m| m.data).unwrap_or_default(),
    }
}

/// The chosen output of every image, in batches of `batch` images.
pub fn embed(
    tower: &VisionTower,
    ctx: &mut Offload,
    images: &Images,
    output: OutputKind,
    batch: usize,
    bar: &ProgressBar,
) -> Result<Vec<f32>> {
    let per_image = images.channels * images.height * images.width;
    let mut out = Vec::new();
    for start in (0..images.n).step_by(batch.max(1)) {
        let n = batch.min(images.n - start);
        let chunk = Images {
            data: &images.data[start * per_image..(start + n) * per_image],
            n,
            ..*images
        };
        out.extend(select(tower.forward(ctx, &chunk)?, output));
        bar.inc(n as u64);
    }
    Ok(out)
}

/// Per-image cosine similarity and the largest absolute difference of `got` against `want`.
pub fn agreement(got: &[f32], want: &[f32], per_image: usize) -> Agreement {
    let mut cos = Vec::new();
    let mut max_err = 0.0f64;
    for (g, w) in got.chunks(per_image).zip(want.chunks(per_image)) {
        let (mut gw, mut gg, mut ww) = (0.0f64, 0.0f64, 0.0f64);
        for (&a, &b) in g.iter().zip(w) {
            let (a, b) = (f64::from(a), f64::from(b));
            gw += a * b;
            gg += a * a;
            ww += b * b;
            max_err = max_err.max((a - b).abs());
        }
        cos.push(if gg == 0.0 || ww == 0.0 {
            f64::from(u8::from(gg == ww))
        } else {
            gw / (gg.sqrt() * ww.sqrt())
        });
    }
    Agreement {
        cosine_mean: cos.iter().sum::<f64>() / cos.len().max(1) as f64,
        cosine_min: cos.iter().copied().fold(f64::INFINITY, f64::min),
        max_abs_error: max_err,
    }
}

/// Read pixels of shape N x C x H x W for `tower`; one line naming the dimension otherwise.
pub fn read_pixels(tower: &VisionTower, path: &std::path::Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let (shape, data) = npy::read_array(path)?;
    let c = &tower.config;
    let want = [c.channels, c.image, c.image];
    let names = ["channels", "height", "width"];
    if shape.len() != 4 {
        return Err(Error::file(
            path,
            format!(
                "pixels have shape {shape:?}: expected N x {} x {} x {} (4-D)",
                want[0], want[1], want[2]
            ),
        ));
    }
    if shape[0] == 0 {
        return Err(Error::file(path, "pixels hold no images (N = 0)"));
    }
    for (i, (&got, &w)) in shape[1..].iter().zip(&want).enumerate() {
        if got != w {
            return Err(Error::file(
                path,
                format!(
                    "pixels have shape {shape:?}: dimension {} ({}) is {got}, the model takes {w} \
                     (N x {} x {} x {})",
                    i + 1,
                    names[i],
                    want[0],
                    want[1],
                    want[2]
                ),
            ));
        }
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(Error::file(
            path,
            format!("pixel {i} is {}: remove NaN/inf", data[i]),
        ));
    }
    Ok((shape, data))
}

pub fn run(cfg: &EmbedConfig) -> Result<EmbedReport> {
    if cfg.batch == 0 {
        return Err(Error::Usage("--batch must be at least 1".into()));
    }
    // Check the engine and format before the (possibly large) checkpoint is read.
    let mut ctx = Offload::new(cfg.format, cfg.engine, cfg.shape, cfg.window, 0)?;
    let tower = checkpoint::load(&cfg.model, cfg.norm)?;
    let per_shape = output_shape(&tower, cfg.output)?;
    let (shape, pixels) = read_pixels(&tower, &cfg.pixels)?;
    let images = Images {
        data: &pixels,
        n: shape[0],
        channels: shape[1],
        height: shape[2],
        width: shape[3],
    };
    let quantized = cfg.format != Format::Fp32;
    let bar = if cfg.progress {
        ProgressBar::new((images.n * (1 + usize::from(quantized))) as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} images ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(cfg.format.name());
    let start = Instant::now();
    let out = embed(&tower, &mut ctx, &images, cfg.output, cfg.batch, &bar)?;
    let wall_s = start.elapsed().as_secs_f64();
    let per_image: usize = per_shape.iter().product();
    let vs_fp32 = if quantized {
        bar.set_prefix("fp32");
        let mut host = Offload::new(Format::Fp32, EngineKind::Cpu, cfg.shape, cfg.window, 0)?;
        let want = embed(&tower, &mut host, &images, cfg.output, cfg.batch, &bar)?;
        Some(agreement(&out, &want, per_image))
    } else {
        None
    };
    bar.finish_and_clear();
    let mut full_shape = vec![images.n];
    full_shape.extend(&per_shape);
    npy::write_array(&cfg.out, &full_shape, &out)?;
    let report = EmbedReport {
        model: cfg.model.clone(),
        format: cfg.format,
        engine: cfg.engine,
        norm: cfg.norm,
        output: cfg.output,
        shape: full_shape,
        images: images.n,
        batch: cfg.batch,
        counters: *ctx.counters(),
        l1norm_counters: *ctx.l1norm_counters(),
        vs_fp32,
        wall_s,
        images_per_s: images.n as f64 / wall_s.max(1e-9),
    };
    if let Some(path) = &cfg.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Usage(format!("cannot encode the report: {e}")))?;
        if let Err(e) = npy::write_bytes(path, text.as_bytes()) {
            // No half-finished result: the embeddings go with their report.
            let _ = std::fs::remove_file(&cfg.out);
            return Err(e);
        }
    }
    Ok(report)
}
