//! The command decoder: reads headers, runs the LOAD data phase itself, hands COMPUTE to the
//! feeder and DRAIN / STATUS to the responder, and holds `cmd_ready` low while a command's bank
//! is still in use (the interlocks of `docs/accelerator.md`).
//!
//! Two modes. **Header**: the beat on `cmd_data` is a header; `cmd_ready` is computed from its
//! opcode and bank fields and the engines' state, combinationally, so a command whose resources
//! are free is accepted in the cycle it is presented. **Load**: the next `ceil(k_len / P)` beats
//! are data beats of `P` K steps each (`AccelGeometry::k_per_beat`), accepted one per cycle
//! (`cmd_ready` = 1) and written to buffer entry 0, 1, ... of the chosen bank. A LOAD or COMPUTE
//! whose `k_len` is 0 or above `K_MAX` sets the sticky error flag; such a LOAD still consumes its
//! `ceil(k_len / P)` data beats (so the stream stays in step) but stores nothing, such a COMPUTE
//! does nothing. Unknown opcodes set the error flag too; opcode 0 is NOP.
//!
//! L1NORM (SQ tops built with the L1-norm unit, [`CmdDecoder::with_l1norm`]; otherwise opcode 6
//! is unknown): the header is accepted at once; its data phase carries `n` elements, `lanes`
//! per beat, in `ceil(n / lanes)` beats, each accepted when the L1 path's serializer can take
//! it (`l1_ready`) and handed to it (`l1_beat`, with the element count and whether the row
//! ends in it). A length of 0 or above `n_max` sets the error flag; its beats are consumed one
//! per cycle and dropped, like a bad LOAD's.

