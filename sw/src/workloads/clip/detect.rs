//! `shiftkit train clip`: detecting local manipulations of digits with a frozen or partly
//! tuned CLIP vision tower, on manipulation kinds the detector never saw (Yermakov et al.,
//! "Unlocking the Hidden Potential of CLIP in Generalizable Deepfake Detection"; public code
//! yermandy/deepfake-detection).
//!
//! Data: real training digits and manipulated copies (one kind of `--train-kinds` each, a donor
//! digit for the kinds that take one, all seeded by a fixed data seed, the same for every run);
//! the test split's digits, real and manipulated with each held-out kind. The feature is the
//! class token after the post-LayerNorm (`pooler_output`, no `visual_projection`), L2-normalized,
//! into a linear head with bias (real / fake). `--tune ln` trains the weight and bias of every
//! LayerNorm of the tower (pre, both of each block, post) and the head; `linear` the head only;
//! `full` everything. The LayerNorms have their own AdamW group and learning rate (`--ln-lr`);
//! at the head's rate their affine parameters barely move. Loss: CE on slerp-augmented
//! features (each moved, with probability `--slerp`, toward a random same-label partner of the
//! batch) + uniformity + label-aware alignment of the features on the sphere; AdamW with cosine
//! decay. `--ablate` adds `ln` arms with one term dropped. Reported per held-out kind: AUROC, AP
//! and EER of the fake logit margin (reals against that kind's fakes), and paired differences
//! between arms.
//!
//! Output: `backbone/` (the pretrained mini CLIP, when no `--model`), `experiment.json`,
//! `runs/<arm>-seed<S>.json` (each run, reused on reruns), `summary.json`, `roc-<arm>.png`,
//! `sphere-<arm>.png`, `manipulations.png`.

use super::checkpoint;
use super::model::normalize_pixels;
use super::pretrain::{self, PretrainConfig};
use super::sphere;
use crate::data::manipulate::{self, Kind};
use crate::data::mnist::{standard_split, Mnist};
use crate::data::Batches;
use crate::engine::{ArrayShape, Counters, EngineKind};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::matrix::Matrix;
use crate::nn::linear::Linear;
use crate::nn::loss::{
    alignment, l2_normalize_backward, l2_normalize_rows, slerp_augment, slerp_backward,
    softmax_cross_entropy, uniformity,
};
use crate::nn::norm::NormKind;
use crate::nn::optim::{AdamW, LrSchedule};
use crate::nn::patch::Images;
use crate::nn::residual::add_into;
use crate::nn::vit::VisionTower;
use crate::nn::{Offload, Param};
use crate::progress::Progress;
use crate::rng::{mix64, SplitMix64};
use crate::workloads::report::{
    check_experiment, plot_curves, plot_image_grid, plot_scatter, write_json, Curve, Scatter, Tile,
    PALETTE,
};
use crate::workloads::stats::{
    auroc, average_precision, equal_error_rate, mean_se, roc_curve, MeanSe,
};
use plotters::style::RGBColor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a detector trains.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Tune {
    /// The LayerNorms' weights and biases, and the head.
    Ln,
    /// The head only (a linear probe of the frozen tower).
    Linear,
    /// Every parameter.
    Full,
}

impl Tune {
    pub fn name(self) -> &'static str {
        match self {
            Tune::Ln => "ln",
            Tune::Linear => "linear",
            Tune::Full => "full",
        }
    }
}

/// The loss terms' weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SphereWeights {
    pub uniformity: f64,
    pub alignment: f64,
    /// Probability that a feature is slerp-augmented.
    pub slerp: f64,
}

