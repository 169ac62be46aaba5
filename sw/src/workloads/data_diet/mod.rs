//! Data diet (Paul, Ganguli & Dziugaite, "Deep Learning on a Data Diet", 2021): score every
//! training example early in training (EL2N, GraNd; GraNd also at initialization), keep a
//! fraction of the highest-scoring examples, retrain from scratch on them for as many steps as
//! the full-data run, and compare against random subsets of the same size, the lowest-scoring
//! subsets and the full data. Optionally with flipped labels, to see how well each score finds
//! them. The CNN (`cnn`) runs every GEMM on the chosen engine and format.
//!
//! Output directory:
//! - `experiment.json`: the flags that fix every result (a rerun with other ones is refused);
//! - `score-runs/run_R.csv`: each scoring run's per-example scores (reused on reruns);
//! - `scores.csv`: `index,label,<one column per --score>[,flipped]`, the scores averaged over
//!   the scoring runs (the input norms GraNd at init is compared with are in `summary.json`'s
//!   Spearman figure, recomputable from the images);
//! - `runs/<score>-keep<F>-seed<S>/` (and `runs/full-seed<S>/`): `metrics.csv`, `summary.json`
//!   of each retraining (reused on reruns);
//! - `summary.json`: every run, means and standard deviations, paired differences, the
//!   noise-detection figures, Spearman(GraNd at init, input norm), wall time and counters;
//! - `accuracy_vs_keep.png`, `score_hist.png`, `top_el2n.png`.

pub mod train;

/// The data-diet CNN is `nn::cnn::Cnn` at its default widths.
pub mod cnn {
    pub use crate::nn::cnn::{batch_of, Cnn, CnnConfig, CLASSES};
}
pub use crate::data::subset;
pub use crate::workloads::stats;

use crate::data::mnist::{standard_split, Mnist, TrainTest};
use crate::data::Batches;
use crate::engine::{ArrayShape, Counters, EngineKind};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::nn::Offload;
use crate::npy::write_bytes;
use crate::workloads::parallel;
use crate::workloads::report::{
    check_experiment, plot_error_bars, plot_histograms, plot_image_grid, read_summary, write_json,
    write_metrics_csv, CounterSummary, ErrorSeries, Tile, PALETTE,
};
use cnn::{Cnn, CLASSES};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{json, Value};
use stats::{auroc, mean_se, spearman, top_k_precision, MeanSe};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use subset::Pick;
use train::{el2n, grand, Hyper, RunSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreKind {
    /// || softmax(f(x)) - onehot(y) ||_2 at the score epoch.
    El2n,
    /// || grad_theta loss(x, y) ||_2 at the score epoch.
    Grand,
    /// GraNd at initialization.
    GrandInit,
    /// Random scores: the random-subset baseline (trained in every experiment anyway).
    Random,
}

impl ScoreKind {
    pub fn name(self) -> &'static str {
        match self {
            ScoreKind::El2n => "el2n",
            ScoreKind::Grand => "grand",
            ScoreKind::GrandInit => "grand-init",
            ScoreKind::Random => "random",
        }
    }
}

#[derive(Clone, Debug)]
pub struct DataDietConfig {
    pub format: Format,
    pub engine: EngineKind,
    pub shape: ArrayShape,
    pub window: u32,
    pub scores: Vec<ScoreKind>,
    pub keep: Vec<f64>,
    pub offset: usize,
    /// `None`: about 10% of training (at least 1 epoch).
    pub score_epoch: Option<usize>,
    pub score_runs: usize,
    pub seeds: usize,
    pub epochs: usize,
    pub label_noise: f64,
    pub class_balanced: bool,
    /// Also retrain on the lowest-scoring subset of each score.
    pub lowest: bool,
    pub data_dir: Option<PathBuf>,
    /// CI size: the first 1,000 training and 500 test images, 2 epochs (score epoch 1), one
    /// scoring run and one seed.
    pub quick: bool,
    pub hyper: Hyper,
    /// Seed of the label flips.
    pub noise_seed: u64,
    pub out: PathBuf,
    pub progress: bool,
    /// Scoring runs and retrainings side by side (`workloads::parallel`); the results do not
    /// depend on it.
    pub jobs: usize,
}