use super::commands::{OP_COMPUTE, OP_DRAIN, OP_L1NORM, OP_LOAD_A, OP_LOAD_B, OP_STATUS};
use super::{ADDR_BITS, WORD_BITS};
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct CmdDecoder {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cmd_valid: Signal<In, Bit>,
    /// Word 0 of the beat on `cmd_data` (a header holds nothing above it).
    pub header: Signal<In, Bits<WORD_BITS>>,
    pub cmd_ready: Signal<Out, Bit>,
    /// The feeder takes a COMPUTE this cycle.
    pub cmp_free: Signal<In, Bit>,
    /// The feeder still has to read A / B bank 0 / 1.
    pub a_busy0: Signal<In, Bit>,
    pub a_busy1: Signal<In, Bit>,
    pub b_busy0: Signal<In, Bit>,
    pub b_busy1: Signal<In, Bit>,
    /// C bank 0 / 1 cannot take a new tile (results in flight, or being drained).
    pub c_blocked0: Signal<In, Bit>,
    pub c_blocked1: Signal<In, Bit>,
    /// The responder takes a DRAIN or STATUS this cycle.
    pub rsp_free: Signal<In, Bit>,
    /// Operand buffer write port (shared address and bank, one enable per buffer).
    pub a_write: Signal<Out, Bit>,
    pub b_write: Signal<Out, Bit>,
    pub write_bank: Signal<Out, Bit>,
    pub write_addr: Signal<Out, Bits<ADDR_BITS>>,
    /// A COMPUTE is accepted this cycle (its fields are the `hdr_*` outputs).
    pub cmp_start: Signal<Out, Bit>,
    /// Header fields: bit 27 (bank, A bank, C bank of DRAIN), 26 (B bank), 25 (C bank of
    /// COMPUTE), 24 (hold: COMPUTE does not flush), 15:0 (`k_len`).
    pub hdr_bank: Signal<Out, Bit>,
    pub hdr_bank2: Signal<Out, Bit>,
    pub hdr_cbank: Signal<Out, Bit>,
    pub hdr_hold: Signal<Out, Bit>,
    pub hdr_k_len: Signal<Out, Bits<ADDR_BITS>>,
    pub drain_start: Signal<Out, Bit>,
    pub status_start: Signal<Out, Bit>,
    /// Sticky error flag, and the number of headers accepted so far.
    pub error: Signal<Out, Bit>,
    pub accepted: Signal<Out, Bits<WORD_BITS>>,
    /// The L1 path's serializer takes a data beat this cycle.
    pub l1_ready: Signal<In, Bit>,
    /// A good L1NORM header is accepted this cycle.
    pub l1_start: Signal<Out, Bit>,
    /// A data beat of a good L1NORM row is accepted this cycle, with `l1_count` elements;
    /// `l1_final`: the row ends in it.
    pub l1_beat: Signal<Out, Bit>,
    pub l1_count: Signal<Out, Bits<ADDR_BITS>>,
    pub l1_final: Signal<Out, Bit>,
    loading: DFF<Bit>,
    /// The data phase belongs to an L1NORM; `left` = its elements not yet accepted.
    l1data: DFF<Bit>,
    left: DFF<Bits<ADDR_BITS>>,
    load_b: DFF<Bit>,
    store: DFF<Bit>,
    bank: DFF<Bit>,
    count: DFF<Bits<ADDR_BITS>>,
    last: DFF<Bits<ADDR_BITS>>,
    err: DFF<Bit>,
    n_acc: DFF<Bits<WORD_BITS>>,
    opcode: Signal<Local, Bits<4>>,
    k_len: Signal<Local, Bits<ADDR_BITS>>,
    k_ok: Signal<Local, Bit>,
    n_ok: Signal<Local, Bit>,
    l1_op: Signal<Local, Bit>,
    /// `k_le[i + 1]` = `k_len[i:0] <= K_MAX[i:0]` (see `update`).
    k_le: Vec<Signal<Local, Bit>>,
    _k_bits: usize,
    ready: Signal<Local, Bit>,
    fire: Signal<Local, Bit>,
    /// Header bits 23:16 (reserved).
    unused_hdr: Signal<Local, Bits<8>>,
    op_load_a: Constant<Bits<4>>,
    op_load_b: Constant<Bits<4>>,
    op_compute: Constant<Bits<4>>,
    op_drain: Constant<Bits<4>>,
    op_status: Constant<Bits<4>>,
    op_l1norm: Constant<Bits<4>>,
    /// The top has the L1-norm unit; elements per L1NORM data beat; longest row.
    l1_on: Constant<Bit>,
    l1_lanes: Constant<Bits<ADDR_BITS>>,
    n_max: Constant<Bits<ADDR_BITS>>,
    k_max: Constant<Bits<ADDR_BITS>>,
    /// `log2(P)`: a LOAD's last data beat is `(k_len - 1) >> log2(P)`.
    beat_shift: Constant<Bits<ADDR_BITS>>,
    zero_k: Constant<Bits<ADDR_BITS>>,
    one_k: Constant<Bits<ADDR_BITS>>,
    zero_w: Constant<Bits<WORD_BITS>>,
    one_w: Constant<Bits<WORD_BITS>>,
}

impl CmdDecoder {
    /// A decoder without L1NORM (opcode 6 is unknown), `k_per_beat` K steps per LOAD beat.
    pub fn new(k_max: usize, k_per_beat: usize) -> Self {
        Self::build(k_max, k_per_beat, None)
    }

    /// A decoder for a top with the L1-norm path: `lanes` elements per data beat, rows of
    /// `1..=n_max` elements.
    pub fn with_l1norm(k_max: usize, k_per_beat: usize, lanes: usize, n_max: usize) -> Self {
        Self::build(k_max, k_per_beat, Some((lanes, n_max)))
    }

