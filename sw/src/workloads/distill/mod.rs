//! Knowledge distillation with the ND loss (Wang et al., "Improving Knowledge Distillation via
//! Regularizing Feature Norm and Direction"; public code WangYZ1608/Knowledge-Distillation-via-ND):
//! a wider CNN teacher trained once in fp32 on the host, small CNN students trained on the
//! accelerator with CE, KD (Hinton) and KD++ (CE + KD + ND), every (loss, seed) pair with the
//! same student initialization and data order, on a class-balanced subset of `--train-size`
//! training images.
//!
//! Output directory:
//! - `experiment.json`: the settings that fix every result (a rerun with other ones is refused);
//! - `teacher/`: `teacher.json` (its settings and test figures) and `weights/*.npy`, reused when
//!   the teacher's settings match;
//! - `runs/<loss>-seed<S>/`: `metrics.csv` (one row per evaluation) and `summary.json` of each
//!   student (reused on reruns);
//! - `metrics.csv`: every run's rows, prefixed by `loss,seed`;
//! - `summary.json`: the teacher, every run's final values, means and standard deviations per
//!   loss, the paired differences KD - CE and KD++ - KD with their standard errors;
//! - `accuracy.png`, `feature_norm.png`, `cosine_to_class_mean.png`: means over seeds against
//!   epoch, with the teacher's values as reference lines.

pub mod student;
pub mod teacher;

use crate::data::mnist::{standard_split, TrainTest};
use crate::data::subset;
use crate::data::Batches;
use crate::engine::{ArrayShape, Counters, EngineKind};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::nn::cnn::{CnnConfig, CLASSES};
use crate::nn::Offload;
use crate::npy::write_bytes;
use crate::progress::Progress;
use crate::workloads::classifier::Hyper;
use crate::workloads::report::{
    check_experiment, plot_curves, read_summary, write_json, CounterSummary, Curve, PALETTE,
};
use crate::workloads::stats::{mean_se, MeanSe};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
pub use student::{EvalRow, LossKind, Weights};
use teacher::{Teacher, TeacherPlan};

/// Named CNN widths for `--student` and `--teacher` (or `A-B-C`: conv1, conv2, hidden).
pub const NETWORKS: [(&str, CnnConfig); 4] = [
    (
        "tiny",
        CnnConfig {
            conv1: 4,
            conv2: 8,
            hidden: 32,
        },
    ),
    (
        "small",
        CnnConfig {
            conv1: 8,
            conv2: 16,
            hidden: 64,
        },
    ),
    ("base", CnnConfig::DATA_DIET),
    (
        "wide",
        CnnConfig {
            conv1: 32,
            conv2: 64,
            hidden: 256,
        },
    ),
];

/// The widths a `--student` / `--teacher` name stands for.
pub fn network(name: &str) -> Result<CnnConfig> {
    if let Some((_, c)) = NETWORKS.iter().find(|(n, _)| *n == name) {
        return Ok(*c);
    }
    let parts: Vec<usize> = name.split('-').filter_map(|p| p.parse().ok()).collect();
    match parts[..] {
        [a, b, c] if a > 0 && b > 0 && c > 0 && name.split('-').count() == 3 => Ok(CnnConfig {
            conv1: a,
            conv2: b,
            hidden: c,
        }),
        _ => Err(Error::Usage(format!(
            "unknown network '{name}': use one of {} or CONV1-CONV2-HIDDEN widths such as 4-8-32",
            NETWORKS.map(|(n, _)| n).join(", ")
        ))),
    }
}

#[derive(Clone, Debug)]
pub struct DistillConfig {
    pub format: Format,
    pub engine: EngineKind,
    pub shape: ArrayShape,
    pub window: u32,
    pub losses: Vec<LossKind>,
    pub weights: Weights,
    pub student: String,
    pub teacher: String,
    /// Students train on a class-balanced subset of this many training images (all when None).
    pub train_size: Option<usize>,
    pub seeds: usize,
    pub epochs: usize,
    pub eval_every: usize,
    pub teacher_epochs: usize,
    pub hyper: Hyper,
    pub teacher_hyper: Hyper,
    /// CI size: the first 1,000 training and 500 test images, a 2-epoch teacher, students on
    /// 500 images for 4 epochs (evaluated after each), one seed.
    pub quick: bool,
    pub out: PathBuf,
    pub progress: bool,
}

