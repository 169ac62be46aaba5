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
//! `full` everything. Loss: CE on slerp-augmented features (each moved, with probability
//! `--slerp`, toward a random same-label partner of the batch) + uniformity + label-aware
//! alignment of the features on the sphere; AdamW with cosine decay. Reported per held-out kind:
//! AUROC, AP and EER of the fake logit margin (reals against that kind's fakes).
//!
//! Output: `backbone/` (the pretrained mini CLIP, when no `--model`), `experiment.json`,
//! `runs/<tune>-seed<S>.json` (each run, reused on reruns), `summary.json`, `roc-<tune>.png`,
//! `manipulations.png`.

use super::checkpoint;
use super::model::normalize_pixels;
use super::pretrain::{self, PretrainConfig};
use crate::data::manipulate::{self, Kind};
use crate::data::mnist::{standard_split, Mnist};
use crate::data::Batches;
use crate::engine::{ArrayShape, EngineKind};
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
    check_experiment, plot_curves, plot_image_grid, write_json, Curve, Tile, PALETTE,
};
use crate::workloads::stats::{
    auroc, average_precision, equal_error_rate, mean_se, roc_curve, MeanSe,
};
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
    pub seeds: usize,
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
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
    pub epochs: usize,
    pub batch: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub train_images: usize,
    pub test_images: usize,
    pub data_seed: u64,
}

/// One held-out kind's figures in one run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KindResult {
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

/// The tower's parameters a tune trains.
fn trainable(tower: &mut VisionTower, tune: Tune) -> Vec<&mut Param> {
    match tune {
        Tune::Linear => Vec::new(),
        Tune::Full => tower.params_mut(),
        Tune::Ln => {
            let mut v = tower.pre_norm.params_mut();
            for l in &mut tower.layers {
                v.extend(l.norm1.params_mut());
                v.extend(l.norm2.params_mut());
            }
            v.extend(tower.post_norm.params_mut());
            v
        }
    }
}

/// The detection backbone: the checkpoint's vision tower without its projection.
fn backbone(dir: &std::path::Path) -> Result<VisionTower> {
    let mut tower = checkpoint::load(dir, NormKind::Layer)?;
    tower.projection = None;
    tower.config.projection = None;
    Ok(tower)
}

/// Fake-minus-real logit margins of a set.
fn scores(tower: &VisionTower, head: &Linear, ctx: &mut Offload, set: &DetSet) -> Result<Vec<f64>> {
    let px = adapt(&set.pixels, tower);
    let per = px.len() / set.labels.len();
    let mut out = Vec::with_capacity(set.labels.len());
    for chunk in px.chunks(250 * per) {
        let o = tower.forward(ctx, &images(chunk, tower))?;
        let (x, _) = l2_normalize_rows(&o.pooled);
        let logits = head.forward(ctx, &x)?;
        out.extend((0..logits.rows).map(|r| f64::from(logits.at(r, 1) - logits.at(r, 0))));
    }
    Ok(out)
}

struct Run<'a> {
    cfg: &'a DetectConfig,
    dir: &'a std::path::Path,
    train: &'a DetSet,
    test: &'a DetSet,
}

fn train_one(r: &Run, tune: Tune, seed: usize, bar: &Progress) -> Result<RunFile> {
    let cfg = r.cfg;
    let mut ctx = Offload::new(cfg.format, cfg.engine, cfg.shape, cfg.window, seed as u64)?;
    let mut tower = backbone(r.dir)?;
    let d = tower.config.hidden;
    let mut rng = SplitMix64::new(mix64(seed as u64 ^ 0x4EAD));
    let mut head = Linear::new(
        Param::normal("head.weight", d, 2, (d as f64).powf(-0.5), &mut rng),
        Some(Param::new("head.bias", Matrix::zeros(1, 2))),
    );
    let px = adapt(&r.train.pixels, &tower);
    let per = px.len() / r.train.labels.len();
    let n = r.train.labels.len();
    let steps_per_epoch = Batches::steps_per_epoch(n, cfg.batch);
    let total = cfg.epochs * steps_per_epoch;
    let schedule = LrSchedule::Cosine { total, warmup: 0 };
    let mut opt = AdamW::new(cfg.lr, (0.9, 0.999), cfg.weight_decay);
    let mut batches = Batches::new(n, cfg.batch, mix64(seed as u64 ^ 0xBA7C));
    let w = cfg.weights;
    let mut last = f64::NAN;
    for step in 0..total {
        let ids = batches.next_batch();
        let mut img = Vec::with_capacity(ids.len() * per);
        ids.iter()
            .for_each(|&i| img.extend_from_slice(&px[i * per..(i + 1) * per]));
        let labels: Vec<usize> = ids.iter().map(|&i| r.train.labels[i]).collect();
        let batch = images(&img, &tower);
        let (pooled, cache) = if tune == Tune::Linear {
            (tower.forward(&mut ctx, &batch)?.pooled, None)
        } else {
            let (o, c) = tower.forward_train(&mut ctx, &batch)?;
            (o.pooled, Some(c))
        };
        let (x, inv) = l2_normalize_rows(&pooled);
        let (xs, sc) = slerp_augment(&x, &labels, w.slerp, &mut rng);
        let logits = head.forward(&mut ctx, &xs)?;
        let ce = softmax_cross_entropy(&logits, &labels, true);
        tower.params_mut().iter_mut().for_each(|p| p.zero_grad());
        head.params_mut().iter_mut().for_each(|p| p.zero_grad());
        let dxs = head.backward(&mut ctx, &xs, &ce.grad, cache.is_some())?;
        let u = uniformity(&x, w.uniformity);
        let a = alignment(&x, &labels, w.alignment);
        if let (Some(cache), Some(dxs)) = (cache, dxs) {
            let mut dx = slerp_backward(&dxs, &sc);
            add_into(&mut dx, &u.grad);
            add_into(&mut dx, &a.grad);
            let dpooled = l2_normalize_backward(&x, &inv, &dx);
            tower.backward(&mut ctx, &dpooled, &cache)?;
        }
        last = ce.loss + u.loss + a.loss;
        if !last.is_finite() {
            return Err(Error::Usage(format!(
                "{} seed {seed}: the loss diverged at step {step} (lower --lr)",
                tune.name()
            )));
        }
        opt.lr = schedule.lr_at(cfg.lr, step);
        let mut params = trainable(&mut tower, tune);
        params.extend(head.params_mut());
        opt.step(&mut params);
        bar.inc(1);
    }
    let s = scores(&tower, &head, &mut ctx, r.test)?;
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
    })
}

