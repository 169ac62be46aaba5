//! [`Control`]: the part of an accelerator top that does not depend on the datapath, shared by
//! `top::SqAccel` and `fp16_top::Fp16Accel`: the command decoder, the operand buffers (A, B)
//! and the result path (collector, C buffers, responder), wired to each other and to the two
//! ports. A top adds its feeder (joined through [`FeederHost`] / [`FeederPort`]), its array (the
//! buffers' read lanes in, the drain outputs back) and, on SQ tops, the L1NORM path (the `l1_*`
//! hooks; an FP16 top ties them off).

use super::buffers::{BeatLayout, OperandRam};
use super::decoder::CmdDecoder;
use super::result_path::ResultPath;
use super::{AccelGeometry, ADDR_BITS, WORD_BITS};
use crate::pe::SHIFT_BITS;
use rust_hdl::prelude::*;

/// The decoder and buffers' side of the link to a feeder: COMPUTE fields out, the feeder's
/// state and buffer reads in.
#[derive(LogicInterface, Default)]
#[join = "FeederPort"]
pub struct FeederHost {
    /// A COMPUTE is accepted this cycle, with these fields.
    pub start: Signal<Out, Bit>,
    pub a_bank_in: Signal<Out, Bit>,
    pub b_bank_in: Signal<Out, Bit>,
    pub c_bank_in: Signal<Out, Bit>,
    pub hold_in: Signal<Out, Bit>,
    pub k_len_in: Signal<Out, Bits<ADDR_BITS>>,
    /// The feeder takes a COMPUTE this cycle; a COMPUTE is streaming.
    pub free: Signal<In, Bit>,
    pub active: Signal<In, Bit>,
    /// A / B bank 0 / 1 will still be read after this cycle.
    pub a_busy0: Signal<In, Bit>,
    pub a_busy1: Signal<In, Bit>,
    pub b_busy0: Signal<In, Bit>,
    pub b_busy1: Signal<In, Bit>,
    /// The read port of both operand buffers (a K step).
    pub read_addr: Signal<In, Bits<ADDR_BITS>>,
    pub a_read_bank: Signal<In, Bit>,
    pub b_read_bank: Signal<In, Bit>,
    /// A tile's flush enters the array now, for C bank `flush_bank`.
    pub flush_event: Signal<In, Bit>,
    pub flush_bank: Signal<In, Bit>,
}

/// A feeder's side of [`FeederHost`].
#[derive(LogicInterface, Default)]
#[join = "FeederHost"]
pub struct FeederPort {
    pub start: Signal<In, Bit>,
    pub a_bank_in: Signal<In, Bit>,
    pub b_bank_in: Signal<In, Bit>,
    pub c_bank_in: Signal<In, Bit>,
    pub hold_in: Signal<In, Bit>,
    pub k_len_in: Signal<In, Bits<ADDR_BITS>>,
    pub free: Signal<Out, Bit>,
    pub active: Signal<Out, Bit>,
    pub a_busy0: Signal<Out, Bit>,
    pub a_busy1: Signal<Out, Bit>,
    pub b_busy0: Signal<Out, Bit>,
    pub b_busy1: Signal<Out, Bit>,
    pub read_addr: Signal<Out, Bits<ADDR_BITS>>,
    pub a_read_bank: Signal<Out, Bit>,
    pub b_read_bank: Signal<Out, Bit>,
    pub flush_event: Signal<Out, Bit>,
    pub flush_bank: Signal<Out, Bit>,
}

