//! `shiftkit train clip-pretrain`: the mini CLIP trained from scratch with the symmetric
//! InfoNCE loss and a learned temperature on (training digit, caption) pairs, every GEMM of
//! both towers and of the similarity matrix on the chosen engine; AdamW (weight decay on the
//! weight matrices only) with linear warm-up and cosine decay. Each epoch draws a fresh caption
//! template per image (seeded). After each epoch: zero-shot accuracy on the test digits, the
//! ten classes' prompt embeddings as the classifier.
//!
//! Output directory: the checkpoint (`config.json`, `model.safetensors`, `vocab.json`,
//! `preprocessor_config.json`, see `model`), `experiment.json` (the settings; a rerun with
//! other ones is refused, a rerun with the same ones reuses the finished checkpoint),
//! `metrics.csv` (one row per epoch: mean training loss, in-batch image-to-text accuracy,
//! zero-shot test accuracy), `summary.json`, `zero_shot.png`.

use super::captions::{self, Captioner};
use super::model::{count, normalize_pixels, ClipModel, ClipSizes, LOGIT_SCALE_MAX};
use crate::data::mnist::{standard_split, Mnist};
use crate::data::Batches;
use crate::engine::{ArrayShape, EngineKind};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::nn::contrastive::clip_contrastive;
use crate::nn::optim::{AdamW, LrSchedule};
use crate::nn::patch::Images;
use crate::nn::{Offload, Param};
use crate::progress::Progress;
use crate::rng::{mix64, SplitMix64};
use crate::workloads::report::{
    check_experiment, plot_curves, write_json, write_metrics_csv, CounterSummary, Curve,
    MetricsRow, PALETTE,
};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct PretrainConfig {
    pub format: Format,
    pub engine: EngineKind,
    pub shape: ArrayShape,
    pub window: u32,
    pub seed: u64,
    pub sizes: ClipSizes,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub weight_decay: f32,
    /// Linear warm-up over this share of the steps.
    pub warmup: f64,
    /// CI size: 1,000 training and 500 test images (the caller picks the sizes, e.g.
    /// `QUICK_SIZES`, and the epochs).
    pub quick: bool,
    pub out: PathBuf,
    pub progress: bool,
}

/// What the flags resolve to (`experiment.json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub format: Format,
    pub engine: EngineKind,
    pub array: ArrayShape,
    pub window: u32,
    pub seed: u64,
    pub sizes: ClipSizes,
    pub train_examples: usize,
    pub test_examples: usize,
    pub epochs: usize,
    pub batch: usize,
    pub steps: usize,
    pub warmup_steps: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub caption_templates: usize,
    pub zero_shot_prompts: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PretrainSummary {
    pub plan: Plan,
    pub parameters: usize,
    pub vision_parameters: usize,
    pub text_parameters: usize,
    pub attribute_thresholds: captions::Thresholds,
    pub example_captions: Vec<String>,
    pub final_loss: f64,
    pub final_logit_scale: f32,
    /// Zero-shot accuracy on the test digits after the last epoch.
    pub zero_shot_accuracy: f64,
    pub zero_shot_per_class: Vec<f64>,
    pub counters: CounterSummary,
    pub wall_s: f64,
}

pub struct Pretrained {
    pub model: ClipModel,
    /// `summary.json` (a `PretrainSummary`).
    pub summary: serde_json::Value,
}

/// The quick (CI) sizes: one layer per tower, width 48.
pub const QUICK_SIZES: ClipSizes = ClipSizes {
    hidden: 48,
    intermediate: 96,
    vision_layers: 1,
    text_layers: 1,
    heads: 2,
    patch: 7,
    projection: 32,
};

fn subset(set: &Mnist, n: usize) -> Mnist {
    set.select(&(0..n.min(set.len())).collect::<Vec<_>>())
}

fn plan(cfg: &PretrainConfig, train: usize, test: usize) -> Plan {
    let steps = cfg.epochs * Batches::steps_per_epoch(train, cfg.batch);
    Plan {
        format: cfg.format,
        engine: cfg.engine,
        array: cfg.shape,
        window: cfg.window,
        seed: cfg.seed,
        sizes: cfg.sizes,
        train_examples: train,
        test_examples: test,
        epochs: cfg.epochs,
        batch: cfg.batch,
        steps,
        warmup_steps: (steps as f64 * cfg.warmup).round() as usize,
        lr: cfg.lr,
        weight_decay: cfg.weight_decay,
        caption_templates: captions::TEMPLATES,
        zero_shot_prompts: captions::class_prompts(7),
    }
}

