//! `shiftkit compare RUN_DIR... --out DIR`: finished training runs side by side — epochs to
//! memorize and to generalize, final accuracy, accelerator cycles and wall time, each against
//! the first run (the baseline, e.g. fp32 or fp16) — as `compare.json`, `compare.md` and a PNG
//! of test accuracy against epoch.

use crate::error::{Error, Result};
use crate::npy::write_bytes;
use crate::workloads::grokking::train::ACC_THRESHOLD;
use crate::workloads::grokking::{plot_runs, ModelKind};
use crate::workloads::report::{read_summary, read_test_curve, write_json};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Run directories (each with summary.json and metrics.csv); the first is the baseline.
    #[arg(required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,
    /// Where compare.json, compare.md and accuracy.png go.
    #[arg(long)]
    pub out: PathBuf,
    /// Count "generalized" as the first evaluation with test accuracy >= T, read from each run's
    /// metrics.csv (default: the runs' own generalized_epoch, test accuracy >= 0.99). MNIST, for
    /// one, plateaus near 0.9.
    #[arg(long, value_parser = parse_threshold)]
    pub threshold: Option<f64>,
    /// Title of the plot and the table.
    #[arg(long, default_value = "test accuracy")]
    pub title: String,
}

#[derive(Serialize)]
struct RunRow {
    label: String,
    dir: String,
    format: String,
    engine: String,
    seed: u64,
    kind: String,
    memorized_epoch: Option<u64>,
    /// First evaluation with test accuracy >= `generalized_at`.
    generalized_epoch: Option<u64>,
    generalized_at: f64,
    /// generalized_epoch over the baseline's.
    generalized_ratio: Option<f64>,
    final_test_acc: f64,
    cycles: u64,
    macs: u64,
    s_per_1000_epochs: f64,
}

fn parse_threshold(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 1.0 => Ok(t),
        _ => Err(format!("'{s}' is not an accuracy in (0, 1]")),
    }
}

/// The first epoch each run reaches test accuracy `t`, from its metrics.csv.
fn reached(dir: &Path, t: f64) -> Result<Option<u64>> {
    Ok(read_test_curve(dir)?
        .into_iter()
        .find(|&(_, acc)| acc >= t)
        .map(|(epoch, _)| epoch as u64))
}

fn row(
    dir: &Path,
    s: &Value,
    (generalized, generalized_at): (Option<u64>, f64),
    baseline_gen: Option<u64>,
) -> RunRow {
    let text = |k: &str| s[k].as_str().unwrap_or("?").to_string();
    let kind = match (
        s["ticket"]["kind"].as_str(),
        s["ticket"]["ticket_from"].as_str(),
    ) {
        (Some("ticket"), Some("final")) => match s["ticket"]["mask_epoch"].as_u64() {
            Some(e) => format!("ticket@final({e})"),
            None => "ticket@final".to_string(),
        },
        (Some("ticket"), Some(from)) => format!("ticket@{from}"),
        (Some(k), _) => k.to_string(),
        (None, _) => "dense".to_string(),
    };
    let seed = s["seed"].as_u64().unwrap_or(0);
    let mut label = match s["model"].as_str() {
        Some(m) if m != "mlp" => format!("{m} {} {kind} seed {seed}", text("format")),
        _ => format!("{} {kind} seed {seed}", text("format")),
    };
    // What else sets this run apart from the defaults (older summaries lack these keys).
    if let Some(r) = s["rounding_seed"].as_u64().filter(|&r| r != seed) {
        label.push_str(&format!(" rounding {r}"));
    }
    if let Some(roles) = s["fp32_gemms"].as_array() {
        let names: Vec<&str> = roles.iter().filter_map(|r| r.as_str()).collect();
        label.push_str(&format!(" fp32 {}", names.join("+")));
    }
    if let Some(r) = s["ticket"]["prune_rate"].as_f64().filter(|&r| r != 0.6) {
        label.push_str(&format!(" rate {r}"));
    }
    // The model's own default, parsed from its summary name (older summaries: the MLP).
    let model = s["model"]
        .as_str()
        .and_then(|m| ModelKind::from_str(m, false).ok());
    let default_wd = model.unwrap_or(ModelKind::Mlp).default_weight_decay();
    if let Some(wd) = s["weight_decay"]
        .as_f64()
        .filter(|&w| w as f32 != default_wd)
    {
        label.push_str(&format!(" wd {wd}"));
    }
    let default_window = u64::from(shiftkit_hw::config::DEFAULT_WINDOW);
    if let Some(w) = s["window"].as_u64().filter(|&w| w != default_window) {
        label.push_str(&format!(" window {w}"));
    }
    RunRow {
        label,
        dir: dir.display().to_string(),
        format: text("format"),
        engine: text("engine"),
        seed,
        kind,
        memorized_epoch: s["memorized_epoch"].as_u64(),
        generalized_epoch: generalized,
        generalized_at,
        generalized_ratio: match (generalized, baseline_gen) {
            (Some(g), Some(b)) if b > 0 => Some(g as f64 / b as f64),
            _ => None,
        },
        final_test_acc: s["final_test_acc"].as_f64().unwrap_or(0.0),
        cycles: s["counters"]["cycles"].as_u64().unwrap_or(0),
        macs: s["counters"]["macs"].as_u64().unwrap_or(0),
        s_per_1000_epochs: s["s_per_1000_epochs"].as_f64().unwrap_or(0.0),
    }
}

