//! `SqAccel<B, P, ACC>`: the ShiftQuant accelerator top (`docs/accelerator.md`).
//!
//! ```text
//!   cmd ──> CmdDecoder ──LOAD──> OperandRam A, B ──> SqFeeder ──> SqArray ──drain──> Collector
//!               │  COMPUTE ─────────────────────────────^                               │
//!               │  DRAIN / STATUS ──> Responder <── ResultRam x C (2 banks) <────────────┘
//!                                        └──> rsp
//! ```
//!
//! The rust-hdl block's command and response ports are vectors of 32-bit words
//! (`cmd_data_<w>`, `rsp_data_<w>`: word `w` = bits `32w+31 : 32w` of the documented port),
//! because a flat port's width would have to be a type parameter; `generate` wraps the block in
//! a module with the documented flat `cmd_data` / `rsp_data` ports.

use super::buffers::{OperandRam, ResultRam};
use super::compute::{Collector, SqFeeder};
use super::decoder::CmdDecoder;
use super::prim::FlagWord;
use super::response::Responder;
use super::{AccelGeometry, WORD_BITS};
use crate::array::SqArray;
use crate::pe::{PeParams, CTL_BITS};
use rust_hdl::prelude::*;

/// Flags of STATUS lane 1, LSB first.
pub const STATUS_FLAGS: [&str; 3] = ["compute", "results_pending", "error"];

#[derive(LogicBlock)]
pub struct SqAccel<const B: usize, const P: usize, const ACC: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cmd_data: Vec<Signal<In, Bits<WORD_BITS>>>,
    pub cmd_valid: Signal<In, Bit>,
    pub cmd_ready: Signal<Out, Bit>,
    pub rsp_data: Vec<Signal<Out, Bits<WORD_BITS>>>,
    pub rsp_valid: Signal<Out, Bit>,
    pub rsp_ready: Signal<In, Bit>,
    decoder: CmdDecoder,
    feeder: SqFeeder,
    pub(crate) collector: Collector,
    responder: Responder,
    abuf: OperandRam<B>,
    bbuf: OperandRam<B>,
    cbuf: Vec<ResultRam<ACC>>,
    pub(crate) array: SqArray<B, P, ACC>,
    flags: FlagWord,
    /// The array's cascade outputs (for tiling arrays) are not used by the top.
    unused_a_east: Vec<Signal<Local, Bits<B>>>,
    unused_ctl_east: Vec<Signal<Local, Bits<CTL_BITS>>>,
    unused_b_south: Vec<Signal<Local, Bits<B>>>,
    /// The result RAMs' upper words (sign copies) when response lanes are 32 bits.
    unused_hi: Vec<Signal<Local, Bits<WORD_BITS>>>,
    _rows: usize,
    _cols: usize,
    _cmd_words: usize,
    _per_lane: usize,
}

impl<const B: usize, const P: usize, const ACC: usize> SqAccel<B, P, ACC> {
    pub fn new(geom: &AccelGeometry, params: PeParams) -> Self {
        let (rows, cols) = (geom.rows, geom.cols);
        assert_eq!(geom.lane_bits, 8, "SqAccel takes 8-bit command lanes");
        assert!(B <= geom.lane_bits && ACC <= geom.result_lane_bits);
        let words = geom.cmd_words();
        let per_lane = geom.result_lane_bits / WORD_BITS;
        let operand = |lanes| {
            OperandRam::new(
                lanes,
                geom.lane_bits,
                words,
                geom.exp_lsb(),
                true,
                geom.k_max,
            )
        };
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_data: (0..words).map(|_| Default::default()).collect(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            rsp_data: (0..cols * per_lane).map(|_| Default::default()).collect(),
            rsp_valid: Default::default(),
            rsp_ready: Default::default(),
            decoder: CmdDecoder::new(geom.k_max),
            feeder: SqFeeder::new(rows),
            collector: Collector::new(rows, cols),
            responder: Responder::new(rows, cols, per_lane),
            abuf: operand(rows),
            bbuf: operand(cols),
            cbuf: (0..cols).map(|_| ResultRam::new(rows)).collect(),
            array: SqArray::new(rows, cols, params),
            flags: FlagWord::new(STATUS_FLAGS.len()),
            unused_a_east: (0..rows).map(|_| Default::default()).collect(),
            unused_ctl_east: (0..rows).map(|_| Default::default()).collect(),
            unused_b_south: (0..cols).map(|_| Default::default()).collect(),
            unused_hi: (0..cols).map(|_| Default::default()).collect(),
            _rows: rows,
            _cols: cols,
            _cmd_words: words,
            _per_lane: per_lane,
        }
    }
}

