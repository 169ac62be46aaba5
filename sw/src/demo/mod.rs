//! `shiftkit demo`: a guided tour in segments, with a time budget.
//!
//! A [`Segment`] is one thing the demo shows (the GEMM formats, grokking tickets, the RTL check,
//! the FPGA resources, and one per workload as they land). Before anything runs, the tour prints
//! every segment's one-line description and rough duration; segments on different [`Lane`]s
//! (the host's engines vs. the external tools yosys and Verilator) run side by side, each lane
//! in order. Every number comes from this run. Each segment returns a [`SegmentReport`]
//! (tables, PNGs, notes, JSON) that the tour prints when the segment ends and collects into
//! `OUT/demo.json` and `OUT/README.md` (one page, every table and plot; see [`page`]).
//!
//! Adding a workload's segment: implement [`Segment`] (see `grokking.rs`, ~100 lines with its
//! table and plots) and add it to [`segments`].

mod clip;
mod data_diet;
mod distill;
mod gemm;
mod grokking;
pub mod page;
mod resources;
mod rtl_check;

use crate::error::{Error, Result};
use crate::progress::{self, format_duration};
use page::Table;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a segment mostly keeps busy; segments on different lanes run at the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lane {
    /// The host's engines (golden, cpu): training and GEMMs, using the cores rayon gets.
    Host,
    /// External tools: yosys (one core), Verilator builds and simulations.
    Tools,
}

/// Settings every segment sees.
#[derive(Clone, Debug)]
pub struct Tour {
    pub out: PathBuf,
    /// The long versions that reproduce the README's headline numbers.
    pub full: bool,
    pub seed: u64,
    /// Side of the GEMM formats segment's sample matrices.
    pub gemm_size: usize,
    /// Cap on the grokking segment's epoch budget (smoke runs; the finding then may not show).
    pub grokking_epochs: Option<usize>,
}

impl Tour {
    /// The segment's own output directory, `OUT/<name>/`.
    pub fn dir(&self, segment: &dyn Segment) -> Result<PathBuf> {
        let d = self.out.join(segment.name());
        std::fs::create_dir_all(&d)
            .map_err(|e| Error::file(&d, format!("cannot create the output directory: {e}")))?;
        Ok(d)
    }
}

/// What a segment found: shown in the terminal, on the page and in demo.json.
#[derive(Default)]
pub struct SegmentReport {
    pub tables: Vec<Table>,
    /// PNGs written by the segment (anywhere under the tour's output directory).
    pub images: Vec<(String, PathBuf)>,
    /// Headline sentences (each a finding with its numbers).
    pub notes: Vec<String>,
    /// Every result, for demo.json.
    pub results: serde_json::Value,
}

/// One part of the tour.
pub trait Segment: Sync {
    /// Short id: the output directory and the key in demo.json (`grokking`).
    fn name(&self) -> &'static str;
    /// One line: what the segment shows.
    fn shows(&self, tour: &Tour) -> String;
    fn lane(&self) -> Lane;
    /// Rough duration on an idle 2-core machine (the plan printed up front).
    fn estimate(&self, tour: &Tour) -> Duration;
    fn run(&self, tour: &Tour) -> Result<SegmentReport>;
}

/// The tour, in order within each lane.
pub fn segments() -> Vec<Box<dyn Segment>> {
    vec![
        Box::new(gemm::GemmFormats),
        Box::new(grokking::GrokkingTickets),
        Box::new(data_diet::DataDiet),
        Box::new(distill::Distill),
        Box::new(clip::Clip),
        Box::new(rtl_check::RtlCheck),
        Box::new(resources::Resources),
    ]
}

/// A finished segment.
pub struct Outcome {
    pub name: &'static str,
    pub shows: String,
    pub lane: Lane,
    pub estimate: Duration,
    pub wall: Duration,
    pub result: Result<SegmentReport>,
}

