//! `shiftkit gemm`: C = A x B from NPY files (SPEC §7).

use crate::engine::link::{link_line, link_report, op_link_cost, parse_clock, Link, LinkModel};
use crate::engine::{self, ArrayShape, EngineKind, GemmOp};
use crate::error::Result;
use crate::format::{AAxis, BAxis, Format};
use crate::npy;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct GemmArgs {
    /// A (M x K), little-endian f32 NPY.
    #[arg(long = "a", value_name = "A.npy")]
    pub a: PathBuf,
    /// B (K x N), little-endian f32 NPY.
    #[arg(long = "b", value_name = "B.npy")]
    pub b: PathBuf,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Channel axis of A: per-K exponents (shift in the PE) or per-M (on drain).
    #[arg(long, value_enum, default_value = "k")]
    pub a_axis: AAxis,
    /// Channel axis of B: per-K exponents (shift in the PE) or per-N (on drain).
    #[arg(long, value_enum, default_value = "n")]
    pub b_axis: BAxis,
    /// ShiftQuant exponent window E (0..=15).
    #[arg(long, default_value_t = shiftkit_hw::config::DEFAULT_WINDOW)]
    pub window: u32,
    /// Engine; default `cpu` for fp32, `golden` otherwise.
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// Output C (M x N), f32 NPY.
    #[arg(long, value_name = "C.npy")]
    pub out: PathBuf,
    /// PE rows of the modelled array.
    #[arg(long, default_value_t = 8)]
    pub rows: usize,
    /// PE columns of the modelled array.
    #[arg(long, default_value_t = 8)]
    pub cols: usize,
    /// Declared accumulator width (default 32, or what one shifted product needs).
    #[arg(long)]
    pub acc_bits: Option<u32>,
    /// Also write the run's counters as JSON here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Also time the GEMM over this host link: uart:BAUD, axi:BITS@HZ or pcie:BYTES_PER_S
    /// (printed, and `link` in --json).
    #[arg(long, value_name = "LINK")]
    pub link: Option<Link>,
    /// Accelerator clock of the link model (Hz, K/M/G suffixes).
    #[arg(long, default_value = "100M", value_parser = parse_clock)]
    pub clock: f64,
}

pub fn run(args: &GemmArgs) -> Result<()> {
    let kind = args.engine.unwrap_or(EngineKind::default_for(args.format));
    let shape = ArrayShape {
        rows: args.rows,
        cols: args.cols,
        acc_bits: args.acc_bits,
    };
    let mut op = GemmOp::new(args.format);
    op.a_axis = args.a_axis;
    op.b_axis = args.b_axis;
    op.window = args.window;
    if args.format != Format::Fp32 {
        shape.config_for(&op)?; // reject a bad window or accumulator before reading anything
    } else if let Some(l) = &args.link {
        return Err(crate::Error::Usage(format!(
            "--link {}: fp32 runs on the host and moves nothing over a link; use an accelerator format (sq4, sq6, sq8, fp16)",
            l.spec
        )));
    }
    let link = args.link.clone().map(|link| LinkModel {
        link,
        clock_hz: args.clock,
    });
    let mut engine = engine::create(kind, shape)?;
    let a = npy::read_matrix(&args.a)?;
    let b = npy::read_matrix(&args.b)?;
    let start = Instant::now();
    let c = engine.gemm(&a, &b, &op)?;
    let wall_s = start.elapsed().as_secs_f64();
    let dims = (a.rows, a.cols, b.cols);
    let link_cost = match &link {
        Some(model) => op_link_cost(&shape, &op, dims, model)?.map(|c| (model, c)),
        None => None,
    };
    npy::write_matrix(&args.out, &c)?;
    if let Some((model, c)) = &link_cost {
        println!("{}", link_line(model, c));
    }
    if let Some(path) = &args.json {
        let mut report = json!({
            "format": args.format,
            "engine": kind,
            "m": a.rows, "k": a.cols, "n": b.cols,
            "array": { "rows": args.rows, "cols": args.cols },
            "counters": engine.counters(),
            "utilization": engine.counters().utilization(args.rows * args.cols),
            "wall_s": wall_s,
        });
        if let Some((model, c)) = &link_cost {
            report["link"] = link_report(model, c, 1);
        }
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| crate::Error::Usage(e.to_string()))?;
        npy::write_bytes(path, text.as_bytes())?;
    }
    Ok(())
}
