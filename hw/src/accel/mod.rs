//! The accelerator top: on-chip operand and result buffers, a command decoder and the MAC array,
//! behind one command stream and one response stream (`docs/accelerator.md` is the contract).
//!
//! - [`buffers`]: block-RAM operand buffers (A, B; two banks of `K_MAX` data vectors) and result
//!   buffers (C; two banks of R x C accumulators, one RAM per column).
//! - [`decoder`]: the command FSM (header decode, LOAD data phase, bank interlocks).
//! - [`compute`]: the feeder (buffers -> array, flush spacing) and the collector (array drain ->
//!   result buffers).
//! - [`response`]: DRAIN and STATUS on the response port, with back-pressure.
//! - [`top`]: [`top::SqAccel`], the ShiftQuant top that wires them around `crate::array::SqArray`.
//! - [`fp16_feeder`], [`fp16_top`]: [`fp16_top::Fp16Accel`], the same around
//!   `crate::fp16::Fp16Array` (two cycles per k, `2R x C` tiles).
//! - [`commands`]: the pure-Rust side: command encoder, the GEMM command stream, response
//!   decoding (shared by tests, the co-simulation and the host runtime).
//! - [`model`]: the cycle-exact timing model of the command stream (what `docs/accelerator.md`
//!   states in prose; the tests hold it against the rust-hdl simulation).
//! - [`prim`]: hand-written wiring leaves.
//!
//! The datapath-specific parts are the array and the feeder; the buffers, the decoder, the
//! collector and the responder take lane widths, counts and the drain order as parameters and
//! are shared by both tops.

pub mod buffers;
pub mod commands;
pub mod compute;
pub mod decoder;
pub mod fp16_feeder;
pub mod fp16_top;
pub mod model;
pub mod prim;
pub mod response;
pub mod top;

#[cfg(test)]
mod tests;

use crate::config::{ArrayConfig, Datapath};
use crate::error::HwError;
use serde::{Deserialize, Serialize};

/// Width of a command / response word.
pub const WORD_BITS: usize = 32;
/// Width of buffer addresses and k counters (the header's `k_len` field).
pub const ADDR_BITS: usize = 16;
/// Width of a row index into a result bank (R <= 64).
pub const ROW_BITS: usize = 6;
/// Stored bits of a per-K exponent (E <= 15).
pub const EXP_BITS: usize = 4;
/// Width of the flush-spacing counter (2R - 1 <= 127).
pub const GAP_BITS: usize = 8;
/// Default operand buffer depth.
pub const DEFAULT_K_MAX: usize = 256;
/// Largest operand buffer depth a design may declare.
pub const MAX_K_MAX: usize = 4096;

/// Everything about a top's ports and buffers that the host side needs: derived from the
/// `ArrayConfig` and `K_MAX` (recorded in the manifest as `accel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccelGeometry {
    pub rows: usize,
    pub cols: usize,
    /// Operand buffer depth: the largest `k_len`.
    pub k_max: usize,
    /// Bits per lane of a command data vector: 8 (sq) or 16 (fp16).
    pub lane_bits: usize,
    /// Bits per lane of a response beat: 32 (sq with acc_bits <= 32, fp16) or 64.
    pub result_lane_bits: usize,
    /// Whether data vectors carry a per-K exponent (sq) in the byte above the last lane.
    pub has_exp: bool,
    /// Accumulators per PE: 1 (sq), or 2 (fp16: the PE interleaves two outputs, a tile is
    /// `2R x C` and takes two cycles per k).
    pub slots: usize,
    /// Results are binary32 (fp16): partial sums over K chunks cannot be added on the host, so
    /// `commands::plan_gemm` chains the chunks in the array (COMPUTE with hold).
    pub float_results: bool,
}

impl AccelGeometry {
    pub fn new(config: &ArrayConfig, k_max: usize) -> Result<Self, HwError> {
        let config = config.validated()?;
        if !(1..=MAX_K_MAX).contains(&k_max) {
            return Err(HwError::Unsupported {
                what: format!("an operand buffer depth (K_MAX) of {k_max}"),
                hint: format!("use a depth of 1..={MAX_K_MAX} (default {DEFAULT_K_MAX})"),
            });
        }
        let fp16 = config.datapath == Datapath::Fp16;
        if fp16 && 2 * config.rows > 1 << ROW_BITS {
            return Err(HwError::Unsupported {
                what: format!("an fp16 accelerator top with {} rows", config.rows),
                hint: format!(
                    "use at most {} rows (a tile has 2R rows)",
                    (1 << ROW_BITS) / 2
                ),
            });
        }
        let (lane_bits, result_lane_bits) = match config.datapath {
            Datapath::Sq { .. } => (8, if config.acc_bits <= 32 { 32 } else { 64 }),
            Datapath::Fp16 => (16, 32),
        };
        Ok(AccelGeometry {
            rows: config.rows,
            cols: config.cols,
            k_max,
            lane_bits,
            result_lane_bits,
            has_exp: !fp16,
            slots: if fp16 { 2 } else { 1 },
            float_results: fp16,
        })
    }

    /// Rows of an output tile (of a DRAIN): `R`, or `2R` for fp16.
    pub fn tile_rows(&self) -> usize {
        self.rows * self.slots
    }
    /// Lanes of a data vector: `L = max(tile rows, C)` (`max(R, C)` for sq).
    pub fn lanes(&self) -> usize {
        self.tile_rows().max(self.cols)
    }
    /// Bit offset of the exponent byte in a data vector.
    pub fn exp_lsb(&self) -> usize {
        self.lane_bits * self.lanes()
    }
    /// `W_IN`: width of `cmd_data`.
    pub fn cmd_bits(&self) -> usize {
        WORD_BITS * (self.exp_lsb() + 8).div_ceil(WORD_BITS)
    }
    pub fn cmd_words(&self) -> usize {
        self.cmd_bits() / WORD_BITS
    }
    /// `W_OUT`: width of `rsp_data`.
    pub fn rsp_bits(&self) -> usize {
        self.cols * self.result_lane_bits
    }
    pub fn rsp_words(&self) -> usize {
        self.rsp_bits() / WORD_BITS
    }
    /// Minimum number of cycles between two flushes of the array (slot-0 flushes for fp16).
    pub fn flush_spacing(&self) -> usize {
        if self.slots == 2 {
            2 * self.rows
        } else {
            2 * self.rows - 1
        }
    }
}
