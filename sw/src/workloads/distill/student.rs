//! One student run: a small CNN trained on the accelerator (the run's format and engine) with
//! CE, KD or KD++ (CE + KD + ND), and its evaluation over training: test accuracy, and the
//! embeddings as ND sees them on the test set (after the projection for KD++; for CE and KD, and
//! as a like-for-like figure for all three, after a least-squares linear map to the teacher's
//! embeddings fitted on the student's training images).

use super::teacher::{outputs, Teacher};
use crate::data::mnist::Mnist;
use crate::data::Batches;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::nn::cnn::{batch_of, Cnn, CnnConfig};
use crate::nn::loss::{
    kd_kl, mean_cosine_to_rows, mean_row_norm, mean_rowwise_cosine, nd, softmax_cross_entropy,
};
use crate::nn::optim::LrSchedule;
use crate::nn::projection::Projection;
use crate::nn::{Offload, Param};
use crate::workloads::classifier::Hyper;
use crate::workloads::stats::{apply_linear_map, fit_linear_map};
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Cross-entropy on the labels only.
    Ce,
    /// CE + alpha * T^2 * KL(teacher || student) at temperature T (alpha warmed up).
    Kd,
    /// KD++: CE + KD + ND (the student's embedding pulled to the teacher's class mean
    /// direction, its norm up to the teacher's).
    KdNd,
}

impl LossKind {
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Ce => "ce",
            LossKind::Kd => "kd",
            LossKind::KdNd => "kd-nd",
        }
    }

    fn uses_kd(self) -> bool {
        self != LossKind::Ce
    }
}

/// The loss weights and the schedule of the KD weight.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Weights {
    /// alpha of KD.
    pub kd: f64,
    /// lambda of ND.
    pub nd: f64,
    pub temperature: f64,
    /// KD's weight is alpha * min(epoch / warmup_epochs, 1) at 0-based epoch `epoch`: off in
    /// the first epoch, full from epoch `warmup_epochs` on (the public code: 20 of 240).
    pub warmup_epochs: usize,
    /// Dropout rate of the projection.
    pub dropout: f32,
}

impl Weights {
    pub fn kd_at(&self, epoch: usize) -> f64 {
        self.kd * (epoch as f64 / self.warmup_epochs.max(1) as f64).min(1.0)
    }
}

/// One evaluation during training (a row of the run's `metrics.csv`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalRow {
    pub epoch: usize,
    /// Mean total loss and accuracy over the epoch's training batches.
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
    /// Post-projection (KD++) or least-squares-mapped (CE, KD) test embeddings: mean norm and
    /// mean cosine to the teacher's class mean.
    pub feature_norm: f64,
    pub cosine_to_class_mean: f64,
    /// Least-squares-mapped test embeddings for every loss: mean norm, cosine to the class mean,
    /// cosine to the teacher's embedding of the same image.
    pub lsq_feature_norm: f64,
    pub lsq_cosine_to_class_mean: f64,
    pub lsq_cosine_to_teacher: f64,
    /// The student's own (unprojected) test embeddings' mean norm.
    pub raw_feature_norm: f64,
    pub kd_weight: f64,
    pub macs: u64,
    pub cycles: u64,
    pub wall_s: f64,
}

pub const METRICS_HEADER: &str = "epoch,train_loss,train_acc,test_loss,test_acc,feature_norm,\
cosine_to_class_mean,lsq_feature_norm,lsq_cosine_to_class_mean,lsq_cosine_to_teacher,\
raw_feature_norm,kd_weight,macs,cycles,wall_s";

impl EvalRow {
    pub fn csv(&self) -> String {
        format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.6},{:.4},{},{},{:.3}",
            self.epoch,
            self.train_loss,
            self.train_acc,
            self.test_loss,
            self.test_acc,
            self.feature_norm,
            self.cosine_to_class_mean,
            self.lsq_feature_norm,
            self.lsq_cosine_to_class_mean,
            self.lsq_cosine_to_teacher,
            self.raw_feature_norm,
            self.kd_weight,
            self.macs,
            self.cycles,
            self.wall_s
        )
    }
}

/// What one run trains on and how long.
pub struct StudentSpec<'a> {
    pub config: CnnConfig,
    pub loss: LossKind,
    pub seed: u64,
    pub train: &'a Mnist,
    /// Positions in `train` (the class-balanced subset of `--train-size`).
    pub subset: &'a [usize],
    pub test: &'a Mnist,
    pub epochs: usize,
    /// Evaluate after every this many epochs (and after the last).
    pub eval_every: usize,
    pub weights: Weights,
    pub hyper: Hyper,
}

