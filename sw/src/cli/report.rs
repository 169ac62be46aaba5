//! `shiftkit report`: resources of the ShiftQuant and FP16 designs at several sizes on every
//! target, ratios against FP16, and Fmax on iCE40 — as report.md, report.json and a PNG chart.

use crate::design::{self, Design};
use crate::error::{Error, Result};
use crate::npy::write_bytes;
use crate::workloads::report::{plot_bars, write_json, Bar};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;
use shiftkit_hw::synth::{synthesize_cached, Cells, Target};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[arg(long)]
    pub out: PathBuf,
    /// Array sizes (square), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![4usize, 8, 16])]
    pub sizes: Vec<usize>,
    /// Designs, comma-separated (fp16 is the reference).
    #[arg(long, value_delimiter = ',', default_values = ["sq4", "sq6", "fp16"], value_enum)]
    pub designs: Vec<Design>,
    /// Targets, comma-separated (default: all six).
    #[arg(long, value_delimiter = ',', value_parser = super::hw::parse_target)]
    pub targets: Vec<Target>,
    /// Skip place-and-route (no Fmax column).
    #[arg(long)]
    pub no_fmax: bool,
    /// Syntheses run at once (each yosys process is single-threaded). Results are cached in
    /// OUT/designs, so a rerun or a report with more sizes only synthesizes what is new.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
}

