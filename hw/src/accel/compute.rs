//! The COMPUTE engine: [`SqFeeder`] streams the operand buffers into the array, [`Collector`]
//! writes the array's drained results into the C buffers.
//!
//! # Feeder
//!
//! A COMPUTE accepted in cycle `a` (the feeder is free) issues buffer reads for `k = 0, 1, ...,
//! k_len - 1` in cycles `a + 1, a + 2, ...` (stage 0: read address = `k`, both buffers). The
//! buffers answer one cycle later (stage 1), when the array sees `a_in = A[.][k]`,
//! `b_in = B[k][.]` and `ctl_in = {shift = ea_k + eb_k, flush = (k == k_len - 1) && !hold,
//! valid = 1}`; cycles without an issue present `valid = 0`.
//!
//! Flush spacing (`2R - 1`, see `crate::array`) is kept by holding the *last* read of a tile
//! until `2R - 1` cycles have passed since the previous flush was issued (a counter `gap`,
//! saturating at `2R - 1`); the array sees bubbles (`valid = 0`) in the meantime. The feeder is
//! free for the next COMPUTE in the cycle it issues its last read, so back-to-back COMPUTEs
//! stream without a gap. Reset drives flushes with `valid = 0` into the array, which clears every
//! accumulator that a tile cut short may have left, and counts as a flush for the spacing rule.
//!
//! With `hold` (header bit 24) the last k does not flush: the next COMPUTE continues the same
//! accumulators (long-K reductions that must not be split, e.g. FP16).
//!
//! # Collector
//!
//! A flush that reaches the array input in cycle `u` (stage 1) makes column `j` emit row `i` in
//! cycle `u + DRAIN_DELAY + j + 2i` (`crate::array::DRAIN_DELAY` = 4). The flush event and its
//! C bank travel down a chain of registers beside the array, tapped so that column `j` learns
//! "row 0 of a new tile, for bank c" exactly in the cycle its row 0 arrives; it then writes each drained value to row 0, 1, ...
//! of its own result RAM in that bank. Drained values that arrive while a column is not expecting
//! any (the ones that reset flushes produce) are dropped. A bank's `pending` flag is set when a
//! COMPUTE into it is accepted and cleared by the tile's last write (column `C - 1`, row `R - 1`,
//! cycle `u + C + 2R + DRAIN_DELAY - 3`); DRAIN waits for it.

use super::control::FeederPort;
use super::prim::PackCtl;
use super::{ADDR_BITS, GAP_BITS, ROW_BITS};
use crate::array::DRAIN_DELAY;
use crate::pe::{CTL_BITS, SHIFT_BITS};
use rust_hdl::prelude::*;

/// Streams operand buffer entries into the integer array (see the module doc).
#[derive(LogicBlock)]
pub struct SqFeeder {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// COMPUTE fields in, state and buffer reads out (joined to `Control`).
    pub ctrl: FeederPort,
    /// Stage 1: the per-K exponents of the entries read in the previous cycle.
    pub a_exp: Signal<In, Bits<SHIFT_BITS>>,
    pub b_exp: Signal<In, Bits<SHIFT_BITS>>,
    /// Stage 1: the array's control input.
    pub ctl: Signal<Out, Bits<CTL_BITS>>,
    pack: PackCtl,
    act: DFF<Bit>,
    k: DFF<Bits<ADDR_BITS>>,
    last: DFF<Bits<ADDR_BITS>>,
    a_bank: DFF<Bit>,
    b_bank: DFF<Bit>,
    c_bank: DFF<Bit>,
    hold: DFF<Bit>,
    gap: DFF<Bits<GAP_BITS>>,
    /// `k == last` and `gap == gap_sat`, kept in registers: as compares they sat on the path
    /// feeder -> `free` -> decoder `cmd_ready` -> `start` -> feeder, a board design's longest.
    at_last: DFF<Bit>,
    spaced: DFF<Bit>,
    s1_valid: DFF<Bit>,
    s1_flush: DFF<Bit>,
    s1_event: DFF<Bit>,
    s1_bank: DFF<Bit>,
    is_last: Signal<Local, Bit>,
    k_next: Signal<Local, Bits<ADDR_BITS>>,
    gap_next: Signal<Local, Bits<GAP_BITS>>,
    issue: Signal<Local, Bit>,
    last_issue: Signal<Local, Bit>,
    flush_now: Signal<Local, Bit>,
    ends: Signal<Local, Bit>,
    gap_sat: Constant<Bits<GAP_BITS>>,
    one_gap: Constant<Bits<GAP_BITS>>,
    /// `gap_sat == 1` (a one-row array needs no spacing).
    one_spaced: Constant<Bit>,
    zero_k: Constant<Bits<ADDR_BITS>>,
    one_k: Constant<Bits<ADDR_BITS>>,
}