#[derive(Clone, Debug)]
pub struct DetectConfig {
    pub format: Format,
    pub engine: EngineKind,
    pub shape: ArrayShape,
    pub window: u32,
    pub tunes: Vec<Tune>,
    /// A Hugging Face CLIP checkpoint; `None` pretrains the mini CLIP into `out/backbone`.
    pub model: Option<PathBuf>,
    pub pretrain: PretrainConfig,
    pub train_kinds: Vec<Kind>,
    pub test_kinds: Vec<Kind>,
    pub weights: SphereWeights,
    /// Loss terms each dropped in one extra `ln` arm (`ln-no-uniformity`, ...).
    pub ablations: Vec<Ablation>,
    pub seeds: usize,
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate of the head (and, with `full`, of the tower's weights).
    pub lr: f32,
    /// Peak learning rate of the tower's LayerNorms (with `ln` and `full`); `None`: `lr`.
    pub ln_lr: Option<f32>,
    pub weight_decay: f32,
    /// Real training digits (each also appears manipulated).
    pub train_images: usize,
    /// Real test digits (each also appears manipulated by every held-out kind).
    pub test_images: usize,
    pub out: PathBuf,
    pub progress: bool,
}

/// What the flags resolve to (`experiment.json`).
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub format: Format,
    pub engine: EngineKind,
    pub array: ArrayShape,
    pub window: u32,
    pub model: String,
    pub train_kinds: Vec<Kind>,
    pub test_kinds: Vec<Kind>,
    pub weights: SphereWeights,
    pub arms: Vec<Arm>,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub ln_lr: f32,
    pub weight_decay: f32,
    pub train_images: usize,
    pub test_images: usize,
    pub data_seed: u64,
}

/// A loss term an ablation arm drops.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Ablation {
    Uniformity,
    Alignment,
    Slerp,
}

impl Ablation {
    pub fn name(self) -> &'static str {
        match self {
            Ablation::Uniformity => "uniformity",
            Ablation::Alignment => "alignment",
            Ablation::Slerp => "slerp",
        }
    }
}

/// One detector setting of an experiment: a tune with the loss weights (an ablation arm is
/// `ln` with one term's weight set to 0).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Arm {
    pub name: String,
    pub tune: Tune,
    pub weights: SphereWeights,
}

/// The tunes' arms, then one `ln` arm per ablation.
pub fn arms(tunes: &[Tune], weights: SphereWeights, ablations: &[Ablation]) -> Vec<Arm> {
    let mut v: Vec<Arm> = tunes
        .iter()
        .map(|&t| Arm {
            name: t.name().into(),
            tune: t,
            weights,
        })
        .collect();
    for &a in ablations {
        let mut w = weights;
        match a {
            Ablation::Uniformity => w.uniformity = 0.0,
            Ablation::Alignment => w.alignment = 0.0,
            Ablation::Slerp => w.slerp = 0.0,
        }
        v.push(Arm {
            name: format!("ln-no-{}", a.name()),
            tune: Tune::Ln,
            weights: w,
        });
    }
    v
}

/// One held-out kind's figures in one run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KindResult {
    /// The arm (the tune's name, or `ln-no-<term>` for an ablation).
    #[serde(default)]
    pub arm: String,
    pub tune: Tune,
    pub seed: usize,
    pub kind: Kind,
    pub auroc: f64,
    pub ap: f64,
    pub eer: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct RunFile {
    results: Vec<KindResult>,
    /// ROC points of each held-out kind, in `test_kinds` order.
    roc: Vec<Vec<(f64, f64)>>,
    final_loss: f64,
    /// The test features projected on the head's fake-minus-real direction and the first
    /// principal axis orthogonal to it, in test-set order.
    #[serde(default)]
    sphere: Vec<(f32, f32)>,
    /// The engine's counters over the run (training and the test pass).
    #[serde(default)]
    counters: Counters,
}

const DATA_SEED: u64 = 0xDA7A;

/// Normalized pixels, labels (1 = manipulated) and the kind of each example.
struct DetSet {
    pixels: Vec<f32>,
    labels: Vec<usize>,
    kinds: Vec<Option<Kind>>,
}

fn training_set(train: &Mnist, n: usize, kinds: &[Kind]) -> Result<DetSet> {
    let mut rng = SplitMix64::new(DATA_SEED);
    let (mut raw, mut labels, mut ks) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        raw.extend_from_slice(train.image(i));
        labels.push(0);
        ks.push(None);
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let donor = (i + 1 + rng.below(train.len() as u64 - 1) as usize) % train.len();
        let fake = manipulate::apply(
            kind,
            train.image(i),
            train.image(donor),
            (train.rows, train.cols),
            mix64(DATA_SEED ^ i as u64),
        )?;
        raw.extend(fake);
        labels.push(1);
        ks.push(Some(kind));
    }
    Ok(DetSet {
        pixels: normalize_pixels(&raw),
        labels,
        kinds: ks,
    })
}

