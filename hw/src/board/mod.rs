//! Putting an accelerator on a board: UART, host-link bridge, board tops, constraints.
//!
//! - [`uart`]: 8N1 UART receiver (2-FF synchronizer, mid-bit sampling) and transmitter; the bit
//!   period is a generation parameter ([`uart::baud_divider`]).
//! - [`bridge`]: [`bridge::HostBridge`], UART bytes <-> the accelerator's `cmd` / `rsp` streams
//!   (fixed-length little-endian beats, `docs/accelerator.md` "Host link (UART)"), and the
//!   [`bridge::EchoAccel`] stand-in.
//! - [`top`]: power-on reset, [`top::BoardTop`] (UART + bridge + accelerator + LEDs).
//! - [`boards`]: the supported boards ([`Board`]) and their constraint files (`constraints/`).
//! - [`constraints`]: reads the pinned port names back out of `.pcf` / `.xdc` / `.lpf`.
//! - [`verilog`]: rust-hdl block -> lint-clean Verilog text.
//!
//! [`generate_board`] turns a board and an accelerator ([`Accel`]; [`accel_for`] is the one
//! place that knows how to get a generated accelerator top) into Verilog files; [`write_board`]
//! writes them with `board.json` (the host-link parameters a host runtime needs);
//! `crate::flow::bitstream` builds them.

pub mod boards;
pub mod bridge;
pub mod constraints;
pub mod top;
pub mod uart;
pub mod verilog;

#[cfg(test)]
pub(crate) mod testing;

pub use boards::{Board, BoardInfo, Fpga, DEFAULT_BAUD};

use crate::config::{ArrayConfig, Datapath};
use crate::verilog::Port;
use crate::HwError;
use bridge::beat_bytes;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use top::{BoardTop, EchoBoardTop};

/// Everything that can go wrong when generating a board design or building its bitstream.
/// Every message is one line that says what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("UART at {baud} baud from a {clock_hz} Hz clock: {reason}")]
    Baud {
        clock_hz: u64,
        baud: u64,
        reason: String,
    },
    #[error("unknown board `{0}`: use one of icebreaker, hx8k-breakout, arty-a7-35, ulx3s")]
    UnknownBoard(String),
    #[error("unknown design `{0}`: use echo (link test stand-in), sq4, sq6, sq8 or fp16")]
    UnknownDesign(String),
    #[error("{tool} was not found on PATH (or in ${env}): {hint}")]
    ToolMissing {
        tool: String,
        env: String,
        hint: String,
    },
    #[error("{step} failed: {first_error} (full log: {log})")]
    ToolFailed {
        step: String,
        first_error: String,
        log: PathBuf,
    },
    #[error("{what}: {detail}")]
    Check { what: String, detail: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Hw(#[from] HwError),
}

impl BoardError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> BoardError {
        let path = path.into();
        move |source| BoardError::Io {
            action,
            path,
            source,
        }
    }
}

/// What goes in the accelerator's place in a board top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accel {
    /// The [`bridge::EchoAccel`] stand-in with beats of `w_in` / `w_out` bits (a link test).
    Echo { w_in: usize, w_out: usize },
    /// A Verilog module with the documented ports (`docs/accelerator.md`), instantiated by
    /// name; `files` = (file name, text), the module's definition among them.
    Verilog {
        module: String,
        files: Vec<(String, String)>,
        w_in: usize,
        w_out: usize,
    },
}

impl Accel {
    /// `W_IN`, `W_OUT`.
    pub fn widths(&self) -> (usize, usize) {
        match self {
            Accel::Echo { w_in, w_out } | Accel::Verilog { w_in, w_out, .. } => (*w_in, *w_out),
        }
    }

    /// The accelerator module's name (`echo` for the stand-in).
    pub fn name(&self) -> &str {
        match self {
            Accel::Echo { .. } => "echo",
            Accel::Verilog { module, .. } => module,
        }
    }
}