/// What the flags resolve to: everything a result depends on except the seeds, fractions and
/// scores (each of which has its own run directory). Stored as `experiment.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub format: Format,
    pub engine: EngineKind,
    pub array: ArrayShape,
    pub window: u32,
    pub data: String,
    pub train_examples: usize,
    pub test_examples: usize,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    pub steps: usize,
    pub score_epoch: usize,
    pub score_runs: usize,
    pub offset: usize,
    pub class_balanced: bool,
    pub label_noise: f64,
    pub noise_seed: u64,
    pub hyper: Hyper,
    pub schedule: &'static str,
    pub model: String,
}

/// One retraining arm: score name, fraction kept, and how the subset is picked (`None`: full
/// data or random).
type Arm = (String, f64, Option<(ScoreKind, Pick)>);

impl DataDietConfig {
    fn validate(&self) -> Result<()> {
        if self.jobs == 0 {
            return Err(Error::Usage(
                "--jobs 0: runs side by side must be at least 1".into(),
            ));
        }
        if let Some(k) = self.keep.iter().find(|k| !(**k > 0.0 && **k <= 1.0)) {
            return Err(Error::Usage(format!(
                "--keep {k} must be a fraction in (0, 1]"
            )));
        }
        if self.keep.is_empty() {
            return Err(Error::Usage("--keep needs at least one fraction".into()));
        }
        if !(0.0..1.0).contains(&self.label_noise) {
            return Err(Error::Usage(format!(
                "--label-noise {} must be in [0, 1)",
                self.label_noise
            )));
        }
        if self.epochs == 0 || self.score_runs == 0 {
            return Err(Error::Usage(
                "--epochs and --score-runs must be at least 1 (--seeds 0 computes the scores only)"
                    .into(),
            ));
        }
        if self.hyper.batch == 0 {
            return Err(Error::Usage("--batch must be at least 1".into()));
        }
        if let Some(e) = self.score_epoch {
            if e > self.epochs() {
                return Err(Error::Usage(format!(
                    "--score-epoch {e} is after the last epoch ({}): score within training",
                    self.epochs()
                )));
            }
        }
        Offload::new(self.format, self.engine, self.shape, self.window, 0)?;
        Ok(())
    }

    fn epochs(&self) -> usize {
        if self.quick {
            2
        } else {
            self.epochs
        }
    }

    fn score_epoch(&self) -> usize {
        match (self.quick, self.score_epoch) {
            (true, _) => 1,
            (false, Some(e)) => e,
            (false, None) => ((self.epochs as f64 * 0.1).round() as usize).max(1),
        }
    }

    fn seeds(&self) -> usize {
        if self.quick {
            self.seeds.min(1)
        } else {
            self.seeds
        }
    }

    fn score_runs(&self) -> usize {
        if self.quick {
            1
        } else {
            self.score_runs
        }
    }

    fn offload(&self, seed: u64) -> Result<Offload> {
        Offload::new(self.format, self.engine, self.shape, self.window, seed)
    }

    /// The split, cut to CI size with `quick`, with the seeded label noise applied to train.
    fn data(&self) -> Result<(TrainTest, Vec<bool>)> {
        let mut d = standard_split(self.data_dir.as_deref())?;
        if self.quick {
            d.train = d
                .train
                .select(&(0..d.train.len().min(1000)).collect::<Vec<_>>());
            d.test = d
                .test
                .select(&(0..d.test.len().min(500)).collect::<Vec<_>>());
        }
        if (d.train.rows, d.train.cols) != (28, 28) {
            return Err(Error::Usage(format!(
                "the data-diet CNN takes 28x28 images, the data set has {}x{}",
                d.train.rows, d.train.cols
            )));
        }
        let flipped = subset::flip_labels(
            &mut d.train.labels,
            self.label_noise,
            CLASSES,
            self.noise_seed,
        );
        Ok((d, flipped))
    }