/// What the flags resolve to (`experiment.json`): everything but the losses and seeds, each of
/// which has its own run directory.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub format: Format,
    pub engine: EngineKind,
    pub array: ArrayShape,
    pub window: u32,
    pub data: String,
    pub train_examples: usize,
    pub test_examples: usize,
    pub student: String,
    pub student_model: String,
    pub student_parameters: usize,
    pub student_macs_per_example: usize,
    pub teacher: TeacherPlan,
    pub teacher_model: String,
    pub train_size: usize,
    pub epochs: usize,
    pub eval_every: usize,
    pub steps: usize,
    pub weights: Weights,
    pub hyper: Hyper,
    pub teacher_hyper: Hyper,
    pub schedule: &'static str,
}

impl DistillConfig {
    fn validate(&self) -> Result<()> {
        if self.losses.is_empty() {
            return Err(Error::Usage(
                "--loss needs at least one of ce, kd, kd-nd".into(),
            ));
        }
        if self.seeds == 0 || self.epochs == 0 || self.teacher_epochs == 0 {
            return Err(Error::Usage(
                "--seeds, --epochs and --teacher-epochs must be at least 1".into(),
            ));
        }
        if self.hyper.batch < 2 {
            return Err(Error::Usage(
                "--batch must be at least 2 (the projection's batch norm needs two rows)".into(),
            ));
        }
        let w = &self.weights;
        if !(w.temperature > 0.0 && w.temperature.is_finite()) {
            return Err(Error::Usage(format!(
                "--temperature {} must be positive",
                w.temperature
            )));
        }
        for (flag, v) in [("--kd-weight", w.kd), ("--nd-weight", w.nd)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::Usage(format!("{flag} {v} must be at least 0")));
            }
        }
        if !(0.0..1.0).contains(&w.dropout) {
            return Err(Error::Usage(format!(
                "--dropout {} must be in [0, 1)",
                w.dropout
            )));
        }
        if !(self.hyper.lr > 0.0 && self.teacher_hyper.lr > 0.0) {
            return Err(Error::Usage(
                "--lr and --teacher-lr must be positive".into(),
            ));
        }
        network(&self.student)?;
        network(&self.teacher)?;
        if let Some(n) = self.train_size {
            if n < CLASSES {
                return Err(Error::Usage(format!(
                    "--train-size {n} is too small: at least one image per class ({CLASSES})"
                )));
            }
        }
        Offload::new(self.format, self.engine, self.shape, self.window, 0)?;
        Ok(())
    }

    fn seeds(&self) -> usize {
        if self.quick {
            1
        } else {
            self.seeds
        }
    }

    fn epochs(&self) -> usize {
        if self.quick {
            4
        } else {
            self.epochs
        }
    }

    fn eval_every(&self) -> usize {
        if self.quick {
            1
        } else {
            self.eval_every
        }
    }

    fn data(&self) -> Result<TrainTest> {
        let mut d = standard_split(None)?;
        if self.quick {
            d.train = d
                .train
                .select(&(0..1000.min(d.train.len())).collect::<Vec<_>>());
            d.test = d
                .test
                .select(&(0..500.min(d.test.len())).collect::<Vec<_>>());
        }
        if let Some(n) = self.train_size {
            if n > d.train.len() {
                return Err(Error::Usage(format!(
                    "--train-size {n} is larger than the training split ({} images)",
                    d.train.len()
                )));
            }
        }
        Ok(d)
    }

    fn train_size(&self, d: &TrainTest) -> usize {
        match (self.quick, self.train_size) {
            (true, _) => 500,
            (false, Some(n)) => n,
            (false, None) => d.train.len(),
        }
    }

    fn plan(&self, d: &TrainTest) -> Result<Plan> {
        let student = network(&self.student)?;
        let tconf = network(&self.teacher)?;
        let teacher_epochs = if self.quick { 2 } else { self.teacher_epochs };
        let n = self.train_size(d);
        let kept = self.subset(d, 0).len();
        Ok(Plan {
            format: self.format,
            engine: self.engine,
            array: self.shape,
            window: self.window,
            data: "shipped MNIST t10k: images 0-7999 train, 8000-9999 test".into(),
            train_examples: d.train.len(),
            test_examples: d.test.len(),
            student: self.student.clone(),
            student_model: student.describe(),
            student_parameters: student.parameters(),
            student_macs_per_example: student.macs_per_example(),
            teacher: TeacherPlan {
                name: self.teacher.clone(),
                config: tconf,
                epochs: teacher_epochs,
                steps: teacher_epochs
                    * Batches::steps_per_epoch(d.train.len(), self.teacher_hyper.batch),
                train_examples: d.train.len(),
                batch: self.teacher_hyper.batch,
                lr: self.teacher_hyper.lr,
                weight_decay: self.teacher_hyper.weight_decay,
                seed: 0,
                format: Format::Fp32,
            },
            teacher_model: tconf.describe(),
            train_size: n,
            epochs: self.epochs(),
            eval_every: self.eval_every(),
            steps: self.epochs() * Batches::steps_per_epoch(kept, self.hyper.batch),
            weights: self.weights,
            hyper: self.hyper,
            teacher_hyper: self.teacher_hyper,
            schedule: "SGD, Nesterov momentum, cosine to 0 over the run, no warm-up",
        })
    }

    /// Seed `seed`'s class-balanced training subset (all images without --train-size).
    fn subset(&self, d: &TrainTest, seed: u64) -> Vec<usize> {
        let n = self.train_size(d);
        if n >= d.train.len() {
            return (0..d.train.len()).collect();
        }
        subset::random(&d.train.labels, n as f64 / d.train.len() as f64, true, seed)
    }
}