fn test_set(test: &Mnist, n: usize, kinds: &[Kind]) -> Result<DetSet> {
    let (mut raw, mut labels, mut ks) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        raw.extend_from_slice(test.image(i));
        labels.push(0);
        ks.push(None);
    }
    for (k, &kind) in kinds.iter().enumerate() {
        for i in 0..n {
            let donor = (i + 1 + 7 * k) % test.len();
            raw.extend(manipulate::apply(
                kind,
                test.image(i),
                test.image(donor),
                (test.rows, test.cols),
                mix64(DATA_SEED ^ 0x7E57 ^ mix64((k * n + i) as u64)),
            )?);
            labels.push(1);
            ks.push(Some(kind));
        }
    }
    Ok(DetSet {
        pixels: normalize_pixels(&raw),
        labels,
        kinds: ks,
    })
}

/// 28x28 grey pixels as the tower's input: as they are for a 1-channel 28x28 tower, else
/// resized (nearest) and repeated over the channels.
fn adapt(pixels: &[f32], tower: &VisionTower) -> Vec<f32> {
    let c = &tower.config;
    if c.channels == 1 && c.image == 28 {
        return pixels.to_vec();
    }
    let mut out = Vec::with_capacity(pixels.len() / 784 * c.channels * c.image * c.image);
    for img in pixels.chunks(784) {
        for _ in 0..c.channels {
            for y in 0..c.image {
                for x in 0..c.image {
                    out.push(img[(y * 28 / c.image) * 28 + x * 28 / c.image]);
                }
            }
        }
    }
    out
}

fn images<'a>(data: &'a [f32], tower: &VisionTower) -> Images<'a> {
    let c = &tower.config;
    Images {
        data,
        n: data.len() / (c.channels * c.image * c.image),
        channels: c.channels,
        height: c.image,
        width: c.image,
    }
}

/// The tower's LayerNorm weights and biases (pre, both of each block, post).
fn layer_norms(tower: &mut VisionTower) -> Vec<&mut Param> {
    let mut v = tower.pre_norm.params_mut();
    for l in &mut tower.layers {
        v.extend(l.norm1.params_mut());
        v.extend(l.norm2.params_mut());
    }
    v.extend(tower.post_norm.params_mut());
    v
}

/// The tower's parameters a tune trains, as two groups: its LayerNorms (at `--ln-lr`) and the
/// rest (at `--detect-lr`, with `full` only).
fn groups(tower: &mut VisionTower, tune: Tune) -> (Vec<&mut Param>, Vec<&mut Param>) {
    match tune {
        Tune::Linear => (Vec::new(), Vec::new()),
        Tune::Ln => (layer_norms(tower), Vec::new()),
        Tune::Full => {
            let names: std::collections::HashSet<String> =
                layer_norms(tower).iter().map(|p| p.name.clone()).collect();
            tower
                .params_mut()
                .into_iter()
                .partition(|p| names.contains(&p.name))
        }
    }
}

/// The tower's parameters a tune trains.
fn trainable(tower: &mut VisionTower, tune: Tune) -> Vec<&mut Param> {
    let (mut v, rest) = groups(tower, tune);
    v.extend(rest);
    v
}

/// The detection backbone: the checkpoint's vision tower without its projection.
fn backbone(dir: &std::path::Path) -> Result<VisionTower> {
    let mut tower = checkpoint::load(dir, NormKind::Layer)?;
    tower.projection = None;
    tower.config.projection = None;
    Ok(tower)
}

/// A detector in training: the tower (frozen or partly trainable), the real / fake head, one
/// AdamW for the LayerNorms and one for the other parameters (so the two groups can take
/// different learning rates; with equal ones the steps are those of a single AdamW), and the
/// slerp draws.
pub struct Detector {
    pub tower: VisionTower,
    pub head: Linear,
    pub tune: Tune,
    pub weights: SphereWeights,
    /// The head and, with `full`, the tower's other parameters.
    opt: AdamW,
    /// The tower's LayerNorms (`ln` and `full`).
    ln_opt: AdamW,
    rng: SplitMix64,
}