    fn plan(&self, d: &TrainTest) -> Plan {
        let spe = Batches::steps_per_epoch(d.train.len(), self.hyper.batch);
        Plan {
            format: self.format,
            engine: self.engine,
            array: self.shape,
            window: self.window,
            data: match &self.data_dir {
                None => "shipped MNIST t10k: images 0-7999 train, 8000-9999 test".into(),
                Some(d) => format!("{}: train-* train, t10k-* test", d.display()),
            },
            train_examples: d.train.len(),
            test_examples: d.test.len(),
            epochs: self.epochs(),
            steps_per_epoch: spe,
            steps: spe * self.epochs(),
            score_epoch: self.score_epoch(),
            score_runs: self.score_runs(),
            offset: self.offset,
            class_balanced: self.class_balanced,
            label_noise: self.label_noise,
            noise_seed: self.noise_seed,
            hyper: self.hyper,
            schedule: "cosine to 0 over the full run's steps, no warm-up",
            model: cnn::CnnConfig::DATA_DIET.describe(),
        }
    }

    /// The subsets every seed trains: (score name, fraction kept, how picked). A fraction of 1
    /// adds nothing: every subset of all the examples is the full data (the same positions in
    /// the same order, so the same run), which is trained once as `full`.
    fn arms(&self) -> Vec<Arm> {
        let mut arms = vec![("full".to_string(), 1.0, None)];
        for &keep in self.keep.iter().filter(|&&k| k < 1.0) {
            arms.push(("random".into(), keep, None));
            for &s in self.scores.iter().filter(|&&s| s != ScoreKind::Random) {
                let pick = Pick::Highest {
                    offset: self.offset,
                };
                arms.push((s.name().into(), keep, Some((s, pick))));
                if self.lowest {
                    arms.push((
                        format!("{}-lowest", s.name()),
                        keep,
                        Some((s, Pick::Lowest)),
                    ));
                }
            }
        }
        arms
    }
}

/// Per-example scores of one scoring run (or their mean over runs).
#[derive(Clone, Debug, Default)]
pub struct ScoreSet {
    pub el2n: Vec<f64>,
    pub grand: Vec<f64>,
    pub grand_init: Vec<f64>,
}

impl ScoreSet {
    fn get(&self, kind: ScoreKind) -> &[f64] {
        match kind {
            ScoreKind::El2n => &self.el2n,
            ScoreKind::Grand => &self.grand,
            ScoreKind::GrandInit | ScoreKind::Random => &self.grand_init,
        }
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create the output directory: {e}")))
}

/// Seed of scoring run `r`'s initialization and data order (apart from the retraining seeds).
fn score_seed(r: usize) -> u64 {
    1_000_000 + r as u64
}

/// One scoring run: GraNd at initialization, training to the score epoch on all the data
/// (with the full run's schedule), then EL2N and GraNd. Reused from `path` when present.
fn score_run(
    cfg: &DataDietConfig,
    plan: &Plan,
    d: &TrainTest,
    r: usize,
    path: &Path,
    bar: &ProgressBar,
) -> Result<(ScoreSet, Counters)> {
    let score_steps = plan.score_epoch * plan.steps_per_epoch;
    if let Some(s) = read_score_run(path, d.train.len())? {
        bar.inc(score_steps as u64);
        return Ok((s, Counters::default()));
    }
    let seed = score_seed(r);
    let mut ctx = cfg.offload(seed)?;
    let mut model = Cnn::new(seed);
    let eb = cfg.hyper.eval_batch;
    let grand_init = grand(&mut model, &mut ctx, &d.train, eb)?;
    let all: Vec<usize> = (0..d.train.len()).collect();
    let spec = RunSpec {
        train: &d.train,
        subset: &all,
        test: &d.test,
        steps: score_steps,
        schedule_steps: plan.steps,
        eval_every: score_steps.max(1),
        order_seed: seed,
    };
    train::train(&mut model, &mut ctx, &spec, &cfg.hyper, &|n| bar.inc(n))?;
    let s = ScoreSet {
        el2n: el2n(&mut model, &mut ctx, &d.train, eb)?,
        grand: grand(&mut model, &mut ctx, &d.train, eb)?,
        grand_init,
    };
    let mut text = String::from("index,el2n,grand,grand_init\n");
    for i in 0..d.train.len() {
        text.push_str(&format!(
            "{},{:e},{:e},{:e}\n",
            d.train.index[i], s.el2n[i], s.grand[i], s.grand_init[i]
        ));
    }
    write_bytes(path, text.as_bytes())?;
    Ok((s, *ctx.counters()))
}

fn read_score_run(path: &Path, n: usize) -> Result<Option<ScoreSet>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let mut s = ScoreSet::default();
    for line in text.lines().skip(1) {
        let f: Vec<f64> = line.split(',').filter_map(|v| v.parse().ok()).collect();
        if f.len() != 4 {
            return Err(Error::file(
                path,
                "not a score-run file: delete it to recompute",
            ));
        }
        s.el2n.push(f[1]);
        s.grand.push(f[2]);
        s.grand_init.push(f[3]);
    }
    if s.el2n.len() != n {
        return Err(Error::file(
            path,
            format!(
                "{} rows for {n} training examples: delete it to recompute",
                s.el2n.len()
            ),
        ));
    }
    Ok(Some(s))
}

