//! Mini-batch cross-entropy training of an `nn::cnn::Cnn` for a fixed number of steps on any
//! subset, and evaluation in batches (shared by the data-diet and distillation workloads).

use crate::data::mnist::Mnist;
use crate::data::Batches;
use crate::error::Result;
use crate::matrix::Matrix;
use crate::nn::cnn::{batch_of, Cnn, CLASSES};
use crate::nn::loss::{softmax_cross_entropy, LossOut};
use crate::nn::nchw::Nchw;
use crate::nn::optim::{LrSchedule, SgdMomentum};
use crate::nn::Offload;
use crate::workloads::report::MetricsRow;
use serde::Serialize;
use std::time::Instant;

/// Optimizer and batch settings of every run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Hyper {
    pub batch: usize,
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    /// L2 weight decay (added to the gradient, as the paper's `optax`/`torch` SGD).
    pub weight_decay: f32,
    /// Examples per forward pass when evaluating and scoring.
    pub eval_batch: usize,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper {
            batch: 128,
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 5e-4,
            eval_batch: 500,
        }
    }
}

impl Hyper {
    pub fn optimizer(&self) -> SgdMomentum {
        SgdMomentum::new(self.lr, self.momentum, self.weight_decay).with_nesterov(self.nesterov)
    }
}

/// One step: forward, cross-entropy, backward, SGD at rate `lr`.
pub fn train_step(
    model: &mut Cnn,
    ctx: &mut Offload,
    x: &Nchw,
    labels: &[usize],
    opt: &mut SgdMomentum,
    lr: f32,
) -> Result<LossOut> {
    let logits = model.forward(ctx, x, true)?;
    let out = softmax_cross_entropy(&logits, labels, true);
    model.params_mut().iter_mut().for_each(|p| p.zero_grad());
    model.backward(ctx, &out.grad)?;
    opt.lr = lr;
    opt.step(&mut model.params_mut());
    Ok(out)
}

/// Logits of every example of `set`, in order, in batches of `batch`.
pub fn predict(model: &mut Cnn, ctx: &mut Offload, set: &Mnist, batch: usize) -> Result<Matrix> {
    let mut data = Vec::with_capacity(set.len() * CLASSES);
    let ids: Vec<usize> = (0..set.len()).collect();
    for chunk in ids.chunks(batch.max(1)) {
        data.extend(model.forward(ctx, &batch_of(set, chunk), false)?.data);
    }
    Matrix::new(set.len(), CLASSES, data)
}

pub fn labels_of(set: &Mnist, ids: &[usize]) -> Vec<usize> {
    ids.iter().map(|&i| set.labels[i] as usize).collect()
}

/// Mean loss and accuracy on `set`.
pub fn evaluate(model: &mut Cnn, ctx: &mut Offload, set: &Mnist, batch: usize) -> Result<LossOut> {
    let logits = predict(model, ctx, set, batch)?;
    let labels: Vec<usize> = set.labels.iter().map(|&l| l as usize).collect();
    Ok(softmax_cross_entropy(&logits, &labels, false))
}

/// What one training run is.
pub struct RunSpec<'a> {
    pub train: &'a Mnist,
    /// Positions in `train` to train on.
    pub subset: &'a [usize],
    pub test: &'a Mnist,
    /// Optimizer steps, and the step count the cosine schedule spans (the full run's length,
    /// also when a score run stops early).
    pub steps: usize,
    pub schedule_steps: usize,
    /// Evaluate on `test` every this many steps (and after the last).
    pub eval_every: usize,
    pub order_seed: u64,
}

/// Train for `spec.steps` steps; one metrics row per evaluation. `epoch` counts evaluations
/// periods (full-data epochs when `eval_every` is the full data's steps per epoch).
pub fn train(
    model: &mut Cnn,
    ctx: &mut Offload,
    spec: &RunSpec,
    hyper: &Hyper,
    tick: &dyn Fn(u64),
) -> Result<Vec<MetricsRow>> {
    let start = Instant::now();
    let schedule = LrSchedule::Cosine {
        total: spec.schedule_steps,
        warmup: 0,
    };
    let mut opt = hyper.optimizer();
    let mut batches = Batches::new(spec.subset.len(), hyper.batch, spec.order_seed);
    let (mut loss_sum, mut correct, mut seen, mut rows) = (0.0f64, 0.0f64, 0usize, Vec::new());
    for step in 0..spec.steps {
        let ids: Vec<usize> = batches
            .next_batch()
            .into_iter()
            .map(|i| spec.subset[i])
            .collect();
        let x = batch_of(spec.train, &ids);
        let out = train_step(
            model,
            ctx,
            &x,
            &labels_of(spec.train, &ids),
            &mut opt,
            schedule.lr_at(hyper.lr, step),
        )?;
        if !out.loss.is_finite() {
            return Err(crate::error::Error::Usage(format!(
                "the training loss diverged (step {step}): lower --lr"
            )));
        }
        loss_sum += out.loss * ids.len() as f64;
        correct += out.accuracy * ids.len() as f64;
        seen += ids.len();
        tick(1);
        let done = step + 1;
        if done % spec.eval_every.max(1) == 0 || done == spec.steps {
            let test = evaluate(model, ctx, spec.test, hyper.eval_batch)?;
            let c = ctx.counters();
            rows.push(MetricsRow {
                epoch: done.div_ceil(spec.eval_every.max(1)),
                train_loss: loss_sum / seen as f64,
                train_acc: correct / seen as f64,
                test_loss: test.loss,
                test_acc: test.accuracy,
                macs: c.macs,
                cycles: c.cycles,
                wall_s: start.elapsed().as_secs_f64(),
            });
            (loss_sum, correct, seen) = (0.0, 0.0, 0);
        }
    }
    Ok(rows)
}
