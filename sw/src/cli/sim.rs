//! `shiftkit sim`: one random GEMM through the Verilated accelerator top (the `rtl` engine),
//! checked bit for bit against the `golden` engine, with the simulated and the modelled cycle
//! counts. Writes the result as JSON and exits non-zero when the bits differ.

use crate::engine::golden::GoldenEngine;
use crate::engine::link::{link_line, link_report, op_link_cost, parse_clock, Link, LinkModel};
use crate::engine::rtl::RtlEngine;
use crate::engine::{ArrayShape, Engine, GemmOp};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::matrix::Matrix;
use crate::npy::write_bytes;
use crate::rng::SplitMix64;
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Accelerator datapath: sq4, sq6, sq8 or fp16 (also as `accel-sq6` ...).
    #[arg(long, value_parser = parse_design)]
    pub design: Format,
    /// PE rows of the array.
    #[arg(long, default_value_t = 8)]
    pub rows: usize,
    /// PE columns of the array.
    #[arg(long, default_value_t = 8)]
    pub cols: usize,
    #[arg(long, default_value_t = 64)]
    pub m: usize,
    #[arg(long, default_value_t = 64)]
    pub k: usize,
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// ShiftQuant exponent window E (0..=15).
    #[arg(long, default_value_t = shiftkit_hw::config::DEFAULT_WINDOW)]
    pub window: u32,
    /// Declared accumulator width (default 32, or what one shifted product needs).
    #[arg(long)]
    pub acc_bits: Option<u32>,
    /// Seed of the random operands.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write a waveform of the run (.fst or .vcd).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// The result as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: PathBuf,
    /// Also time the GEMM over this host link: uart:BAUD, axi:BITS@HZ or pcie:BYTES_PER_S
    /// (`link` in --json).
    #[arg(long, value_name = "LINK")]
    pub link: Option<Link>,
    /// Accelerator clock of the link model (Hz, K/M/G suffixes).
    #[arg(long, default_value = "100M", value_parser = parse_clock)]
    pub clock: f64,
}

/// What `--json` receives.
#[derive(Serialize)]
struct SimReport {
    design: String,
    rows: usize,
    cols: usize,
    m: usize,
    k: usize,
    n: usize,
    window: u32,
    acc_bits: u32,
    seed: u64,
    /// Cycles the Verilator simulation took.
    cycles: u64,
    /// Cycles of the timing model (`golden`'s counter) for the same stream.
    model_cycles: u64,
    /// Cycles in which the array computed.
    busy_cycles: u64,
    macs: u64,
    utilization: f64,
    bytes_to_device: u64,
    bytes_from_device: u64,
    bit_exact: bool,
    /// Simulated cycles per second of wall time (the GEMM call, model already built).
    sim_cycles_per_s: f64,
    /// Wall time of the GEMM on the simulated top (quantize, stream, assemble, scale).
    wall_s: f64,
    /// Wall time to build or load the Verilator model.
    build_s: f64,
    /// With `--link`: the GEMM's stream timed over the link (`docs/accelerator.md`, "Link
    /// model").
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<serde_json::Value>,
}

/// `sq6`, `fp16`, ... or the design names `accel-sq6`, ...: an accelerator datapath.
fn parse_design(s: &str) -> std::result::Result<Format, String> {
    let name = s.strip_prefix("accel-").unwrap_or(s);
    match name.parse::<Format>() {
        Ok(Format::Fp32) | Err(_) => Err(format!(
            "'{s}' is not an accelerator design: use sq4, sq6, sq8 or fp16"
        )),
        Ok(f) => Ok(f),
    }
}

/// A random `rows x cols` operand: Gaussian, with a few outlier channels so that the per-channel
/// exponents spread over the window.
fn random_matrix(rows: usize, cols: usize, rng: &mut SplitMix64) -> Matrix {
    Matrix::from_fn(rows, cols, |_, c| {
        let outlier = if c % 5 == 2 { 16.0 } else { 1.0 };
        (outlier * rng.normal()) as f32
    })
}

fn check_args(args: &SimArgs) -> Result<()> {
    for (name, v) in [("--m", args.m), ("--k", args.k), ("--n", args.n)] {
        if v == 0 {
            return Err(Error::Usage(format!(
                "{name} must be at least 1 (the GEMM is M x K times K x N)"
            )));
        }
    }
    for (flag, path) in [
        ("--json", Some(&args.json)),
        ("--trace", args.trace.as_ref()),
    ] {
        let dir = path
            .and_then(|p| p.parent())
            .filter(|d| !d.as_os_str().is_empty());
        if let Some(d) = dir.filter(|d| !d.is_dir()) {
            return Err(Error::Usage(format!(
                "{flag}: directory {} does not exist: create it first",
                d.display()
            )));
        }
    }
    if let Some(t) = &args.trace {
        let ext = t.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "fst" && ext != "vcd" {
            return Err(Error::Usage(format!(
                "--trace {}: a waveform file must end in .fst or .vcd",
                t.display()
            )));
        }
    }
    Ok(())
}