impl SqFeeder {
    pub fn new(rows: usize) -> Self {
        let spacing = 2 * rows - 1;
        assert!(spacing < 1 << GAP_BITS);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            ctrl: Default::default(),
            a_exp: Default::default(),
            b_exp: Default::default(),
            ctl: Default::default(),
            pack: Default::default(),
            act: Default::default(),
            k: Default::default(),
            last: Default::default(),
            a_bank: Default::default(),
            b_bank: Default::default(),
            c_bank: Default::default(),
            hold: Default::default(),
            gap: Default::default(),
            at_last: Default::default(),
            spaced: Default::default(),
            s1_valid: Default::default(),
            s1_flush: Default::default(),
            s1_event: Default::default(),
            s1_bank: Default::default(),
            is_last: Default::default(),
            k_next: Default::default(),
            gap_next: Default::default(),
            issue: Default::default(),
            last_issue: Default::default(),
            flush_now: Default::default(),
            ends: Default::default(),
            gap_sat: Constant::new(bits(spacing as u64)),
            one_gap: Constant::new(bits(1)),
            one_spaced: Constant::new(spacing == 1),
            zero_k: Constant::new(bits(0)),
            one_k: Constant::new(bits(1)),
        }
    }
}

impl Logic for SqFeeder {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, act, k, last, a_bank, b_bank, c_bank, hold, gap, at_last, spaced,
            s1_valid, s1_flush, s1_event, s1_bank
        );
        // Stage 1: control bundle for the entries the buffers present now.
        self.pack.valid.next = self.s1_valid.q.val();
        self.pack.flush.next = self.s1_flush.q.val();
        self.pack.shift.next = self.a_exp.val() + self.b_exp.val();
        self.ctl.next = self.pack.ctl.val();
        self.ctrl.flush_event.next = self.s1_event.q.val();
        self.ctrl.flush_bank.next = self.s1_bank.q.val();
        // Stage 0: issue the read of entry k.
        self.is_last.next = self.at_last.q.val();
        self.issue.next =
            self.act.q.val() && (!self.is_last.val() || self.hold.q.val() || self.spaced.q.val());
        self.last_issue.next = self.issue.val() && self.is_last.val();
        self.flush_now.next = self.last_issue.val() && !self.hold.q.val();
        self.ctrl.read_addr.next = self.k.q.val();
        self.ctrl.a_read_bank.next = self.a_bank.q.val();
        self.ctrl.b_read_bank.next = self.b_bank.q.val();
        // The interlock outputs are written as expressions of registers only, without the
        // locals above: a statement that shares a local with the `start` logic below would sit
        // in one Verilator logic group with it, and decoder -> start -> free -> decoder would
        // look like a combinational cycle (UNOPTFLAT). `ends` = "issues its last read now".
        self.ends.next =
            self.act.q.val() && self.at_last.q.val() && (self.hold.q.val() || self.spaced.q.val());
        self.ctrl.free.next = !self.act.q.val() || self.ends.val();
        self.ctrl.active.next = self.act.q.val();
        self.ctrl.a_busy0.next = self.act.q.val() && !self.a_bank.q.val() && !self.ends.val();
        self.ctrl.a_busy1.next = self.act.q.val() && self.a_bank.q.val() && !self.ends.val();
        self.ctrl.b_busy0.next = self.act.q.val() && !self.b_bank.q.val() && !self.ends.val();
        self.ctrl.b_busy1.next = self.act.q.val() && self.b_bank.q.val() && !self.ends.val();
        self.k_next.next = self.k.q.val() + self.one_k.val();
        if self.issue.val() {
            self.k.d.next = self.k_next.val();
            self.at_last.d.next = self.k_next.val() == self.last.q.val();
        }
        if self.last_issue.val() {
            self.act.d.next = false;
        }
        if self.ctrl.start.val() {
            self.act.d.next = true;
            self.k.d.next = self.zero_k.val();
            self.last.d.next = self.ctrl.k_len_in.val() - self.one_k.val();
            self.at_last.d.next = self.ctrl.k_len_in.val() == self.one_k.val();
            self.a_bank.d.next = self.ctrl.a_bank_in.val();
            self.b_bank.d.next = self.ctrl.b_bank_in.val();
            self.c_bank.d.next = self.ctrl.c_bank_in.val();
            self.hold.d.next = self.ctrl.hold_in.val();
        }
        self.gap_next.next = self.gap.q.val() + self.one_gap.val();
        if self.flush_now.val() {
            self.gap.d.next = self.one_gap.val();
            self.spaced.d.next = self.one_spaced.val();
        } else if !self.spaced.q.val() {
            self.gap.d.next = self.gap_next.val();
            self.spaced.d.next = self.gap_next.val() == self.gap_sat.val();
        }
        self.s1_valid.d.next = self.issue.val();
        self.s1_flush.d.next = self.flush_now.val();
        self.s1_event.d.next = self.flush_now.val();
        self.s1_bank.d.next = self.c_bank.q.val();
        if self.reset.val() {
            self.act.d.next = false;
            self.gap.d.next = self.one_gap.val();
            self.spaced.d.next = self.one_spaced.val();
            self.s1_valid.d.next = false;
            self.s1_flush.d.next = true;
            self.s1_event.d.next = false;
        }
    }
}

