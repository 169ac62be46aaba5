//! Grokking tickets (Minegishi et al., "Grokking Tickets: Lottery Tickets Accelerate Grokking"):
//! modular addition with the paper's MLP (and an MNIST MLP), dense training until the network
//! generalizes, global magnitude pruning, rewinding to the initialization, and retraining the
//! ticket — with every GEMM on the chosen engine and format.

pub mod data;
pub mod model;
pub mod ticket;
pub mod train;
pub mod transformer;

use crate::engine::link::LinkModel;
use crate::engine::{ArrayShape, EngineKind};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::matrix::Matrix;
use crate::nn::offload::GemmKind;
use crate::nn::Offload;
use crate::npy;
use crate::workloads::report::{
    plot_accuracy, read_summary, read_test_curve, write_json, write_metrics_csv, CounterSummary,
    Curve, PALETTE,
};
use data::Dataset;
use model::{GrokMlp, MnistMlp, Model};
use serde::Serialize;
use std::path::{Path, PathBuf};
use train::{LossKind, TrainConfig, TrainResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Mlp,
    Transformer,
    Mnist,
}

impl ModelKind {
    /// AdamW weight decay of the paper's configurations (`config.py`, `config_mnist.py`).
    pub fn default_weight_decay(self) -> f32 {
        match self {
            ModelKind::Mlp | ModelKind::Transformer => 1.0,
            ModelKind::Mnist => 0.1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Control {
    /// Random pruning at initialization, same rate.
    Random,
    /// Dense network scaled to the ticket's L1 norm.
    NormL1,
    /// Dense network scaled to the ticket's L2 norm.
    NormL2,
}

/// Where the ticket's mask comes from: the dense run's weights at an epoch, or its final weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketFrom {
    Epoch(usize),
    Final,
}

impl std::str::FromStr for TicketFrom {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "final" {
            return Ok(TicketFrom::Final);
        }
        s.parse()
            .map(TicketFrom::Epoch)
            .map_err(|_| format!("'{s}' is neither an epoch number nor 'final'"))
    }
}

#[derive(Clone, Debug)]
pub struct GrokkingConfig {
    pub model: ModelKind,
    pub format: Format,
    pub engine: EngineKind,
    pub shape: ArrayShape,
    pub window: u32,
    pub seed: u64,
    /// Seed of the gradients' stochastic-rounding stream (`None`: `seed`). Separating it from
    /// the seed of the split and the initialization shows how much of a run is the rounding
    /// draw.
    pub rounding_seed: Option<u64>,
    /// Ablation: GEMM roles computed in fp32 on the host instead of the accelerator.
    pub fp32_gemms: Vec<GemmKind>,
    pub p: usize,
    pub train_frac: f64,
    pub epochs: usize,
    pub eval_every: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub stop_after_generalized: Option<usize>,
    /// Also stop the dense run of a final-weights ticket this many epochs after it generalizes
    /// (`None`: train it for the whole budget, as the paper does before taking the mask).
    pub dense_stop_after_generalized: Option<usize>,
    /// Save the weights every this many epochs (`weights/epoch_N`), for tickets taken later
    /// with `--from DIR --ticket-from N`.
    pub save_every: Option<usize>,
    pub ticket: bool,
    pub prune_rate: f64,
    pub ticket_from: TicketFrom,
    pub control: Option<Control>,
    pub from: Option<PathBuf>,
    pub out: PathBuf,
    pub progress: bool,
    /// Also time every accelerator GEMM over this host link (`summary.json`'s `link`).
    pub link: Option<LinkModel>,
}

impl GrokkingConfig {
    pub fn rounding_seed(&self) -> u64 {
        self.rounding_seed.unwrap_or(self.seed)
    }

    fn dataset(&self) -> Result<Dataset> {
        match self.model {
            ModelKind::Mlp | ModelKind::Transformer => {
                data::modular_addition(self.p, self.train_frac, self.seed)
            }
            ModelKind::Mnist => data::mnist_subset(1000, 1000, self.seed),
        }
    }

    /// A fresh model at the run's initialization (the same weights every call: rewinding).
    fn model(&self) -> Result<Box<dyn Model>> {
        let init_seed = self.seed.wrapping_mul(0x9E37_79B9).wrapping_add(17);
        match self.model {
            ModelKind::Mlp => Ok(Box::new(GrokMlp::new(self.p, 500, 48, init_seed))),
            ModelKind::Mnist => Ok(Box::new(MnistMlp::new(
                &[784, 200, 200, 10],
                8.0,
                init_seed,
            ))),
            ModelKind::Transformer => Ok(Box::new(transformer::GrokTransformer::new(
                self.p, 128, 128, init_seed,
            ))),
        }
    }