/// One finished student, as listed in `summary.json`'s `runs` (final values).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub loss: String,
    pub seed: u64,
    pub test_acc: f64,
    pub test_loss: f64,
    pub train_acc: f64,
    /// After the projection (KD++) or the least-squares map (CE, KD), on the test set.
    pub feature_norm: f64,
    pub cosine_to_class_mean: f64,
    pub features_via: String,
    /// After the least-squares map, for every loss.
    pub lsq_feature_norm: f64,
    pub lsq_cosine_to_class_mean: f64,
    pub lsq_cosine_to_teacher: f64,
    pub raw_feature_norm: f64,
    pub examples: usize,
    pub steps: usize,
    pub wall_s: f64,
    pub counters: Counters,
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create the output directory: {e}")))
}

fn run_dir(out: &Path, loss: LossKind, seed: u64) -> PathBuf {
    out.join("runs").join(format!("{}-seed{seed}", loss.name()))
}

fn read_rows(dir: &Path) -> Result<Vec<EvalRow>> {
    let path = dir.join("rows.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::file(
            &path,
            format!("cannot read ({e}): delete the run to redo it"),
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Error::file(&path, format!("not a run's rows ({e}): delete the run")))
}

#[allow(clippy::too_many_arguments)]
fn student_run(
    cfg: &DistillConfig,
    plan: &Plan,
    d: &TrainTest,
    teacher: &Teacher,
    loss: LossKind,
    seed: u64,
    bar: &Progress,
) -> Result<(RunRecord, Vec<EvalRow>)> {
    let dir = run_dir(&cfg.out, loss, seed);
    let subset = cfg.subset(d, seed);
    let steps = plan.epochs * Batches::steps_per_epoch(subset.len(), cfg.hyper.batch);
    if dir.join("summary.json").is_file() {
        let rec: RunRecord = serde_json::from_value(read_summary(&dir)?).map_err(|e| {
            Error::file(
                dir.join("summary.json"),
                format!("not a distillation run ({e}): delete it"),
            )
        })?;
        bar.inc(steps as u64);
        return Ok((rec, read_rows(&dir)?));
    }
    create_dir(&dir)?;
    let start = Instant::now();
    let mut ctx = Offload::new(cfg.format, cfg.engine, cfg.shape, cfg.window, seed)?;
    let spec = student::StudentSpec {
        config: network(&cfg.student)?,
        loss,
        seed,
        train: &d.train,
        subset: &subset,
        test: &d.test,
        epochs: plan.epochs,
        eval_every: plan.eval_every,
        weights: cfg.weights,
        hyper: cfg.hyper,
    };
    let rows = student::train(&spec, &mut ctx, teacher, &|n| bar.inc(n))?;
    let last = rows.last().expect("at least one epoch").clone();
    let mut text = format!("{}\n", student::METRICS_HEADER);
    rows.iter().for_each(|r| text.push_str(&(r.csv() + "\n")));
    write_bytes(&dir.join("metrics.csv"), text.as_bytes())?;
    write_json(&dir.join("rows.json"), &rows)?;
    let via = match (loss, network(&cfg.student)?.hidden == teacher.centers.cols) {
        (LossKind::KdNd, false) => "projection",
        (LossKind::KdNd, true) => "identity",
        _ => "least-squares",
    };
    let rec = RunRecord {
        loss: loss.name().into(),
        seed,
        test_acc: last.test_acc,
        test_loss: last.test_loss,
        train_acc: last.train_acc,
        feature_norm: last.feature_norm,
        cosine_to_class_mean: last.cosine_to_class_mean,
        features_via: via.into(),
        lsq_feature_norm: last.lsq_feature_norm,
        lsq_cosine_to_class_mean: last.lsq_cosine_to_class_mean,
        lsq_cosine_to_teacher: last.lsq_cosine_to_teacher,
        raw_feature_norm: last.raw_feature_norm,
        examples: subset.len(),
        steps,
        wall_s: start.elapsed().as_secs_f64(),
        counters: *ctx.counters(),
    };
    write_json(&dir.join("summary.json"), &rec)?;
    Ok((rec, rows))
}

