//! `shiftkit gen` and `shiftkit synth`: Verilog and resource counts of any design.

use crate::design::{self, Design};
use crate::error::{Error, Result};
use crate::npy::write_bytes;
use clap::Args;
use serde_json::json;
use shiftkit_hw::synth::{synthesize, Target};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DesignArgs {
    #[arg(long, value_enum)]
    pub design: Design,
    #[arg(long)]
    pub rows: usize,
    #[arg(long)]
    pub cols: usize,
    /// Declared accumulator width (default 32, or what one shifted product needs).
    #[arg(long)]
    pub acc_bits: Option<u32>,
    /// ShiftQuant exponent window E (0..=15).
    #[arg(long, default_value_t = shiftkit_hw::config::DEFAULT_WINDOW)]
    pub window: u32,
}

#[derive(Args, Debug)]
pub struct GenArgs {
    #[command(flatten)]
    pub design: DesignArgs,
    /// Directory for the Verilog and manifest.json.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    #[command(flatten)]
    pub design: DesignArgs,
    /// ice40, ice40-dsp, xc7, xc7-nodsp, ecp5 or ecp5-nodsp.
    #[arg(long, value_parser = parse_target)]
    pub target: Target,
    #[arg(long, value_name = "PATH")]
    pub json: PathBuf,
}

pub fn parse_target(s: &str) -> std::result::Result<Target, String> {
    Target::parse(s).ok_or_else(|| {
        format!("unknown target '{s}': use ice40, ice40-dsp, xc7, xc7-nodsp, ecp5 or ecp5-nodsp")
    })
}

impl DesignArgs {
    fn config(&self) -> Result<shiftkit_hw::ArrayConfig> {
        design::config(
            self.design,
            self.rows,
            self.cols,
            self.window,
            self.acc_bits,
        )
    }
}

pub fn gen(args: &GenArgs) -> Result<()> {
    let config = args.design.config()?;
    let g = design::generate(args.design.design, &config, &args.out)?;
    println!(
        "{}: {} in {}",
        args.design.design.name(),
        g.top,
        args.out.display()
    );
    Ok(())
}

pub fn synth(args: &SynthArgs) -> Result<()> {
    let config = args.design.config()?;
    let dir = tempfile::tempdir()
        .map_err(|e| Error::Usage(format!("cannot create a temporary directory: {e}")))?;
    let g = design::generate(args.design.design, &config, dir.path())?;
    let files: Vec<&std::path::Path> = g.files.iter().map(|p| p.as_path()).collect();
    let hw = |e: shiftkit_hw::HwError| Error::Usage(e.to_string());
    let res = synthesize(&files, &g.top, args.target).map_err(hw)?;
    let version = shiftkit_hw::tools::yosys_version().map_err(hw)?;
    let report = json!({
        "design": args.design.design.name(),
        "target": args.target.name(),
        "rows": args.design.rows,
        "cols": args.design.cols,
        "window": args.design.window,
        "acc_bits": config.acc_bits,
        "top": g.top,
        "cells": res.cells,
        "cells_by_type": res.cells_by_type,
        "yosys": version,
    });
    let text = serde_json::to_string_pretty(&report).map_err(|e| Error::Usage(e.to_string()))?;
    write_bytes(&args.json, text.as_bytes())?;
    let c = res.cells;
    println!(
        "{} {}x{} on {}: {} LUT, {} FF, {} carry, {} DSP, {} BRAM",
        args.design.design.name(),
        args.design.rows,
        args.design.cols,
        args.target.name(),
        c.lut,
        c.ff,
        c.carry,
        c.dsp,
        c.bram
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct BitstreamArgs {
    /// icebreaker, hx8k-breakout, arty-a7-35 or ulx3s.
    #[arg(long)]
    pub board: String,
    /// The accelerator inside the board shell: accel-sq4, accel-sq6, accel-sq8 (or sq4/sq6/sq8).
    #[arg(long, value_enum)]
    pub design: Design,
    #[arg(long)]
    pub rows: usize,
    #[arg(long)]
    pub cols: usize,
    /// UART baud rate of the host link.
    #[arg(long, default_value_t = shiftkit_hw::board::DEFAULT_BAUD)]
    pub baud: u64,
    #[arg(long)]
    pub out: PathBuf,
}

pub fn bitstream(args: &BitstreamArgs) -> Result<()> {
    use shiftkit_hw::board::{accel_for_board, Board};
    let board: Board = args
        .board
        .parse()
        .map_err(|e: shiftkit_hw::board::BoardError| Error::Usage(e.to_string()))?;
    let name = args.design.board_accel().ok_or_else(|| {
        Error::Unsupported(format!(
            "no board build for {} yet: the board shell wraps the sq accelerator tops (accel-sq4, accel-sq6, accel-sq8)",
            args.design.name()
        ))
    })?;
    let board_err = |e: shiftkit_hw::board::BoardError| Error::Usage(e.to_string());
    let accel = accel_for_board(board, name, args.rows, args.cols).map_err(board_err)?;
    let (_, report) =
        shiftkit_hw::flow::build_board(board, &accel, args.baud, &args.out).map_err(board_err)?;
    println!("{}", report.summary());
    Ok(())
}
