//! The result path of both accelerator tops: the array's drained values -> the collector -> the
//! per-column result buffers (C) -> the responder (DRAIN / STATUS beats) -> the response port,
//! with the STATUS flags.
//!
//! It is a sub-block rather than shared code in the tops because rust-hdl's `#[hdl_gen]`
//! `update` cannot call helper functions. The tops connect the array's drain outputs, the
//! decoder's COMPUTE / DRAIN / STATUS starts, the feeder's flush events and the response port;
//! what differs between them (tile rows, the collector's tap and drain order, the accumulator
//! width `ACC`) is a parameter.

use super::buffers::ResultRam;
use super::compute::Collector;
use super::prim::FlagWord;
use super::response::Responder;
use super::WORD_BITS;
use rust_hdl::prelude::*;

/// Flags of STATUS lane 1, LSB first.
pub const STATUS_FLAGS: [&str; 3] = ["compute", "results_pending", "error"];

#[derive(LogicBlock)]
pub struct ResultPath<const ACC: usize> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// The array's drain outputs, one per column.
    pub drain_valid: Vec<Signal<In, Bit>>,
    pub drain_out: Vec<Signal<In, Bits<ACC>>>,
    /// The feeder's flush event (a tile starts to leave the array) and its C bank.
    pub flush_event: Signal<In, Bit>,
    pub flush_bank: Signal<In, Bit>,
    /// The decoder's COMPUTE accepted now, its hold flag (no results) and its C bank.
    pub compute_start: Signal<In, Bit>,
    pub compute_hold: Signal<In, Bit>,
    pub compute_bank: Signal<In, Bit>,
    /// The decoder's DRAIN / STATUS accepted now; the header's bank field (DRAIN's C bank).
    pub drain_start: Signal<In, Bit>,
    pub status_start: Signal<In, Bit>,
    pub drain_bank: Signal<In, Bit>,
    /// STATUS inputs: the feeder is computing, the decoder's error flag and header count.
    pub compute_active: Signal<In, Bit>,
    pub error: Signal<In, Bit>,
    pub accepted: Signal<In, Bits<WORD_BITS>>,
    pub rsp_ready: Signal<In, Bit>,
    pub rsp_data: Vec<Signal<Out, Bits<WORD_BITS>>>,
    pub rsp_valid: Signal<Out, Bit>,
    /// The responder takes a DRAIN or STATUS this cycle.
    pub free: Signal<Out, Bit>,
    /// C bank 0 / 1 is not free for a COMPUTE: results in flight or a DRAIN of it under way.
    pub c_blocked0: Signal<Out, Bit>,
    pub c_blocked1: Signal<Out, Bit>,
    pub(crate) collector: Collector,
    responder: Responder,
    cbuf: Vec<ResultRam<ACC>>,
    flags: FlagWord,
    /// The result RAMs' upper words (sign copies) when response lanes are 32 bits.
    unused_hi: Vec<Signal<Local, Bits<WORD_BITS>>>,
    _cols: usize,
    _per_lane: usize,
}

impl<const ACC: usize> ResultPath<ACC> {
    /// The result path of tiles of `tile_rows` x `cols` results with `per_lane` 32-bit words
    /// per response lane (1 or 2); `tap` and `interleave` give the array's drain timing and
    /// order (see [`Collector::with_order`]).
    pub fn new(
        tile_rows: usize,
        cols: usize,
        per_lane: usize,
        tap: usize,
        interleave: bool,
    ) -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            drain_valid: (0..cols).map(|_| Default::default()).collect(),
            drain_out: (0..cols).map(|_| Default::default()).collect(),
            flush_event: Default::default(),
            flush_bank: Default::default(),
            compute_start: Default::default(),
            compute_hold: Default::default(),
            compute_bank: Default::default(),
            drain_start: Default::default(),
            status_start: Default::default(),
            drain_bank: Default::default(),
            compute_active: Default::default(),
            error: Default::default(),
            accepted: Default::default(),
            rsp_ready: Default::default(),
            rsp_data: (0..cols * per_lane).map(|_| Default::default()).collect(),
            rsp_valid: Default::default(),
            free: Default::default(),
            c_blocked0: Default::default(),
            c_blocked1: Default::default(),
            collector: Collector::with_order(tile_rows, cols, tap, interleave),
            responder: Responder::new(tile_rows, cols, per_lane),
            cbuf: (0..cols).map(|_| ResultRam::new(tile_rows)).collect(),
            flags: FlagWord::new(STATUS_FLAGS.len()),
            unused_hi: (0..cols).map(|_| Default::default()).collect(),
            _cols: cols,
            _per_lane: per_lane,
        }
    }
}

impl<const ACC: usize> Logic for ResultPath<ACC> {
    #[hdl_gen]
    fn update(&mut self) {
        self.collector.clock.next = self.clock.val();
        self.responder.clock.next = self.clock.val();
        for j in 0..self._cols {
            self.cbuf[j].clock.next = self.clock.val();
        }
        self.collector.reset.next = self.reset.val();
        self.responder.reset.next = self.reset.val();
        // Bank interlocks for the decoder.
        self.c_blocked0.next = self.collector.pending0.val() || self.responder.c_busy0.val();
        self.c_blocked1.next = self.collector.pending1.val() || self.responder.c_busy1.val();
        self.free.next = self.responder.free.val();
        // Drained results -> C buffers.
        self.collector.flush_event.next = self.flush_event.val();
        self.collector.flush_bank.next = self.flush_bank.val();
        self.collector.set_pending.next = self.compute_start.val() && !self.compute_hold.val();
        self.collector.set_bank.next = self.compute_bank.val();
        for j in 0..self._cols {
            self.collector.drain_valid[j].next = self.drain_valid[j].val();
            self.cbuf[j].write_enable.next = self.collector.write_enable[j].val();
            self.cbuf[j].write_bank.next = self.collector.write_bank[j].val();
            self.cbuf[j].write_row.next = self.collector.write_row[j].val();
            self.cbuf[j].write_data.next = self.drain_out[j].val();
            self.cbuf[j].read_bank.next = self.responder.read_bank.val();
            self.cbuf[j].read_row.next = self.responder.read_row.val();
        }
        // DRAIN / STATUS: C buffers -> responder -> response port.
        self.responder.drain_start.next = self.drain_start.val();
        self.responder.status_start.next = self.status_start.val();
        self.responder.bank_in.next = self.drain_bank.val();
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
        self.flags.flags[0].next = self.compute_active.val();
        self.flags.flags[1].next = self.collector.pending0.val() || self.collector.pending1.val();
        self.flags.flags[2].next = self.error.val();
        self.responder.flags_in.next = self.flags.word.val();
        self.responder.accepted_in.next = self.accepted.val();
        for w in 0..(self._cols * self._per_lane) {
            self.rsp_data[w].next = self.responder.rsp_data[w].val();
        }
        self.rsp_valid.next = self.responder.rsp_valid.val();
    }
}