    fn loss(&self) -> LossKind {
        match self.model {
            ModelKind::Mnist => LossKind::Mse,
            _ => LossKind::CrossEntropy,
        }
    }

    /// The epochs whose weights are saved: every `save_every`, plus `extra`.
    fn snapshot_epochs(&self, extra: Option<usize>) -> Vec<usize> {
        let mut epochs: Vec<usize> = match self.save_every {
            Some(every) if every > 0 => (every..=self.epochs).step_by(every).collect(),
            _ => Vec::new(),
        };
        epochs.extend(extra);
        epochs
    }

    fn train_config(
        &self,
        label: &str,
        stop_after: Option<usize>,
        snapshots: Vec<usize>,
    ) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            eval_every: self.eval_every,
            lr: self.lr,
            betas: (0.9, 0.98),
            weight_decay: self.weight_decay,
            loss: self.loss(),
            stop_after_generalized: stop_after,
            snapshot_epochs: snapshots,
            progress: self.progress,
            label: label.to_string(),
        }
    }

    fn offload(&self) -> Result<Offload> {
        Ok(Offload::new(
            self.format,
            self.engine,
            self.shape,
            self.window,
            self.rounding_seed(),
        )?
        .with_host_roles(&self.fp32_gemms)
        .with_link(self.link.clone()))
    }
}

#[derive(Serialize)]
struct RunSummary {
    workload: &'static str,
    model: ModelKind,
    format: Format,
    engine: EngineKind,
    seed: u64,
    rounding_seed: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fp32_gemms: Vec<GemmKind>,
    p: usize,
    epochs: usize,
    epochs_run: usize,
    memorized_epoch: Option<usize>,
    generalized_epoch: Option<usize>,
    final_train_acc: f64,
    final_test_acc: f64,
    final_train_loss: f64,
    final_test_loss: f64,
    weight_decay: f32,
    array: ArrayShape,
    /// Exponent window E of the SQ formats.
    window: u32,
    counters: CounterSummary,
    /// With `--link`: the accelerator GEMMs timed over the link (`docs/accelerator.md`, "Link
    /// model"); a step is an epoch (full batch, evaluation GEMMs included).
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<serde_json::Value>,
    wall_s: f64,
    s_per_1000_epochs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ticket: Option<TicketSummary>,
}

#[derive(Serialize)]
struct TicketSummary {
    kind: String,
    prune_rate: f64,
    ticket_from: String,
    /// The dense epoch whose weights gave the mask ("final" resolved to the dense run's length).
    mask_epoch: Option<usize>,
    kept_fraction: f64,
    dense_generalized_epoch: Option<usize>,
    dense_memorized_epoch: Option<usize>,
    dense_dir: String,
}

fn summarize(
    cfg: &GrokkingConfig,
    res: &TrainResult,
    ctx: &Offload,
    ticket: Option<TicketSummary>,
) -> RunSummary {
    let last = res.metrics.last();
    RunSummary {
        workload: "grokking",
        model: cfg.model,
        format: cfg.format,
        engine: ctx.engine_kind(),
        seed: cfg.seed,
        rounding_seed: cfg.rounding_seed(),
        fp32_gemms: cfg.fp32_gemms.clone(),
        p: cfg.p,
        epochs: cfg.epochs,
        epochs_run: res.epochs_run,
        memorized_epoch: res.memorized_epoch,
        generalized_epoch: res.generalized_epoch,
        final_train_acc: last.map_or(0.0, |m| m.train_acc),
        final_test_acc: last.map_or(0.0, |m| m.test_acc),
        final_train_loss: last.map_or(0.0, |m| m.train_loss),
        final_test_loss: last.map_or(0.0, |m| m.test_loss),
        weight_decay: cfg.weight_decay,
        array: cfg.shape,
        window: cfg.window,
        counters: CounterSummary::new(*ctx.counters(), cfg.shape.rows * cfg.shape.cols),
        link: ctx
            .link()
            .map(|(model, totals)| totals.report(model, res.epochs_run as u64)),
        wall_s: res.wall_s,
        s_per_1000_epochs: if res.epochs_run > 0 {
            1000.0 * res.wall_s / res.epochs_run as f64
        } else {
            0.0
        },
        ticket,
    }
}

