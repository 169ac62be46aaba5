//! The teacher: a CNN trained once with cross-entropy in fp32 on the host on the whole training
//! split, stored in `teacher/` of the output folder (`teacher.json` + one NPY file per
//! parameter) and reused while its settings match. Then, in evaluation mode, everything the
//! students need from it: its logits and embeddings of every training image, its class means,
//! and its reference figures on the test set.

use crate::data::mnist::TrainTest;
use crate::engine::{ArrayShape, EngineKind};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::matrix::Matrix;
use crate::nn::cnn::{batch_of, Cnn, CnnConfig, CLASSES};
use crate::nn::loss::{mean_cosine_to_rows, mean_row_norm, softmax_cross_entropy};
use crate::nn::Offload;
use crate::npy::{read_matrix, write_matrix};
use crate::workloads::classifier::{self, Hyper, RunSpec};
use crate::workloads::report::write_json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// Everything the teacher's weights depend on; a stored teacher is reused only when its
/// `teacher.json` holds the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeacherPlan {
    pub name: String,
    pub config: CnnConfig,
    pub epochs: usize,
    pub steps: usize,
    pub train_examples: usize,
    pub batch: usize,
    pub lr: f32,
    pub weight_decay: f32,
    pub seed: u64,
    pub format: Format,
}

/// The teacher's outputs in evaluation mode.
pub struct Teacher {
    /// Logits and embeddings (penultimate features) of every training image, in order.
    pub train_logits: Matrix,
    pub train_features: Matrix,
    /// Embeddings of the test images.
    pub test_features: Matrix,
    /// Class means of the training embeddings (one row per class).
    pub centers: Matrix,
    pub test_acc: f64,
    /// Mean L2 norm of the test embeddings.
    pub feature_norm: f64,
    /// Mean cosine of a test embedding to its class's mean.
    pub cosine_to_class_mean: f64,
    pub reused: bool,
    pub train_wall_s: f64,
}

fn host() -> Result<Offload> {
    Offload::new(Format::Fp32, EngineKind::Cpu, ArrayShape::default(), 7, 0)
}

fn weight_path(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join("weights").join(format!("{name}.npy"))
}

/// The stored teacher in `dir` if its plan matches, else `None`.
fn load(dir: &Path, plan: &TeacherPlan) -> Result<Option<(Cnn, f64)>> {
    let Ok(text) = std::fs::read_to_string(dir.join("teacher.json")) else {
        return Ok(None);
    };
    let stored: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let Ok(have) = serde_json::from_value::<TeacherPlan>(stored["plan"].clone()) else {
        return Ok(None);
    };
    if have != *plan {
        return Ok(None);
    }
    let mut model = Cnn::with_config(plan.config, plan.seed);
    for p in model.params_mut() {
        let m = read_matrix(&weight_path(dir, &p.name))?;
        if (m.rows, m.cols) != (p.value.rows, p.value.cols) {
            return Err(Error::file(
                weight_path(dir, &p.name),
                "does not fit the teacher's shape: delete the teacher folder to retrain",
            ));
        }
        p.value = m;
    }
    Ok(Some((
        model,
        stored["train_wall_s"].as_f64().unwrap_or(0.0),
    )))
}

/// Train (or reuse) the teacher in `dir`, then compute its outputs.
pub fn prepare(
    plan: &TeacherPlan,
    hyper: &Hyper,
    d: &TrainTest,
    dir: &Path,
    tick: &dyn Fn(u64),
) -> Result<Teacher> {
    let mut ctx = host()?;
    let (mut model, reused, train_wall_s) = match load(dir, plan)? {
        Some((m, wall)) => {
            tick(plan.steps as u64);
            (m, true, wall)
        }
        None => {
            let start = Instant::now();
            let mut model = Cnn::with_config(plan.config, plan.seed);
            let all: Vec<usize> = (0..d.train.len()).collect();
            let spec = RunSpec {
                train: &d.train,
                subset: &all,
                test: &d.test,
                steps: plan.steps,
                schedule_steps: plan.steps,
                eval_every: plan.steps,
                order_seed: plan.seed,
            };
            classifier::train(&mut model, &mut ctx, &spec, hyper, tick)?;
            std::fs::create_dir_all(dir.join("weights"))
                .map_err(|e| Error::file(dir, format!("cannot create the teacher folder: {e}")))?;
            for p in model.params() {
                write_matrix(&weight_path(dir, &p.name), &p.value)?;
            }
            (model, false, start.elapsed().as_secs_f64())
        }
    };
    let eb = hyper.eval_batch;
    let (train_logits, train_features) = outputs(&mut model, &mut ctx, &d.train, eb)?;
    let (test_logits, test_features) = outputs(&mut model, &mut ctx, &d.test, eb)?;
    let train_labels: Vec<usize> = d.train.labels.iter().map(|&l| l as usize).collect();
    let test_labels: Vec<usize> = d.test.labels.iter().map(|&l| l as usize).collect();
    let centers = class_means(&train_features, &train_labels);
    let test_acc = softmax_cross_entropy(&test_logits, &test_labels, false).accuracy;
    let t = Teacher {
        feature_norm: mean_row_norm(&test_features),
        cosine_to_class_mean: mean_cosine_to_rows(&test_features, &centers, &test_labels),
        train_logits,
        train_features,
        test_features,
        centers,
        test_acc,
        reused,
        train_wall_s,
    };
    if !reused {
        // Written last: its presence marks a complete teacher.
        write_json(
            &dir.join("teacher.json"),
            &serde_json::json!({
                "plan": plan,
                "test_acc": t.test_acc,
                "feature_norm": t.feature_norm,
                "cosine_to_class_mean": t.cosine_to_class_mean,
                "train_wall_s": train_wall_s,
            }),
        )?;
    }
    Ok(t)
}

/// Logits and embeddings of every image of `set`, in order (evaluation mode).
pub fn outputs(
    model: &mut Cnn,
    ctx: &mut Offload,
    set: &crate::data::mnist::Mnist,
    batch: usize,
) -> Result<(Matrix, Matrix)> {
    let h = model.config.hidden;
    let (mut logits, mut feats) = (
        Vec::with_capacity(set.len() * CLASSES),
        Vec::with_capacity(set.len() * h),
    );
    let ids: Vec<usize> = (0..set.len()).collect();
    for chunk in ids.chunks(batch.max(1)) {
        let (l, f) = model.forward_features(ctx, &batch_of(set, chunk), false)?;
        logits.extend(l.data);
        feats.extend(f.data);
    }
    Ok((
        Matrix::new(set.len(), CLASSES, logits)?,
        Matrix::new(set.len(), h, feats)?,
    ))
}

/// Mean row of each class (a class without examples gets a zero row).
pub fn class_means(features: &Matrix, labels: &[usize]) -> Matrix {
    let d = features.cols;
    let mut sums = vec![0.0f64; CLASSES * d];
    let mut counts = [0usize; CLASSES];
    for (i, &y) in labels.iter().enumerate() {
        counts[y] += 1;
        for (s, &v) in sums[y * d..(y + 1) * d].iter_mut().zip(features.row(i)) {
            *s += v as f64;
        }
    }
    Matrix::from_fn(CLASSES, d, |c, j| {
        (sums[c * d + j] / counts[c].max(1) as f64) as f32
    })
}
