//! The FP16 COMPUTE engine's feeder: streams the operand buffers into `fp16::Fp16Array`.
//!
//! The FP16 PE interleaves two accumulators (slots), so a tile is `2R x C` and each k takes two
//! cycles: A buffer entry k holds rows `0..2R` of A's column k; the feeder reads entries k of both
//! buffers in two consecutive cycles (slot 0, slot 1) and the top presents rows `0..R` of the A
//! entry in the first, rows `R..2R` in the second, with the same B row. Pairs start only in even
//! cycles (a free-running phase bit, 0 in the first cycle after reset), so every tile, and every
//! chain of COMPUTEs with hold, keeps the array's slot parity however the host paces commands.
//!
//! As in `compute::SqFeeder`: a COMPUTE accepted while the feeder is free starts at the next even
//! cycle; the last pair is held until `2R` cycles after the previous tile's slot-0 flush; the
//! feeder is free in the cycle it issues its last read (slot 1 of the last pair); the interlock
//! outputs are expressions of registers only (no locals shared with the `start` logic, see
//! `SqFeeder`). Reset drives flushes with `valid = 0` and one more in the cycle after reset, so
//! both slots of every PE restart from +0.

use super::control::FeederPort;
use super::prim::PackFlushValid;
use super::{ADDR_BITS, GAP_BITS};
use crate::fp16::FP16_CTL_BITS;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct Fp16Feeder {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// COMPUTE fields in, state and buffer reads out (joined to `Control`).
    pub ctrl: FeederPort,
    /// Stage 1: the array's control input, and which half of the A entry it takes (1: rows R..2R).
    pub ctl: Signal<Out, Bits<FP16_CTL_BITS>>,
    pub slot: Signal<Out, Bit>,
    pack: PackFlushValid,
    phase: DFF<Bit>,
    act: DFF<Bit>,
    k: DFF<Bits<ADDR_BITS>>,
    last: DFF<Bits<ADDR_BITS>>,
    a_bank: DFF<Bit>,
    b_bank: DFF<Bit>,
    c_bank: DFF<Bit>,
    hold: DFF<Bit>,
    second: DFF<Bit>,
    scrub: DFF<Bit>,
    gap: DFF<Bits<GAP_BITS>>,
    s1_valid: DFF<Bit>,
    s1_flush: DFF<Bit>,
    s1_event: DFF<Bit>,
    s1_bank: DFF<Bit>,
    s1_slot: DFF<Bit>,
    is_last: Signal<Local, Bit>,
    issue0: Signal<Local, Bit>,
    issue1: Signal<Local, Bit>,
    flush_now: Signal<Local, Bit>,
    ends: Signal<Local, Bit>,
    gap_sat: Constant<Bits<GAP_BITS>>,
    zero_gap: Constant<Bits<GAP_BITS>>,
    one_gap: Constant<Bits<GAP_BITS>>,
    zero_k: Constant<Bits<ADDR_BITS>>,
    one_k: Constant<Bits<ADDR_BITS>>,
}

impl Fp16Feeder {
    pub fn new(rows: usize) -> Self {
        let spacing = 2 * rows;
        assert!(spacing < 1 << GAP_BITS);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            ctrl: Default::default(),
            ctl: Default::default(),
            slot: Default::default(),
            pack: Default::default(),
            phase: Default::default(),
            act: Default::default(),
            k: Default::default(),
            last: Default::default(),
            a_bank: Default::default(),
            b_bank: Default::default(),
            c_bank: Default::default(),
            hold: Default::default(),
            second: Default::default(),
            scrub: Default::default(),
            gap: Default::default(),
            s1_valid: Default::default(),
            s1_flush: Default::default(),
            s1_event: Default::default(),
            s1_bank: Default::default(),
            s1_slot: Default::default(),
            is_last: Default::default(),
            issue0: Default::default(),
            issue1: Default::default(),
            flush_now: Default::default(),
            ends: Default::default(),
            gap_sat: Constant::new(bits(spacing as u64)),
            zero_gap: Constant::new(bits(0)),
            one_gap: Constant::new(bits(1)),
            zero_k: Constant::new(bits(0)),
            one_k: Constant::new(bits(1)),
        }
    }
}