    fn build(k_max: usize, k_per_beat: usize, l1: Option<(usize, usize)>) -> Self {
        assert!((1..1 << ADDR_BITS).contains(&k_max) && k_per_beat.is_power_of_two());
        let (lanes, n_max) = l1.unwrap_or((1, 1));
        assert!(lanes >= 1 && (1..1 << ADDR_BITS).contains(&n_max));
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_valid: Default::default(),
            header: Default::default(),
            cmd_ready: Default::default(),
            cmp_free: Default::default(),
            a_busy0: Default::default(),
            a_busy1: Default::default(),
            b_busy0: Default::default(),
            b_busy1: Default::default(),
            c_blocked0: Default::default(),
            c_blocked1: Default::default(),
            rsp_free: Default::default(),
            a_write: Default::default(),
            b_write: Default::default(),
            write_bank: Default::default(),
            write_addr: Default::default(),
            cmp_start: Default::default(),
            hdr_bank: Default::default(),
            hdr_bank2: Default::default(),
            hdr_cbank: Default::default(),
            hdr_hold: Default::default(),
            hdr_k_len: Default::default(),
            drain_start: Default::default(),
            status_start: Default::default(),
            error: Default::default(),
            accepted: Default::default(),
            l1_ready: Default::default(),
            l1_start: Default::default(),
            l1_beat: Default::default(),
            l1_count: Default::default(),
            l1_final: Default::default(),
            loading: Default::default(),
            l1data: Default::default(),
            left: Default::default(),
            load_b: Default::default(),
            store: Default::default(),
            bank: Default::default(),
            count: Default::default(),
            last: Default::default(),
            err: Default::default(),
            k_le: (0..=ADDR_BITS).map(|_| Default::default()).collect(),
            _k_bits: ADDR_BITS,
            n_acc: Default::default(),
            opcode: Default::default(),
            k_len: Default::default(),
            k_ok: Default::default(),
            n_ok: Default::default(),
            l1_op: Default::default(),
            ready: Default::default(),
            fire: Default::default(),
            unused_hdr: Default::default(),
            op_load_a: Constant::new(bits(OP_LOAD_A as u64)),
            op_load_b: Constant::new(bits(OP_LOAD_B as u64)),
            op_compute: Constant::new(bits(OP_COMPUTE as u64)),
            op_drain: Constant::new(bits(OP_DRAIN as u64)),
            op_status: Constant::new(bits(OP_STATUS as u64)),
            op_l1norm: Constant::new(bits(OP_L1NORM as u64)),
            l1_on: Constant::new(l1.is_some()),
            l1_lanes: Constant::new(bits(lanes as u64)),
            n_max: Constant::new(bits(n_max as u64)),
            k_max: Constant::new(bits(k_max as u64)),
            beat_shift: Constant::new(bits(u64::from(k_per_beat.trailing_zeros()))),
            zero_k: Constant::new(bits(0)),
            one_k: Constant::new(bits(1)),
            zero_w: Constant::new(bits(0)),
            one_w: Constant::new(bits(1)),
        }
    }
}

