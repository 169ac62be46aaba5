//! `shiftkit train WORKLOAD ...` (SPEC §7).

use crate::engine::link::{parse_clock, Link, LinkModel};
use crate::engine::{ArrayShape, EngineKind};
use crate::error::Result;
use crate::format::Format;
use crate::nn::GemmKind;
use crate::workloads::data_diet::{self, train::Hyper, DataDietConfig, ScoreKind};
use crate::workloads::distill::{self, DistillConfig, LossKind, Weights};
use crate::workloads::grokking::{self, Control, GrokkingConfig, ModelKind, TicketFrom};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum Workload {
    /// Grokking tickets: modular addition (or MNIST), dense vs lottery ticket.
    Grokking(GrokkingArgs),
    /// Data diet: EL2N / GraNd scores, pruned-data retraining, noisy-label detection (CNN).
    DataDiet(DataDietArgs),
    /// Distillation: a wide CNN teacher (fp32, host), small students with CE, KD and KD++ (ND).
    Distill(DistillArgs),
    /// A mini CLIP (ViT + causal text Transformer) pretrained contrastively on captioned
    /// training digits, saved as a Hugging Face CLIPModel checkpoint in --out.
    ClipPretrain(ClipPretrainArgs),
    /// Detecting local manipulations of digits on held-out kinds with a CLIP vision tower:
    /// LN-tuning, linear probe, full fine-tuning (pretrains the mini CLIP into DIR/backbone).
    Clip(Box<ClipDetectArgs>),
}

#[derive(Args, Debug)]
pub struct ClipDetectArgs {
    #[command(flatten)]
    pub pretrain: ClipPretrainArgs,
    /// What the detector trains (comma-separated): ln, linear, full.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "ln,linear,full"
    )]
    pub tune: Vec<crate::workloads::clip::detect::Tune>,
    /// A Hugging Face CLIP checkpoint as the backbone instead of the mini CLIP.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Manipulation kinds the detector trains on (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "splice,blur,warp"
    )]
    pub train_kinds: Vec<crate::data::manipulate::Kind>,
    /// Held-out manipulation kinds it is evaluated on (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "blend,erase,contrast"
    )]
    pub test_kinds: Vec<crate::data::manipulate::Kind>,
    #[arg(long, default_value_t = 0.5)]
    pub uniformity: f64,
    #[arg(long, default_value_t = 0.1)]
    pub alignment: f64,
    /// Probability that a training feature is slerp-augmented toward a same-label partner.
    #[arg(long, default_value_t = 0.5)]
    pub slerp: f64,
    /// Seeds 0..N-1 for every tune (paired: the same head initialization and data order).
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Epochs of each detector.
    #[arg(long, default_value_t = 4)]
    pub detect_epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub detect_batch: usize,
    /// Peak learning rate of the detectors' AdamW (cosine decay).
    #[arg(long, default_value_t = 1e-3)]
    pub detect_lr: f32,
    /// Peak learning rate of the tower's LayerNorm weights and biases (with `ln` and `full`;
    /// the head and `full`'s other weights take --detect-lr). 3e-2: at 1e-3 LN-tuning moved
    /// the held-out AUROC no further than the linear probe (README).
    #[arg(long, default_value_t = 3e-2)]
    pub ln_lr: f32,
    /// Loss terms each dropped in one extra `ln` arm (comma-separated: uniformity, alignment,
    /// slerp), paired with `ln` by seed.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub ablate: Vec<crate::workloads::clip::detect::Ablation>,
    /// Real training digits (each also manipulated once).
    #[arg(long, default_value_t = 2000)]
    pub train_images: usize,
    /// Real test digits (each also manipulated by every held-out kind).
    #[arg(long, default_value_t = 1000)]
    pub test_images: usize,
}