/// The accelerator for a design name and array size: `echo` (the stand-in, with the beat
/// widths of an sq4 top of that size), or `sq4` / `sq6` / `sq8` / `fp16` (the generated
/// accelerator top, `crate::generate::generate_accel_with_l1norm`, default buffer depth, without the
/// L1-norm unit: see [`accel_for_board`]). This and [`accel_with_l1norm`] are the only
/// functions that know about the accelerator generator.
pub fn accel_for(design: &str, rows: usize, cols: usize) -> Result<Accel, BoardError> {
    accel_with_l1norm(design, rows, cols, false)
}

/// [`accel_for`] with the L1-norm unit (opcode 6, L1NORM) where `board` takes it by default
/// ([`Board::l1norm_by_default`]).
pub fn accel_for_board(
    board: Board,
    design: &str,
    rows: usize,
    cols: usize,
) -> Result<Accel, BoardError> {
    accel_with_l1norm(design, rows, cols, board.l1norm_by_default())
}

impl Board {
    /// Whether the SQ accelerator tops for this board carry the L1-norm unit
    /// (`crate::accel::default_l1norm`) by default: not on the iCE40 boards, where it does not
    /// fit with a 4x4 top (measured with the UART shell and rows <= 256: sq4 6,797 of the UP5K's 5,280 logic
    /// cells; the HX8K holds sq4, 6,800 of 7,680, but not sq6 / sq8), and on the others.
    pub fn l1norm_by_default(self) -> bool {
        !matches!(self, Board::Icebreaker | Board::Hx8kBreakout)
    }
}

/// [`accel_for`] with (`l1norm`) or without the L1-norm unit.
pub fn accel_with_l1norm(
    design: &str,
    rows: usize,
    cols: usize,
    l1norm: bool,
) -> Result<Accel, BoardError> {
    let datapath = match design {
        "echo" | "sq4" => Datapath::Sq { bits: 4 },
        "sq6" => Datapath::Sq { bits: 6 },
        "sq8" => Datapath::Sq { bits: 8 },
        "fp16" => Datapath::Fp16,
        _ => return Err(BoardError::UnknownDesign(design.to_string())),
    };
    let config = ArrayConfig::new(rows, cols, datapath).map_err(HwError::from)?;
    // The L1-norm unit comes with the integer tops only.
    let l1 = match datapath {
        Datapath::Sq { bits } if l1norm => Some(crate::accel::default_l1norm(bits)),
        _ => None,
    };
    let k_max = crate::accel::DEFAULT_K_MAX;
    let geom = crate::accel::AccelGeometry::with_l1norm(&config, k_max, l1)?;
    if design == "echo" {
        return Ok(Accel::Echo {
            w_in: geom.cmd_bits(),
            w_out: geom.rsp_bits(),
        });
    }
    let d = crate::generate::generate_accel_with_l1norm(&config, k_max, l1)?;
    Ok(Accel::Verilog {
        files: vec![(format!("{}.v", d.top), d.verilog)],
        module: d.top,
        w_in: geom.cmd_bits(),
        w_out: geom.rsp_bits(),
    })
}

/// The host link of a generated board design, as `board.json` records it: what a host runtime
/// needs to talk to the board (`docs/accelerator.md`, "Host link (UART)").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostLink {
    pub board: Board,
    pub top: String,
    /// The accelerator module inside (`echo` for the stand-in).
    pub accel: String,
    pub clock_hz: u64,
    /// Requested and actual rate (the divider rounds).
    pub baud: u64,
    pub actual_baud: f64,
    pub uart_divider: u32,
    /// `W_IN`, `W_OUT`, and the bytes per beat on the wire.
    pub cmd_bits: usize,
    pub rsp_bits: usize,
    pub cmd_beat_bytes: usize,
    pub rsp_beat_bytes: usize,
    /// A partial command beat is dropped after this much silence.
    pub resync_ms: f64,
}

