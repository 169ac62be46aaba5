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

/// The accelerator top of a design's datapath at one size: what its operand buffers hold and
/// what a square GEMM moves over the ports.
#[derive(Clone, Debug, Serialize)]
struct TrafficEntry {
    design: String,
    size: usize,
    /// Bits of the A and B operand memories (both banks, `K_MAX` = 256 K steps), as generated
    /// (`docs/accelerator.md`, "Buffers").
    operand_buffer_bits: u64,
    /// The square GEMM's size N (N x N x N) and its bytes each way per MAC.
    gemm_n: usize,
    bytes_to_device_per_mac: f64,
    bytes_from_device_per_mac: f64,
}

/// The square GEMM `shiftkit report` prices (the demo's 512^3).
pub const REPORT_GEMM_N: usize = 512;

fn traffic_entry(d: Design, n: usize) -> Result<TrafficEntry> {
    use crate::engine::{ArrayShape, GemmOp};
    let config = design::config(d, n, n, shiftkit_hw::config::DEFAULT_WINDOW, None)?;
    let format = match config.datapath {
        shiftkit_hw::Datapath::Sq { bits: 4 } => crate::format::Format::Sq4,
        shiftkit_hw::Datapath::Sq { bits: 6 } => crate::format::Format::Sq6,
        shiftkit_hw::Datapath::Sq { .. } => crate::format::Format::Sq8,
        shiftkit_hw::Datapath::Fp16 => crate::format::Format::Fp16,
    };
    let shape = ArrayShape {
        rows: n,
        cols: n,
        acc_bits: None,
    };
    let op = GemmOp::new(format);
    let config = shape.config_for(&op)?;
    let geom = crate::engine::offload::accel_geometry(&config)?;
    let chunk = match config.datapath {
        shiftkit_hw::Datapath::Sq { .. } => crate::engine::offload::sq_stream_chunk(&config, &op)?,
        shiftkit_hw::Datapath::Fp16 => crate::engine::offload::K_MAX,
    };
    let g = REPORT_GEMM_N;
    let c = crate::engine::cost::gemm_cost(&geom, (g, g, g), chunk)?;
    Ok(TrafficEntry {
        design: d.name().to_string(),
        size: n,
        operand_buffer_bits: geom.operand_buffer_bits(),
        gemm_n: g,
        bytes_to_device_per_mac: c.bytes_to_device as f64 / c.macs as f64,
        bytes_from_device_per_mac: c.bytes_from_device as f64 / c.macs as f64,
    })
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
    let traffic = traffic_entries(&args.designs, &args.sizes)?;
    let version = shiftkit_hw::tools::yosys_version().map_err(|e| Error::Usage(e.to_string()))?;
    write_json(
        &args.out.join("report.json"),
        &serde_json::json!({
            "yosys": version, "resources": entries, "fmax": fmax, "traffic": traffic,
        }),
    )?;
    let md = markdown(&entries, &fmax, &targets, &version) + &traffic_markdown(&traffic);
    write_bytes(&args.out.join("report.md"), md.as_bytes())?;
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
    println!("{md}");
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

/// One [`TrafficEntry`] per accelerator datapath and size (the L1-norm unit has none).
fn traffic_entries(designs: &[Design], sizes: &[usize]) -> Result<Vec<TrafficEntry>> {
    let mut out = Vec::new();
    for &d in designs.iter().filter(|d| d.board_accel().is_some()) {
        for &n in sizes {
            out.push(traffic_entry(d, n)?);
        }
    }
    Ok(out)
}

fn traffic_markdown(traffic: &[TrafficEntry]) -> String {
    if traffic.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\n## Operand buffers and traffic (accelerator top, K_MAX = 256; {n}x{n}x{n} GEMM)\n\n\
         | design | size | operand-buffer bits | bytes to device / MAC | bytes from device / MAC |\n\
         | --- | --- | --- | --- | --- |\n",
        n = REPORT_GEMM_N
    );
    for t in traffic {
        s.push_str(&format!(
            "| {} | {n}x{n} | {} | {:.4} | {:.4} |\n",
            t.design,
            t.operand_buffer_bits,
            t.bytes_to_device_per_mac,
            t.bytes_from_device_per_mac,
            n = t.size
        ));
    }
    s
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

#[cfg(test)]
mod tests {
    use super::*;
    use shiftkit_hw::{ArrayConfig, Datapath};

    /// What the report prints: `AccelGeometry::operand_buffer_bits` of the top for `config`.
    fn operand_buffer_bits(config: &ArrayConfig, k_max: usize) -> u64 {
        shiftkit_hw::accel::AccelGeometry::new(config, k_max)
            .expect("geometry")
            .operand_buffer_bits()
    }

    /// Bits of the generated memories `K_MAX`-deep banks (`reg [msb:0] mem [0:last]` with
    /// `last + 1 = 2 * 2^ceil(log2 K_MAX)`): the A and B operand buffers.
    fn generated_operand_bits(config: &ArrayConfig, k_max: usize) -> u64 {
        let d = shiftkit_hw::generate::generate_accel(config, k_max).expect("generates");
        let p = shiftkit_hw::accel::default_k_per_beat(config.datapath);
        let depth = 2u64 << shiftkit_hw::accel::buffers::addr_bits_for(k_max.div_ceil(p));
        let mut total = 0;
        for line in d.verilog.lines().filter(|l| l.contains(" mem [0:")) {
            let num = |after: &str, until: char| -> u64 {
                let s = &line[line.find(after).expect("field") + after.len()..];
                s[..s.find(until).expect("end")]
                    .trim()
                    .parse()
                    .expect("number")
            };
            let (width, entries) = (num("reg [", ':') + 1, num("mem [0:", ']') + 1);
            if entries == depth {
                total += width * entries;
            }
        }
        total
    }

    #[test]
    fn operand_buffer_bits_are_the_generated_memories() {
        for (rows, cols, dp) in [
            (4, 4, Datapath::Sq { bits: 4 }),
            (3, 5, Datapath::Sq { bits: 6 }),
            (2, 2, Datapath::Fp16),
        ] {
            let config = ArrayConfig::sized(rows, cols, dp, 7, None).unwrap();
            let want = generated_operand_bits(&config, 64);
            assert!(want > 0, "no operand memories found for {dp:?}");
            assert_eq!(
                operand_buffer_bits(&config, 64),
                want,
                "{dp:?} {rows}x{cols}"
            );
        }
        // 8x8: sq4 stores 36-bit entries, sq8 68-bit ones.
        let bits = |b| {
            operand_buffer_bits(
                &ArrayConfig::sized(8, 8, Datapath::Sq { bits: b }, 7, None).unwrap(),
                256,
            ) as f64
        };
        assert!((bits(4) / bits(8) - 36.0 / 68.0).abs() < 1e-12);
    }

    #[test]
    fn traffic_of_the_square_gemm() {
        let t = traffic_entry(Design::Sq6, 8).unwrap();
        // 512^3 on 8x8, two K steps per beat: 128 passes x (LOAD_A 1 + 128, 64 tiles x (LOAD_B
        // 1 + 128, COMPUTE, DRAIN)) = 1,089,664 beats of 13 bytes for 2^27 MACs.
        assert!((t.bytes_to_device_per_mac - 14_165_632.0 / 134_217_728.0).abs() < 1e-12);
        // sq4: 9-byte beats, 0.51x of sq8's 2,154,624 beats of 9 bytes (one K step each).
        let sq4 = traffic_entry(Design::Sq4, 8).unwrap();
        let sq8 = traffic_entry(Design::Sq8, 8).unwrap();
        assert!((sq4.bytes_to_device_per_mac - 9_806_976.0 / 134_217_728.0).abs() < 1e-12);
        assert!((sq8.bytes_to_device_per_mac - 19_391_616.0 / 134_217_728.0).abs() < 1e-12);
        assert!(traffic_markdown(&[t]).contains("| sq6 | 8x8 |"));
    }
}