/// The terms of one step's loss (already weighted).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLoss {
    pub ce: f64,
    pub uniformity: f64,
    pub alignment: f64,
}

impl StepLoss {
    pub fn total(&self) -> f64 {
        self.ce + self.uniformity + self.alignment
    }
}

impl Detector {
    /// A head initialized from `seed` (N(0, 1/d) weights, zero bias) on `tower`.
    pub fn new(
        tower: VisionTower,
        tune: Tune,
        weights: SphereWeights,
        seed: u64,
        weight_decay: f32,
    ) -> Self {
        let d = tower.config.hidden;
        let mut rng = SplitMix64::new(mix64(seed ^ 0x4EAD));
        let head = Linear::new(
            Param::normal("head.weight", d, 2, (d as f64).powf(-0.5), &mut rng),
            Some(Param::new("head.bias", Matrix::zeros(1, 2))),
        );
        Detector {
            tower,
            head,
            tune,
            weights,
            opt: AdamW::new(0.0, (0.9, 0.999), weight_decay),
            ln_opt: AdamW::new(0.0, (0.9, 0.999), weight_decay),
            rng,
        }
    }

    /// The parameters this detector trains: the tower's share of its tune, then the head.
    pub fn trainable(&mut self) -> Vec<&mut Param> {
        let mut v = trainable(&mut self.tower, self.tune);
        v.extend(self.head.params_mut());
        v
    }

    /// One step on a batch of the tower's input pixels (`adapt`ed, normalized) with labels
    /// (1 = manipulated): the tower's trainable LayerNorms at learning rate `ln_lr`, the head
    /// and any other trainable parameters at `lr`.
    pub fn step(
        &mut self,
        ctx: &mut Offload,
        pixels: &[f32],
        labels: &[usize],
        lr: f32,
        ln_lr: f32,
    ) -> Result<StepLoss> {
        let w = self.weights;
        let batch = images(pixels, &self.tower);
        let (pooled, cache) = if self.tune == Tune::Linear {
            (self.tower.forward(ctx, &batch)?.pooled, None)
        } else {
            let (o, c) = self.tower.forward_train(ctx, &batch)?;
            (o.pooled, Some(c))
        };
        let (x, inv) = l2_normalize_rows(&pooled);
        let (xs, sc) = slerp_augment(&x, labels, w.slerp, &mut self.rng);
        let logits = self.head.forward(ctx, &xs)?;
        let ce = softmax_cross_entropy(&logits, labels, true);
        self.tower
            .params_mut()
            .iter_mut()
            .for_each(|p| p.zero_grad());
        self.head
            .params_mut()
            .iter_mut()
            .for_each(|p| p.zero_grad());
        let dxs = self.head.backward(ctx, &xs, &ce.grad, cache.is_some())?;
        let u = uniformity(&x, w.uniformity);
        let a = alignment(&x, labels, w.alignment);
        if let (Some(cache), Some(dxs)) = (cache, dxs) {
            let mut dx = slerp_backward(&dxs, &sc);
            add_into(&mut dx, &u.grad);
            add_into(&mut dx, &a.grad);
            let dpooled = l2_normalize_backward(&x, &inv, &dx);
            self.tower.backward(ctx, &dpooled, &cache)?;
        }
        let (mut norms, mut rest) = groups(&mut self.tower, self.tune);
        rest.extend(self.head.params_mut());
        self.opt.lr = lr;
        self.opt.step(&mut rest);
        if !norms.is_empty() {
            self.ln_opt.lr = ln_lr;
            self.ln_opt.step(&mut norms);
        }
        Ok(StepLoss {
            ce: ce.loss,
            uniformity: u.loss,
            alignment: a.loss,
        })
    }

    /// L2-normalized features (the post-LayerNorm class token) of adapted pixels, in chunks.
    pub fn features(&self, ctx: &mut Offload, pixels: &[f32]) -> Result<Matrix> {
        let c = &self.tower.config;
        let per = c.channels * c.image * c.image;
        let mut data = Vec::with_capacity(pixels.len() / per * c.hidden);
        for chunk in pixels.chunks(250 * per) {
            let o = self.tower.forward(ctx, &images(chunk, &self.tower))?;
            data.extend(l2_normalize_rows(&o.pooled).0.data);
        }
        Matrix::new(pixels.len() / per, c.hidden, data)
    }