/// A generated board design: the top module and every Verilog file, board top first.
#[derive(Clone, Debug)]
pub struct BoardDesign {
    pub board: Board,
    pub top: String,
    /// (file name, text); the first holds the board top.
    pub files: Vec<(String, String)>,
    /// The board top's ports (what the constraint file must pin).
    pub ports: Vec<Port>,
    pub link: HostLink,
}

/// The board top for `board` around `accel`, with a host link at `baud`.
pub fn generate_board(board: Board, accel: &Accel, baud: u64) -> Result<BoardDesign, BoardError> {
    let info = board.info();
    let params = board.top_params(baud)?;
    let top = board.top_name();
    let (w_in, w_out) = accel.widths();
    let (verilog, ports) = match accel {
        Accel::Echo { .. } => {
            verilog::emit_with_ports(EchoBoardTop::with_echo(&params, w_in, w_out), &top)?
        }
        Accel::Verilog { module, .. } => {
            verilog::emit_with_ports(BoardTop::with_external(&params, module, w_in, w_out), &top)?
        }
    };
    let header = format!(
        "// {top}: shiftkit board top for {} (hw/src/board/top.rs), generated by shiftkit-hw {}.\n\
         // Accelerator: {}; host link {} baud 8N1, {}-byte command beats, {}-byte response beats.\n",
        info.description,
        env!("CARGO_PKG_VERSION"),
        accel.name(),
        baud,
        beat_bytes(w_in),
        beat_bytes(w_out),
    );
    let mut files = vec![(format!("{top}.v"), header + &verilog)];
    if let Accel::Verilog { files: f, .. } = accel {
        files.extend(f.iter().cloned());
    }
    let link = HostLink {
        board,
        top: top.clone(),
        accel: accel.name().to_string(),
        clock_hz: info.clock_hz,
        baud,
        actual_baud: info.clock_hz as f64 / f64::from(params.uart_divider),
        uart_divider: params.uart_divider,
        cmd_bits: w_in,
        rsp_bits: w_out,
        cmd_beat_bytes: beat_bytes(w_in),
        rsp_beat_bytes: beat_bytes(w_out),
        resync_ms: 1e3 * params.resync_cycles as f64 / info.clock_hz as f64,
    };
    Ok(BoardDesign {
        board,
        top,
        files,
        ports,
        link,
    })
}

pub const BOARD_JSON: &str = "board.json";

/// Write the design's Verilog files and `board.json` into `dir` (created if missing); the
/// Verilog paths, board top first.
pub fn write_board(design: &BoardDesign, dir: &Path) -> Result<Vec<PathBuf>, BoardError> {
    std::fs::create_dir_all(dir).map_err(BoardError::io("cannot create directory", dir))?;
    let mut paths = vec![];
    for (name, text) in &design.files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(BoardError::io("cannot write", &path))?;
        paths.push(path);
    }
    let json = serde_json::to_string_pretty(&design.link).expect("plain data serializes");
    let path = dir.join(BOARD_JSON);
    std::fs::write(&path, json).map_err(BoardError::io("cannot write", &path))?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_accel_for_rejects_unknown_designs() {
        assert!(matches!(
            accel_for("sq5", 2, 2),
            Err(BoardError::UnknownDesign(_))
        ));
        assert!(accel_for("echo", 0, 2).is_err());
    }

    #[test]
    fn board_accel_for_builds_every_datapath() {
        for (design, module, w_in, w_out) in [
            ("sq4", "shiftkit_accel_sq4_2x1", 32, 32),
            ("sq6", "shiftkit_accel_sq6_2x1", 32, 32),
            // FP16: L = max(2R, C) = 4 16-bit lanes + the exponent byte.
            ("fp16", "shiftkit_accel_fp16_2x1", 96, 32),
        ] {
            let accel = accel_for(design, 2, 1).expect("generates");
            assert_eq!(accel.name(), module);
            assert_eq!(accel.widths(), (w_in, w_out), "{design}");
        }
    }
}