fn curve(label: &str, res: &TrainResult, test: bool, color: usize, dashed: bool) -> Curve {
    let points = res
        .metrics
        .iter()
        .map(|m| (m.epoch as f64, if test { m.test_acc } else { m.train_acc }))
        .collect();
    Curve::new(label, points, PALETTE[color % PALETTE.len()], dashed)
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create the output directory: {e}")))
}

fn save_weights(dir: &Path, model: &dyn Model, values: &[Matrix]) -> Result<()> {
    create_dir(dir)?;
    for (p, v) in model.params().iter().zip(values) {
        npy::write_matrix(&dir.join(format!("{}.npy", p.name)), v)?;
    }
    Ok(())
}

fn load_weights(dir: &Path, model: &dyn Model) -> Result<Vec<Matrix>> {
    model
        .params()
        .iter()
        .map(|p| {
            let m = npy::read_matrix(&dir.join(format!("{}.npy", p.name)))?;
            if (m.rows, m.cols) != (p.value.rows, p.value.cols) {
                return Err(Error::Shape(format!(
                    "{}: {}x{} saved, the model needs {}x{}: was the dense run made with other --p / --model?",
                    p.name, m.rows, m.cols, p.value.rows, p.value.cols
                )));
            }
            Ok(m)
        })
        .collect()
}

/// Train one network and write its metrics, summary, weights and plot into `dir`.
fn run_one(
    cfg: &GrokkingConfig,
    data: &Dataset,
    model: &mut dyn Model,
    dir: &Path,
    label: &str,
    stop_after: Option<usize>,
    snapshots: Vec<usize>,
    ticket: Option<TicketSummary>,
) -> Result<TrainResult> {
    create_dir(dir)?;
    let init = train::weights_of(model);
    let mut ctx = cfg.offload()?;
    let res = train::train(
        model,
        data,
        &mut ctx,
        &cfg.train_config(label, stop_after, snapshots),
    )?;
    write_metrics_csv(&dir.join("metrics.csv"), &res.metrics)?;
    save_weights(&dir.join("weights").join("init"), model, &init)?;
    save_weights(
        &dir.join("weights").join("final"),
        model,
        &train::weights_of(model),
    )?;
    for (epoch, w) in &res.snapshots {
        save_weights(
            &dir.join("weights").join(format!("epoch_{epoch}")),
            model,
            w,
        )?;
    }
    let title = format!(
        "grokking {} {} on {}",
        label,
        cfg.format,
        ctx.engine_kind().name()
    );
    plot_accuracy(
        &dir.join("accuracy.png"),
        &title,
        &[
            curve("train", &res, false, 0, true),
            curve("test", &res, true, 0, false),
        ],
    )?;
    write_json(
        &dir.join("summary.json"),
        &summarize(cfg, &res, &ctx, ticket),
    )?;
    Ok(res)
}

