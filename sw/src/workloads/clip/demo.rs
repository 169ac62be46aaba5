//! The `shiftkit demo` clip segment's experiment: the README's mini CLIP pretraining, then the
//! detection benchmark with the linear probe, LN-tuning and full fine-tuning on two paired
//! seeds (fp32, `cpu`), sized for under two minutes on two cores.

use super::detect::{self, DetectConfig, SphereWeights, Tune};
use super::model::ClipSizes;
use super::pretrain::PretrainConfig;
use crate::data::manipulate::Kind;
use crate::engine::{ArrayShape, EngineKind};
use crate::error::Result;
use crate::format::Format;
use serde_json::{json, Value};
use std::path::Path;

/// The segment's settings: the README's mini CLIP (10 epochs: a 3-epoch backbone, 80% zero-shot,
/// left every tune near chance), detectors on 2,000 real and 2,000 manipulated digits as in the
/// default experiment, tested on 500 real digits and 500 per held-out kind.
pub fn config(out: &Path) -> DetectConfig {
    let pretrain = PretrainConfig {
        format: Format::Fp32,
        engine: EngineKind::Cpu,
        shape: ArrayShape::default(),
        window: shiftkit_hw::config::DEFAULT_WINDOW,
        seed: 0,
        sizes: ClipSizes::DEFAULT,
        epochs: 10,
        batch: 128,
        lr: 2e-3,
        weight_decay: 0.1,
        warmup: 0.05,
        quick: false,
        out: out.join("backbone"),
        progress: true,
    };
    DetectConfig {
        format: Format::Fp32,
        engine: EngineKind::Cpu,
        shape: ArrayShape::default(),
        window: shiftkit_hw::config::DEFAULT_WINDOW,
        tunes: vec![Tune::Linear, Tune::Ln, Tune::Full],
        model: None,
        pretrain,
        train_kinds: vec![Kind::Splice, Kind::Blur, Kind::Warp],
        test_kinds: vec![Kind::Blend, Kind::Erase, Kind::Contrast],
        weights: SphereWeights {
            uniformity: 0.5,
            alignment: 0.1,
            slerp: 0.5,
        },
        ablations: Vec::new(),
        seeds: 2,
        epochs: DEMO_EPOCHS,
        batch: 64,
        lr: DEMO_LR,
        ln_lr: DEMO_LN_LR,
        weight_decay: 0.0,
        train_images: 2000,
        test_images: 500,
        out: out.to_path_buf(),
        progress: true,
    }
}

const DEMO_EPOCHS: usize = 4;
const DEMO_LR: f32 = 1e-3;
const DEMO_LN_LR: Option<f32> = Some(3e-2);

/// Run the segment's experiment in `out` (reusing finished runs): the summary's figures and
/// the plots' paths.
pub fn demo_segment(out: &Path) -> Result<Value> {
    let cfg = config(out);
    let s = detect::run(&cfg)?;
    let arms = ["linear", "ln", "full"];
    Ok(json!({
        "zero_shot_accuracy": s["backbone"]["zero_shot_accuracy"],
        "tunes": s["tunes"],
        "paired": s["paired_mean_auroc_differences"],
        "test_kinds": cfg.test_kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "seeds": cfg.seeds,
        "epochs": cfg.epochs,
        "sphere_png": arms.map(|a| out.join(format!("sphere-{a}.png"))),
        "roc_png": arms.map(|a| out.join(format!("roc-{a}.png"))),
        "manipulations_png": out.join("manipulations.png"),
    }))
}