impl Logic for CmdDecoder {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, loading, load_b, store, bank, count, last, err, n_acc, l1data, left
        );
        // Header fields (meaningful in header mode only).
        self.opcode.next = self.header.val().get_bits::<4>(28);
        self.k_len.next = self.header.val().get_bits::<ADDR_BITS>(0);
        self.unused_hdr.next = self.header.val().get_bits::<8>(16);
        self.hdr_bank.next = self.header.val().get_bit(27);
        self.hdr_bank2.next = self.header.val().get_bit(26);
        self.hdr_cbank.next = self.header.val().get_bit(25);
        self.hdr_hold.next = self.header.val().get_bit(24);
        self.hdr_k_len.next = self.k_len.val();
        // `k_len <= K_MAX` bit by bit from the LSB rather than as a subtraction: synthesis turns
        // the chain into a shallow LUT tree, where `<=` became a 16-bit carry chain on the
        // `cmd_ready` path (the longest path of a board design).
        self.k_le[0].next = true;
        for i in 0..self._k_bits {
            if self.k_max.val().get_bit(i) {
                self.k_le[i + 1].next = !self.k_len.val().get_bit(i) || self.k_le[i].val();
            } else {
                self.k_le[i + 1].next = !self.k_len.val().get_bit(i) && self.k_le[i].val();
            }
        }
        for top in self._k_bits..(self._k_bits + 1) {
            self.k_ok.next = (self.k_len.val() != self.zero_k.val()) && self.k_le[top].val();
        }
        self.n_ok.next =
            (self.k_len.val() != self.zero_k.val()) && (self.k_len.val() <= self.n_max.val());
        self.l1_op.next = (self.opcode.val() == self.op_l1norm.val()) && self.l1_on.val();
        // Ready: always in load mode; in header mode when the command's resources are free.
        self.ready.next = true;
        if self.loading.q.val() && self.l1data.q.val() && self.store.q.val() {
            self.ready.next = self.l1_ready.val();
        }
        if !self.loading.q.val() {
            if self.opcode.val() == self.op_load_a.val() {
                self.ready.next = !((self.header.val().get_bit(27) && self.a_busy1.val())
                    || (!self.header.val().get_bit(27) && self.a_busy0.val()));
            }
            if self.opcode.val() == self.op_load_b.val() {
                self.ready.next = !((self.header.val().get_bit(27) && self.b_busy1.val())
                    || (!self.header.val().get_bit(27) && self.b_busy0.val()));
            }
            if self.opcode.val() == self.op_compute.val() {
                self.ready.next = !self.k_ok.val()
                    || (self.cmp_free.val()
                        && (self.header.val().get_bit(24)
                            || !((self.header.val().get_bit(25) && self.c_blocked1.val())
                                || (!self.header.val().get_bit(25) && self.c_blocked0.val()))));
            }
            if (self.opcode.val() == self.op_drain.val())
                || (self.opcode.val() == self.op_status.val())
            {
                self.ready.next = self.rsp_free.val();
            }
        }
        self.fire.next = self.cmd_valid.val() && self.ready.val();
        self.cmd_ready.next = self.ready.val();
        // Outputs, by default idle.
        self.a_write.next = false;
        self.b_write.next = false;
        self.cmp_start.next = false;
        self.drain_start.next = false;
        self.status_start.next = false;
        self.l1_start.next = false;
        self.l1_beat.next = false;
        self.l1_count.next = self.l1_lanes.val();
        if self.left.q.val() <= self.l1_lanes.val() {
            self.l1_count.next = self.left.q.val();
        }
        self.l1_final.next = self.left.q.val() <= self.l1_lanes.val();
        self.write_bank.next = self.bank.q.val();
        self.write_addr.next = self.count.q.val();
        self.error.next = self.err.q.val();
        self.accepted.next = self.n_acc.q.val();
        if self.loading.q.val() && self.l1data.q.val() {
            if self.fire.val() {
                self.l1_beat.next = self.store.q.val();
                self.left.d.next = self.left.q.val() - self.l1_lanes.val();
                if self.left.q.val() <= self.l1_lanes.val() {
                    self.loading.d.next = false;
                }
            }
        } else if self.loading.q.val() {
            if self.cmd_valid.val() {
                self.a_write.next = self.store.q.val() && !self.load_b.q.val();
                self.b_write.next = self.store.q.val() && self.load_b.q.val();
                self.count.d.next = self.count.q.val() + self.one_k.val();
                if self.count.q.val() == self.last.q.val() {
                    self.loading.d.next = false;
                }
            }
        } else if self.fire.val() {
            self.n_acc.d.next = self.n_acc.q.val() + self.one_w.val();
            if (self.opcode.val() == self.op_load_a.val())
                || (self.opcode.val() == self.op_load_b.val())
            {
                self.loading.d.next = self.k_len.val() != self.zero_k.val();
                self.load_b.d.next = self.opcode.val() == self.op_load_b.val();
                self.l1data.d.next = false;
                self.store.d.next = self.k_ok.val();
                self.bank.d.next = self.header.val().get_bit(27);
                self.count.d.next = self.zero_k.val();
                self.last.d.next = (self.k_len.val() - self.one_k.val()) >> self.beat_shift.val();
                if !self.k_ok.val() {
                    self.err.d.next = true;
                }
            }
            if self.opcode.val() == self.op_compute.val() {
                if self.k_ok.val() {
                    self.cmp_start.next = true;
                } else {
                    self.err.d.next = true;
                }
            }
            if self.opcode.val() == self.op_drain.val() {
                self.drain_start.next = true;
            }
            if self.opcode.val() == self.op_status.val() {
                self.status_start.next = true;
            }
            if self.l1_op.val() {
                self.loading.d.next = self.k_len.val() != self.zero_k.val();
                self.l1data.d.next = true;
                self.store.d.next = self.n_ok.val();
                self.left.d.next = self.k_len.val();
                self.l1_start.next = self.n_ok.val();
                if !self.n_ok.val() {
                    self.err.d.next = true;
                }
            }
            if (self.opcode.val() > self.op_status.val()) && !self.l1_op.val() {
                // Opcodes above STATUS are not defined (6 = L1NORM without the unit); 0 is NOP.
                self.err.d.next = true;
            }
        }
        if self.reset.val() {
            self.loading.d.next = false;
            self.err.d.next = false;
            self.n_acc.d.next = self.zero_w.val();
        }
    }
}