/// What `shiftkit train distill` does; returns the summary it writes.
pub fn run(cfg: &DistillConfig) -> Result<Value> {
    cfg.validate()?;
    let start = Instant::now();
    let d = cfg.data()?;
    let plan = cfg.plan(&d)?;
    create_dir(&cfg.out)?;
    check_experiment(&cfg.out, &plan)?;
    let seeds = cfg.seeds() as u64;
    let mut losses = cfg.losses.clone();
    losses.sort();
    losses.dedup();
    let total = plan.teacher.steps + losses.len() * seeds as usize * plan.steps;
    let bar = if cfg.progress {
        Progress::new("distill", total as u64, "steps")
    } else {
        Progress::hidden()
    };
    bar.set_message("teacher");
    let teacher = teacher::prepare(
        &plan.teacher,
        &cfg.teacher_hyper,
        &d,
        &cfg.out.join("teacher"),
        &|n| bar.inc(n),
    )?;
    // Seeds outermost, so that a short budget has complete pairs.
    let mut records = Vec::new();
    let mut curves: BTreeMap<(LossKind, u64), Vec<EvalRow>> = BTreeMap::new();
    for seed in 0..seeds {
        for &loss in &losses {
            bar.set_message(format!("{} seed {seed}", loss.name()));
            let (rec, rows) = student_run(cfg, &plan, &d, &teacher, loss, seed, &bar)?;
            records.push(rec);
            curves.insert((loss, seed), rows);
        }
    }
    bar.finish();
    let mut text = format!("loss,seed,{}\n", student::METRICS_HEADER);
    for ((loss, seed), rows) in &curves {
        rows.iter()
            .for_each(|r| text.push_str(&format!("{},{seed},{}\n", loss.name(), r.csv())));
    }
    write_bytes(&cfg.out.join("metrics.csv"), text.as_bytes())?;
    let summary = summarize(cfg, &plan, &teacher, &records, start);
    write_json(&cfg.out.join("summary.json"), &summary)?;
    plot(cfg, &teacher, &losses, &curves)?;
    Ok(summary)
}

