//! The responder: executes DRAIN and STATUS, one at a time, in command order, on the response
//! port (`rsp_data` / `rsp_valid` / `rsp_ready`).
//!
//! DRAIN c accepted in cycle `d`: from cycle `d + 1` the responder waits until C bank `c` has no
//! results in flight (`pending` clear); in that cycle it reads row 0 of the bank (all columns'
//! result RAMs at once), and from the next cycle on presents row `i` with `rsp_valid = 1` until
//! `rsp_ready` takes it, reading row `i + 1` in the same cycle, so that beats leave one per
//! cycle while `rsp_ready` stays high. The RAM's read register is the output register: while the
//! host stalls, the read address does not move (the bank is not written during a DRAIN: a
//! COMPUTE into it waits), so the beat stays put.
//!
//! STATUS accepted in cycle `s` latches lane 0 = the cycle counter (cycles since reset: 0 in the
//! first cycle after reset) in cycle `s`, lane 1 = the flags, lane 2 = headers accepted before
//! it, and presents them from cycle `s + 1`.

use super::{ROW_BITS, WORD_BITS};
use rust_hdl::prelude::*;

/// Lanes of a STATUS response (cycle counter, flags, commands accepted).
pub const STATUS_LANES: usize = 3;

#[derive(LogicBlock)]
pub struct Responder {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub drain_start: Signal<In, Bit>,
    pub status_start: Signal<In, Bit>,
    /// C bank of the DRAIN accepted now.
    pub bank_in: Signal<In, Bit>,
    pub pending0: Signal<In, Bit>,
    pub pending1: Signal<In, Bit>,
    pub rsp_ready: Signal<In, Bit>,
    /// The result RAMs' read words, column-major (`words_per_lane` per column).
    pub result_words: Vec<Signal<In, Bits<WORD_BITS>>>,
    pub flags_in: Signal<In, Bits<WORD_BITS>>,
    pub accepted_in: Signal<In, Bits<WORD_BITS>>,
    pub rsp_data: Vec<Signal<Out, Bits<WORD_BITS>>>,
    pub rsp_valid: Signal<Out, Bit>,
    /// Read port of all result RAMs.
    pub read_bank: Signal<Out, Bit>,
    pub read_row: Signal<Out, Bits<ROW_BITS>>,
    /// Takes a DRAIN or STATUS this cycle.
    pub free: Signal<Out, Bit>,
    /// A DRAIN of C bank 0 / 1 is waiting or streaming.
    pub c_busy0: Signal<Out, Bit>,
    pub c_busy1: Signal<Out, Bit>,
    mode: DFF<Bits<2>>,
    bank: DFF<Bit>,
    row: DFF<Bits<ROW_BITS>>,
    cycles: DFF<Bits<WORD_BITS>>,
    st: Vec<DFF<Bits<WORD_BITS>>>,
    waiting: Signal<Local, Bit>,
    streaming: Signal<Local, Bit>,
    stat: Signal<Local, Bit>,
    pend: Signal<Local, Bit>,
    fire: Signal<Local, Bit>,
    row_next: Signal<Local, Bits<ROW_BITS>>,
    m_idle: Constant<Bits<2>>,
    m_wait: Constant<Bits<2>>,
    m_stream: Constant<Bits<2>>,
    m_status: Constant<Bits<2>>,
    zero_row: Constant<Bits<ROW_BITS>>,
    one_row: Constant<Bits<ROW_BITS>>,
    last_row: Constant<Bits<ROW_BITS>>,
    zero_w: Constant<Bits<WORD_BITS>>,
    one_w: Constant<Bits<WORD_BITS>>,
    _words: usize,
    _per_lane: usize,
    _status_lanes: usize,
}

