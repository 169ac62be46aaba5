//! The accelerator top: on-chip operand and result buffers, a command decoder and the MAC array,
//! behind one command stream and one response stream (`docs/accelerator.md` is the contract).
//!
//! - [`buffers`]: block-RAM operand buffers (A, B; two banks of `K_MAX` K steps, `P` per entry)
//!   and result buffers (C; two banks of R x C accumulators, one RAM per column).
//! - [`decoder`]: the command FSM (header decode, LOAD data phase, bank interlocks).
//! - [`compute`]: the feeder (buffers -> array, flush spacing) and the collector (array drain ->
//!   result buffers).
//! - [`response`]: DRAIN and STATUS on the response port, with back-pressure.
//! - [`result_path`]: the collector, the result buffers, the responder and the STATUS flags in
//!   one block.
//! - [`control`]: [`control::Control`], what both tops share: the decoder, the operand buffers
//!   and the result path, wired to the ports and, through the `FeederHost` / `FeederPort`
//!   bundle, to a top's feeder.
//! - [`l1path`]: L1NORM: the L1-norm unit (`crate::l1norm`) between a serializer of command
//!   data beats and a packer of response beats.
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
//! live once, in `Control`.

pub mod buffers;
pub mod commands;
pub mod compute;
pub mod control;
pub mod decoder;
pub mod fp16_feeder;
pub mod fp16_top;
pub mod l1path;
pub mod model;
pub mod prim;
pub mod response;
pub mod result_path;
pub mod top;

#[cfg(test)]
mod l1_tests;
#[cfg(test)]
mod tests;

use crate::config::{ArrayConfig, Datapath};
use crate::error::HwError;
use crate::l1norm::L1NormConfig;
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
/// The L1-norm unit geometries `(W, A)` an SQ top can be generated with (input width, row
/// buffer address bits; rows of up to `2^A` elements). The first is the default.
pub const L1NORM_TOP_GEOMETRIES: [(u32, u32); 1] = [(16, 10)];
/// Bits per code in an L1NORM response beat (codes sign-extended to a byte).
pub const L1NORM_CODE_BITS: usize = 8;

/// Everything about a top's ports and buffers that the host side needs: derived from the
/// `ArrayConfig` and `K_MAX` (recorded in the manifest as `accel`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccelGeometry {
    pub rows: usize,
    pub cols: usize,
    /// Operand buffer depth: the largest `k_len`.
    pub k_max: usize,
    /// Bits per lane of a command data vector: the code width `b` (sq) or 16 (fp16).
    pub lane_bits: usize,
    /// K steps per LOAD data beat and per operand-buffer entry (`P`: 1, 2 or 4; fp16: 1).
    #[serde(default = "one")]
    pub k_per_beat: usize,
    /// Bits per lane of a response beat: 32 (sq with acc_bits <= 32, fp16) or 64.
    pub result_lane_bits: usize,
    /// Whether data vectors carry a per-K exponent (sq: `EXP_BITS` above the last lane).
    pub has_exp: bool,
    /// Accumulators per PE: 1 (sq), or 2 (fp16: the PE interleaves two outputs, a tile is
    /// `2R x C` and takes two cycles per k).
    pub slots: usize,
    /// Results are binary32 (fp16): partial sums over K chunks cannot be added on the host, so
    /// `commands::plan_gemm` chains the chunks in the array (COMPUTE with hold).
    pub float_results: bool,
    /// The L1-norm unit behind opcode 6 (SQ tops; `bits` = the top's bits), or `None`: opcode 6
    /// is unknown (FP16 tops, or an SQ top generated without it).
    pub l1norm: Option<L1NormConfig>,
}

fn one() -> usize {
    1
}

/// K steps per LOAD data beat an SQ top is generated with by default: 2 for codes narrower than
/// a byte (sq4, sq6: two K steps share a beat and a buffer entry, which halves the beats of a
/// LOAD; `docs/accelerator.md`, "Data beats"), 1 for sq8 and fp16.
pub fn default_k_per_beat(datapath: Datapath) -> usize {
    match datapath {
        Datapath::Sq { bits } if bits < 8 => 2,
        _ => 1,
    }
}

/// The K steps per beat a design may be generated with.
pub const K_PER_BEAT_CHOICES: [usize; 3] = [1, 2, 4];

/// The default L1-norm unit of an SQ top with `bits`-bit codes: `W = 16`, rows of up to 1024
/// elements, `f = b - 3`, `eps = 1e-5` (see `crate::l1norm`).
pub fn default_l1norm(bits: u32) -> L1NormConfig {
    let (w, a) = L1NORM_TOP_GEOMETRIES[0];
    L1NormConfig::new(bits).with_geometry(w, a)
}

impl AccelGeometry {
    /// The geometry of the top for `config` with operand buffers of `k_max` entries, with the
    /// default L1-norm unit on SQ tops ([`default_l1norm`]) and none on FP16 tops.
    pub fn new(config: &ArrayConfig, k_max: usize) -> Result<Self, HwError> {
        let l1 = match config.datapath {
            Datapath::Sq { bits } => Some(default_l1norm(bits)),
            Datapath::Fp16 => None,
        };
        Self::with_l1norm(config, k_max, l1)
    }