/// Run `chosen` (names; empty: all) of `all`, lanes side by side; write demo.json and README.md.
pub fn run_tour(tour: &Tour, all: Vec<Box<dyn Segment>>, chosen: &[String]) -> Result<()> {
    for c in chosen {
        if !all.iter().any(|s| s.name() == c) {
            let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
            return Err(Error::Usage(format!(
                "no demo segment `{c}` (segments: {})",
                names.join(", ")
            )));
        }
    }
    let picked: Vec<&dyn Segment> = all
        .iter()
        .map(|s| s.as_ref())
        .filter(|s| chosen.is_empty() || chosen.iter().any(|c| c == s.name()))
        .collect();
    std::fs::create_dir_all(&tour.out).map_err(|e| {
        Error::file(
            &tour.out,
            format!("cannot create the output directory: {e}"),
        )
    })?;
    print_plan(tour, &picked);
    let start = Instant::now();
    let done: Mutex<Vec<Option<Outcome>>> = Mutex::new(picked.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for lane in [Lane::Host, Lane::Tools] {
            let (done, picked) = (&done, &picked);
            scope.spawn(move || {
                for (i, seg) in picked.iter().enumerate().filter(|(_, s)| s.lane() == lane) {
                    let outcome = run_segment(tour, *seg, i, picked.len());
                    done.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                }
            });
        }
    });
    let outcomes: Vec<Outcome> = done
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect();
    let wall = start.elapsed();
    page::write_json(tour, &outcomes, wall)?;
    page::write_page(tour, &outcomes, wall)?;
    println!();
    println!(
        "demo done in {} (segments: {}); open {}",
        format_duration(wall),
        outcomes
            .iter()
            .map(|o| format!("{} {}", o.name, format_duration(o.wall)))
            .collect::<Vec<_>>()
            .join(", "),
        tour.out.join("README.md").display()
    );
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|e| format!("{}: {e}", o.name)))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{} demo segment(s) failed: {}",
            failed.len(),
            failed.join("; ")
        )))
    }
}

fn print_plan(tour: &Tour, picked: &[&dyn Segment]) {
    let lane_total = |lane| -> Duration {
        picked
            .iter()
            .filter(|s| s.lane() == lane)
            .map(|s| s.estimate(tour))
            .sum()
    };
    let budget = lane_total(Lane::Host).max(lane_total(Lane::Tools));
    println!(
        "shiftkit demo{}: {} segment(s), about {} on an idle 2-core machine (host engines and \
         external tools run side by side)",
        if tour.full { " --full" } else { "" },
        picked.len(),
        format_duration(budget)
    );
    for (i, s) in picked.iter().enumerate() {
        println!(
            "  {}. {:<13} ~{:<6} [{}] {}",
            i + 1,
            s.name(),
            format_duration(s.estimate(tour)),
            match s.lane() {
                Lane::Host => "host ",
                Lane::Tools => "tools",
            },
            s.shows(tour)
        );
    }
    println!();
}

fn run_segment(tour: &Tour, seg: &dyn Segment, i: usize, n: usize) -> Outcome {
    let shows = seg.shows(tour);
    let estimate = seg.estimate(tour);
    progress::println(format!(
        "[{}/{n} {}] started (~{}): {shows}",
        i + 1,
        seg.name(),
        format_duration(estimate)
    ));
    let start = Instant::now();
    let result = seg.run(tour);
    let wall = start.elapsed();
    let mut text = format!(
        "\n[{}/{n} {}] {} in {}\n",
        i + 1,
        seg.name(),
        if result.is_ok() { "done" } else { "FAILED" },
        format_duration(wall)
    );
    match &result {
        Ok(r) => {
            for t in &r.tables {
                text.push_str(&t.text());
            }
            for note in &r.notes {
                text.push_str(&format!("{note}\n"));
            }
            for (what, p) in &r.images {
                text.push_str(&format!("plot ({what}): {}\n", p.display()));
            }
        }
        Err(e) => text.push_str(&format!("error: {e}\n")),
    }
    progress::println(text.trim_end());
    Outcome {
        name: seg.name(),
        shows,
        lane: seg.lane(),
        estimate,
        wall,
        result,
    }
}

/// `path` relative to the tour's output directory (for links on the page).
pub fn relative(tour: &Tour, path: &Path) -> String {
    path.strip_prefix(&tour.out)
        .unwrap_or(path)
        .display()
        .to_string()
}