/// Per tune: figures per held-out kind and their mean over kinds, each as mean +- SE over
/// seeds.
#[derive(Clone, Debug, Serialize)]
pub struct TuneSummary {
    pub trainable_parameters: usize,
    pub trainable_fraction: f64,
    pub per_kind: BTreeMap<String, BTreeMap<String, MeanSe>>,
    pub mean_auroc: MeanSe,
    pub mean_ap: MeanSe,
    pub mean_eer: MeanSe,
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
    Ok(())
}

pub fn run(cfg: &DetectConfig) -> Result<serde_json::Value> {
    check(cfg)?;
    let split = standard_split(None)?;
    let (ntrain, ntest) = (
        cfg.train_images.min(split.train.len()),
        cfg.test_images.min(split.test.len()),
    );
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
        epochs: cfg.epochs,
        batch: cfg.batch,
        lr: cfg.lr,
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
            (steps * cfg.tunes.len() * cfg.seeds) as u64,
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
    let mut files: BTreeMap<(Tune, usize), RunFile> = BTreeMap::new();
    for &tune in &cfg.tunes {
        for seed in 0..cfg.seeds {
            let path = runs_dir.join(format!("{}-seed{seed}.json", tune.name()));
            let reused = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<RunFile>(&t).ok());
            let file = match reused {
                Some(f) => {
                    bar.inc(steps as u64);
                    f
                }
                None => {
                    bar.set_message(format!("{} seed {seed}", tune.name()));
                    let f = train_one(&r, tune, seed, &bar)?;
                    write_json(&path, &f)?;
                    f
                }
            };
            files.insert((tune, seed), file);
        }
    }
    bar.finish();
    let runs: Vec<&KindResult> = files.values().flat_map(|f| &f.results).collect();
    let mut tunes = BTreeMap::new();
    for &tune in &cfg.tunes {
        let trainable_parameters = trainable(&mut probe, tune)
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
                        .filter(|k| k.tune == tune && k.kind == kind)
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
                .map(|s| {
                    let v: Vec<f64> = runs
                        .iter()
                        .filter(|k| k.tune == tune && k.seed == s)
                        .map(|k| f(k))
                        .collect();
                    v.iter().sum::<f64>() / v.len().max(1) as f64
                })
                .collect::<Vec<_>>()
        };
        tunes.insert(
            tune.name().to_string(),
            TuneSummary {
                trainable_parameters,
                trainable_fraction: trainable_parameters as f64 / (parameters + head_params) as f64,
                per_kind,
                mean_auroc: mean_se(&per_seed(|k| k.auroc)),
                mean_ap: mean_se(&per_seed(|k| k.ap)),
                mean_eer: mean_se(&per_seed(|k| k.eer)),
            },
        );
    }
    // Paired differences of the per-seed mean AUROC.
    let mean_auroc_of = |tune: Tune, seed: usize| {
        let v: Vec<f64> = runs
            .iter()
            .filter(|k| k.tune == tune && k.seed == seed)
            .map(|k| k.auroc)
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let mut paired = BTreeMap::new();
    for (a, b) in [
        (Tune::Ln, Tune::Linear),
        (Tune::Full, Tune::Linear),
        (Tune::Ln, Tune::Full),
    ] {
        if cfg.tunes.contains(&a) && cfg.tunes.contains(&b) {
            let d: Vec<f64> = (0..cfg.seeds)
                .map(|s| mean_auroc_of(a, s) - mean_auroc_of(b, s))
                .collect();
            paired.insert(format!("{}-{}", a.name(), b.name()), mean_se(&d));
        }
    }
    for &tune in &cfg.tunes {
        let f = &files[&(tune, 0)];
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
            &cfg.out.join(format!("roc-{}.png", tune.name())),
            &format!("--tune {} (seed 0): ROC per held-out kind", tune.name()),
            ("false-positive rate", "true-positive rate"),
            Some((0.0, 1.02)),
            &curves,
        )?;
    }
    let summary = serde_json::json!({
        "plan": plan,
        "backbone": backbone_summary,
        "backbone_parameters": parameters,
        "trainable_fraction": tunes.iter().map(|(k, v)| (k.clone(), v.trainable_fraction)).collect::<BTreeMap<_, _>>(),
        "tunes": tunes,
        "paired_mean_auroc_differences": paired,
        "runs": runs,
        "counters": {"runs": files.len(), "train_examples": train.labels.len(), "test_examples": test.labels.len()},
    });
    write_json(&cfg.out.join("summary.json"), &summary)?;
    Ok(summary)
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