impl<const B: usize, const P: usize, const ACC: usize> Logic for SqAccel<B, P, ACC> {
    #[hdl_gen]
    fn update(&mut self) {
        // Clocks and resets.
        self.decoder.clock.next = self.clock.val();
        self.feeder.clock.next = self.clock.val();
        self.collector.clock.next = self.clock.val();
        self.responder.clock.next = self.clock.val();
        self.abuf.clock.next = self.clock.val();
        self.bbuf.clock.next = self.clock.val();
        self.array.clock.next = self.clock.val();
        for j in 0..self._cols {
            self.cbuf[j].clock.next = self.clock.val();
        }
        self.decoder.reset.next = self.reset.val();
        self.feeder.reset.next = self.reset.val();
        self.collector.reset.next = self.reset.val();
        self.responder.reset.next = self.reset.val();
        // Command port -> decoder; interlock inputs.
        self.decoder.cmd_valid.next = self.cmd_valid.val();
        self.decoder.header.next = self.cmd_data[0].val();
        self.cmd_ready.next = self.decoder.cmd_ready.val();
        self.decoder.cmp_free.next = self.feeder.free.val();
        self.decoder.a_busy0.next = self.feeder.a_busy0.val();
        self.decoder.a_busy1.next = self.feeder.a_busy1.val();
        self.decoder.b_busy0.next = self.feeder.b_busy0.val();
        self.decoder.b_busy1.next = self.feeder.b_busy1.val();
        self.decoder.c_blocked0.next =
            self.collector.pending0.val() || self.responder.c_busy0.val();
        self.decoder.c_blocked1.next =
            self.collector.pending1.val() || self.responder.c_busy1.val();
        self.decoder.rsp_free.next = self.responder.free.val();
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
        self.feeder.a_exp.next = self.abuf.read_exp.val();
        self.feeder.b_exp.next = self.bbuf.read_exp.val();
        self.array.ctl_in.next = self.feeder.ctl.val();
        for i in 0..self._rows {
            self.array.a_in[i].next = self.abuf.read_lanes[i].val();
            self.unused_a_east[i].next = self.array.a_east[i].val();
            self.unused_ctl_east[i].next = self.array.ctl_east[i].val();
        }
        for j in 0..self._cols {
            self.array.b_in[j].next = self.bbuf.read_lanes[j].val();
            self.unused_b_south[j].next = self.array.b_south[j].val();
        }
        // Drained results -> C buffers.
        self.collector.flush_event.next = self.feeder.flush_event.val();
        self.collector.flush_bank.next = self.feeder.flush_bank.val();
        self.collector.set_pending.next =
            self.decoder.cmp_start.val() && !self.decoder.hdr_hold.val();
        self.collector.set_bank.next = self.decoder.hdr_cbank.val();
        for j in 0..self._cols {
            self.collector.drain_valid[j].next = self.array.drain_valid[j].val();
            self.cbuf[j].write_enable.next = self.collector.write_enable[j].val();
            self.cbuf[j].write_bank.next = self.collector.write_bank[j].val();
            self.cbuf[j].write_row.next = self.collector.write_row[j].val();
            self.cbuf[j].write_data.next = self.array.drain_out[j].val();
            self.cbuf[j].read_bank.next = self.responder.read_bank.val();
            self.cbuf[j].read_row.next = self.responder.read_row.val();
        }
        // DRAIN / STATUS: C buffers -> responder -> response port.
        self.responder.drain_start.next = self.decoder.drain_start.val();
        self.responder.status_start.next = self.decoder.status_start.val();
        self.responder.bank_in.next = self.decoder.hdr_bank.val();
        self.responder.pending0.next = self.collector.pending0.val();
        self.responder.pending1.next = self.collector.pending1.val();
        self.responder.rsp_ready.next = self.rsp_ready.val();
        for per_lane in self._per_lane..(self._per_lane + 1) {
            for j in 0..self._cols {
                self.responder.result_words[j * per_lane].next = self.cbuf[j].read_lo.val();
                self.unused_hi[j].next = self.cbuf[j].read_hi.val();
            }
            // 64-bit lanes only: the upper words.
            for j in 0..(self._cols * (self._per_lane - 1)) {
                self.responder.result_words[j * per_lane + 1].next = self.cbuf[j].read_hi.val();
            }
        }
        self.flags.flags[0].next = self.feeder.active.val();
        self.flags.flags[1].next = self.collector.pending0.val() || self.collector.pending1.val();
        self.flags.flags[2].next = self.decoder.error.val();
        self.responder.flags_in.next = self.flags.word.val();
        self.responder.accepted_in.next = self.decoder.accepted.val();
        for w in 0..(self._cols * self._per_lane) {
            self.rsp_data[w].next = self.responder.rsp_data[w].val();
        }
        self.rsp_valid.next = self.responder.rsp_valid.val();
    }
}
