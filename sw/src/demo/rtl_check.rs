//! Segment: the first epoch of grokking training again on `rtl` (the generated Verilog of the
//! accelerator top under Verilator) against `golden`: losses, accuracies, cycle counts and
//! weights must be identical bit for bit.

use super::grokking::showcase_config;
use super::page::Table;
use super::{Lane, Segment, SegmentReport, Tour};
use crate::engine::EngineKind;
use crate::error::{Error, Result};
use crate::format::Format;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct RtlCheck;

const EPOCHS: usize = 1;

/// Everything a run produced that must not depend on the engine: metrics.csv without the
/// wall-clock column, and the final weights.
fn run_fingerprint(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let read =
        |p: PathBuf| std::fs::read(&p).map_err(|e| Error::file(&p, format!("cannot read: {e}")));
    let csv = String::from_utf8_lossy(&read(dir.join("metrics.csv"))?)
        .lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = vec![csv.into_bytes()];
    let weights = dir.join("weights").join("final");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&weights)
        .map_err(|e| Error::file(&weights, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for n in names {
        out.push(read(n)?);
    }
    Ok(out)
}

impl Segment for RtlCheck {
    fn name(&self) -> &'static str {
        "rtl-check"
    }

    fn shows(&self, _tour: &Tour) -> String {
        format!(
            "{EPOCHS} epoch of sq6 grokking training on the Verilated 8x8 accelerator top equals \
             the golden model bit for bit (losses, accuracies, cycles, weights)"
        )
    }

    fn lane(&self) -> Lane {
        Lane::Tools
    }

    fn estimate(&self, _tour: &Tour) -> Duration {
        // A cold Verilator build of the sq6 top, then one epoch of simulation.
        Duration::from_secs(120)
    }

    fn run(&self, tour: &Tour) -> Result<SegmentReport> {
        let dir = tour.dir(self)?;
        let mut fingerprints = Vec::new();
        let mut table = Table::new(
            format!("grokking sq6 seed 0, {EPOCHS} epoch, 8x8 array"),
            &["engine", "train loss", "test acc", "cycles", "wall s"],
        );
        for engine in [EngineKind::Golden, EngineKind::Rtl] {
            let mut cfg = showcase_config(engine, Format::Sq6, 0, EPOCHS, dir.join(engine.name()));
            cfg.ticket = false;
            cfg.eval_every = 1;
            cfg.stop_after_generalized = None;
            let start = Instant::now();
            crate::workloads::grokking::run(&cfg)?;
            let wall = start.elapsed().as_secs_f64();
            let s = crate::workloads::report::read_summary(&cfg.out)?;
            table.row(vec![
                engine.name().to_string(),
                format!("{:.6}", s["final_train_loss"].as_f64().unwrap_or(f64::NAN)),
                format!("{:.4}", s["final_test_acc"].as_f64().unwrap_or(f64::NAN)),
                s["counters"]["cycles"].as_u64().unwrap_or(0).to_string(),
                format!("{wall:.1}"),
            ]);
            fingerprints.push(run_fingerprint(&cfg.out)?);
        }
        let same = fingerprints[0] == fingerprints[1];
        if !same {
            return Err(Error::Usage(format!(
                "rtl and golden training differ (see {}): the RTL and its golden model disagree",
                dir.display()
            )));
        }
        Ok(SegmentReport {
            tables: vec![table],
            images: Vec::new(),
            notes: vec![
                "rtl == golden: metrics.csv (without wall time) and every final weight identical bit for bit (rtl wall time includes building the Verilator model when it is not cached)".into(),
            ],
            results: serde_json::json!({ "epochs": EPOCHS, "bit_exact": same }),
        })
    }
}