#[derive(Args, Debug)]
pub struct ClipPretrainArgs {
    /// Number format and engine of every GEMM; --seed seeds initialization, data order and
    /// caption draws.
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Peak learning rate of AdamW (betas 0.9, 0.98).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f32,
    /// AdamW weight decay of the weight matrices.
    #[arg(long, default_value_t = 0.1)]
    pub weight_decay: f32,
    /// Share of the steps of linear warm-up before the cosine decay.
    #[arg(long, default_value_t = 0.05)]
    pub warmup: f64,
    /// Width of both towers (at least 48).
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// MLP width of both towers.
    #[arg(long, default_value_t = 256)]
    pub intermediate: usize,
    #[arg(long, default_value_t = 3)]
    pub vision_layers: usize,
    #[arg(long, default_value_t = 2)]
    pub text_layers: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Shared embedding width (projection_dim).
    #[arg(long, default_value_t = 64)]
    pub projection: usize,
    /// CI size: 1,000 training and 500 test images, 4 epochs of batch 32, width 48, one layer
    /// per tower (with `train clip`: detectors on 300 + 300 images, 1 epoch, 1 seed).
    #[arg(long)]
    pub quick: bool,
}

/// Flags every workload shares.
#[derive(Args, Debug)]
pub struct Common {
    #[arg(long, value_enum)]
    pub format: Format,
    /// Engine; default `cpu` for fp32, `golden` otherwise.
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory: metrics.csv, summary.json, plots.
    #[arg(long, default_value = "runs/train")]
    pub out: PathBuf,
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
    /// Also time every accelerator GEMM over this host link: uart:BAUD, axi:BITS@HZ or
    /// pcie:BYTES_PER_S (summary.json's `link`; grokking runs).
    #[arg(long, value_name = "LINK")]
    pub link: Option<Link>,
    /// Accelerator clock of the link model (Hz, K/M/G suffixes).
    #[arg(long, default_value = "100M", value_parser = parse_clock)]
    pub clock: f64,
}

impl Common {
    pub fn engine(&self) -> EngineKind {
        self.engine.unwrap_or(EngineKind::default_for(self.format))
    }

    /// The link model of `--link` / `--clock`, if a link is given.
    pub fn link_model(&self) -> Option<LinkModel> {
        self.link.clone().map(|link| LinkModel {
            link,
            clock_hz: self.clock,
        })
    }

    /// Refuse `--link` on a workload that does not model it yet.
    fn no_link(&self, workload: &str) -> Result<()> {
        match &self.link {
            Some(l) => Err(crate::Error::Usage(format!(
                "--link {}: the link model is reported by grokking runs only so far; drop --link for {workload}",
                l.spec
            ))),
            None => Ok(()),
        }
    }

    pub fn shape(&self) -> ArrayShape {
        ArrayShape {
            rows: self.rows,
            cols: self.cols,
            acc_bits: self.acc_bits,
        }
    }
}