fn markdown(title: &str, threshold: Option<f64>, rows: &[RunRow]) -> String {
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |e| e.to_string());
    let reached = threshold.map_or("generalized".to_string(), |t| format!("test acc >= {t}"));
    let mut md = format!(
        "# {title}\n\n| run | engine | memorized | {reached} | vs first | test acc | cycles | s / 1k epochs |\n|---|---|---:|---:|---:|---:|---:|---:|\n"
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.3} | {} | {:.1} |\n",
            r.label,
            r.engine,
            opt(r.memorized_epoch),
            opt(r.generalized_epoch),
            r.generalized_ratio
                .map_or("-".into(), |x| format!("{x:.3}x")),
            r.final_test_acc,
            r.cycles,
            r.s_per_1000_epochs
        ));
    }
    md
}

pub fn run(args: &CompareArgs) -> Result<()> {
    let summaries = args
        .runs
        .iter()
        .map(|d| read_summary(d))
        .collect::<Result<Vec<_>>>()?;
    let generalized = args
        .runs
        .iter()
        .zip(&summaries)
        .map(|(d, s)| match args.threshold {
            Some(t) => reached(d, t),
            None => Ok(s["generalized_epoch"].as_u64()),
        })
        .collect::<Result<Vec<_>>>()?;
    let rows: Vec<RunRow> = args
        .runs
        .iter()
        .zip(&summaries)
        .zip(&generalized)
        .map(|((d, s), &g)| {
            let at = args.threshold.unwrap_or(ACC_THRESHOLD);
            row(d, s, (g, at), generalized[0])
        })
        .collect();
    std::fs::create_dir_all(&args.out).map_err(|e| {
        Error::file(
            &args.out,
            format!("cannot create the output directory: {e}"),
        )
    })?;
    let curves: Vec<(String, PathBuf)> = rows
        .iter()
        .zip(&args.runs)
        .map(|(r, d)| (r.label.clone(), d.clone()))
        .collect();
    plot_runs(&args.out.join("accuracy.png"), &args.title, &curves)?;
    write_json(&args.out.join("compare.json"), &rows)?;
    let md = markdown(&args.title, args.threshold, &rows);
    write_bytes(&args.out.join("compare.md"), md.as_bytes())?;
    print!("{md}");
    Ok(())
}