    /// [`AccelGeometry::new`] with the L1-norm unit `l1` (`None`: without the unit). The unit
    /// must produce the top's codes (`l1.bits` = the top's bits), have a geometry of
    /// [`L1NORM_TOP_GEOMETRIES`], and SQ tops only.
    pub fn with_l1norm(
        config: &ArrayConfig,
        k_max: usize,
        l1: Option<L1NormConfig>,
    ) -> Result<Self, HwError> {
        let config = config.validated()?;
        if let Some(c) = l1 {
            let unsupported = |hint: String| HwError::Unsupported {
                what: format!(
                    "an L1-norm unit (W = {}, rows <= 2^{}, SQ-{}) in this {} top",
                    c.in_bits,
                    c.addr_bits,
                    c.bits,
                    config.datapath.name()
                ),
                hint,
            };
            match config.datapath {
                Datapath::Fp16 => {
                    return Err(unsupported(
                        "FP16 tops have no L1-norm unit: normalize on the host".into(),
                    ))
                }
                Datapath::Sq { bits } if bits != c.bits => {
                    return Err(unsupported(format!("the unit must output SQ-{bits} codes")))
                }
                _ => {}
            }
            if !L1NORM_TOP_GEOMETRIES.contains(&(c.in_bits, c.addr_bits)) {
                return Err(unsupported(format!(
                    "accelerator tops are generated with (W, A) in {L1NORM_TOP_GEOMETRIES:?}"
                )));
            }
            c.consts().map_err(|e| unsupported(e.0))?;
        }
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
            Datapath::Sq { bits } => (bits as usize, if config.acc_bits <= 32 { 32 } else { 64 }),
            Datapath::Fp16 => (16, 32),
        };
        Ok(AccelGeometry {
            rows: config.rows,
            cols: config.cols,
            k_max,
            lane_bits,
            k_per_beat: default_k_per_beat(config.datapath),
            result_lane_bits,
            has_exp: !fp16,
            slots: if fp16 { 2 } else { 1 },
            float_results: fp16,
            l1norm: l1,
        })
    }

    /// The same top with `p` K steps per LOAD data beat (1, 2 or 4; fp16 tops take 1).
    pub fn with_k_per_beat(mut self, p: usize) -> Result<Self, HwError> {
        if !K_PER_BEAT_CHOICES.contains(&p) || (!self.has_exp && p != 1) {
            return Err(HwError::Unsupported {
                what: format!("{p} K steps per data beat on this top"),
                hint: format!(
                    "SQ tops take one of {K_PER_BEAT_CHOICES:?} K steps per beat, FP16 tops 1"
                ),
            });
        }
        self.k_per_beat = p;
        Ok(self)
    }

    /// `log2(k_per_beat)`: the low bits of `k` that pick a K step within a buffer entry.
    pub fn k_per_beat_log2(&self) -> usize {
        self.k_per_beat.trailing_zeros() as usize
    }

    /// Bits of one K step in a data beat: `L` lanes of `lane_bits` and (sq) the `EXP_BITS`-bit
    /// exponent above them.
    pub fn step_bits(&self) -> usize {
        self.lane_bits * self.lanes() + if self.has_exp { EXP_BITS } else { 0 }
    }

    /// Bits of the A and B operand memories, both banks (`buffers::OperandRam`): per bank
    /// `2^ceil(log2 ceil(K_MAX / P))` entries of `P` K steps, a K step `step_bits` minus the
    /// unused lanes (A holds the tile's rows, B the columns).
    pub fn operand_buffer_bits(&self) -> u64 {
        let entries = 2u64 << buffers::operand_addr_bits(self.k_max, self.k_per_beat);
        let exp = if self.has_exp { EXP_BITS } else { 0 };
        let step = |lanes: usize| (lanes * self.lane_bits + exp) as u64;
        entries * self.k_per_beat as u64 * (step(self.tile_rows()) + step(self.cols))
    }

    /// Data beats of a LOAD of `k_len` K steps.
    pub fn load_beats(&self, k_len: usize) -> usize {
        k_len.div_ceil(self.k_per_beat)
    }

    /// Rows of an output tile (of a DRAIN): `R`, or `2R` for fp16.
    pub fn tile_rows(&self) -> usize {
        self.rows * self.slots
    }
    /// Lanes of a data vector: `L = max(tile rows, C)` (`max(R, C)` for sq).
    pub fn lanes(&self) -> usize {
        self.tile_rows().max(self.cols)
    }
    /// Bit offset of the exponent in K step 0 of a data beat (step `s` starts at
    /// `s * step_bits()`).
    pub fn exp_lsb(&self) -> usize {
        self.lane_bits * self.lanes()
    }
    /// `W_IN`: width of `cmd_data`. SQ: the `k_per_beat` K steps rounded up to whole bytes (a
    /// link moves bytes), at least the 32-bit header; fp16: `32 * ceil((16 L + 8) / 32)`.
    pub fn cmd_bits(&self) -> usize {
        if self.has_exp {
            (8 * (self.k_per_beat * self.step_bits()).div_ceil(8)).max(WORD_BITS)
        } else {
            WORD_BITS * (self.exp_lsb() + 8).div_ceil(WORD_BITS)
        }
    }
    /// 32-bit words of a command beat (the last one partly used when `W_IN` is not a multiple
    /// of 32: its upper bits are zero).
    pub fn cmd_words(&self) -> usize {
        self.cmd_bits().div_ceil(WORD_BITS)
    }
    /// `W_OUT`: width of `rsp_data`.
    pub fn rsp_bits(&self) -> usize {
        self.cols * self.result_lane_bits
    }
    pub fn rsp_words(&self) -> usize {
        self.rsp_bits() / WORD_BITS
    }
    /// L1NORM: input elements per command data beat (`W_IN / W`), 0 without the unit.
    pub fn l1_in_lanes(&self) -> usize {
        self.l1norm
            .map_or(0, |c| self.cmd_bits() / c.in_bits as usize)
    }
    /// L1NORM: codes per response beat (`W_OUT / 8`).
    pub fn l1_codes_per_beat(&self) -> usize {
        self.rsp_bits() / L1NORM_CODE_BITS
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