#[derive(Args, Debug)]
pub struct GrokkingArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: ModelKind,
    /// Train the dense network (or reuse --from), prune it, rewind and retrain the ticket.
    #[arg(long)]
    pub ticket: bool,
    /// Fraction of all weights pruned (global magnitude pruning).
    #[arg(long, default_value_t = 0.6)]
    pub prune_rate: f64,
    /// Take the mask from the dense weights at this epoch, or from its final weights.
    #[arg(long, default_value = "final", value_parser = clap::value_parser!(TicketFrom))]
    pub ticket_from: TicketFrom,
    /// A control instead of the ticket: random mask at the same rate, or a dense net scaled to
    /// the ticket's L1 / L2 norm.
    #[arg(long, value_enum)]
    pub control: Option<Control>,
    /// AdamW weight decay (default as in the paper's code: 1 for the modular-addition models,
    /// 0.1 for the MNIST MLP).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    #[arg(long, default_value_t = 30_000)]
    pub epochs: usize,
    /// Evaluate (and write a metrics row) every this many epochs.
    #[arg(long, default_value_t = 10)]
    pub eval_every: usize,
    /// Stop this many epochs after test accuracy reaches 0.99 (the ticket / control run, or a
    /// plain dense run).
    #[arg(long)]
    pub stop_after_generalized: Option<usize>,
    /// With --ticket: stop the dense run this many epochs after it generalizes and take the
    /// mask there (default: the dense run trains for all --epochs, as in the paper).
    #[arg(long)]
    pub dense_stop_after_generalized: Option<usize>,
    /// Save the weights every this many epochs (weights/epoch_N), to take tickets later with
    /// --from DIR --ticket-from N.
    #[arg(long)]
    pub save_every: Option<usize>,
    /// Seed of the gradients' stochastic rounding (default: --seed), to vary the rounding draw
    /// while keeping the split and the initialization.
    #[arg(long)]
    pub rounding_seed: Option<u64>,
    /// Ablation: compute these GEMM roles in fp32 on the host instead of the accelerator
    /// (comma-separated), to see which role's quantization a result depends on.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub fp32_gemms: Vec<GemmKind>,
    /// Modulus p of (x + y) mod p.
    #[arg(long, default_value_t = 67)]
    pub p: usize,
    #[arg(long, default_value_t = 0.4)]
    pub train_frac: f64,
    /// Reuse the dense run in this directory (its summary.json and weights/) for --ticket.
    #[arg(long)]
    pub from: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DataDietArgs {
    /// Number format; --seed seeds the label flips of --label-noise.
    #[command(flatten)]
    pub common: Common,
    /// Scores whose highest-scoring subsets are retrained (comma-separated); every experiment
    /// also trains the full data and random subsets.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "el2n,grand,grand-init"
    )]
    pub score: Vec<ScoreKind>,
    /// Fractions of the training set kept (comma-separated); 1 trains only the full data.
    #[arg(long, value_delimiter = ',', default_value = "0.3,0.5,0.7")]
    pub keep: Vec<f64>,
    /// Drop the K highest-scoring examples before keeping the next ones.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Epoch whose model gives EL2N and GraNd (default: about 10% of --epochs, at least 1).
    #[arg(long)]
    pub score_epoch: Option<usize>,
    /// Independent initializations the scores are averaged over.
    #[arg(long, default_value_t = 4)]
    pub score_runs: usize,
    /// Retrain every subset with seeds 0..N-1 (the same seeds for every arm: paired); 0 computes
    /// the scores (and with --label-noise their detection figures) without retraining.
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Epochs of the full-data run; subsets train for the same number of steps.
    #[arg(long, default_value_t = 15)]
    pub epochs: usize,
    /// Flip this fraction of the training labels (seeded by --seed) before scoring.
    #[arg(long, default_value_t = 0.0)]
    pub label_noise: f64,
    /// Keep the same fraction of every class.
    #[arg(long)]
    pub class_balanced: bool,
    /// Also retrain on the lowest-scoring subset of each score.
    #[arg(long)]
    pub lowest: bool,
    /// A directory of train-*/t10k-* IDX files (MNIST, Fashion-MNIST, KMNIST) instead of the
    /// shipped split (t10k images 0-7999 train, 8000-9999 test).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// CI size: 1,000 training and 500 test images, 2 epochs, 1 scoring run, 1 seed.
    #[arg(long)]
    pub quick: bool,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Peak learning rate of SGD (Nesterov momentum 0.9, cosine schedule).
    #[arg(long, default_value_t = 0.05)]
    pub lr: f32,
    /// L2 weight decay (added to the gradient).
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f32,
    /// Scoring runs and retrainings side by side (default: one per core); the results do not
    /// depend on it.
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Args, Debug)]
pub struct DistillArgs {
    /// Number format and engine of the students (the teacher trains in fp32 on the host).
    #[command(flatten)]
    pub common: Common,
    /// Losses, each trained with every seed (comma-separated): ce, kd, kd-nd (KD++ = CE + KD + ND).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "ce,kd,kd-nd")]
    pub loss: Vec<LossKind>,
    /// alpha of KD (the same for kd and kd-nd).
    #[arg(long, default_value_t = 1.0)]
    pub kd_weight: f64,
    /// lambda of ND (its gradient scales as 1 / the teacher's feature norm, about 17 here).
    #[arg(long, default_value_t = 10.0)]
    pub nd_weight: f64,
    /// Softmax temperature T of KD.
    #[arg(long, default_value_t = 4.0)]
    pub temperature: f64,
    /// KD's weight ramps linearly from 0 (first epoch) to --kd-weight at this epoch.
    #[arg(long)]
    pub warmup_epochs: Option<usize>,
    /// Dropout rate of the projection (student width -> teacher width) ND sees.
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f32,
    /// Student widths: tiny (4-8-32), small (8-16-64), base (16-32-128, the data-diet CNN),
    /// wide (32-64-256), or CONV1-CONV2-HIDDEN.
    #[arg(long, default_value = "tiny")]
    pub student: String,
    /// Teacher widths (names as --student).
    #[arg(long, default_value = "base")]
    pub teacher: String,
    /// Students train on a class-balanced subset of N training images (the teacher on all).
    #[arg(long, default_value_t = 500)]
    pub train_size: usize,
    /// Seeds 0..N-1, the same for every loss (paired: same initialization and data order).
    #[arg(long, default_value_t = 5)]
    pub seeds: usize,
    /// Epochs of each student over its subset.
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Evaluate every this many epochs (and after the last).
    #[arg(long, default_value_t = 5)]
    pub eval_every: usize,
    /// Epochs of the teacher over the whole training split.
    #[arg(long, default_value_t = 3)]
    pub teacher_epochs: usize,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Peak learning rate of the students' SGD (Nesterov momentum 0.9, cosine schedule); at
    /// 0.02 one tiny KD student of five died (all ReLUs off).
    #[arg(long, default_value_t = 0.01)]
    pub lr: f32,
    /// Peak learning rate of the teacher's SGD.
    #[arg(long, default_value_t = 0.05)]
    pub teacher_lr: f32,
    /// L2 weight decay of students and teacher.
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f32,
    /// CI size: 1,000 training and 500 test images, a 2-epoch teacher, students on 500 images
    /// for 4 epochs, one seed.
    #[arg(long)]
    pub quick: bool,
}