    /// The head's fake-minus-real weight vector: the direction its margin grows along.
    pub fn fake_direction(&self) -> Vec<f64> {
        let w = &self.head.weight.value;
        (0..w.rows)
            .map(|r| f64::from(w.at(r, 1) - w.at(r, 0)))
            .collect()
    }

    /// Fake-minus-real logit margins of normalized features.
    pub fn margins(&self, ctx: &mut Offload, features: &Matrix) -> Result<Vec<f64>> {
        let logits = self.head.forward(ctx, features)?;
        Ok((0..logits.rows)
            .map(|r| f64::from(logits.at(r, 1) - logits.at(r, 0)))
            .collect())
    }
}

struct Run<'a> {
    cfg: &'a DetectConfig,
    dir: &'a std::path::Path,
    train: &'a DetSet,
    test: &'a DetSet,
}

fn train_one(r: &Run, arm: &Arm, seed: usize, bar: &Progress) -> Result<RunFile> {
    let cfg = r.cfg;
    let tune = arm.tune;
    let mut ctx = Offload::new(cfg.format, cfg.engine, cfg.shape, cfg.window, seed as u64)?;
    let tower = backbone(r.dir)?;
    let px = adapt(&r.train.pixels, &tower);
    let mut det = Detector::new(tower, tune, arm.weights, seed as u64, cfg.weight_decay);
    let per = px.len() / r.train.labels.len();
    let n = r.train.labels.len();
    let steps_per_epoch = Batches::steps_per_epoch(n, cfg.batch);
    let total = cfg.epochs * steps_per_epoch;
    let schedule = LrSchedule::Cosine { total, warmup: 0 };
    let ln_lr = cfg.ln_lr.unwrap_or(cfg.lr);
    let mut batches = Batches::new(n, cfg.batch, mix64(seed as u64 ^ 0xBA7C));
    let mut last = f64::NAN;
    for step in 0..total {
        let ids = batches.next_batch();
        let mut img = Vec::with_capacity(ids.len() * per);
        ids.iter()
            .for_each(|&i| img.extend_from_slice(&px[i * per..(i + 1) * per]));
        let labels: Vec<usize> = ids.iter().map(|&i| r.train.labels[i]).collect();
        let loss = det.step(
            &mut ctx,
            &img,
            &labels,
            schedule.lr_at(cfg.lr, step),
            schedule.lr_at(ln_lr, step),
        )?;
        last = loss.total();
        if !last.is_finite() {
            return Err(Error::Usage(format!(
                "{} seed {seed}: the loss diverged at step {step} (lower --detect-lr)",
                arm.name
            )));
        }
        bar.inc(1);
    }
    let features = det.features(&mut ctx, &adapt(&r.test.pixels, &det.tower))?;
    let s = det.margins(&mut ctx, &features)?;
    let mut results = Vec::new();
    let mut roc = Vec::new();
    for &kind in &cfg.test_kinds {
        let (mut ks, mut pos) = (Vec::new(), Vec::new());
        for ((&sc, &l), k) in s.iter().zip(&r.test.labels).zip(&r.test.kinds) {
            if l == 0 || *k == Some(kind) {
                ks.push(sc);
                pos.push(l == 1);
            }
        }
        results.push(KindResult {
            arm: arm.name.clone(),
            tune,
            seed,
            kind,
            auroc: auroc(&ks, &pos).unwrap_or(f64::NAN),
            ap: average_precision(&ks, &pos).unwrap_or(f64::NAN),
            eer: equal_error_rate(&ks, &pos).unwrap_or(f64::NAN),
        });
        roc.push(roc_curve(&ks, &pos));
    }
    Ok(RunFile {
        results,
        roc,
        final_loss: last,
        sphere: sphere::project(&features, Some(&det.fake_direction())),
        counters: *ctx.counters(),
    })
}