fn mean_scores(runs: &[ScoreSet]) -> ScoreSet {
    let avg = |f: fn(&ScoreSet) -> &Vec<f64>| -> Vec<f64> {
        let n = f(&runs[0]).len();
        (0..n)
            .map(|i| runs.iter().map(|r| f(r)[i]).sum::<f64>() / runs.len() as f64)
            .collect()
    };
    ScoreSet {
        el2n: avg(|r| &r.el2n),
        grand: avg(|r| &r.grand),
        grand_init: avg(|r| &r.grand_init),
    }
}

/// One finished retraining, as listed in `summary.json`'s `runs`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub score: String,
    pub keep: f64,
    pub seed: u64,
    pub test_acc: f64,
    pub test_loss: f64,
    pub train_acc: f64,
    pub examples: usize,
    pub min_class_count: usize,
    pub steps: usize,
    pub wall_s: f64,
    pub counters: Counters,
}

fn run_dir(out: &Path, score: &str, keep: f64, seed: u64) -> PathBuf {
    if score == "full" {
        out.join("runs").join(format!("full-seed{seed}"))
    } else {
        out.join("runs")
            .join(format!("{score}-keep{keep}-seed{seed}"))
    }
}

/// Train seed `seed` on `subset` for the full run's steps into `dir` (reused when finished).
#[allow(clippy::too_many_arguments)]
fn retrain(
    cfg: &DataDietConfig,
    plan: &Plan,
    d: &TrainTest,
    (score, keep, seed): (&str, f64, u64),
    subset: &[usize],
    dir: &Path,
    bar: &ProgressBar,
) -> Result<RunRecord> {
    if dir.join("summary.json").is_file() {
        let v = read_summary(dir)?;
        let rec: RunRecord = serde_json::from_value(v).map_err(|e| {
            Error::file(
                dir.join("summary.json"),
                format!("not a data-diet run ({e}): delete it"),
            )
        })?;
        bar.inc(plan.steps as u64);
        return Ok(rec);
    }
    create_dir(dir)?;
    let start = Instant::now();
    let mut ctx = cfg.offload(seed)?;
    let mut model = Cnn::new(seed);
    let spec = RunSpec {
        train: &d.train,
        subset,
        test: &d.test,
        steps: plan.steps,
        schedule_steps: plan.steps,
        eval_every: plan.steps_per_epoch,
        order_seed: seed,
    };
    bar.set_message(format!("{score} keep {keep} seed {seed}"));
    let rows = train::train(&mut model, &mut ctx, &spec, &cfg.hyper, &|n| bar.inc(n))?;
    let last = rows.last().cloned().expect("at least one step");
    write_metrics_csv(&dir.join("metrics.csv"), &rows)?;
    let rec = RunRecord {
        score: score.into(),
        keep,
        seed,
        test_acc: last.test_acc,
        test_loss: last.test_loss,
        train_acc: last.train_acc,
        examples: subset.len(),
        min_class_count: subset::smallest_class(&d.train.labels, subset, CLASSES),
        steps: plan.steps,
        wall_s: start.elapsed().as_secs_f64(),
        counters: *ctx.counters(),
    };
    write_json(&dir.join("summary.json"), &rec)?;
    Ok(rec)
}

