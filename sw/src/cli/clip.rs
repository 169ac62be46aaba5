//! `shiftkit clip ...` (SPEC §7): the vision tower of Hugging Face CLIP checkpoints.

use crate::engine::{ArrayShape, EngineKind};
use crate::error::Result;
use crate::format::Format;
use crate::nn::norm::NormKind;
use crate::workloads::clip::embed::{self, EmbedConfig, OutputKind};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ClipCommand {
    /// Images through a checkpoint's vision tower: pooled output, projected embeddings or the
    /// last hidden state, as NPY.
    Embed(EmbedArgs),
    /// Write a randomly initialized vision tower as a Hugging Face checkpoint (default sizes:
    /// ViT-B/32) and random N(0, 1) pixel_values.npy, for measurements without a download.
    Init(InitArgs),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 768)]
    pub hidden: usize,
    #[arg(long, default_value_t = 3072)]
    pub intermediate: usize,
    #[arg(long, default_value_t = 12)]
    pub layers: usize,
    #[arg(long, default_value_t = 12)]
    pub heads: usize,
    #[arg(long, default_value_t = 224)]
    pub image: usize,
    #[arg(long, default_value_t = 32)]
    pub patch: usize,
    #[arg(long, default_value_t = 512)]
    pub projection: usize,
    /// hidden_act: quick_gelu, gelu, gelu_new or relu.
    #[arg(long, default_value = "quick_gelu")]
    pub act: String,
    /// Images in pixel_values.npy.
    #[arg(long, default_value_t = 8)]
    pub images: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Checkpoint directory: config.json + model.safetensors (CLIPModel or CLIPVisionModel[WithProjection]).
    #[arg(long)]
    pub model: PathBuf,
    /// N x C x H x W f32 NPY, already normalized (CLIPImageProcessor's pixel_values).
    #[arg(long)]
    pub pixels: PathBuf,
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "embeds")]
    pub output: OutputKind,
    #[arg(long, value_enum, default_value = "fp32")]
    pub format: Format,
    /// Engine; default `cpu` for fp32, `golden` otherwise.
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// LayerNorm as trained, or the L1 norm with the same affine parameters (on the
    /// accelerator's L1-norm unit in SQ formats).
    #[arg(long, value_enum, default_value = "layer")]
    pub norm: NormKind,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Report: counters, wall time, and cosine similarity / max error against fp32.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// PE rows of the modelled array.
    #[arg(long, default_value_t = 8)]
    pub rows: usize,
    /// PE columns of the modelled array.
    #[arg(long, default_value_t = 8)]
    pub cols: usize,
    /// ShiftQuant exponent window E (0..=15).
    #[arg(long, default_value_t = shiftkit_hw::config::DEFAULT_WINDOW)]
    pub window: u32,
    /// Declared accumulator width (default 32, or what one shifted product needs).
    #[arg(long)]
    pub acc_bits: Option<u32>,
}

fn init(a: &InitArgs) -> Result<()> {
    use crate::nn::activation::Activation;
    use crate::nn::vit::{VisionTower, VitConfig};
    let act = Activation::from_hf(&a.act)?;
    if a.hidden == 0 || a.heads == 0 || !a.hidden.is_multiple_of(a.heads) {
        return Err(crate::Error::Usage(format!(
            "--hidden {} must be a positive multiple of --heads {}",
            a.hidden, a.heads
        )));
    }
    if a.patch == 0 || a.image == 0 || !a.image.is_multiple_of(a.patch) || a.images == 0 {
        return Err(crate::Error::Usage(format!(
            "--image {} must be a positive multiple of --patch {}, and --images at least 1",
            a.image, a.patch
        )));
    }
    let config = VitConfig {
        hidden: a.hidden,
        intermediate: a.intermediate.max(1),
        layers: a.layers.max(1),
        heads: a.heads,
        channels: 3,
        image: a.image,
        patch: a.patch,
        projection: Some(a.projection.max(1)),
        act,
        eps: 1e-5,
    };
    let tower = VisionTower::random(config, NormKind::Layer, a.seed, false);
    crate::workloads::clip::checkpoint::save(&a.out, &tower, &a.act)?;
    let mut g = crate::rng::SplitMix64::new(a.seed ^ 0x9E37);
    let n = a.images * 3 * a.image * a.image;
    let px: Vec<f32> = (0..n).map(|_| g.normal() as f32).collect();
    crate::npy::write_array(
        &a.out.join("pixel_values.npy"),
        &[a.images, 3, a.image, a.image],
        &px,
    )?;
    println!(
        "{}: random {}-layer d{} tower",
        a.out.display(),
        a.layers,
        a.hidden
    );
    Ok(())
}

pub fn run(cmd: &ClipCommand) -> Result<()> {
    match cmd {
        ClipCommand::Init(a) => init(a),
        ClipCommand::Embed(a) => {
            let cfg = EmbedConfig {
                model: a.model.clone(),
                pixels: a.pixels.clone(),
                out: a.out.clone(),
                output: a.output,
                format: a.format,
                engine: a.engine.unwrap_or(EngineKind::default_for(a.format)),
                shape: ArrayShape {
                    rows: a.rows,
                    cols: a.cols,
                    acc_bits: a.acc_bits,
                },
                window: a.window,
                norm: a.norm,
                batch: a.batch,
                json: a.json.clone(),
                progress: true,
            };
            let r = embed::run(&cfg)?;
            let agree = r
                .vs_fp32
                .as_ref()
                .map(|v| {
                    format!(
                        ", cosine vs fp32 {:.6} (min {:.6}), max error {:.3e}",
                        v.cosine_mean, v.cosine_min, v.max_abs_error
                    )
                })
                .unwrap_or_default();
            println!(
                "{}: {:?} {:?} in {} on {}, {:.1} images/s{agree}",
                a.out.display(),
                r.output,
                r.shape,
                r.format,
                r.engine.name(),
                r.images_per_s
            );
            Ok(())
        }
    }
}