/// Writes each column's drained results into its result RAM (see the module doc).
#[derive(LogicBlock)]
pub struct Collector {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// From the feeder (stage 1): a tile's flush enters the array, for this C bank.
    pub flush_event: Signal<In, Bit>,
    pub flush_bank: Signal<In, Bit>,
    /// The array's drain outputs' valid flags.
    pub drain_valid: Vec<Signal<In, Bit>>,
    /// A COMPUTE into C bank `set_bank` is accepted this cycle.
    pub set_pending: Signal<In, Bit>,
    pub set_bank: Signal<In, Bit>,
    /// Per column: the result RAM's write port.
    pub write_enable: Vec<Signal<Out, Bit>>,
    pub write_bank: Vec<Signal<Out, Bit>>,
    pub write_row: Vec<Signal<Out, Bits<ROW_BITS>>>,
    /// C bank 0 / 1 waits for results.
    pub pending0: Signal<Out, Bit>,
    pub pending1: Signal<Out, Bit>,
    ev_valid: Vec<DFF<Bit>>,
    ev_bank: Vec<DFF<Bit>>,
    row: Vec<DFF<Bits<ROW_BITS>>>,
    bank: Vec<DFF<Bit>>,
    armed: Vec<DFF<Bit>>,
    pend0: DFF<Bit>,
    pend1: DFF<Bit>,
    w_new: Vec<Signal<Local, Bit>>,
    w_en: Vec<Signal<Local, Bit>>,
    w_bank: Vec<Signal<Local, Bit>>,
    w_row: Vec<Signal<Local, Bits<ROW_BITS>>>,
    clear0: Signal<Local, Bit>,
    clear1: Signal<Local, Bit>,
    zero_row: Constant<Bits<ROW_BITS>>,
    one_row: Constant<Bits<ROW_BITS>>,
    last_row: Constant<Bits<ROW_BITS>>,
    half: Constant<Bits<ROW_BITS>>,
    half_less_one: Constant<Bits<ROW_BITS>>,
    interleave: Constant<Bit>,
    w_next: Vec<Signal<Local, Bits<ROW_BITS>>>,
    _cols: usize,
    _stages: usize,
    _tap: usize,
}

/// Chain stage that column 0 taps in the integer top; column `j` taps stage `SQ_COLLECT_TAP + j`
/// (the flush event reaches stage `n` in cycle `u + 1 + n`, column `j`'s row 0 arrives in
/// `u + DRAIN_DELAY + j`).
pub const SQ_COLLECT_TAP: usize = DRAIN_DELAY - 1;

impl Collector {
    /// A collector for an array whose column `j` delivers its first value of a tile `tap + 1 + j`
    /// cycles after the flush event (stage 1) and then `rows` values in row order, or, with
    /// `interleave`, in the order `0, rows/2, 1, rows/2 + 1, ...` (the FP16 array's two slots).
    pub fn with_order(rows: usize, cols: usize, tap: usize, interleave: bool) -> Self {
        assert!((1..=1 << ROW_BITS).contains(&rows) && cols >= 1);
        assert!(!interleave || rows & 1 == 0);
        let stages = cols + tap;
        let v =
            |n: usize| -> Vec<Signal<Local, Bit>> { (0..n).map(|_| Default::default()).collect() };
        Self {
            clock: Default::default(),
            reset: Default::default(),
            flush_event: Default::default(),
            flush_bank: Default::default(),
            drain_valid: (0..cols).map(|_| Default::default()).collect(),
            set_pending: Default::default(),
            set_bank: Default::default(),
            write_enable: (0..cols).map(|_| Default::default()).collect(),
            write_bank: (0..cols).map(|_| Default::default()).collect(),
            write_row: (0..cols).map(|_| Default::default()).collect(),
            pending0: Default::default(),
            pending1: Default::default(),
            ev_valid: (0..stages).map(|_| Default::default()).collect(),
            ev_bank: (0..stages).map(|_| Default::default()).collect(),
            row: (0..cols).map(|_| Default::default()).collect(),
            bank: (0..cols).map(|_| Default::default()).collect(),
            armed: (0..cols).map(|_| Default::default()).collect(),
            pend0: Default::default(),
            pend1: Default::default(),
            w_new: v(cols),
            w_en: v(cols),
            w_bank: v(cols),
            w_row: (0..cols).map(|_| Default::default()).collect(),
            clear0: Default::default(),
            clear1: Default::default(),
            zero_row: Constant::new(bits(0)),
            one_row: Constant::new(bits(1)),
            last_row: Constant::new(bits(rows as u64 - 1)),
            // (Unused without `interleave`; at least 1 so that `w_row < half` is no constant
            // comparison, which Verilator flags.)
            half: Constant::new(bits((rows / 2).max(1) as u64)),
            half_less_one: Constant::new(bits(((rows / 2).max(1) - 1) as u64)),
            interleave: Constant::new(interleave),
            w_next: (0..cols).map(|_| Default::default()).collect(),
            _cols: cols,
            _stages: stages,
            _tap: tap,
        }
    }
}