fn input_l2(set: &Mnist) -> Vec<f64> {
    (0..set.len())
        .map(|i| {
            set.image(i)
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

fn write_scores_csv(
    path: &Path,
    cfg: &DataDietConfig,
    d: &TrainTest,
    s: &ScoreSet,
    flipped: &[bool],
) -> Result<()> {
    let kinds: Vec<ScoreKind> = cfg
        .scores
        .iter()
        .copied()
        .filter(|&k| k != ScoreKind::Random)
        .collect();
    let mut text = String::from("index,label");
    kinds
        .iter()
        .for_each(|k| text.push_str(&format!(",{}", k.name())));
    if cfg.label_noise > 0.0 {
        text.push_str(",flipped");
    }
    text.push('\n');
    let rows = d
        .train
        .index
        .iter()
        .zip(&d.train.labels)
        .take(d.train.len());
    for (i, (index, label)) in rows.enumerate() {
        text.push_str(&format!("{index},{label}"));
        kinds
            .iter()
            .for_each(|&k| text.push_str(&format!(",{:e}", s.get(k)[i])));
        if cfg.label_noise > 0.0 {
            text.push_str(&format!(",{}", flipped[i] as u8));
        }
        text.push('\n');
    }
    write_bytes(path, text.as_bytes())
}

/// What `shiftkit train data-diet` does; returns the summary it writes.
pub fn run(cfg: &DataDietConfig) -> Result<Value> {
    cfg.validate()?;
    let start = Instant::now();
    let (d, flipped) = cfg.data()?;
    let plan = cfg.plan(&d);
    create_dir(&cfg.out)?;
    check_experiment(&cfg.out, &plan)?;
    let arms = cfg.arms();
    let seeds = cfg.seeds() as u64;
    let score_steps = plan.score_epoch * plan.steps_per_epoch;
    let total = plan.score_runs * score_steps + arms.len() * seeds as usize * plan.steps;
    let bar = if cfg.progress {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "data-diet [{bar:30}] {pos}/{len} steps {msg} ({elapsed}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );

    // 1. Scores, averaged over the scoring runs.
    let mut counters = Counters::default();
    let runs_dir = cfg.out.join("score-runs");
    create_dir(&runs_dir)?;
    // Runs side by side (`workloads::parallel`): each is deterministic on its own seed.
    let jobs = cfg.jobs.max(1);
    let sets = parallel::run_indexed(plan.score_runs, jobs, |r| {
        bar.set_message(format!("scoring run {r}"));
        score_run(
            cfg,
            &plan,
            &d,
            r,
            &runs_dir.join(format!("run_{r}.csv")),
            &bar,
        )
    })?;
    sets.iter().for_each(|(_, c)| counters += *c);
    let sets: Vec<ScoreSet> = sets.into_iter().map(|(s, _)| s).collect();
    let scores = mean_scores(&sets);
    write_scores_csv(&cfg.out.join("scores.csv"), cfg, &d, &scores, &flipped)?;

    // 2. Every (arm, seed) retraining, seeds outermost so a short budget has complete seeds.
    let todo: Vec<(u64, &Arm)> = (0..seeds)
        .flat_map(|seed| arms.iter().map(move |arm| (seed, arm)))
        .collect();
    let records = parallel::run_indexed(todo.len(), jobs, |i| {
        let (seed, (name, keep, how)) = todo[i];
        let subset = match how {
            None if name == "full" => (0..d.train.len()).collect(),
            None => subset::random(&d.train.labels, *keep, cfg.class_balanced, seed),
            Some((kind, pick)) => subset::by_score(
                scores.get(*kind),
                &d.train.labels,
                *keep,
                *pick,
                cfg.class_balanced,
            ),
        };
        let dir = run_dir(&cfg.out, name, *keep, seed);
        retrain(cfg, &plan, &d, (name, *keep, seed), &subset, &dir, &bar)
    })?;
    bar.finish_and_clear();
    records.iter().for_each(|r| counters += r.counters);

    // 3. Report.
    let summary = summarize(cfg, &plan, &d, &scores, &flipped, &records, counters, start);
    write_json(&cfg.out.join("summary.json"), &summary)?;
    plot_results(cfg, &d, &scores, &flipped, &records)?;
    Ok(summary)
}

/// Mean and spread of one (score, keep) arm over seeds, with its paired differences.
#[derive(Serialize)]
struct Aggregate {
    score: String,
    keep: f64,
    test_acc: MeanSe,
    /// The smallest class count of the arm's subsets (minimum over seeds).
    min_class_count: usize,
    /// Paired (same seed) differences against the random subset of the same size and against
    /// the full data; `beats_random` when the mean difference exceeds twice its standard error.
    minus_random: Option<MeanSe>,
    minus_full: Option<MeanSe>,
    beats_random: Option<bool>,
}

fn paired(records: &[RunRecord], a: (&str, f64), b: (&str, f64)) -> Option<MeanSe> {
    let acc = |name: &str, keep: f64| -> BTreeMap<u64, f64> {
        records
            .iter()
            .filter(|r| r.score == name && (r.keep - keep).abs() < 1e-12)
            .map(|r| (r.seed, r.test_acc))
            .collect()
    };
    let (x, y) = (acc(a.0, a.1), acc(b.0, b.1));
    let diffs: Vec<f64> = x.iter().filter_map(|(s, v)| Some(v - y.get(s)?)).collect();
    (!diffs.is_empty()).then(|| mean_se(&diffs))
}

#[allow(clippy::too_many_arguments)]
fn summarize(
    cfg: &DataDietConfig,
    plan: &Plan,
    d: &TrainTest,
    scores: &ScoreSet,
    flipped: &[bool],
    records: &[RunRecord],
    counters: Counters,
    start: Instant,
) -> Value {
    let mut arms: Vec<(String, f64)> = Vec::new();
    for r in records {
        if !arms
            .iter()
            .any(|(s, k)| *s == r.score && (*k - r.keep).abs() < 1e-12)
        {
            arms.push((r.score.clone(), r.keep));
        }
    }
    let aggregates: Vec<Aggregate> = arms
        .iter()
        .map(|(score, keep)| {
            let rs: Vec<&RunRecord> = records
                .iter()
                .filter(|r| r.score == *score && (r.keep - keep).abs() < 1e-12)
                .collect();
            let accs: Vec<f64> = rs.iter().map(|r| r.test_acc).collect();
            let vs_random = (score != "full" && score != "random")
                .then(|| paired(records, (score, *keep), ("random", *keep)))
                .flatten();
            Aggregate {
                score: score.clone(),
                keep: *keep,
                test_acc: mean_se(&accs),
                min_class_count: rs.iter().map(|r| r.min_class_count).min().unwrap_or(0),
                beats_random: vs_random.map(|p| p.n > 1 && p.mean > 2.0 * p.se),
                minus_random: vs_random,
                minus_full: (score != "full")
                    .then(|| paired(records, (score, *keep), ("full", 1.0)))
                    .flatten(),
            }
        })
        .collect();
    let kinds = [ScoreKind::El2n, ScoreKind::Grand, ScoreKind::GrandInit];
    let noise = (cfg.label_noise > 0.0).then(|| {
        let k = flipped.iter().filter(|&&f| f).count();
        let per: serde_json::Map<String, Value> = kinds
            .iter()
            .map(|&kind| {
                let s = scores.get(kind);
                (
                    kind.name().to_string(),
                    json!({
                        "auroc": auroc(s, flipped),
                        "top_r_precision": top_k_precision(s, flipped, k),
                    }),
                )
            })
            .collect();
        json!({"rate": cfg.label_noise, "flipped": k, "scores": per})
    });
    let shapes: Vec<Value> = Cnn::gemm_shapes(cfg.hyper.batch)
        .into_iter()
        .map(|(layer, role, m, k, n)| json!({"layer": layer, "role": role, "m": m, "k": k, "n": n}))
        .collect();
    json!({
        "workload": "data-diet",
        "experiment": plan,
        "scores": cfg.scores.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "keep": cfg.keep,
        "seeds": cfg.seeds(),
        "lowest": cfg.lowest,
        "runs": records,
        "aggregates": aggregates,
        "noise_detection": noise,
        "spearman_grand_init_vs_input_l2": spearman(&scores.grand_init, &input_l2(&d.train)),
        "spearman_el2n_vs_grand": spearman(&scores.el2n, &scores.grand),
        "gemm_shapes_per_step": shapes,
        "wall_s": start.elapsed().as_secs_f64(),
        "counters": CounterSummary::new(counters, cfg.shape.rows * cfg.shape.cols),
    })
}

fn plot_results(
    cfg: &DataDietConfig,
    d: &TrainTest,
    scores: &ScoreSet,
    flipped: &[bool],
    records: &[RunRecord],
) -> Result<()> {
    if !records.is_empty() {
        plot_accuracy(cfg, records)?;
    }
    plot_scores(cfg, d, scores, flipped)
}

/// Test accuracy against the fraction kept, one line per score and random, and the full data.
fn plot_accuracy(cfg: &DataDietConfig, records: &[RunRecord]) -> Result<()> {
    let out = &cfg.out;
    let mut names: Vec<String> = Vec::new();
    records.iter().filter(|r| r.score != "full").for_each(|r| {
        if !names.contains(&r.score) {
            names.push(r.score.clone())
        }
    });
    let full: Vec<f64> = records
        .iter()
        .filter(|r| r.score == "full")
        .map(|r| r.test_acc)
        .collect();
    let mut keeps = cfg.keep.clone();
    keeps.sort_by(f64::total_cmp);
    let mut series: Vec<ErrorSeries> = names
        .iter()
        .enumerate()
        .map(|(i, name)| ErrorSeries {
            label: name.clone(),
            points: keeps
                .iter()
                .filter_map(|&k| {
                    let accs: Vec<f64> = records
                        .iter()
                        .filter(|r| r.score == *name && (r.keep - k).abs() < 1e-12)
                        .map(|r| 100.0 * r.test_acc)
                        .collect();
                    let m = mean_se(&accs);
                    (m.n > 0).then_some((k, m.mean, m.std))
                })
                .collect(),
            color: PALETTE[(i + 1) % PALETTE.len()],
        })
        .collect();
    let f = mean_se(&full.iter().map(|v| 100.0 * v).collect::<Vec<_>>());
    series.push(ErrorSeries {
        label: "full data".into(),
        points: keeps
            .iter()
            .chain([&1.0])
            .map(|&k| (k, f.mean, f.std))
            .collect(),
        color: PALETTE[0],
    });
    plot_error_bars(
        &out.join("accuracy_vs_keep.png"),
        &format!(
            "data diet, {} on {}: test accuracy (mean +- std over {} seeds)",
            cfg.format,
            cfg.engine.name(),
            cfg.seeds()
        ),
        ("fraction of training data kept", "test accuracy (%)"),
        &series,
    )
}

/// The score histograms and the grid of the highest-EL2N images.
fn plot_scores(
    cfg: &DataDietConfig,
    d: &TrainTest,
    scores: &ScoreSet,
    flipped: &[bool],
) -> Result<()> {
    let out = &cfg.out;
    let hist: Vec<(String, Vec<f64>)> = [ScoreKind::El2n, ScoreKind::Grand, ScoreKind::GrandInit]
        .iter()
        .map(|&k| (k.name().to_string(), scores.get(k).to_vec()))
        .collect();
    plot_histograms(
        &out.join("score_hist.png"),
        "per-example scores (mean over scoring runs)",
        &hist,
        50,
    )?;
    let top = subset::by_score(
        &scores.el2n,
        &d.train.labels,
        64.0 / d.train.len() as f64,
        Pick::Highest { offset: 0 },
        false,
    );
    let mut top: Vec<usize> = top;
    top.sort_by(|&a, &b| scores.el2n[b].total_cmp(&scores.el2n[a]));
    let tiles: Vec<Tile> = top
        .iter()
        .map(|&i| Tile {
            pixels: d.train.image(i),
            caption: format!(
                "#{} y={}{}",
                d.train.index[i],
                d.train.labels[i],
                if flipped[i] { " (flip)" } else { "" }
            ),
            highlight: flipped[i],
        })
        .collect();
    plot_image_grid(
        &out.join("top_el2n.png"),
        "the 64 highest-EL2N training images (IDX index, label as trained on)",
        &tiles,
        (d.train.rows, d.train.cols),
        8,
    )
}

/// The `shiftkit demo` segment (about a minute in fp32 on two cores): 10% of the 8,000
/// training labels flipped, EL2N from one scoring run after 1 of 4 epochs, then the full data,
/// the highest-EL2N half and a random half retrained for the same steps. Writes the
/// experiment into `out_dir` (reused when rerun) and returns the figures to show: how well
/// EL2N finds the flipped labels (AUROC, share of flipped among the top 10%), the three test
/// accuracies, and the image grid of the highest-EL2N examples.
pub fn demo_segment(out_dir: &Path) -> Result<Value> {
    let cfg = DataDietConfig {
        format: Format::Fp32,
        engine: EngineKind::Cpu,
        shape: ArrayShape::default(),
        window: shiftkit_hw::config::DEFAULT_WINDOW,
        scores: vec![ScoreKind::El2n],
        keep: vec![0.5],
        offset: 0,
        score_epoch: Some(1),
        score_runs: 1,
        seeds: 1,
        epochs: 4,
        label_noise: 0.1,
        class_balanced: false,
        lowest: false,
        data_dir: None,
        quick: false,
        hyper: Hyper::default(),
        noise_seed: 0,
        out: out_dir.to_path_buf(),
        progress: true,
        jobs: parallel::default_jobs(),
    };
    let s = run(&cfg)?;
    let acc = |score: &str| {
        s["runs"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["score"] == score))
            .map(|r| r["test_acc"].clone())
            .unwrap_or(Value::Null)
    };
    let el2n = &s["noise_detection"]["scores"]["el2n"];
    Ok(json!({
        "label_noise": 0.1,
        "el2n_auroc": el2n["auroc"],
        "el2n_top_r_precision": el2n["top_r_precision"],
        "test_acc_full": acc("full"),
        "test_acc_el2n_keep_0.5": acc("el2n"),
        "test_acc_random_keep_0.5": acc("random"),
        "top_el2n_png": out_dir.join("top_el2n.png"),
        "accuracy_png": out_dir.join("accuracy_vs_keep.png"),
        "wall_s": s["wall_s"],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keep: Vec<f64>, lowest: bool) -> DataDietConfig {
        DataDietConfig {
            format: Format::Fp32,
            engine: EngineKind::Cpu,
            shape: ArrayShape::default(),
            window: shiftkit_hw::config::DEFAULT_WINDOW,
            scores: vec![ScoreKind::El2n, ScoreKind::Random],
            keep,
            offset: 0,
            score_epoch: None,
            score_runs: 1,
            seeds: 1,
            epochs: 15,
            label_noise: 0.0,
            class_balanced: false,
            lowest,
            data_dir: None,
            quick: false,
            hyper: Hyper::default(),
            noise_seed: 0,
            out: PathBuf::from("unused"),
            progress: false,
            jobs: 1,
        }
    }

    fn names(cfg: &DataDietConfig) -> Vec<(String, f64)> {
        cfg.arms().into_iter().map(|(s, k, _)| (s, k)).collect()
    }

    #[test]
    fn arms_are_full_then_random_and_scores_per_fraction_and_keep_one_is_only_full() {
        let arm = |s: &str, k: f64| (s.to_string(), k);
        assert_eq!(
            names(&config(vec![0.3, 1.0], true)),
            [
                arm("full", 1.0),
                arm("random", 0.3),
                arm("el2n", 0.3),
                arm("el2n-lowest", 0.3)
            ]
        );
        assert_eq!(names(&config(vec![1.0], false)), [arm("full", 1.0)]);
        // The default score epoch is about a tenth of training, at least one.
        assert_eq!(config(vec![0.5], false).score_epoch(), 2);
        let mut short = config(vec![0.5], false);
        short.epochs = 3;
        assert_eq!(short.score_epoch(), 1);
    }
}
