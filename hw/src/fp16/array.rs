//! The R x C output-stationary systolic array of FP16 PEs: the integer array's geometry
//! (`crate::array::SqArray`: input skew, A and control east, B south, drain chains north) with
//! [`Fp16Pe`]s, each carrying two interleaved outputs.
//!
//! # Schedule (two slots per PE)
//!
//! One tile is `2R x C` outputs. Every pair of cycles the host presents one `k`, all inputs in the
//! same cycle, un-skewed (the array skews row `i` and its control by `i` cycles, column `j` by `j`):
//!
//! ```text
//!   cycle 2k    (slot 0): a_in[i] = A[i][k],      b_in[j] = B[k][j], ctl = {valid, flush = k == K-1}
//!   cycle 2k+1  (slot 1): a_in[i] = A[R + i][k],  b_in[j] = B[k][j], ctl = {valid, flush = k == K-1}
//! ```
//!
//! so PE(i, j) accumulates `C[i][j]` and `C[R + i][j]` on alternate cycles, each in ascending `k`
//! from +0, bit for bit the sequential golden model, at one MAC per PE per cycle. (Feeding only
//! slot 0, with `valid = 0` in the odd cycles, computes an `R x C` tile at half the rate.)
//!
//! # Drain
//!
//! PE(i, j) moves its two finished sums into its drain register [`FP16_LATENCY`] + 1 cycles after
//! the flagged pairs entered it, slot 0 then slot 1 in consecutive cycles; the drain registers of
//! a column shift north every cycle. Because the flush wave moves south one row per cycle while
//! the two slots take two cycles, the chain is dense: column `j` emits
//! `C[0][j], C[R][j], C[1][j], C[R+1][j], ..., C[R-1][j], C[2R-1][j]` on `2R` consecutive cycles
//! (qualified by `drain_valid[j]`), column `j` one cycle after column `j - 1`.
//!
//! Spacing rule: the next tile's flush wave must not overtake values still moving north, so the
//! slot-0 flushes of consecutive tiles must be at least `2R` cycles apart: a tile needs `K >= R`,
//! or padding with `valid = 0` cycles (in pairs, to keep the slot parity).

use super::pe::{Fp16Pe, FP16_CTL_BITS};
use crate::array::DelayLine;
use rust_hdl::prelude::*;

/// The FP16 systolic array; `rows` and `cols` are run-time parameters.
///
/// As in `SqArray`, index expressions may only use loop variables, so the column count is bound
/// to one with a one-pass loop and the row-major PE vector is indexed as `pes[i * cols + j]`.
#[derive(LogicBlock)]
pub struct Fp16Array {
    pub clock: Signal<In, Clock>,
    /// One binary16 A element per row (see the module doc for the slot interleaving), un-skewed.
    pub a_in: Vec<Signal<In, Bits<16>>>,
    /// The control bundle ([`super::Fp16Ctl`]) of the pair, shared by all rows.
    pub ctl_in: Signal<In, Bits<FP16_CTL_BITS>>,
    /// One binary16 B element per column, un-skewed.
    pub b_in: Vec<Signal<In, Bits<16>>>,
    /// Per column: the top PE's drain register (binary32 bits) and its valid flag.
    pub drain_out: Vec<Signal<Out, Bits<32>>>,
    pub drain_valid: Vec<Signal<Out, Bit>>,
    /// Cascade outputs (the edge PEs' forwarding registers), for tiling arrays.
    pub a_east: Vec<Signal<Out, Bits<16>>>,
    pub ctl_east: Vec<Signal<Out, Bits<FP16_CTL_BITS>>>,
    pub b_south: Vec<Signal<Out, Bits<16>>>,
    pes: Vec<Fp16Pe>,
    /// Row `i >= 1` of A delayed by `i`: `a_skew[i - 1]`.
    a_skew: Vec<DelayLine<Bits<16>>>,
    /// Column `j >= 1` of B delayed by `j`: `b_skew[j - 1]`.
    b_skew: Vec<DelayLine<Bits<16>>>,
    /// `ctl_skew[i - 1]` holds `ctl_in` delayed by `i` (one chain, tapped per row).
    ctl_skew: Vec<DFF<Bits<FP16_CTL_BITS>>>,
    zero: Constant<Bits<32>>,
    _rows: usize,
    _cols: usize,
}