pub fn run(workload: &Workload) -> Result<()> {
    match workload {
        Workload::Clip(d) => {
            use crate::workloads::clip::detect::{self, DetectConfig, SphereWeights};
            let mut pre = pretrain_config(&d.pretrain)?;
            pre.out = d.pretrain.common.out.join("backbone");
            let q = d.pretrain.quick;
            let cfg = DetectConfig {
                format: pre.format,
                engine: pre.engine,
                shape: pre.shape,
                window: pre.window,
                tunes: d.tune.clone(),
                model: d.model.clone(),
                pretrain: pre,
                train_kinds: d.train_kinds.clone(),
                test_kinds: d.test_kinds.clone(),
                weights: SphereWeights {
                    uniformity: d.uniformity,
                    alignment: d.alignment,
                    slerp: d.slerp,
                },
                ablations: d.ablate.clone(),
                seeds: if q { 1 } else { d.seeds },
                epochs: if q { 1 } else { d.detect_epochs },
                batch: d.detect_batch,
                lr: d.detect_lr,
                ln_lr: Some(d.ln_lr),
                weight_decay: 0.0,
                train_images: if q { 300 } else { d.train_images },
                test_images: if q { 200 } else { d.test_images },
                out: d.pretrain.common.out.clone(),
                progress: true,
            };
            let s = detect::run(&cfg)?;
            for (tune, t) in s["tunes"].as_object().into_iter().flatten() {
                crate::progress::println(format!(
                    "{tune}: mean held-out AUROC {:.4} +- {:.4} (trainable {:.3}%)",
                    t["mean_auroc"]["mean"].as_f64().unwrap_or(f64::NAN),
                    t["mean_auroc"]["se"].as_f64().unwrap_or(f64::NAN),
                    100.0 * t["trainable_fraction"].as_f64().unwrap_or(f64::NAN)
                ));
            }
            for (pair, m) in s["paired_mean_auroc_differences"]
                .as_object()
                .into_iter()
                .flatten()
            {
                crate::progress::println(format!(
                    "{pair}: paired difference of mean AUROC {:+.4} +- {:.4}",
                    m["mean"].as_f64().unwrap_or(f64::NAN),
                    m["se"].as_f64().unwrap_or(f64::NAN)
                ));
            }
            Ok(())
        }
        Workload::ClipPretrain(a) => {
            let cfg = pretrain_config(a)?;
            let r = crate::workloads::clip::pretrain::run(&cfg)?;
            crate::progress::println(format!(
                "zero-shot test accuracy {:.4} ({} test digits); checkpoint in {}",
                r.summary["zero_shot_accuracy"].as_f64().unwrap_or(f64::NAN),
                r.summary["plan"]["test_examples"],
                cfg.out.display()
            ));
            Ok(())
        }
        Workload::Distill(a) => {
            a.common.no_link("distill")?;
            let cfg = DistillConfig {
                format: a.common.format,
                engine: a.common.engine(),
                shape: a.common.shape(),
                window: a.common.window,
                losses: a.loss.clone(),
                weights: Weights {
                    kd: a.kd_weight,
                    nd: a.nd_weight,
                    temperature: a.temperature,
                    warmup_epochs: a
                        .warmup_epochs
                        .unwrap_or(((a.epochs as f64) / 12.0).round().max(1.0) as usize),
                    dropout: a.dropout,
                },
                student: a.student.clone(),
                teacher: a.teacher.clone(),
                train_size: Some(a.train_size),
                seeds: a.seeds,
                epochs: a.epochs,
                eval_every: a.eval_every,
                teacher_epochs: a.teacher_epochs,
                hyper: Hyper {
                    batch: a.batch,
                    lr: a.lr,
                    weight_decay: a.weight_decay,
                    ..Hyper::default()
                },
                teacher_hyper: Hyper {
                    lr: a.teacher_lr,
                    weight_decay: a.weight_decay,
                    ..Hyper::default()
                },
                quick: a.quick,
                out: a.common.out.clone(),
                progress: true,
            };
            distill::run(&cfg).map(|_| ())
        }
        Workload::DataDiet(a) => {
            a.common.no_link("data-diet")?;
            let cfg = DataDietConfig {
                format: a.common.format,
                engine: a.common.engine(),
                shape: a.common.shape(),
                window: a.common.window,
                scores: a.score.clone(),
                keep: a.keep.clone(),
                offset: a.offset,
                score_epoch: a.score_epoch,
                score_runs: a.score_runs,
                seeds: a.seeds,
                epochs: a.epochs,
                label_noise: a.label_noise,
                class_balanced: a.class_balanced,
                lowest: a.lowest,
                data_dir: a.data_dir.clone(),
                quick: a.quick,
                hyper: Hyper {
                    batch: a.batch,
                    lr: a.lr,
                    weight_decay: a.weight_decay,
                    ..Hyper::default()
                },
                noise_seed: a.common.seed,
                out: a.common.out.clone(),
                progress: true,
                jobs: a
                    .jobs
                    .unwrap_or_else(crate::workloads::parallel::default_jobs),
            };
            data_diet::run(&cfg).map(|_| ())
        }
        Workload::Grokking(a) => {
            let cfg = GrokkingConfig {
                model: a.model,
                format: a.common.format,
                engine: a.common.engine(),
                shape: a.common.shape(),
                window: a.common.window,
                seed: a.common.seed,
                rounding_seed: a.rounding_seed,
                fp32_gemms: a.fp32_gemms.clone(),
                p: a.p,
                train_frac: a.train_frac,
                epochs: a.epochs,
                eval_every: a.eval_every,
                lr: a.lr,
                weight_decay: a.weight_decay.unwrap_or(a.model.default_weight_decay()),
                stop_after_generalized: a.stop_after_generalized,
                dense_stop_after_generalized: a.dense_stop_after_generalized,
                save_every: a.save_every,
                ticket: a.ticket,
                prune_rate: a.prune_rate,
                ticket_from: a.ticket_from,
                control: a.control,
                from: a.from.clone(),
                out: a.common.out.clone(),
                progress: true,
                link: a.common.link_model(),
            };
            grokking::run(&cfg)
        }
    }
}