impl Logic for Collector {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, pend0, pend1);
        // The event chain.
        for n in 0..self._stages {
            self.ev_valid[n].clock.next = self.clock.val();
            self.ev_bank[n].clock.next = self.clock.val();
        }
        self.ev_valid[0].d.next = self.flush_event.val() && !self.reset.val();
        self.ev_bank[0].d.next = self.flush_bank.val();
        for n in 1..self._stages {
            self.ev_valid[n].d.next = self.ev_valid[n - 1].q.val() && !self.reset.val();
            self.ev_bank[n].d.next = self.ev_bank[n - 1].q.val();
        }
        // Per column: which row of which bank the value drained now goes to.
        for tap in self._tap..(self._tap + 1) {
            for j in 0..self._cols {
                self.row[j].clock.next = self.clock.val();
                self.bank[j].clock.next = self.clock.val();
                self.armed[j].clock.next = self.clock.val();
                self.w_new[j].next = self.ev_valid[j + tap].q.val();
                self.w_row[j].next = self.row[j].q.val();
                self.w_bank[j].next = self.bank[j].q.val();
                if self.w_new[j].val() {
                    self.w_row[j].next = self.zero_row.val();
                    self.w_bank[j].next = self.ev_bank[j + tap].q.val();
                }
                self.w_en[j].next =
                    self.drain_valid[j].val() && (self.w_new[j].val() || self.armed[j].q.val());
                self.write_enable[j].next = self.w_en[j].val();
                self.write_bank[j].next = self.w_bank[j].val();
                self.write_row[j].next = self.w_row[j].val();
                // The next row: in order, or alternating between the two halves.
                self.w_next[j].next = self.w_row[j].val() + self.one_row.val();
                if self.interleave.val() {
                    if self.w_row[j].val() < self.half.val() {
                        self.w_next[j].next = self.w_row[j].val() + self.half.val();
                    } else {
                        self.w_next[j].next = self.w_row[j].val() - self.half_less_one.val();
                    }
                }
                self.row[j].d.next = self.row[j].q.val();
                self.bank[j].d.next = self.bank[j].q.val();
                self.armed[j].d.next = self.armed[j].q.val();
                if self.w_en[j].val() {
                    self.row[j].d.next = self.w_next[j].val();
                    self.bank[j].d.next = self.w_bank[j].val();
                    self.armed[j].d.next = self.w_row[j].val() != self.last_row.val();
                }
                if self.reset.val() {
                    self.armed[j].d.next = false;
                }
            }
        }
        // The tile's last value: column C - 1, the last row to arrive (`rows - 1` in both orders).
        self.clear0.next = false;
        self.clear1.next = false;
        for j in (self._cols - 1)..self._cols {
            self.clear0.next = self.w_en[j].val()
                && (self.w_row[j].val() == self.last_row.val())
                && !self.w_bank[j].val();
            self.clear1.next = self.w_en[j].val()
                && (self.w_row[j].val() == self.last_row.val())
                && self.w_bank[j].val();
        }
        self.pend0.d.next = (self.pend0.q.val() && !self.clear0.val())
            || (self.set_pending.val() && !self.set_bank.val());
        self.pend1.d.next = (self.pend1.q.val() && !self.clear1.val())
            || (self.set_pending.val() && self.set_bank.val());
        if self.reset.val() {
            self.pend0.d.next = false;
            self.pend1.d.next = false;
        }
        self.pending0.next = self.pend0.q.val();
        self.pending1.next = self.pend1.q.val();
    }
}
