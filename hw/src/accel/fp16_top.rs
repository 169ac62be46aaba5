//! `Fp16Accel`: the FP16 accelerator top (`docs/accelerator.md`, "The FP16 top"): the same
//! decoder, operand buffers and result path (collector, C buffers, responder) as
//! `top::SqAccel`, around `fp16::Fp16Array` and its own feeder (`fp16_feeder`). A tile is
//! `2R x C` binary32 results; data vectors have 16-bit lanes and no exponent; LOAD_A vector k
//! holds rows `0..2R` of A's column k.

use super::buffers::{BeatLayout, OperandRam};
use super::decoder::CmdDecoder;
use super::fp16_feeder::Fp16Feeder;
use super::result_path::ResultPath;
use super::{AccelGeometry, WORD_BITS};
use crate::fp16::{Fp16Array, FP16_CTL_BITS, FP16_LATENCY};
use crate::pe::SHIFT_BITS;
use rust_hdl::prelude::*;

/// Chain stage that column 0 taps: column `j`'s first value of a tile arrives `FP16_LATENCY + 1 + j`
/// cycles after the slot-0 flush enters the array (`1 + j` in the integer array), and the event
/// reaches chain stage `n` after `1 + n` cycles.
pub const FP16_COLLECT_TAP: usize = FP16_LATENCY;

#[derive(LogicBlock)]
pub struct Fp16Accel {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cmd_data: Vec<Signal<In, Bits<WORD_BITS>>>,
    pub cmd_valid: Signal<In, Bit>,
    pub cmd_ready: Signal<Out, Bit>,
    pub rsp_data: Vec<Signal<Out, Bits<WORD_BITS>>>,
    pub rsp_valid: Signal<Out, Bit>,
    pub rsp_ready: Signal<In, Bit>,
    decoder: CmdDecoder,
    feeder: Fp16Feeder,
    abuf: OperandRam<16>,
    bbuf: OperandRam<16>,
    pub(crate) array: Fp16Array,
    /// Drain collector, C buffers, DRAIN / STATUS responder.
    pub(crate) result_path: ResultPath<32>,
    /// The array's cascade outputs (for tiling arrays) are not used by the top.
    unused_a_east: Vec<Signal<Local, Bits<16>>>,
    unused_ctl_east: Vec<Signal<Local, Bits<FP16_CTL_BITS>>>,
    unused_b_south: Vec<Signal<Local, Bits<16>>>,
    /// No per-K exponents in fp16 data vectors: the buffers' exponent outputs are zero.
    unused_exp: Vec<Signal<Local, Bits<SHIFT_BITS>>>,
    /// The decoder's L1NORM outputs (no L1-norm unit here: opcode 6 is unknown).
    unused_l1_count: Signal<Local, Bits<{ super::ADDR_BITS }>>,
    unused_l1: Vec<Signal<Local, Bit>>,
    _rows: usize,
    _cols: usize,
    _cmd_words: usize,
    _rsp_words: usize,
}

impl Fp16Accel {
    pub fn new(geom: &AccelGeometry) -> Self {
        let (rows, cols) = (geom.rows, geom.cols);
        assert!(geom.lane_bits == 16 && geom.slots == 2 && geom.result_lane_bits == 32);
        let tile_rows = geom.tile_rows();
        let words = geom.cmd_words();
        let per_lane = geom.result_lane_bits / WORD_BITS;
        let operand = |lanes| OperandRam::new(lanes, BeatLayout::of(geom), geom.k_max);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_data: (0..words).map(|_| Default::default()).collect(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            rsp_data: (0..cols * per_lane).map(|_| Default::default()).collect(),
            rsp_valid: Default::default(),
            rsp_ready: Default::default(),
            decoder: CmdDecoder::new(geom.k_max, 1),
            feeder: Fp16Feeder::new(rows),
            abuf: operand(tile_rows),
            bbuf: operand(cols),
            array: Fp16Array::new(rows, cols),
            result_path: ResultPath::new(tile_rows, cols, per_lane, FP16_COLLECT_TAP, true),
            unused_a_east: (0..rows).map(|_| Default::default()).collect(),
            unused_ctl_east: (0..rows).map(|_| Default::default()).collect(),
            unused_b_south: (0..cols).map(|_| Default::default()).collect(),
            unused_l1_count: Default::default(),
            unused_l1: (0..3).map(|_| Default::default()).collect(),
            unused_exp: (0..2).map(|_| Default::default()).collect(),
            _rows: rows,
            _cols: cols,
            _cmd_words: words,
            _rsp_words: geom.rsp_words(),
        }
    }
}

impl Logic for Fp16Accel {
    #[hdl_gen]
    fn update(&mut self) {
        // Clocks and resets.
        self.decoder.clock.next = self.clock.val();
        self.feeder.clock.next = self.clock.val();
        self.abuf.clock.next = self.clock.val();
        self.bbuf.clock.next = self.clock.val();
        self.array.clock.next = self.clock.val();
        self.result_path.clock.next = self.clock.val();
        self.decoder.reset.next = self.reset.val();
        self.feeder.reset.next = self.reset.val();
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
        self.decoder.rsp_free.next = self.result_path.free.val();
        self.decoder.l1_ready.next = false;
        self.unused_l1_count.next = self.decoder.l1_count.val();
        self.unused_l1[0].next = self.decoder.l1_start.val();
        self.unused_l1[1].next = self.decoder.l1_beat.val();
        self.unused_l1[2].next = self.decoder.l1_final.val();
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
        // COMPUTE: decoder -> feeder -> buffers -> array.
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
        self.unused_exp[0].next = self.abuf.read_exp.val();
        self.unused_exp[1].next = self.bbuf.read_exp.val();
        self.array.ctl_in.next = self.feeder.ctl.val();
        // Slot 0 takes rows 0..R of the A entry, slot 1 rows R..2R.
        for rows in self._rows..(self._rows + 1) {
            for i in 0..self._rows {
                self.array.a_in[i].next = self.abuf.read_lanes[i].val();
                if self.feeder.slot.val() {
                    self.array.a_in[i].next = self.abuf.read_lanes[i + rows].val();
                }
                self.unused_a_east[i].next = self.array.a_east[i].val();
                self.unused_ctl_east[i].next = self.array.ctl_east[i].val();
            }
        }
        for j in 0..self._cols {
            self.array.b_in[j].next = self.bbuf.read_lanes[j].val();
            self.unused_b_south[j].next = self.array.b_south[j].val();
        }
        // Array drain, COMPUTE / DRAIN / STATUS starts -> result path -> response port.
        for j in 0..self._cols {
            self.result_path.drain_valid[j].next = self.array.drain_valid[j].val();
            self.result_path.drain_out[j].next = self.array.drain_out[j].val();
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
    }
}