impl Responder {
    /// `rows` x `cols` results, `per_lane` 32-bit words per response lane (1 or 2).
    pub fn new(rows: usize, cols: usize, per_lane: usize) -> Self {
        assert!((1..=1 << ROW_BITS).contains(&rows) && (1..=2).contains(&per_lane));
        let words = cols * per_lane;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            drain_start: Default::default(),
            status_start: Default::default(),
            bank_in: Default::default(),
            pending0: Default::default(),
            pending1: Default::default(),
            rsp_ready: Default::default(),
            result_words: (0..words).map(|_| Default::default()).collect(),
            flags_in: Default::default(),
            accepted_in: Default::default(),
            rsp_data: (0..words).map(|_| Default::default()).collect(),
            rsp_valid: Default::default(),
            read_bank: Default::default(),
            read_row: Default::default(),
            free: Default::default(),
            c_busy0: Default::default(),
            c_busy1: Default::default(),
            mode: Default::default(),
            bank: Default::default(),
            row: Default::default(),
            cycles: Default::default(),
            st: (0..STATUS_LANES).map(|_| Default::default()).collect(),
            waiting: Default::default(),
            streaming: Default::default(),
            stat: Default::default(),
            pend: Default::default(),
            fire: Default::default(),
            row_next: Default::default(),
            m_idle: Constant::new(bits(0)),
            m_wait: Constant::new(bits(1)),
            m_stream: Constant::new(bits(2)),
            m_status: Constant::new(bits(3)),
            zero_row: Constant::new(bits(0)),
            one_row: Constant::new(bits(1)),
            last_row: Constant::new(bits(rows as u64 - 1)),
            zero_w: Constant::new(bits(0)),
            one_w: Constant::new(bits(1)),
            _words: words,
            _per_lane: per_lane,
            _status_lanes: STATUS_LANES.min(cols),
        }
    }
}

impl Logic for Responder {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, mode, bank, row, cycles);
        for l in 0..STATUS_LANES {
            self.st[l].clock.next = self.clock.val();
            self.st[l].d.next = self.st[l].q.val();
        }
        self.cycles.d.next = self.cycles.q.val() + self.one_w.val();
        self.waiting.next = self.mode.q.val() == self.m_wait.val();
        self.streaming.next = self.mode.q.val() == self.m_stream.val();
        self.stat.next = self.mode.q.val() == self.m_status.val();
        self.pend.next = (self.bank.q.val() && self.pending1.val())
            || (!self.bank.q.val() && self.pending0.val());
        self.rsp_valid.next = self.streaming.val() || self.stat.val();
        self.fire.next = (self.streaming.val() || self.stat.val()) && self.rsp_ready.val();
        self.row_next.next = self.row.q.val();
        if self.streaming.val() && self.fire.val() {
            self.row_next.next = self.row.q.val() + self.one_row.val();
        }
        self.read_bank.next = self.bank.q.val();
        self.read_row.next = self.row_next.val();
        // Interlock outputs from registers only (no shared locals with the start logic below,
        // see `SqFeeder`).
        self.free.next = self.mode.q.val() == self.m_idle.val();
        self.c_busy0.next = ((self.mode.q.val() == self.m_wait.val())
            || (self.mode.q.val() == self.m_stream.val()))
            && !self.bank.q.val();
        self.c_busy1.next = ((self.mode.q.val() == self.m_wait.val())
            || (self.mode.q.val() == self.m_stream.val()))
            && self.bank.q.val();
        if self.waiting.val() && !self.pend.val() {
            self.mode.d.next = self.m_stream.val();
        }
        if self.streaming.val() {
            self.row.d.next = self.row_next.val();
            if self.fire.val() && (self.row.q.val() == self.last_row.val()) {
                self.mode.d.next = self.m_idle.val();
            }
        }
        if self.stat.val() && self.fire.val() {
            self.mode.d.next = self.m_idle.val();
        }
        if self.drain_start.val() {
            self.mode.d.next = self.m_wait.val();
            self.bank.d.next = self.bank_in.val();
            self.row.d.next = self.zero_row.val();
        }
        if self.status_start.val() {
            self.mode.d.next = self.m_status.val();
            self.st[0].d.next = self.cycles.q.val();
            self.st[1].d.next = self.flags_in.val();
            self.st[2].d.next = self.accepted_in.val();
        }
        if self.reset.val() {
            self.mode.d.next = self.m_idle.val();
            self.cycles.d.next = self.zero_w.val();
        }
        // The response beat: a row of results, or the status lanes (zero-extended).
        for w in 0..self._words {
            self.rsp_data[w].next = self.result_words[w].val();
        }
        if self.stat.val() {
            for w in 0..self._words {
                self.rsp_data[w].next = self.zero_w.val();
            }
            for per_lane in self._per_lane..(self._per_lane + 1) {
                for l in 0..self._status_lanes {
                    self.rsp_data[l * per_lane].next = self.st[l].q.val();
                }
            }
        }
    }
}