/// Per arm: figures per held-out kind and their mean over kinds, each as mean +- SE (and
/// standard deviation) over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct TuneSummary {
    pub tune: Tune,
    pub weights: SphereWeights,
    pub trainable_parameters: usize,
    pub trainable_fraction: f64,
    pub per_kind: BTreeMap<String, BTreeMap<String, MeanSe>>,
    pub mean_auroc: MeanSe,
    pub mean_ap: MeanSe,
    pub mean_eer: MeanSe,
    pub final_loss: MeanSe,
    /// Summed over seeds.
    pub counters: Counters,
}

fn check(cfg: &DetectConfig) -> Result<()> {
    if cfg.tunes.is_empty() || cfg.train_kinds.is_empty() || cfg.test_kinds.is_empty() {
        return Err(Error::Usage(
            "--tune, --train-kinds and --test-kinds each need at least one value".into(),
        ));
    }
    if cfg.seeds == 0 || cfg.epochs == 0 || cfg.batch < 2 {
        return Err(Error::Usage(
            "--seeds and --epochs must be at least 1, --batch at least 2".into(),
        ));
    }
    if cfg.train_images < 2 || cfg.test_images < 1 {
        return Err(Error::Usage(
            "--train-images must be at least 2, --test-images at least 1".into(),
        ));
    }
    if !(0.0..=1.0).contains(&cfg.weights.slerp) {
        return Err(Error::Usage(format!(
            "--slerp {} is a probability: use a value in [0, 1]",
            cfg.weights.slerp
        )));
    }
    let lrs = [cfg.lr, cfg.ln_lr.unwrap_or(cfg.lr)];
    if lrs.iter().any(|lr| !(lr.is_finite() && *lr > 0.0)) {
        return Err(Error::Usage(
            "--detect-lr and --ln-lr must be positive".into(),
        ));
    }
    Ok(())
}