/// What `shiftkit train grokking` does.
pub fn run(cfg: &GrokkingConfig) -> Result<()> {
    if !(0.0..1.0).contains(&cfg.prune_rate) {
        return Err(Error::Usage(format!(
            "--prune-rate {} must be in [0, 1)",
            cfg.prune_rate
        )));
    }
    cfg.offload()?; // a bad format/engine pair fails before anything is written
    let data = cfg.dataset()?;
    create_dir(&cfg.out)?;
    if !cfg.ticket && cfg.control.is_none() {
        let mut model = cfg.model()?;
        run_one(
            cfg,
            &data,
            model.as_mut(),
            &cfg.out,
            "dense",
            cfg.stop_after_generalized,
            cfg.snapshot_epochs(None),
            None,
        )?;
        return Ok(());
    }

    // 1. The dense run: reused from --from, or trained into OUT/dense until it generalizes.
    let template = cfg.model()?;
    let (dense_dir, dense_gen, dense_mem, dense_epochs, dense_res) = match &cfg.from {
        Some(dir) => {
            let s = read_summary(dir)?;
            let epoch = |k: &str| s[k].as_u64().map(|v| v as usize);
            (
                dir.clone(),
                epoch("generalized_epoch"),
                epoch("memorized_epoch"),
                epoch("epochs_run"),
                None,
            )
        }
        None => {
            let dir = cfg.out.join("dense");
            let snapshots = cfg.snapshot_epochs(match cfg.ticket_from {
                TicketFrom::Epoch(e) => Some(e),
                TicketFrom::Final => None,
            });
            // The paper takes the mask from the final weights of a full-length dense run; a
            // shorter budget may stop the dense run some epochs after it generalizes.
            let stop = cfg.dense_stop_after_generalized;
            let mut dense = cfg.model()?;
            let res = run_one(
                cfg,
                &data,
                dense.as_mut(),
                &dir,
                "dense",
                stop,
                snapshots,
                None,
            )?;
            (
                dir,
                res.generalized_epoch,
                res.memorized_epoch,
                Some(res.epochs_run),
                Some(res),
            )
        }
    };
    let source = match cfg.ticket_from {
        TicketFrom::Epoch(e) => dense_dir.join("weights").join(format!("epoch_{e}")),
        TicketFrom::Final => dense_dir.join("weights").join("final"),
    };
    if !source.is_dir() {
        return Err(Error::file(
            &source,
            "no weights here: take the ticket from an epoch the dense run reached (or 'final')",
        ));
    }
    let trained = load_weights(&source, template.as_ref())?;
    let trained_refs: Vec<&Matrix> = trained.iter().collect();

    // 2. The mask (or, for the norm controls, the scale), applied at the same initialization.
    let mut net = cfg.model()?;
    let init: Vec<Matrix> = train::weights_of(net.as_ref());
    let init_refs: Vec<&Matrix> = init.iter().collect();
    let magnitude = ticket::magnitude_masks(&trained_refs, cfg.prune_rate);
    let kind = match cfg.control {
        None => {
            install_masks(net.as_mut(), magnitude);
            "ticket".to_string()
        }
        Some(Control::Random) => {
            install_masks(
                net.as_mut(),
                ticket::random_masks(&init_refs, cfg.prune_rate, cfg.seed),
            );
            "random-mask".to_string()
        }
        Some(c @ (Control::NormL1 | Control::NormL2)) => {
            let p = if c == Control::NormL1 { 1 } else { 2 };
            let ratio = ticket::lp_norm(&init_refs, Some(&magnitude), p)
                / ticket::lp_norm(&init_refs, None, p);
            for param in net.params_mut() {
                param.value.data.iter_mut().for_each(|v| *v *= ratio as f32);
            }
            format!("dense-scaled-to-ticket-l{p}")
        }
    };
    let kept: usize = net
        .params()
        .iter()
        .map(|p| {
            p.mask
                .as_ref()
                .map_or(p.len(), |m| m.iter().filter(|&&k| k).count())
        })
        .sum();
    let total: usize = net.params().iter().map(|p| p.len()).sum();
    let summary = TicketSummary {
        kind: kind.clone(),
        prune_rate: cfg.prune_rate,
        ticket_from: match cfg.ticket_from {
            TicketFrom::Epoch(e) => e.to_string(),
            TicketFrom::Final => "final".into(),
        },
        mask_epoch: match cfg.ticket_from {
            TicketFrom::Epoch(e) => Some(e),
            TicketFrom::Final => dense_epochs,
        },
        kept_fraction: kept as f64 / total as f64,
        dense_generalized_epoch: dense_gen,
        dense_memorized_epoch: dense_mem,
        dense_dir: dense_dir.display().to_string(),
    };

    // 3. Retrain, and plot against the dense run.
    let res = run_one(
        cfg,
        &data,
        net.as_mut(),
        &cfg.out,
        &kind,
        cfg.stop_after_generalized,
        Vec::new(),
        Some(summary),
    )?;
    if let Some(dense) = dense_res {
        let title = format!(
            "dense vs {kind}, {} (prune rate {})",
            cfg.format, cfg.prune_rate
        );
        plot_accuracy(
            &cfg.out.join("dense_vs_ticket.png"),
            &title,
            &[
                curve("dense test", &dense, true, 0, false),
                curve("dense train", &dense, false, 0, true),
                curve(&format!("{kind} test"), &res, true, 1, false),
                curve(&format!("{kind} train"), &res, false, 1, true),
            ],
        )?;
    }
    Ok(())
}

fn install_masks(model: &mut dyn Model, masks: Vec<Vec<bool>>) {
    for (p, m) in model.params_mut().into_iter().zip(masks) {
        p.set_mask(m);
    }
}

/// Plot test accuracy of several finished runs (e.g. one per format) into one PNG.
pub fn plot_runs(path: &Path, title: &str, runs: &[(String, PathBuf)]) -> Result<()> {
    let mut curves = Vec::new();
    for (i, (label, dir)) in runs.iter().enumerate() {
        let points = read_test_curve(dir)?;
        curves.push(Curve::new(
            label.clone(),
            points,
            PALETTE[i % PALETTE.len()],
            false,
        ));
    }
    plot_accuracy(path, title, &curves)
}