/// One figure of a run's final record / of an evaluation row.
type RecordField = fn(&RunRecord) -> f64;
type RowField = fn(&EvalRow) -> f64;

fn per_loss(records: &[RunRecord], loss: &str, f: fn(&RunRecord) -> f64) -> BTreeMap<u64, f64> {
    records
        .iter()
        .filter(|r| r.loss == loss)
        .map(|r| (r.seed, f(r)))
        .collect()
}

/// Paired (same seed) differences a - b of the test accuracy.
fn paired(records: &[RunRecord], a: &str, b: &str) -> Option<MeanSe> {
    let (x, y) = (
        per_loss(records, a, |r| r.test_acc),
        per_loss(records, b, |r| r.test_acc),
    );
    let diffs: Vec<f64> = x.iter().filter_map(|(s, v)| Some(v - y.get(s)?)).collect();
    (!diffs.is_empty()).then(|| mean_se(&diffs))
}

fn summarize(
    cfg: &DistillConfig,
    plan: &Plan,
    teacher: &Teacher,
    records: &[RunRecord],
    start: Instant,
) -> Value {
    let mut counters = Counters::default();
    records.iter().for_each(|r| counters += r.counters);
    let fields: [(&str, RecordField); 7] = [
        ("test_acc", |r| r.test_acc),
        ("feature_norm", |r| r.feature_norm),
        ("cosine_to_class_mean", |r| r.cosine_to_class_mean),
        ("lsq_feature_norm", |r| r.lsq_feature_norm),
        ("lsq_cosine_to_class_mean", |r| r.lsq_cosine_to_class_mean),
        ("lsq_cosine_to_teacher", |r| r.lsq_cosine_to_teacher),
        ("raw_feature_norm", |r| r.raw_feature_norm),
    ];
    let mut means = serde_json::Map::new();
    for loss in [LossKind::Ce, LossKind::Kd, LossKind::KdNd] {
        let rs: Vec<&RunRecord> = records.iter().filter(|r| r.loss == loss.name()).collect();
        if rs.is_empty() {
            continue;
        }
        let m: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, f)| {
                let v: Vec<f64> = rs.iter().map(|r| f(r)).collect();
                (k.to_string(), json!(mean_se(&v)))
            })
            .collect();
        means.insert(loss.name().into(), Value::Object(m));
    }
    let diff = |a: &str, b: &str| {
        paired(records, a, b).map(|p| {
            json!({
                "mean": p.mean, "se": p.se, "std": p.std, "n": p.n,
                "beats": p.n > 1 && p.mean > 2.0 * p.se,
            })
        })
    };
    json!({
        "workload": "distill",
        "experiment": plan,
        "losses": records.iter().map(|r| r.loss.clone()).collect::<std::collections::BTreeSet<_>>(),
        "seeds": cfg.seeds(),
        "teacher": {
            "name": cfg.teacher,
            "model": plan.teacher_model,
            "test_acc": teacher.test_acc,
            "feature_norm": teacher.feature_norm,
            "cosine_to_class_mean": teacher.cosine_to_class_mean,
            "reused": teacher.reused,
            "train_wall_s": teacher.train_wall_s,
        },
        "runs": records,
        "means": means,
        "paired": {
            "kd_minus_ce": diff("kd", "ce"),
            "kdnd_minus_kd": diff("kd-nd", "kd"),
            "kdnd_minus_ce": diff("kd-nd", "ce"),
        },
        "wall_s": start.elapsed().as_secs_f64(),
        "counters": CounterSummary::new(counters, cfg.shape.rows * cfg.shape.cols),
    })
}