pub fn run(args: &SimArgs) -> Result<()> {
    check_args(args)?;
    let shape = ArrayShape {
        rows: args.rows,
        cols: args.cols,
        acc_bits: args.acc_bits,
    };
    let mut op = GemmOp::new(args.design);
    op.window = args.window;
    let config = shape.config_for(&op)?; // a bad geometry, window or width fails before any work
    let link_cost = match &args.link {
        Some(link) => {
            let model = LinkModel {
                link: link.clone(),
                clock_hz: args.clock,
            };
            let c = op_link_cost(&shape, &op, (args.m, args.k, args.n), &model)?
                .ok_or_else(|| Error::Usage("--link: nothing to time on the host".into()))?;
            Some((model, c))
        }
        None => None,
    };
    let mut rng = SplitMix64::new(args.seed);
    let a = random_matrix(args.m, args.k, &mut rng);
    let b = random_matrix(args.k, args.n, &mut rng);

    let mut opts = shiftkit_sim::BuildOptions::default();
    if let Some(t) = &args.trace {
        opts.trace = trace_format(t);
    }
    let mut rtl = RtlEngine::new(shape, opts)?; // no Verilator: fail before any work

    let mut golden = GoldenEngine::new(shape);
    let want = golden.gemm(&a, &b, &op)?;
    let start = Instant::now();
    rtl.prepare(&op)?;
    let build_s = start.elapsed().as_secs_f64();
    if let Some(t) = &args.trace {
        rtl.trace(&op, t)?;
    }
    let spinner = running_spinner(golden.counters().cycles);
    let start = Instant::now();
    let got = rtl.gemm(&a, &b, &op);
    let wall_s = start.elapsed().as_secs_f64();
    spinner.finish_and_clear();
    rtl.close_trace();
    let got = got?;

    let counters = *rtl.counters();
    let differ = first_difference(&got, &want);
    let report = SimReport {
        design: format!("accel-{}", args.design),
        rows: args.rows,
        cols: args.cols,
        m: args.m,
        k: args.k,
        n: args.n,
        window: config.window,
        acc_bits: config.acc_bits,
        seed: args.seed,
        cycles: counters.cycles,
        model_cycles: golden.counters().cycles,
        busy_cycles: rtl.busy_cycles(),
        macs: counters.macs,
        utilization: counters.utilization(args.rows * args.cols),
        bytes_to_device: counters.bytes_to_device,
        bytes_from_device: counters.bytes_from_device,
        bit_exact: differ.is_none(),
        sim_cycles_per_s: counters.cycles as f64 / wall_s.max(1e-9),
        wall_s,
        build_s,
        link: link_cost
            .as_ref()
            .map(|(model, c)| link_report(model, c, 1)),
    };
    if let Some((model, c)) = &link_cost {
        println!("{}", link_line(model, c));
    }
    write_report(&args.json, &report)?;
    println!(
        "{} {}x{}: {}x{}x{} in {} cycles (model {}), utilization {:.1}%, {}, {:.2} M cycles/s",
        report.design,
        args.rows,
        args.cols,
        args.m,
        args.k,
        args.n,
        report.cycles,
        report.model_cycles,
        100.0 * report.utilization,
        if report.bit_exact {
            "bit-exact with golden"
        } else {
            "NOT bit-exact"
        },
        report.sim_cycles_per_s / 1e6
    );
    if let Some((i, g, w)) = differ {
        return Err(Error::Usage(format!(
            "rtl and golden differ: C[{}][{}] is {g:e} on rtl, {w:e} on golden (report in {})",
            i / args.n,
            i % args.n,
            args.json.display()
        )));
    }
    if report.cycles != report.model_cycles {
        return Err(Error::Usage(format!(
            "the simulation took {} cycles, the timing model says {} (report in {})",
            report.cycles,
            report.model_cycles,
            args.json.display()
        )));
    }
    Ok(())
}

/// The first element whose bits differ: (flat index, rtl value, golden value).
fn first_difference(got: &Matrix, want: &Matrix) -> Option<(usize, f32, f32)> {
    got.data
        .iter()
        .zip(&want.data)
        .position(|(g, w)| g.to_bits() != w.to_bits())
        .map(|i| (i, got.data[i], want.data[i]))
}

/// The waveform format the file asks for, always with tracing compiled in: the default build
/// (`Auto`) leaves tracing out of large designs, so it cannot serve `--trace`.
fn trace_format(path: &Path) -> shiftkit_sim::TraceFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some("vcd") => shiftkit_sim::TraceFormat::Vcd,
        _ => shiftkit_sim::TraceFormat::Fst,
    }
}

fn running_spinner(model_cycles: u64) -> indicatif::ProgressBar {
    let s = indicatif::ProgressBar::new_spinner();
    s.set_message(format!("simulating about {model_cycles} cycles"));
    s.enable_steady_tick(std::time::Duration::from_millis(200));
    s
}

fn write_report(path: &Path, report: &SimReport) -> Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(|e| Error::Usage(e.to_string()))?;
    write_bytes(path, text.as_bytes())
}