/// Decoder, operand buffers of `LW`-bit lanes and the result path of `ACC`-bit drain values.
#[derive(LogicBlock)]
pub struct Control<const LW: usize, const ACC: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cmd_data: Vec<Signal<In, Bits<WORD_BITS>>>,
    pub cmd_valid: Signal<In, Bit>,
    pub cmd_ready: Signal<Out, Bit>,
    pub rsp_data: Vec<Signal<Out, Bits<WORD_BITS>>>,
    pub rsp_valid: Signal<Out, Bit>,
    pub rsp_ready: Signal<In, Bit>,
    pub feeder: FeederHost,
    /// The operand buffers' read outputs (the entries read in the previous cycle).
    pub a_lanes: Vec<Signal<Out, Bits<LW>>>,
    pub b_lanes: Vec<Signal<Out, Bits<LW>>>,
    pub a_exp: Signal<Out, Bits<SHIFT_BITS>>,
    pub b_exp: Signal<Out, Bits<SHIFT_BITS>>,
    /// The array's drain outputs.
    pub drain_valid: Vec<Signal<In, Bit>>,
    pub drain_out: Vec<Signal<In, Bits<ACC>>>,
    /// L1NORM hooks: the decoder's data phase out (see `decoder`); in: the L1 path takes a
    /// data beat, has responses outstanding (DRAIN / STATUS wait for them), offers a response
    /// beat (sent instead of the result path's, which is idle then).
    pub l1_start: Signal<Out, Bit>,
    pub l1_beat: Signal<Out, Bit>,
    pub l1_count: Signal<Out, Bits<ADDR_BITS>>,
    pub l1_final: Signal<Out, Bit>,
    pub l1_ready: Signal<In, Bit>,
    pub l1_pending: Signal<In, Bit>,
    pub l1_rsp_valid: Signal<In, Bit>,
    pub l1_rsp_data: Vec<Signal<In, Bits<WORD_BITS>>>,
    /// The responder is idle: an L1NORM response beat may go.
    pub rsp_turn: Signal<Out, Bit>,
    pub(crate) decoder: CmdDecoder,
    abuf: OperandRam<LW>,
    bbuf: OperandRam<LW>,
    /// Drain collector, C buffers, DRAIN / STATUS responder.
    pub(crate) result_path: ResultPath<ACC>,
    _a_lanes: usize,
    _b_lanes: usize,
    _cmd_words: usize,
    _rsp_words: usize,
}

fn signals<T: Default>(n: usize) -> Vec<T> {
    (0..n).map(|_| T::default()).collect()
}

impl<const LW: usize, const ACC: usize> Control<LW, ACC> {
    /// The control of the top of `geom`; the array's column `j` delivers a tile's first value
    /// `tap + 1 + j` cycles after the flush event (see `compute::Collector`), in the FP16
    /// array's interleaved row order when `geom` has two slots.
    pub fn new(geom: &AccelGeometry, tap: usize) -> Self {
        let (a_lanes, b_lanes) = (geom.tile_rows(), geom.cols);
        let words = geom.cmd_words();
        let rsp_words = geom.rsp_words();
        let per_lane = geom.result_lane_bits / WORD_BITS;
        let operand = |lanes| OperandRam::new(lanes, BeatLayout::of(geom), geom.k_max);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_data: signals(words),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            rsp_data: signals(rsp_words),
            rsp_valid: Default::default(),
            rsp_ready: Default::default(),
            feeder: Default::default(),
            a_lanes: signals(a_lanes),
            b_lanes: signals(b_lanes),
            a_exp: Default::default(),
            b_exp: Default::default(),
            drain_valid: signals(geom.cols),
            drain_out: signals(geom.cols),
            l1_start: Default::default(),
            l1_beat: Default::default(),
            l1_count: Default::default(),
            l1_final: Default::default(),
            l1_ready: Default::default(),
            l1_pending: Default::default(),
            l1_rsp_valid: Default::default(),
            l1_rsp_data: signals(rsp_words),
            rsp_turn: Default::default(),
            decoder: match geom.l1norm {
                Some(c) => CmdDecoder::with_l1norm(
                    geom.k_max,
                    geom.k_per_beat,
                    geom.l1_in_lanes(),
                    c.n_max(),
                ),
                None => CmdDecoder::new(geom.k_max, geom.k_per_beat),
            },
            abuf: operand(a_lanes),
            bbuf: operand(b_lanes),
            result_path: ResultPath::new(a_lanes, geom.cols, per_lane, tap, geom.slots == 2),
            _a_lanes: a_lanes,
            _b_lanes: b_lanes,
            _cmd_words: words,
            _rsp_words: rsp_words,
        }
    }
}