impl Fp16Array {
    pub fn new(rows: usize, cols: usize) -> Self {
        assert!(rows >= 1 && cols >= 1, "array needs at least one PE");
        Self {
            clock: Default::default(),
            a_in: (0..rows).map(|_| Default::default()).collect(),
            ctl_in: Default::default(),
            b_in: (0..cols).map(|_| Default::default()).collect(),
            drain_out: (0..cols).map(|_| Default::default()).collect(),
            drain_valid: (0..cols).map(|_| Default::default()).collect(),
            a_east: (0..rows).map(|_| Default::default()).collect(),
            ctl_east: (0..rows).map(|_| Default::default()).collect(),
            b_south: (0..cols).map(|_| Default::default()).collect(),
            pes: (0..rows * cols).map(|_| Fp16Pe::new()).collect(),
            a_skew: (1..rows).map(DelayLine::new).collect(),
            b_skew: (1..cols).map(DelayLine::new).collect(),
            ctl_skew: (1..rows).map(|_| Default::default()).collect(),
            zero: Constant::new(Bits::default()),
            _rows: rows,
            _cols: cols,
        }
    }

    pub fn rows(&self) -> usize {
        self._rows
    }

    pub fn cols(&self) -> usize {
        self._cols
    }
}

impl Logic for Fp16Array {
    #[hdl_gen]
    fn update(&mut self) {
        for cols in self._cols..(self._cols + 1) {
            // Clocks.
            for n in 0..(self._rows * self._cols) {
                self.pes[n].clock.next = self.clock.val();
            }
            for i in 1..self._rows {
                self.a_skew[i - 1].clock.next = self.clock.val();
                self.ctl_skew[i - 1].clock.next = self.clock.val();
            }
            for j in 1..self._cols {
                self.b_skew[j - 1].clock.next = self.clock.val();
            }
            // West edge: row 0 direct, row i through an i-deep delay line / i-th control tap.
            self.pes[0].a_in.next = self.a_in[0].val();
            self.pes[0].ctl_in.next = self.ctl_in.val();
            for _once in 0..(self._rows - 1).min(1) {
                self.ctl_skew[0].d.next = self.ctl_in.val();
            }
            for i in 2..self._rows {
                self.ctl_skew[i - 1].d.next = self.ctl_skew[i - 2].q.val();
            }
            for i in 1..self._rows {
                self.a_skew[i - 1].d_in.next = self.a_in[i].val();
                self.pes[i * cols].a_in.next = self.a_skew[i - 1].d_out.val();
                self.pes[i * cols].ctl_in.next = self.ctl_skew[i - 1].q.val();
            }
            // North edge: column 0 direct, column j through a j-deep delay line.
            self.pes[0].b_in.next = self.b_in[0].val();
            for j in 1..self._cols {
                self.b_skew[j - 1].d_in.next = self.b_in[j].val();
                self.pes[j].b_in.next = self.b_skew[j - 1].d_out.val();
            }
            // A and control flow east, B flows south.
            for i in 0..self._rows {
                for j in 1..self._cols {
                    self.pes[i * cols + j].a_in.next = self.pes[i * cols + j - 1].a_out.val();
                    self.pes[i * cols + j].ctl_in.next = self.pes[i * cols + j - 1].ctl_out.val();
                }
            }
            for i in 1..self._rows {
                for j in 0..self._cols {
                    self.pes[i * cols + j].b_in.next = self.pes[(i - 1) * cols + j].b_out.val();
                }
            }
            for i in 0..self._rows {
                for j in (self._cols - 1)..self._cols {
                    self.a_east[i].next = self.pes[i * cols + j].a_out.val();
                    self.ctl_east[i].next = self.pes[i * cols + j].ctl_out.val();
                }
            }
            for i in (self._rows - 1)..self._rows {
                for j in 0..self._cols {
                    self.b_south[j].next = self.pes[i * cols + j].b_out.val();
                }
            }
            // Drain chains run north; the bottom row's input is empty.
            for i in (self._rows - 1)..self._rows {
                for j in 0..self._cols {
                    self.pes[i * cols + j].drain_in.next = self.zero.val();
                    self.pes[i * cols + j].drain_valid_in.next = false;
                }
            }
            for i in 0..(self._rows - 1) {
                for j in 0..self._cols {
                    self.pes[i * cols + j].drain_in.next =
                        self.pes[(i + 1) * cols + j].drain_out.val();
                    self.pes[i * cols + j].drain_valid_in.next =
                        self.pes[(i + 1) * cols + j].drain_valid_out.val();
                }
            }
            for j in 0..self._cols {
                self.drain_out[j].next = self.pes[j].drain_out.val();
                self.drain_valid[j].next = self.pes[j].drain_valid_out.val();
            }
        }
    }
}