/// A student, its projection (KD++ with a width other than the teacher's) and its optimizer
/// state; built the same way for every loss of a seed (same initialization, same data order).
pub struct Student {
    pub model: Cnn,
    pub projection: Option<Projection>,
    opt: crate::nn::optim::SgdMomentum,
}

impl Student {
    pub fn new(spec: &StudentSpec, teacher_width: usize) -> Self {
        let seed = spec.seed;
        let model = Cnn::with_config(spec.config, crate::rng::mix64(seed ^ 0x57D_0E47));
        let projection =
            (spec.loss == LossKind::KdNd && spec.config.hidden != teacher_width).then(|| {
                Projection::new(
                    "proj",
                    spec.config.hidden,
                    teacher_width,
                    spec.weights.dropout,
                    seed,
                )
            });
        Student {
            model,
            projection,
            opt: spec.hyper.optimizer(),
        }
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        params_of(&mut self.model, &mut self.projection)
    }

    /// One optimizer step on the examples `ids` of `train`; returns (total loss, accuracy).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        ctx: &mut Offload,
        train: &Mnist,
        ids: &[usize],
        teacher: &Teacher,
        loss: LossKind,
        w: &Weights,
        kd_weight: f64,
        lr: f32,
    ) -> Result<(f64, f64)> {
        let labels: Vec<usize> = ids.iter().map(|&i| train.labels[i] as usize).collect();
        let x = batch_of(train, ids);
        // Before any backward pass: the projection's gradients accumulate first.
        self.params_mut().iter_mut().for_each(|p| p.zero_grad());
        let (logits, feats) = self.model.forward_features(ctx, &x, true)?;
        let ce = softmax_cross_entropy(&logits, &labels, true);
        let (mut total, mut dlogits) = (ce.loss, ce.grad);
        let mut dfeat = None;
        if loss.uses_kd() {
            let t = rows_of(&teacher.train_logits, ids);
            let kd = kd_kl(&logits, &t, w.temperature, kd_weight);
            total += kd.loss;
            crate::nn::residual::add_into(&mut dlogits, &kd.grad);
        }
        if loss == LossKind::KdNd {
            let t = rows_of(&teacher.train_features, ids);
            match &mut self.projection {
                Some(p) => {
                    let (s, cache) = p.forward_train(ctx, &feats)?;
                    let out = nd(&s, &t, &teacher.centers, &labels, w.nd);
                    total += out.loss;
                    dfeat = Some(p.backward(ctx, &out.grad, &cache)?);
                }
                None => {
                    let out = nd(&feats, &t, &teacher.centers, &labels, w.nd);
                    total += out.loss;
                    dfeat = Some(out.grad);
                }
            }
        }
        self.model
            .backward_with_features(ctx, &dlogits, dfeat.as_ref())?;
        self.opt.lr = lr;
        self.opt
            .step(&mut params_of(&mut self.model, &mut self.projection));
        Ok((total, ce.accuracy))
    }
}

fn params_of<'a>(model: &'a mut Cnn, projection: &'a mut Option<Projection>) -> Vec<&'a mut Param> {
    let mut v = model.params_mut();
    if let Some(p) = projection {
        v.extend(p.params_mut());
    }
    v
}

/// Rows `ids` of `m`.
pub fn rows_of(m: &Matrix, ids: &[usize]) -> Matrix {
    let mut data = Vec::with_capacity(ids.len() * m.cols);
    ids.iter().for_each(|&i| data.extend_from_slice(m.row(i)));
    Matrix {
        rows: ids.len(),
        cols: m.cols,
        data,
    }
}

/// The evaluation figures of a student now (evaluation mode).
struct Snapshot {
    test_loss: f64,
    test_acc: f64,
    feature_norm: f64,
    cosine: f64,
    lsq_norm: f64,
    lsq_cosine: f64,
    lsq_cosine_teacher: f64,
    raw_norm: f64,
}

