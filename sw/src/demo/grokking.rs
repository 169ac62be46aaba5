//! Segment: grokking tickets. A dense network trained until it generalizes, then its lottery
//! ticket (global magnitude pruning of the dense run's final weights, rewound to the same
//! initialization) retrained, all with every GEMM on the golden model of the accelerator.

use super::page::Table;
use super::{Lane, Segment, SegmentReport, Tour};
use crate::engine::{ArrayShape, EngineKind};
use crate::error::Result;
use crate::format::Format;
use crate::workloads::grokking::{self, GrokkingConfig, ModelKind, TicketFrom};
use crate::workloads::report::read_summary;
use std::path::PathBuf;
use std::time::Duration;

pub struct GrokkingTickets;

/// Which run the segment makes.
struct Plan {
    format: Format,
    seed: u64,
    epochs: usize,
    /// Share of the 67^2 pairs that train: more data groks sooner.
    train_frac: f64,
    /// Epochs the dense run goes on after it generalized (weight decay cleans its weights up
    /// before the mask is taken); None: the whole budget, as the paper does.
    dense_extra: Option<usize>,
}

/// Quick: sq4 seed 4 on 60% of the pairs (measured: the dense run generalizes at epoch 2,130,
/// its ticket at 220; on the paper's 40% the same seed takes 7,360 dense epochs, five minutes
/// on a 2-core Zen 1, over the segment's two), the dense run stopped 300 epochs after it
/// generalizes; the ticket stops when it generalizes. Full: the README's headline run (sq6
/// seed 0, 40% of the pairs, 30,000 dense epochs).
fn plan(full: bool) -> Plan {
    if full {
        Plan {
            format: Format::Sq6,
            seed: 0,
            epochs: 30_000,
            train_frac: 0.4,
            dense_extra: None,
        }
    } else {
        Plan {
            format: Format::Sq4,
            seed: 4,
            epochs: 6_000,
            train_frac: 0.6,
            dense_extra: Some(300),
        }
    }
}

/// The tour's grokking run (the paper's MLP and optimizer, (x + y) mod 67) on `engine`.
pub fn showcase_config(
    engine: EngineKind,
    format: Format,
    seed: u64,
    epochs: usize,
    out: PathBuf,
) -> GrokkingConfig {
    GrokkingConfig {
        model: ModelKind::Mlp,
        format,
        engine,
        shape: ArrayShape::default(),
        window: shiftkit_hw::config::DEFAULT_WINDOW,
        seed,
        rounding_seed: None,
        fp32_gemms: Vec::new(),
        p: 67,
        train_frac: 0.4,
        epochs,
        eval_every: 10,
        lr: 1e-3,
        weight_decay: 1.0,
        stop_after_generalized: Some(0),
        dense_stop_after_generalized: None,
        save_every: None,
        ticket: true,
        prune_rate: 0.6,
        ticket_from: TicketFrom::Final,
        control: None,
        from: None,
        out,
        progress: true,
        link: None,
    }
}

fn epoch_cell(v: &serde_json::Value) -> String {
    v.as_u64().map_or("-".to_string(), |e| e.to_string())
}

impl Segment for GrokkingTickets {
    fn name(&self) -> &'static str {
        "grokking"
    }

    fn shows(&self, tour: &Tour) -> String {
        let p = plan(tour.full);
        format!(
            "grokking tickets on (x + y) mod 67, {} seed {}: the dense MLP generalizes late; its \
             ticket (60% of the weights pruned by magnitude, rewound to the init) far sooner",
            p.format, p.seed
        )
    }

    fn lane(&self) -> Lane {
        Lane::Host
    }

    fn estimate(&self, tour: &Tour) -> Duration {
        Duration::from_secs(if tour.full { 300 } else { 100 })
    }

    fn run(&self, tour: &Tour) -> Result<SegmentReport> {
        let mut p = plan(tour.full);
        if let Some(cap) = tour.grokking_epochs {
            p.epochs = p.epochs.min(cap);
        }
        let out = tour.dir(self)?;
        let mut cfg = showcase_config(EngineKind::Golden, p.format, p.seed, p.epochs, out.clone());
        cfg.dense_stop_after_generalized = p.dense_extra;
        cfg.train_frac = p.train_frac;
        grokking::run(&cfg)?;
        let dense = read_summary(&out.join("dense"))?;
        let ticket = read_summary(&out)?;
        let mut table = Table::new(
            format!(
                "grokking, (x + y) mod 67, {:.0}% of the pairs train, paper MLP, {} on golden \
                 ({}x{} array model), seed {}",
                100.0 * p.train_frac,
                p.format,
                cfg.shape.rows,
                cfg.shape.cols,
                p.seed
            ),
            &[
                "run",
                "generalized (epoch)",
                "epochs run",
                "train acc",
                "test acc",
                "cycles",
                "wall s",
            ],
        );
        for (name, s) in [("dense", &dense), ("ticket", &ticket)] {
            table.row(vec![
                name.to_string(),
                epoch_cell(&s["generalized_epoch"]),
                epoch_cell(&s["epochs_run"]),
                format!("{:.3}", s["final_train_acc"].as_f64().unwrap_or(0.0)),
                format!("{:.3}", s["final_test_acc"].as_f64().unwrap_or(0.0)),
                epoch_cell(&s["counters"]["cycles"]),
                format!("{:.1}", s["wall_s"].as_f64().unwrap_or(0.0)),
            ]);
        }
        let mut notes = vec![format!(
            "the ticket's mask is taken from the dense weights at epoch {} ({})",
            epoch_cell(&ticket["ticket"]["mask_epoch"]),
            match p.dense_extra {
                Some(n) => format!("{n} epochs after the dense run generalized"),
                None => "the end of the whole budget, as in the paper".into(),
            }
        )];
        match (
            dense["generalized_epoch"].as_u64(),
            ticket["generalized_epoch"].as_u64(),
        ) {
            (Some(d), Some(t)) => notes.push(format!(
                "the ticket generalizes at epoch {t}, {:.3}x the dense run's {d} epochs",
                t as f64 / d.max(1) as f64
            )),
            (d, t) => notes.push(format!(
                "not reproduced in this budget: dense generalized at {}, ticket at {} (of {} epochs)",
                d.map_or("-".into(), |e| e.to_string()),
                t.map_or("-".into(), |e| e.to_string()),
                p.epochs
            )),
        }
        Ok(SegmentReport {
            tables: vec![table],
            images: vec![
                (
                    "dense vs ticket, test and train accuracy".into(),
                    out.join("dense_vs_ticket.png"),
                ),
                ("dense run".into(), out.join("dense").join("accuracy.png")),
                ("ticket".into(), out.join("accuracy.png")),
            ],
            notes,
            results: serde_json::json!({ "dense": dense, "ticket": ticket }),
        })
    }
}