/// Mean over held-out kinds of one figure of one arm and seed.
fn kind_mean(runs: &[&KindResult], arm: &str, seed: usize, f: fn(&KindResult) -> f64) -> f64 {
    let v: Vec<f64> = runs
        .iter()
        .filter(|k| k.arm == arm && k.seed == seed)
        .map(|k| f(k))
        .collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

pub fn run(cfg: &DetectConfig) -> Result<serde_json::Value> {
    check(cfg)?;
    let split = standard_split(None)?;
    let (ntrain, ntest) = (
        cfg.train_images.min(split.train.len()),
        cfg.test_images.min(split.test.len()),
    );
    let arms = arms(&cfg.tunes, cfg.weights, &cfg.ablations);
    let plan = Plan {
        format: cfg.format,
        engine: cfg.engine,
        array: cfg.shape,
        window: cfg.window,
        model: cfg
            .model
            .as_ref()
            .map_or("mini CLIP (backbone/)".into(), |m| m.display().to_string()),
        train_kinds: cfg.train_kinds.clone(),
        test_kinds: cfg.test_kinds.clone(),
        weights: cfg.weights,
        arms: arms.clone(),
        epochs: cfg.epochs,
        batch: cfg.batch,
        lr: cfg.lr,
        ln_lr: cfg.ln_lr.unwrap_or(cfg.lr),
        weight_decay: cfg.weight_decay,
        train_images: ntrain,
        test_images: ntest,
        data_seed: DATA_SEED,
    };
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| Error::file(&cfg.out, format!("cannot create: {e}")))?;
    check_experiment(&cfg.out, &plan)?;
    let (dir, backbone_summary) = match &cfg.model {
        Some(m) => (m.clone(), serde_json::Value::Null),
        None => {
            let p = pretrain::run(&cfg.pretrain)?;
            (cfg.pretrain.out.clone(), p.summary)
        }
    };
    let train = training_set(&split.train, ntrain, &cfg.train_kinds)?;
    let test = test_set(&split.test, ntest, &cfg.test_kinds)?;
    grid(cfg, &split.test)?;
    let mut probe = backbone(&dir)?;
    let parameters: usize = probe.params_mut().iter().map(|p| p.len()).sum();
    let head_params = 2 * probe.config.hidden + 2;
    let runs_dir = cfg.out.join("runs");
    std::fs::create_dir_all(&runs_dir)
        .map_err(|e| Error::file(&runs_dir, format!("cannot create: {e}")))?;
    let steps = cfg.epochs * Batches::steps_per_epoch(train.labels.len(), cfg.batch);
    let bar = if cfg.progress {
        Progress::new(
            "clip detect",
            (steps * arms.len() * cfg.seeds) as u64,
            "steps",
        )
    } else {
        Progress::hidden()
    };
    let r = Run {
        cfg,
        dir: &dir,
        train: &train,
        test: &test,
    };
    let mut files: BTreeMap<(String, usize), RunFile> = BTreeMap::new();
    for arm in &arms {
        for seed in 0..cfg.seeds {
            let path = runs_dir.join(format!("{}-seed{seed}.json", arm.name));
            let reused = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<RunFile>(&t).ok());
            let file = match reused {
                Some(f) => {
                    bar.inc(steps as u64);
                    f
                }
                None => {
                    bar.set_message(format!("{} seed {seed}", arm.name));
                    let f = train_one(&r, arm, seed, &bar)?;
                    write_json(&path, &f)?;
                    f
                }
            };
            files.insert((arm.name.clone(), seed), file);
        }
    }
    bar.finish();
    let runs: Vec<&KindResult> = files.values().flat_map(|f| &f.results).collect();
    let mut tunes = BTreeMap::new();
    for arm in &arms {
        let trainable_parameters = trainable(&mut probe, arm.tune)
            .iter()
            .map(|p| p.len())
            .sum::<usize>()
            + head_params;
        let mut per_kind = BTreeMap::new();
        for &kind in &cfg.test_kinds {
            let of = |f: fn(&KindResult) -> f64| {
                mean_se(
                    &runs
                        .iter()
                        .filter(|k| k.arm == arm.name && k.kind == kind)
                        .map(|k| f(k))
                        .collect::<Vec<_>>(),
                )
            };
            let m: BTreeMap<String, MeanSe> = [
                ("auroc".to_string(), of(|k| k.auroc)),
                ("ap".to_string(), of(|k| k.ap)),
                ("eer".to_string(), of(|k| k.eer)),
            ]
            .into();
            per_kind.insert(kind.name().to_string(), m);
        }
        let per_seed = |f: fn(&KindResult) -> f64| {
            (0..cfg.seeds)
                .map(|s| kind_mean(&runs, &arm.name, s, f))
                .collect::<Vec<_>>()
        };
        let mut counters = Counters::default();
        let mut losses = Vec::new();
        for seed in 0..cfg.seeds {
            let f = &files[&(arm.name.clone(), seed)];
            counters += f.counters;
            losses.push(f.final_loss);
        }
        tunes.insert(
            arm.name.clone(),
            TuneSummary {
                tune: arm.tune,
                weights: arm.weights,
                trainable_parameters,
                trainable_fraction: trainable_parameters as f64 / (parameters + head_params) as f64,
                per_kind,
                mean_auroc: mean_se(&per_seed(|k| k.auroc)),
                mean_ap: mean_se(&per_seed(|k| k.ap)),
                mean_eer: mean_se(&per_seed(|k| k.eer)),
                final_loss: mean_se(&losses),
                counters,
            },
        );
    }
    // Paired differences (same seed: the same head initialization and data order) of the
    // per-seed mean held-out AUROC.
    let mut pairs: Vec<(String, String)> = [("ln", "linear"), ("full", "linear"), ("ln", "full")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    pairs.extend(
        cfg.ablations
            .iter()
            .map(|a| (format!("ln-no-{}", a.name()), "ln".to_string())),
    );
    let mut paired = BTreeMap::new();
    for (a, b) in pairs {
        if tunes.contains_key(&a) && tunes.contains_key(&b) {
            let d: Vec<f64> = (0..cfg.seeds)
                .map(|s| {
                    kind_mean(&runs, &a, s, |k| k.auroc) - kind_mean(&runs, &b, s, |k| k.auroc)
                })
                .collect();
            paired.insert(format!("{a}-{b}"), mean_se(&d));
        }
    }
    for arm in &arms {
        let f = &files[&(arm.name.clone(), 0)];
        let curves: Vec<Curve> = cfg
            .test_kinds
            .iter()
            .zip(&f.roc)
            .enumerate()
            .map(|(i, (k, pts))| {
                Curve::new(
                    format!("{} (AUROC {:.3})", k.name(), f.results[i].auroc),
                    pts.clone(),
                    PALETTE[i % PALETTE.len()],
                    false,
                )
            })
            .collect();
        plot_curves(
            &cfg.out.join(format!("roc-{}.png", arm.name)),
            &format!("{} (seed 0): ROC per held-out kind", arm.name),
            ("false-positive rate", "true-positive rate"),
            Some((0.0, 1.02)),
            &curves,
        )?;
        sphere_plot(cfg, arm, f, &test)?;
    }
    let summary = serde_json::json!({
        "plan": plan,
        "backbone": backbone_summary,
        "backbone_parameters": parameters,
        "trainable_fraction": tunes.iter().map(|(k, v)| (k.clone(), v.trainable_fraction)).collect::<BTreeMap<_, _>>(),
        "tunes": tunes,
        "paired_mean_auroc_differences": paired,
        "runs": runs,
        "counters": {
            "runs": files.len(),
            "train_examples": train.labels.len(),
            "test_examples": test.labels.len(),
            "steps_per_run": steps,
            "engine": files.values().fold(Counters::default(), |mut c, f| { c += f.counters; c }),
        },
    });
    write_json(&cfg.out.join("summary.json"), &summary)?;
    Ok(summary)
}