impl<const LW: usize, const ACC: usize> Logic for Control<LW, ACC> {
    #[hdl_gen]
    fn update(&mut self) {
        // Clocks and resets.
        self.decoder.clock.next = self.clock.val();
        self.abuf.clock.next = self.clock.val();
        self.bbuf.clock.next = self.clock.val();
        self.result_path.clock.next = self.clock.val();
        self.decoder.reset.next = self.reset.val();
        self.result_path.reset.next = self.reset.val();
        // Command port -> decoder; interlock inputs.
        self.decoder.cmd_valid.next = self.cmd_valid.val();
        self.decoder.header.next = self.cmd_data[0].val();
        self.cmd_ready.next = self.decoder.cmd_ready.val();
        self.decoder.cmp_free.next = self.feeder.free.val();
        self.decoder.a_busy0.next = self.feeder.a_busy0.val();
        self.decoder.a_busy1.next = self.feeder.a_busy1.val();
        self.decoder.b_busy0.next = self.feeder.b_busy0.val();
        self.decoder.b_busy1.next = self.feeder.b_busy1.val();
        self.decoder.c_blocked0.next = self.result_path.c_blocked0.val();
        self.decoder.c_blocked1.next = self.result_path.c_blocked1.val();
        // DRAIN / STATUS also wait for the L1NORM responses accepted before them.
        self.decoder.rsp_free.next = self.result_path.free.val() && !self.l1_pending.val();
        self.decoder.l1_ready.next = self.l1_ready.val();
        self.l1_start.next = self.decoder.l1_start.val();
        self.l1_beat.next = self.decoder.l1_beat.val();
        self.l1_count.next = self.decoder.l1_count.val();
        self.l1_final.next = self.decoder.l1_final.val();
        self.rsp_turn.next = self.result_path.free.val();
        // LOAD: command beats -> operand buffers.
        self.abuf.write_enable.next = self.decoder.a_write.val();
        self.bbuf.write_enable.next = self.decoder.b_write.val();
        self.abuf.write_bank.next = self.decoder.write_bank.val();
        self.bbuf.write_bank.next = self.decoder.write_bank.val();
        self.abuf.write_addr.next = self.decoder.write_addr.val();
        self.bbuf.write_addr.next = self.decoder.write_addr.val();
        for w in 0..self._cmd_words {
            self.abuf.write_words[w].next = self.cmd_data[w].val();
            self.bbuf.write_words[w].next = self.cmd_data[w].val();
        }
        // COMPUTE: decoder -> feeder; the feeder's reads -> buffers -> the array side.
        self.feeder.start.next = self.decoder.cmp_start.val();
        self.feeder.a_bank_in.next = self.decoder.hdr_bank.val();
        self.feeder.b_bank_in.next = self.decoder.hdr_bank2.val();
        self.feeder.c_bank_in.next = self.decoder.hdr_cbank.val();
        self.feeder.hold_in.next = self.decoder.hdr_hold.val();
        self.feeder.k_len_in.next = self.decoder.hdr_k_len.val();
        self.abuf.read_bank.next = self.feeder.a_read_bank.val();
        self.bbuf.read_bank.next = self.feeder.b_read_bank.val();
        self.abuf.read_addr.next = self.feeder.read_addr.val();
        self.bbuf.read_addr.next = self.feeder.read_addr.val();
        for i in 0..self._a_lanes {
            self.a_lanes[i].next = self.abuf.read_lanes[i].val();
        }
        for j in 0..self._b_lanes {
            self.b_lanes[j].next = self.bbuf.read_lanes[j].val();
        }
        self.a_exp.next = self.abuf.read_exp.val();
        self.b_exp.next = self.bbuf.read_exp.val();
        // Array drain, COMPUTE / DRAIN / STATUS starts -> result path -> response port.
        for j in 0..self._b_lanes {
            self.result_path.drain_valid[j].next = self.drain_valid[j].val();
            self.result_path.drain_out[j].next = self.drain_out[j].val();
        }
        self.result_path.flush_event.next = self.feeder.flush_event.val();
        self.result_path.flush_bank.next = self.feeder.flush_bank.val();
        self.result_path.compute_start.next = self.decoder.cmp_start.val();
        self.result_path.compute_hold.next = self.decoder.hdr_hold.val();
        self.result_path.compute_bank.next = self.decoder.hdr_cbank.val();
        self.result_path.drain_start.next = self.decoder.drain_start.val();
        self.result_path.status_start.next = self.decoder.status_start.val();
        self.result_path.drain_bank.next = self.decoder.hdr_bank.val();
        self.result_path.compute_active.next = self.feeder.active.val();
        self.result_path.error.next = self.decoder.error.val();
        self.result_path.accepted.next = self.decoder.accepted.val();
        self.result_path.rsp_ready.next = self.rsp_ready.val();
        for w in 0..self._rsp_words {
            self.rsp_data[w].next = self.result_path.rsp_data[w].val();
        }
        self.rsp_valid.next = self.result_path.rsp_valid.val();
        // An L1NORM beat is offered only while the responder is idle.
        if self.l1_rsp_valid.val() {
            for w in 0..self._rsp_words {
                self.rsp_data[w].next = self.l1_rsp_data[w].val();
            }
            self.rsp_valid.next = true;
        }
    }
}
