//! The hardware designs the CLI can generate, synthesize and build, by the names users type.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use shiftkit_hw::{ArrayConfig, Datapath};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    Sq4,
    Sq6,
    Sq8,
    Fp16,
    L1norm,
    AccelSq4,
    AccelSq6,
    AccelSq8,
    AccelFp16,
}

impl Design {
    pub fn name(self) -> &'static str {
        match self {
            Design::Sq4 => "sq4",
            Design::Sq6 => "sq6",
            Design::Sq8 => "sq8",
            Design::Fp16 => "fp16",
            Design::L1norm => "l1norm",
            Design::AccelSq4 => "accel-sq4",
            Design::AccelSq6 => "accel-sq6",
            Design::AccelSq8 => "accel-sq8",
            Design::AccelFp16 => "accel-fp16",
        }
    }

    /// The accelerator a board shell wraps for this design (`hw::board::accel_for`'s names).
    pub fn board_accel(self) -> Option<&'static str> {
        match self {
            Design::Sq4 | Design::AccelSq4 => Some("sq4"),
            Design::Sq6 | Design::AccelSq6 => Some("sq6"),
            Design::Sq8 | Design::AccelSq8 => Some("sq8"),
            Design::Fp16 | Design::AccelFp16 => Some("fp16"),
            _ => None,
        }
    }

    pub fn datapath(self) -> Datapath {
        match self {
            Design::Sq4 | Design::AccelSq4 => Datapath::Sq { bits: 4 },
            Design::Sq6 | Design::AccelSq6 | Design::L1norm => Datapath::Sq { bits: 6 },
            Design::Sq8 | Design::AccelSq8 => Datapath::Sq { bits: 8 },
            Design::Fp16 | Design::AccelFp16 => Datapath::Fp16,
        }
    }
}

/// The configuration of `design` at `rows` x `cols`, with the window and accumulator asked for
/// (the accumulator defaults to 32 bits, or what one shifted product needs).
pub fn config(
    design: Design,
    rows: usize,
    cols: usize,
    window: u32,
    acc_bits: Option<u32>,
) -> Result<ArrayConfig> {
    Ok(ArrayConfig::sized(
        rows,
        cols,
        design.datapath(),
        window,
        acc_bits,
    )?)
}

/// Verilog of a design on disk: its top module and files.
#[derive(Clone, Debug)]
pub struct Generated {
    pub top: String,
    pub files: Vec<PathBuf>,
}

/// Generate `design` into `dir` (Verilog + `manifest.json`).
pub fn generate(design: Design, config: &ArrayConfig, dir: &Path) -> Result<Generated> {
    let hw = |e: shiftkit_hw::HwError| Error::Usage(e.to_string());
    match design {
        Design::Sq4 | Design::Sq6 | Design::Sq8 | Design::Fp16 => {
            let d = shiftkit_hw::generate(config).map_err(hw)?;
            let m = shiftkit_hw::write_design(&d, dir).map_err(hw)?;
            Ok(Generated {
                top: m.top,
                files: m.files.iter().map(|f| dir.join(f)).collect(),
            })
        }
        Design::AccelSq4 | Design::AccelSq6 | Design::AccelSq8 | Design::AccelFp16 => {
            let kind = shiftkit_hw::generate::DesignKind::accel();
            let d = shiftkit_hw::generate::generate_design(kind, config).map_err(hw)?;
            let m = shiftkit_hw::write_design(&d, dir).map_err(hw)?;
            Ok(Generated {
                top: m.top,
                files: m.files.iter().map(|f| dir.join(f)).collect(),
            })
        }
        Design::L1norm => {
            // The unit normalizes rows of up to 1024 16-bit integers into SQ-6 codes; the
            // array size does not apply to it.
            let cfg = shiftkit_hw::l1norm::L1NormConfig::new(6);
            let d = shiftkit_hw::l1norm::generate_l1norm(&cfg).map_err(hw)?;
            let m = shiftkit_hw::l1norm::write_l1norm(&d, dir).map_err(hw)?;
            Ok(Generated {
                top: m.top,
                files: m.files.iter().map(|f| dir.join(f)).collect(),
            })
        }
    }
}