/// Per loss, the mean over seeds of `f` at each evaluation epoch.
fn mean_curve(
    curves: &BTreeMap<(LossKind, u64), Vec<EvalRow>>,
    loss: LossKind,
    f: fn(&EvalRow) -> f64,
) -> Vec<(f64, f64)> {
    let mut at: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for ((l, _), rows) in curves {
        if *l == loss {
            rows.iter()
                .for_each(|r| at.entry(r.epoch).or_default().push(f(r)));
        }
    }
    at.into_iter()
        .map(|(e, v)| (e as f64, v.iter().sum::<f64>() / v.len() as f64))
        .collect()
}

fn plot(
    cfg: &DistillConfig,
    teacher: &Teacher,
    losses: &[LossKind],
    curves: &BTreeMap<(LossKind, u64), Vec<EvalRow>>,
) -> Result<()> {
    let label = |l: LossKind| match l {
        LossKind::Ce => "CE",
        LossKind::Kd => "KD",
        LossKind::KdNd => "KD++ (CE + KD + ND)",
    };
    let epochs = cfg.epochs() as f64;
    let reference = |name: &str, v: f64| {
        Curve::new(
            format!("teacher ({name})"),
            vec![(0.0, v), (epochs, v)],
            PALETTE[7],
            true,
        )
    };
    // (file, y axis, the figure, the teacher's value, the teacher line's label)
    let figs: [(&str, &str, RowField, f64, &str); 3] = [
        (
            "accuracy.png",
            "test accuracy",
            |r| r.test_acc,
            teacher.test_acc,
            "test acc",
        ),
        (
            "feature_norm.png",
            "mean feature norm (KD++: after the projection; CE, KD: least-squares map)",
            |r| r.feature_norm,
            teacher.feature_norm,
            "norm",
        ),
        (
            "cosine_to_class_mean.png",
            "mean cosine to the teacher's class mean (same features)",
            |r| r.cosine_to_class_mean,
            teacher.cosine_to_class_mean,
            "cosine",
        ),
    ];
    for (file, y_desc, f, tv, tname) in figs {
        let mut cs: Vec<Curve> = losses
            .iter()
            .enumerate()
            .map(|(i, &l)| Curve::new(label(l), mean_curve(curves, l, f), PALETTE[i], false))
            .collect();
        cs.push(reference(tname, tv));
        plot_curves(
            &cfg.out.join(file),
            &format!(
                "distillation, {} students on {} ({} seeds)",
                cfg.format,
                cfg.engine.name(),
                cfg.seeds()
            ),
            ("epoch", y_desc),
            None,
            &cs,
        )?;
    }
    Ok(())
}

/// The `shiftkit demo` segment (about a minute in fp32 on two cores): the default setting with
/// two seeds: the teacher, then CE, KD and KD++ students on 500 images. Writes the experiment
/// into `out_dir` (reused when rerun) and returns the figures to show.
pub fn demo_segment(out_dir: &Path) -> Result<Value> {
    let cfg = DistillConfig {
        format: Format::Fp32,
        engine: EngineKind::Cpu,
        shape: ArrayShape::default(),
        window: shiftkit_hw::config::DEFAULT_WINDOW,
        losses: vec![LossKind::Ce, LossKind::Kd, LossKind::KdNd],
        weights: Weights {
            kd: 1.0,
            nd: 10.0,
            temperature: 4.0,
            warmup_epochs: 2,
            dropout: 0.1,
        },
        student: "tiny".into(),
        teacher: "base".into(),
        train_size: Some(500),
        seeds: 2,
        epochs: 20,
        eval_every: 5,
        teacher_epochs: 3,
        hyper: Hyper {
            batch: 64,
            lr: 0.01,
            ..Hyper::default()
        },
        teacher_hyper: Hyper::default(),
        quick: false,
        out: out_dir.to_path_buf(),
        progress: true,
    };
    let s = run(&cfg)?;
    Ok(json!({
        "teacher": s["teacher"],
        "means": s["means"],
        "paired": s["paired"],
        "seeds": 2,
        "accuracy_png": out_dir.join("accuracy.png"),
        "feature_norm_png": out_dir.join("feature_norm.png"),
        "wall_s": s["wall_s"],
    }))
}