fn evaluate(
    student: &mut Student,
    ctx: &mut Offload,
    spec: &StudentSpec,
    teacher: &Teacher,
) -> Result<Snapshot> {
    let eb = spec.hyper.eval_batch;
    let (logits, feats) = outputs(&mut student.model, ctx, spec.test, eb)?;
    let labels: Vec<usize> = spec.test.labels.iter().map(|&l| l as usize).collect();
    let test = softmax_cross_entropy(&logits, &labels, false);
    // The least-squares map from the student's embeddings of its training images to the
    // teacher's embeddings of the same images.
    let sub = spec.train.select(spec.subset);
    let (_, train_feats) = outputs(&mut student.model, ctx, &sub, eb)?;
    let t_train = rows_of(&teacher.train_features, spec.subset);
    let (ds, dt) = (feats.cols, teacher.centers.cols);
    let map = fit_linear_map(&train_feats.data, ds, &t_train.data, dt, sub.len());
    let mapped = Matrix::new(feats.rows, dt, apply_linear_map(&feats.data, ds, &map, dt))?;
    let lsq_norm = mean_row_norm(&mapped);
    let lsq_cosine = mean_cosine_to_rows(&mapped, &teacher.centers, &labels);
    let lsq_cosine_teacher = mean_rowwise_cosine(&mapped, &teacher.test_features);
    let (feature_norm, cosine) = match (&student.projection, spec.loss, ds == dt) {
        (Some(p), _, _) => {
            let mut proj = Vec::with_capacity(feats.rows * dt);
            for r in (0..feats.rows).step_by(eb.max(1)) {
                let n = eb.min(feats.rows - r);
                proj.extend(p.forward_eval(ctx, &feats.row_block(r, n))?.data);
            }
            let proj = Matrix::new(feats.rows, dt, proj)?;
            (
                mean_row_norm(&proj),
                mean_cosine_to_rows(&proj, &teacher.centers, &labels),
            )
        }
        // KD++ at the teacher's width: ND sees the raw embeddings.
        (None, LossKind::KdNd, true) => (
            mean_row_norm(&feats),
            mean_cosine_to_rows(&feats, &teacher.centers, &labels),
        ),
        _ => (lsq_norm, lsq_cosine),
    };
    Ok(Snapshot {
        test_loss: test.loss,
        test_acc: test.accuracy,
        feature_norm,
        cosine,
        lsq_norm,
        lsq_cosine,
        lsq_cosine_teacher,
        raw_norm: mean_row_norm(&feats),
    })
}

/// Train one student for `spec.epochs` epochs of its subset, evaluating after every epoch.
pub fn train(
    spec: &StudentSpec,
    ctx: &mut Offload,
    teacher: &Teacher,
    tick: &dyn Fn(u64),
) -> Result<Vec<EvalRow>> {
    let start = Instant::now();
    let mut student = Student::new(spec, teacher.centers.cols);
    let spe = Batches::steps_per_epoch(spec.subset.len(), spec.hyper.batch);
    let steps = spe * spec.epochs;
    let schedule = LrSchedule::Cosine {
        total: steps,
        warmup: 0,
    };
    let mut batches = Batches::new(spec.subset.len(), spec.hyper.batch, spec.seed);
    let mut rows = Vec::new();
    for epoch in 0..spec.epochs {
        let kd_weight = spec.weights.kd_at(epoch);
        let (mut loss_sum, mut acc_sum, mut seen) = (0.0f64, 0.0f64, 0usize);
        for s in 0..spe {
            let ids: Vec<usize> = batches
                .next_batch()
                .into_iter()
                .map(|i| spec.subset[i])
                .collect();
            let lr = schedule.lr_at(spec.hyper.lr, epoch * spe + s);
            let (loss, acc) = student.step(
                ctx,
                spec.train,
                &ids,
                teacher,
                spec.loss,
                &spec.weights,
                kd_weight,
                lr,
            )?;
            if !loss.is_finite() {
                return Err(Error::Usage(format!(
                    "the {} student diverged (seed {}, epoch {epoch}): lower --lr",
                    spec.loss.name(),
                    spec.seed
                )));
            }
            loss_sum += loss * ids.len() as f64;
            acc_sum += acc * ids.len() as f64;
            seen += ids.len();
            tick(1);
        }
        if (epoch + 1) % spec.eval_every.max(1) != 0 && epoch + 1 != spec.epochs {
            continue;
        }
        let e = evaluate(&mut student, ctx, spec, teacher)?;
        let c = ctx.counters();
        rows.push(EvalRow {
            epoch: epoch + 1,
            train_loss: loss_sum / seen as f64,
            train_acc: acc_sum / seen as f64,
            test_loss: e.test_loss,
            test_acc: e.test_acc,
            feature_norm: e.feature_norm,
            cosine_to_class_mean: e.cosine,
            lsq_feature_norm: e.lsq_norm,
            lsq_cosine_to_class_mean: e.lsq_cosine,
            lsq_cosine_to_teacher: e.lsq_cosine_teacher,
            raw_feature_norm: e.raw_norm,
            kd_weight,
            macs: c.macs,
            cycles: c.cycles,
            wall_s: start.elapsed().as_secs_f64(),
        });
    }
    Ok(rows)
}