#[derive(Clone, Debug, Serialize)]
struct Entry {
    design: String,
    size: usize,
    target: String,
    cells: Cells,
    /// LUTs over the FP16 array's of the same size and target.
    lut_ratio_vs_fp16: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
struct FmaxEntry {
    design: String,
    size: usize,
    board: String,
    fmax_mhz: Option<f64>,
    note: String,
}

pub fn run(args: &ReportArgs) -> Result<()> {
    let targets = if args.targets.is_empty() {
        Target::ALL.to_vec()
    } else {
        args.targets.clone()
    };
    std::fs::create_dir_all(&args.out).map_err(|e| {
        Error::file(
            &args.out,
            format!("cannot create the output directory: {e}"),
        )
    })?;
    let work = args.out.join("designs");
    // Generate every design once, then synthesize all (design, size, target) jobs, `--jobs` at a time,
    // reusing cached results.
    let mut generated = BTreeMap::new();
    for &d in &args.designs {
        for &n in &args.sizes {
            let cfg = design::config(d, n, n, shiftkit_hw::config::DEFAULT_WINDOW, None)?;
            let g = design::generate(d, &cfg, &work.join(format!("{}_{n}x{n}", d.name())))?;
            generated.insert((d.name(), n), g);
        }
    }
    let jobs: Vec<(&'static str, usize, Target)> = generated
        .keys()
        .flat_map(|&(d, n)| targets.iter().map(move |&t| (d, n, t)))
        .collect();
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("synthesizing [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.jobs.max(1))
        .build()
        .map_err(|e| Error::Usage(e.to_string()))?;
    type Job<'a> = (&'a str, usize, Target);
    let results: Vec<Result<(Job, Cells)>> = pool.install(|| {
        jobs.par_iter()
            .map(|&(d, n, t)| {
                let g = &generated[&(d, n)];
                let files: Vec<&std::path::Path> = g.files.iter().map(|p| p.as_path()).collect();
                let r = synthesize_cached(&files, &g.top, t, &work.join(format!("{d}_{n}x{n}")))
                    .map_err(|e| Error::Usage(e.to_string()))?;
                bar.inc(1);
                bar.set_message(format!("{d} {n}x{n} {}", t.name()));
                Ok(((d, n, t), r.cells))
            })
            .collect()
    });
    bar.finish_and_clear();
    let cells: BTreeMap<(&str, usize, &str), Cells> = results
        .into_iter()
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .map(|((d, n, t), c)| ((d, n, t.name()), c))
        .collect();
    let entries: Vec<Entry> = cells
        .iter()
        .map(|(&(d, n, t), c)| Entry {
            design: d.to_string(),
            size: n,
            target: t.to_string(),
            cells: *c,
            lut_ratio_vs_fp16: cells
                .get(&("fp16", n, t))
                .filter(|f| f.lut > 0)
                .map(|f| c.lut as f64 / f.lut as f64),
        })
        .collect();
    let fmax = if args.no_fmax {
        Vec::new()
    } else {
        fmax_entries(args)?
    };
    let version = shiftkit_hw::tools::yosys_version().map_err(|e| Error::Usage(e.to_string()))?;
    write_json(
        &args.out.join("report.json"),
        &serde_json::json!({ "yosys": version, "resources": entries, "fmax": fmax }),
    )?;
    write_bytes(
        &args.out.join("report.md"),
        markdown(&entries, &fmax, &targets, &version).as_bytes(),
    )?;
    let bars: Vec<Bar> = entries
        .iter()
        .filter(|e| {
            e.target == "xc7-nodsp" || (targets.len() == 1 && e.target == targets[0].name())
        })
        .map(|e| Bar {
            group: format!("{}x{}", e.size, e.size),
            series: e.design.clone(),
            value: e.cells.lut as f64,
        })
        .collect();
    let chart_target = if targets.contains(&Target::Xc7Nodsp) {
        "xc7-nodsp"
    } else {
        targets[0].name()
    };
    plot_bars(
        &args.out.join("report.png"),
        &format!("LUTs per array ({chart_target}, yosys)"),
        "LUTs",
        &bars,
    )?;
    println!("{}", markdown(&entries, &fmax, &targets, &version));
    println!("wrote {}", args.out.join("report.md").display());
    Ok(())
}

/// Fmax of the accelerators with their UART shell through nextpnr-ice40: each design on the
/// HX8K at 4x4 — except FP16, whose 4x4 top (~16.5k LUT4) does not fit the HX8K's 7,680 cells, so
/// it is placed at 2x2 — and the 4x4 sq4 top on the iCEBreaker's UP5K.
fn fmax_entries(args: &ReportArgs) -> Result<Vec<FmaxEntry>> {
    use shiftkit_hw::board::{accel_for, Board, DEFAULT_BAUD};
    let mut jobs = Vec::new();
    for &d in &args.designs {
        if let Some(name) = d.board_accel() {
            let size = if name == "fp16" { 2 } else { 4 };
            jobs.push((name, size, Board::Hx8kBreakout));
            if name == "sq4" {
                jobs.push((name, 4, Board::Icebreaker));
            }
        }
    }
    let mut out = Vec::new();
    for (name, size, board) in jobs {
        let accel = accel_for(name, size, size).map_err(|e| Error::Usage(e.to_string()))?;
        let dir = args
            .out
            .join("fmax")
            .join(format!("{name}_{size}x{size}_{}", board.name()));
        let (fmax_mhz, note) =
            match shiftkit_hw::flow::build_board(board, &accel, DEFAULT_BAUD, &dir) {
                Ok((_, rep)) => {
                    // The cells that bound the fit: logic cells and block RAM.
                    let used: Vec<String> = ["ICESTORM_LC", "ICESTORM_RAM"]
                        .iter()
                        .filter_map(|k| rep.utilization.get(*k).map(|u| (k, u)))
                        .map(|(k, u)| format!("{k} {}/{}", u.used, u.available))
                        .collect();
                    (rep.fmax_mhz, used.join(", "))
                }
                Err(e) => (None, e.to_string()),
            };
        out.push(FmaxEntry {
            design: name.into(),
            size,
            board: board.name().into(),
            fmax_mhz,
            note,
        });
    }
    Ok(out)
}

fn markdown(entries: &[Entry], fmax: &[FmaxEntry], targets: &[Target], version: &str) -> String {
    let mut s = format!("# shiftkit resource report\n\n{version}. LUTs (ratio to the FP16 array of the same size) / FFs.\n\n");
    s.push_str("| design | size |");
    for t in targets {
        s.push_str(&format!(" {} |", t.name()));
    }
    s.push_str("\n| --- | --- |");
    s.push_str(&" --- |".repeat(targets.len()));
    s.push('\n');
    let mut keys: Vec<(String, usize)> =
        entries.iter().map(|e| (e.design.clone(), e.size)).collect();
    keys.sort_by_key(|(d, n)| (*n, d.clone()));
    keys.dedup();
    for (d, n) in keys {
        s.push_str(&format!("| {d} | {n}x{n} |"));
        for t in targets {
            match entries
                .iter()
                .find(|e| e.design == d && e.size == n && e.target == t.name())
            {
                Some(e) => {
                    let ratio = e
                        .lut_ratio_vs_fp16
                        .map_or(String::new(), |r| format!(" ({r:.3}x)"));
                    let extra = if e.cells.dsp + e.cells.bram > 0 {
                        format!(", {} DSP, {} BRAM", e.cells.dsp, e.cells.bram)
                    } else {
                        String::new()
                    };
                    s.push_str(&format!(
                        " {}{} / {}{} |",
                        e.cells.lut, ratio, e.cells.ff, extra
                    ));
                }
                None => s.push_str(" - |"),
            }
        }
        s.push('\n');
    }
    if !fmax.is_empty() {
        s.push_str("\n## Fmax on iCE40 (accelerator top with the UART shell, nextpnr-ice40)\n\n| design | size | board | Fmax | utilization |\n| --- | --- | --- | --- | --- |\n");
        for f in fmax {
            let v = f
                .fmax_mhz
                .map_or("-".to_string(), |m| format!("{m:.1} MHz"));
            s.push_str(&format!(
                "| {} | {n}x{n} | {} | {} | {} |\n",
                f.design,
                f.board,
                v,
                f.note,
                n = f.size
            ));
        }
    }
    s
}