/// `sphere-<arm>.png`: seed 0's test features along the head's fake-minus-real direction and
/// the first principal axis orthogonal to it, reals and each held-out kind (the `linear` arm's
/// tower is the frozen backbone).
fn sphere_plot(cfg: &DetectConfig, arm: &Arm, f: &RunFile, test: &DetSet) -> Result<()> {
    if f.sphere.len() != test.labels.len() {
        return Ok(()); // a run file from before the projection was stored
    }
    let mut series = vec![Scatter {
        label: "real".into(),
        points: Vec::new(),
        color: RGBColor(40, 40, 40),
    }];
    for (i, k) in cfg.test_kinds.iter().enumerate() {
        series.push(Scatter {
            label: k.name().into(),
            points: Vec::new(),
            color: PALETTE[(i + 1) % PALETTE.len()],
        });
    }
    for (p, k) in f.sphere.iter().zip(&test.kinds) {
        let s = match k {
            None => 0,
            Some(k) => 1 + cfg.test_kinds.iter().position(|t| t == k).unwrap_or(0),
        };
        series[s].points.push((f64::from(p.0), f64::from(p.1)));
    }
    let sep = sphere::separation(&f.sphere, &test.labels);
    plot_scatter(
        &cfg.out.join(format!("sphere-{}.png", arm.name)),
        &format!(
            "{} (seed 0): test features on the sphere (real-fake centroid gap {sep:.3})",
            arm.name
        ),
        (
            "along the head's fake-minus-real direction",
            "first principal axis orthogonal to it",
        ),
        &series,
    )
}

/// `manipulations.png`: four test digits, real and with each kind.
fn grid(cfg: &DetectConfig, test: &Mnist) -> Result<()> {
    let mut imgs = Vec::new();
    for i in 0..4 {
        imgs.push((test.image(i).to_vec(), "real".to_string()));
        for (k, &kind) in manipulate::ALL.iter().enumerate() {
            let m = manipulate::apply(
                kind,
                test.image(i),
                test.image((i + 1 + 7 * k) % test.len()),
                (28, 28),
                mix64(DATA_SEED ^ 0x7E57 ^ mix64((k * 1000 + i) as u64)),
            )?;
            imgs.push((m, kind.name().to_string()));
        }
    }
    let tiles: Vec<Tile> = imgs
        .iter()
        .map(|(p, c)| Tile {
            pixels: p,
            caption: c.clone(),
            highlight: false,
        })
        .collect();
    plot_image_grid(
        &cfg.out.join("manipulations.png"),
        "local manipulations, one region each",
        &tiles,
        (28, 28),
        1 + manipulate::ALL.len(),
    )
}
