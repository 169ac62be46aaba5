//! `shiftkit compare RUN_DIR... --out DIR`: finished training runs side by side — epochs to
//! memorize and to generalize, final accuracy, accelerator cycles and wall time, each against
//! the first run (the baseline, e.g. fp32 or fp16) — as `compare.json`, `compare.md` and a PNG
//! of test accuracy against epoch.

use crate::error::{Error, Result};
use crate::npy::write_bytes;
use crate::workloads::grokking::plot_runs;
use crate::workloads::report::{read_summary, write_json};
use clap::Args;
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
    generalized_epoch: Option<u64>,
    /// generalized_epoch over the baseline's.
    generalized_ratio: Option<f64>,
    final_test_acc: f64,
    cycles: u64,
    macs: u64,
    s_per_1000_epochs: f64,
}

fn row(dir: &Path, s: &Value, baseline_gen: Option<u64>) -> RunRow {
    let text = |k: &str| s[k].as_str().unwrap_or("?").to_string();
    let kind = match (
        s["ticket"]["kind"].as_str(),
        s["ticket"]["ticket_from"].as_str(),
    ) {
        (Some("ticket"), Some(from)) => format!("ticket@{from}"),
        (Some(k), _) => k.to_string(),
        (None, _) => "dense".to_string(),
    };
    let generalized = s["generalized_epoch"].as_u64();
    let seed = s["seed"].as_u64().unwrap_or(0);
    let mut label = match s["model"].as_str() {
        Some(m) if m != "mlp" => format!("{m} {} {kind} seed {seed}", text("format")),
        _ => format!("{} {kind} seed {seed}", text("format")),
    };
    // What else sets this run apart from the defaults (older summaries lack these keys).
    if let Some(r) = s["rounding_seed"].as_u64().filter(|&r| r != seed) {
        label.push_str(&format!(" rounding {r}"));
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

fn markdown(title: &str, rows: &[RunRow]) -> String {
    let opt = |v: Option<u64>| v.map_or("-".to_string(), |e| e.to_string());
    let mut md = format!(
        "# {title}\n\n| run | engine | memorized | generalized | vs first | test acc | cycles | s / 1k epochs |\n|---|---|---:|---:|---:|---:|---:|---:|\n"
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
    let baseline = summaries[0]["generalized_epoch"].as_u64();
    let rows: Vec<RunRow> = args
        .runs
        .iter()
        .zip(&summaries)
        .map(|(d, s)| row(d, s, baseline))
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
    let md = markdown(&args.title, &rows);
    write_bytes(&args.out.join("compare.md"), md.as_bytes())?;
    print!("{md}");
    Ok(())
}