/// The pretraining settings the flags give.
fn pretrain_config(
    a: &ClipPretrainArgs,
) -> Result<crate::workloads::clip::pretrain::PretrainConfig> {
    use crate::workloads::clip::model::ClipSizes;
    use crate::workloads::clip::pretrain::{PretrainConfig, QUICK_SIZES};
    let sizes = if a.quick {
        QUICK_SIZES
    } else {
        ClipSizes {
            hidden: a.hidden,
            intermediate: a.intermediate,
            vision_layers: a.vision_layers,
            text_layers: a.text_layers,
            heads: a.heads,
            patch: ClipSizes::DEFAULT.patch,
            projection: a.projection,
        }
    };
    if sizes.hidden < 48 {
        return Err(crate::error::Error::Usage(format!(
            "--hidden {} is below 48: LN-tuning must stay under 1% of the parameters",
            sizes.hidden
        )));
    }
    let cfg = PretrainConfig {
        format: a.common.format,
        engine: a.common.engine(),
        shape: a.common.shape(),
        window: a.common.window,
        seed: a.common.seed,
        sizes,
        epochs: if a.quick { 4 } else { a.epochs },
        batch: if a.quick { 32 } else { a.batch },
        lr: a.lr,
        weight_decay: a.weight_decay,
        warmup: a.warmup,
        quick: a.quick,
        out: a.common.out.clone(),
        progress: true,
    };
    Ok(cfg)
}