/// Weight matrices decay; biases, norms, embeddings and the temperature do not.
fn decays(p: &Param) -> bool {
    p.value.rows > 1
        && p.value.cols > 1
        && !p.name.contains("position_embedding")
        && !p.name.contains("token_embedding")
}

/// The zero-shot accuracy (overall and per class) of `model` on `test`.
pub fn zero_shot_accuracy(
    model: &ClipModel,
    ctx: &mut Offload,
    test: &Mnist,
) -> Result<(f64, Vec<f64>)> {
    let pred = model.zero_shot(ctx, &normalize_pixels(&test.images), 250)?;
    let mut hit = [0usize; 10];
    let mut all = [0usize; 10];
    for (&p, &l) in pred.iter().zip(&test.labels) {
        all[usize::from(l)] += 1;
        hit[usize::from(l)] += usize::from(p == usize::from(l));
    }
    let acc = hit.iter().sum::<usize>() as f64 / test.len().max(1) as f64;
    let per = (0..10)
        .map(|c| hit[c] as f64 / all[c].max(1) as f64)
        .collect();
    Ok((acc, per))
}

pub fn run(cfg: &PretrainConfig) -> Result<Pretrained> {
    if cfg.batch < 2 {
        return Err(Error::Usage(
            "--batch must be at least 2 (the contrastive loss needs negatives)".into(),
        ));
    }
    if cfg.epochs == 0 {
        return Err(Error::Usage("--epochs must be at least 1".into()));
    }
    if !cfg.sizes.hidden.is_multiple_of(cfg.sizes.heads) || !28usize.is_multiple_of(cfg.sizes.patch)
    {
        return Err(Error::Usage(format!(
            "hidden {} must be a multiple of heads {}, and 28 of patch {}",
            cfg.sizes.hidden, cfg.sizes.heads, cfg.sizes.patch
        )));
    }
    let mut ctx = Offload::new(cfg.format, cfg.engine, cfg.shape, cfg.window, cfg.seed)?;
    let split = standard_split(None)?;
    let (train, test) = if cfg.quick {
        (subset(&split.train, 1000), subset(&split.test, 500))
    } else {
        (split.train, split.test)
    };
    let plan = plan(cfg, train.len(), test.len());
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| Error::file(&cfg.out, format!("cannot create: {e}")))?;
    check_experiment(&cfg.out, &plan)?;
    let summary_path = cfg.out.join("summary.json");
    if summary_path.is_file() && cfg.out.join(super::checkpoint::WEIGHTS_FILE).is_file() {
        if let Ok(text) = std::fs::read_to_string(&summary_path) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                if let Ok(model) = ClipModel::load(&cfg.out) {
                    crate::progress::println(format!(
                        "clip-pretrain: reusing the finished checkpoint in {} (zero-shot {:.4})",
                        cfg.out.display(),
                        v["zero_shot_accuracy"].as_f64().unwrap_or(f64::NAN)
                    ));
                    return Ok(Pretrained { model, summary: v });
                }
            }
        }
    }
    let captioner = Captioner::new(&train);
    let mut model = ClipModel::random(&cfg.sizes, cfg.seed);
    let vision_parameters = count(&model.vision.params_mut());
    let text_parameters = count(&model.text.params_mut());
    let schedule = LrSchedule::Cosine {
        total: plan.steps,
        warmup: plan.warmup_steps,
    };
    let mut decay = AdamW::new(cfg.lr, (0.9, 0.98), cfg.weight_decay);
    let mut no_decay = AdamW::new(cfg.lr, (0.9, 0.98), 0.0);
    decay.eps = 1e-6;
    no_decay.eps = 1e-6;
    let pixels = normalize_pixels(&train.images);
    let per = train.pixels_per_image();
    let mut batches = Batches::new(train.len(), cfg.batch, mix64(cfg.seed ^ 0xBA7C));
    let steps_per_epoch = Batches::steps_per_epoch(train.len(), cfg.batch);
    let bar = if cfg.progress {
        Progress::new("clip-pretrain", plan.steps as u64, "steps")
    } else {
        Progress::hidden()
    };
    let start = Instant::now();
    let mut rows = Vec::new();
    let mut step = 0usize;
    let mut last_loss = f64::NAN;
    let mut eval_ctx = Offload::new(cfg.format, cfg.engine, cfg.shape, cfg.window, cfg.seed)?;
    let mut accuracy = (0.0, Vec::new());
    for epoch in 1..=cfg.epochs {
        let mut rng = SplitMix64::new(mix64(cfg.seed ^ mix64(epoch as u64 ^ 0xCA97)));
        let (mut loss_sum, mut acc_sum) = (0.0f64, 0.0f64);
        for _ in 0..steps_per_epoch {
            let ids = batches.next_batch();
            let mut img = Vec::with_capacity(ids.len() * per);
            ids.iter()
                .for_each(|&i| img.extend_from_slice(&pixels[i * per..(i + 1) * per]));
            let seqs: Vec<Vec<usize>> = ids
                .iter()
                .map(|&i| {
                    captions::tokenize(&captioner.caption(
                        i,
                        usize::from(train.labels[i]),
                        &mut rng,
                    ))
                })
                .collect();
            let images = Images {
                data: &img,
                n: ids.len(),
                channels: 1,
                height: train.rows,
                width: train.cols,
            };
            let (vo, vc) = model.vision.forward_train(&mut ctx, &images)?;
            let (to, tc) = model.text.forward_train(&mut ctx, &seqs)?;
            let missing = || Error::Usage("the towers have no projection".into());
            let out = clip_contrastive(
                &mut ctx,
                vo.embeds.as_ref().ok_or_else(missing)?,
                to.embeds.as_ref().ok_or_else(missing)?,
                model.scale(),
            )?;
            model.params_mut().iter_mut().for_each(|p| p.zero_grad());
            model.vision.backward(&mut ctx, &out.dimage, &vc)?;
            model.text.backward(&mut ctx, &out.dtext, &tc)?;
            model.logit_scale.grad.data[0] = out.dlogit_scale as f32;
            let lr = schedule.lr_at(cfg.lr, step);
            decay.lr = lr;
            no_decay.lr = lr;
            let (mut d, mut nd): (Vec<&mut Param>, Vec<&mut Param>) =
                model.params_mut().into_iter().partition(|p| decays(p));
            decay.step(&mut d);
            no_decay.step(&mut nd);
            let s = &mut model.logit_scale.value.data[0];
            *s = s.clamp(0.0, LOGIT_SCALE_MAX);
            if !out.loss.is_finite() {
                return Err(Error::Usage(format!(
                    "the contrastive loss diverged at step {step} (lower --lr)"
                )));
            }
            loss_sum += out.loss;
            acc_sum += out.image_to_text_accuracy;
            step += 1;
            bar.inc(1);
        }
        last_loss = loss_sum / steps_per_epoch as f64;
        accuracy = zero_shot_accuracy(&model, &mut eval_ctx, &test)?;
        bar.set_message(format!(
            "epoch {epoch}: loss {last_loss:.3}, zero-shot {:.3}",
            accuracy.0
        ));
        let c = ctx.counters();
        rows.push(MetricsRow {
            epoch,
            train_loss: last_loss,
            train_acc: acc_sum / steps_per_epoch as f64,
            test_loss: f64::NAN,
            test_acc: accuracy.0,
            macs: c.macs,
            cycles: c.cycles,
            wall_s: start.elapsed().as_secs_f64(),
        });
    }
    bar.finish();
    let wall_s = start.elapsed().as_secs_f64();
    model.save(&cfg.out)?;
    write_metrics_csv(&cfg.out.join("metrics.csv"), &rows)?;
    plot_curves(
        &cfg.out.join("zero_shot.png"),
        &format!(
            "mini CLIP pretraining ({}): zero-shot test accuracy",
            cfg.format
        ),
        ("epoch", "accuracy"),
        Some((0.0, 1.02)),
        &[
            Curve::new(
                "zero-shot (test)",
                rows.iter().map(|r| (r.epoch as f64, r.test_acc)).collect(),
                PALETTE[0],
                false,
            ),
            Curve::new(
                "in-batch image->text (train)",
                rows.iter().map(|r| (r.epoch as f64, r.train_acc)).collect(),
                PALETTE[1],
                true,
            ),
        ],
    )?;
    let mut rng = SplitMix64::new(1);
    let summary = PretrainSummary {
        parameters: vision_parameters + text_parameters + 1,
        vision_parameters,
        text_parameters,
        attribute_thresholds: captioner.thresholds.clone(),
        example_captions: (0..8)
            .map(|i| captioner.caption(i, usize::from(train.labels[i]), &mut rng))
            .collect(),
        final_loss: last_loss,
        final_logit_scale: model.scale(),
        zero_shot_accuracy: accuracy.0,
        zero_shot_per_class: accuracy.1,
        counters: CounterSummary::new(*ctx.counters(), cfg.shape.rows * cfg.shape.cols),
        wall_s,
        plan,
    };
    write_json(&summary_path, &summary)?;
    let summary = serde_json::to_value(&summary).map_err(|e| Error::Usage(e.to_string()))?;
    Ok(Pretrained { model, summary })
}