impl Logic for Fp16Feeder {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, phase, act, k, last, a_bank, b_bank, c_bank, hold, second, scrub, gap,
            s1_valid, s1_flush, s1_event, s1_bank, s1_slot
        );
        // Stage 1.
        self.pack.valid.next = self.s1_valid.q.val();
        self.pack.flush.next = self.s1_flush.q.val();
        self.ctl.next = self.pack.ctl.val();
        self.slot.next = self.s1_slot.q.val();
        self.ctrl.flush_event.next = self.s1_event.q.val();
        self.ctrl.flush_bank.next = self.s1_bank.q.val();
        // Interlock outputs (registers only).
        self.ends.next =
            self.phase.q.val() && self.second.q.val() && (self.k.q.val() == self.last.q.val());
        self.ctrl.free.next = !self.act.q.val() || self.ends.val();
        self.ctrl.active.next = self.act.q.val();
        self.ctrl.a_busy0.next = self.act.q.val() && !self.a_bank.q.val() && !self.ends.val();
        self.ctrl.a_busy1.next = self.act.q.val() && self.a_bank.q.val() && !self.ends.val();
        self.ctrl.b_busy0.next = self.act.q.val() && !self.b_bank.q.val() && !self.ends.val();
        self.ctrl.b_busy1.next = self.act.q.val() && self.b_bank.q.val() && !self.ends.val();
        // Stage 0: slot 0 of a pair in even cycles, slot 1 in the odd cycle after it.
        self.is_last.next = self.k.q.val() == self.last.q.val();
        self.issue0.next = !self.phase.q.val()
            && self.act.q.val()
            && (!self.is_last.val()
                || self.hold.q.val()
                || (self.gap.q.val() == self.gap_sat.val()));
        self.issue1.next = self.phase.q.val() && self.second.q.val();
        self.flush_now.next =
            (self.issue0.val() || self.issue1.val()) && self.is_last.val() && !self.hold.q.val();
        self.ctrl.read_addr.next = self.k.q.val();
        self.ctrl.a_read_bank.next = self.a_bank.q.val();
        self.ctrl.b_read_bank.next = self.b_bank.q.val();
        self.phase.d.next = !self.phase.q.val();
        self.second.d.next = self.issue0.val();
        if self.issue1.val() {
            self.k.d.next = self.k.q.val() + self.one_k.val();
            if self.is_last.val() {
                self.act.d.next = false;
            }
        }
        if self.ctrl.start.val() {
            self.act.d.next = true;
            self.k.d.next = self.zero_k.val();
            self.last.d.next = self.ctrl.k_len_in.val() - self.one_k.val();
            self.a_bank.d.next = self.ctrl.a_bank_in.val();
            self.b_bank.d.next = self.ctrl.b_bank_in.val();
            self.c_bank.d.next = self.ctrl.c_bank_in.val();
            self.hold.d.next = self.ctrl.hold_in.val();
        }
        if self.issue0.val() && self.flush_now.val() {
            self.gap.d.next = self.one_gap.val();
        } else if self.gap.q.val() != self.gap_sat.val() {
            self.gap.d.next = self.gap.q.val() + self.one_gap.val();
        }
        self.s1_valid.d.next = self.issue0.val() || self.issue1.val();
        self.s1_flush.d.next = self.flush_now.val();
        self.s1_event.d.next = self.issue0.val() && self.flush_now.val();
        self.s1_bank.d.next = self.c_bank.q.val();
        self.s1_slot.d.next = self.phase.q.val();
        // The cycle after reset: one more flush bubble (the other slot), counted as a flush.
        if self.scrub.q.val() {
            self.s1_flush.d.next = true;
            self.gap.d.next = self.one_gap.val();
            self.scrub.d.next = false;
        }
        if self.reset.val() {
            self.phase.d.next = false;
            self.act.d.next = false;
            self.second.d.next = false;
            self.scrub.d.next = true;
            self.gap.d.next = self.zero_gap.val();
            self.s1_valid.d.next = false;
            self.s1_flush.d.next = true;
            self.s1_event.d.next = false;
        }
    }
}
