//! Full-batch training with periodic evaluation, recording accuracy next to the accelerator's
//! counters.

use super::data::{Dataset, Split};
use super::model::Model;
use crate::error::Result;
use crate::matrix::Matrix;
use crate::nn::loss::{mse_onehot, softmax_cross_entropy, LossOut};
use crate::nn::optim::AdamW;
use crate::nn::Offload;
use crate::progress::Progress;
use crate::workloads::report::MetricsRow;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossKind {
    CrossEntropy,
    Mse,
}

#[derive(Clone, Debug)]
pub struct TrainConfig {
    pub epochs: usize,
    pub eval_every: usize,
    pub lr: f32,
    pub betas: (f32, f32),
    pub weight_decay: f32,
    pub loss: LossKind,
    /// Stop this many epochs after test accuracy first reaches 0.99 (None: run every epoch).
    pub stop_after_generalized: Option<usize>,
    /// Keep copies of the weights at these epochs (for tickets taken mid-training).
    pub snapshot_epochs: Vec<usize>,
    pub progress: bool,
    pub label: String,
}

pub struct TrainResult {
    pub metrics: Vec<MetricsRow>,
    /// First evaluated epoch with train accuracy >= 0.99.
    pub memorized_epoch: Option<usize>,
    /// First evaluated epoch with test accuracy >= 0.99.
    pub generalized_epoch: Option<usize>,
    pub epochs_run: usize,
    pub wall_s: f64,
    pub snapshots: BTreeMap<usize, Vec<Matrix>>,
}

pub const ACC_THRESHOLD: f64 = 0.99;

fn evaluate(
    model: &mut dyn Model,
    ctx: &mut Offload,
    split: &Split,
    loss: LossKind,
    train: bool,
) -> Result<LossOut> {
    let out = model.forward(ctx, &split.inputs, train)?;
    Ok(match loss {
        LossKind::CrossEntropy => softmax_cross_entropy(&out, &split.labels, train),
        LossKind::Mse => mse_onehot(&out, &split.labels, train),
    })
}

/// Backward from the loss gradient and one optimizer step.
fn update(model: &mut dyn Model, ctx: &mut Offload, grad: &Matrix, opt: &mut AdamW) -> Result<()> {
    model.params_mut().iter_mut().for_each(|p| p.zero_grad());
    model.backward(ctx, grad)?;
    opt.step(&mut model.params_mut());
    Ok(())
}

/// One full-batch training step (forward, backward, optimizer) on `split`: what an epoch costs
/// without the evaluation (the `train_step` bench).
pub fn train_step(
    model: &mut dyn Model,
    ctx: &mut Offload,
    split: &Split,
    loss: LossKind,
    opt: &mut AdamW,
) -> Result<LossOut> {
    let fwd = evaluate(model, ctx, split, loss, true)?;
    update(model, ctx, &fwd.grad, opt)?;
    Ok(fwd)
}

pub fn weights_of(model: &dyn Model) -> Vec<Matrix> {
    model.params().iter().map(|p| p.value.clone()).collect()
}

pub fn train(
    model: &mut dyn Model,
    data: &Dataset,
    ctx: &mut Offload,
    cfg: &TrainConfig,
) -> Result<TrainResult> {
    let mut opt = AdamW::new(cfg.lr, cfg.betas, cfg.weight_decay);
    let start = Instant::now();
    let bar = if cfg.progress {
        Progress::new(&cfg.label, cfg.epochs as u64, "epochs")
    } else {
        Progress::hidden()
    };
    let mut res = TrainResult {
        metrics: Vec::new(),
        memorized_epoch: None,
        generalized_epoch: None,
        epochs_run: 0,
        wall_s: 0.0,
        snapshots: BTreeMap::new(),
    };
    let eval_every = cfg.eval_every.max(1);
    for epoch in 0..=cfg.epochs {
        if cfg.snapshot_epochs.contains(&epoch) {
            res.snapshots.insert(epoch, weights_of(model));
        }
        let is_eval = epoch % eval_every == 0 || epoch == cfg.epochs;
        let test = if is_eval {
            Some(evaluate(model, ctx, &data.test, cfg.loss, false)?)
        } else {
            None
        };
        let fwd = evaluate(model, ctx, &data.train, cfg.loss, epoch < cfg.epochs)?;
        let mut stop = false;
        if let Some(test) = test {
            let c = ctx.counters();
            res.metrics.push(MetricsRow {
                epoch,
                train_loss: fwd.loss,
                train_acc: fwd.accuracy,
                test_loss: test.loss,
                test_acc: test.accuracy,
                macs: c.macs,
                cycles: c.cycles,
                wall_s: start.elapsed().as_secs_f64(),
            });
            if res.memorized_epoch.is_none() && fwd.accuracy >= ACC_THRESHOLD {
                res.memorized_epoch = Some(epoch);
            }
            if res.generalized_epoch.is_none() && test.accuracy >= ACC_THRESHOLD {
                res.generalized_epoch = Some(epoch);
            }
            bar.set_message(format!(
                "train {:.3} test {:.3}",
                fwd.accuracy, test.accuracy
            ));
            if let (Some(g), Some(extra)) = (res.generalized_epoch, cfg.stop_after_generalized) {
                stop = epoch >= g + extra;
            }
        }
        res.epochs_run = epoch;
        if epoch == cfg.epochs || stop {
            break;
        }
        update(model, ctx, &fwd.grad, &mut opt)?;
        bar.inc(1);
    }
    bar.finish();
    res.wall_s = start.elapsed().as_secs_f64();
    Ok(res)
}
