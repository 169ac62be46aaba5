//! The L1NORM path of an SQ top (`docs/accelerator.md`, "L1NORM"): the L1-norm unit between a
//! serializer (command data beats -> one element per cycle) and a packer (one code per cycle ->
//! response beats), and the count of rows whose response has not left yet.
//!
//! ```text
//!   decoder --beat--> lanes[0..L) --lane 0, shift--> L1Norm --code--> codes[0..CPB) --> rsp
//!                      (left, fin)                     ^ out_hold     (cnt, full, last)
//!                                                      └──── full && !fire
//! ```
//!
//! - **Serializer**: a data beat of a good row is loaded when the serializer is empty, or
//!   offers its last element to a ready unit in this cycle (`beat_ready`), so a row streams at
//!   one element per cycle. Lane 0 goes to the unit; each element the unit takes shifts the
//!   lanes down by one. `in_last` marks the row's last element.
//! - **Packer**: code i of a row goes to byte lane `i mod CPB` of a beat (sign-extended); a
//!   beat is complete after `CPB` codes or at the row's last code (the other lanes zero). A
//!   complete beat is offered on the response port while the responder is idle (`turn`, so
//!   DRAIN / STATUS responses accepted before keep their place), and until it leaves the unit's
//!   stage III is held (`out_hold`): codes are never dropped, and behind the hold the unit's
//!   stages, then the serializer, then the command port wait.
//! - `pending`: rows accepted (`start`) whose last beat has not left; a DRAIN or STATUS waits
//!   for it to clear, so responses leave in command order.

use super::prim::{CodeWords, WordLanes};
use super::{ADDR_BITS, WORD_BITS};
use crate::l1norm::{L1Norm, L1NormConsts};
use rust_hdl::prelude::*;

/// Width of the packer's lane counter (codes per beat `<= 2^10`).
pub const CODE_COUNT_BITS: usize = 10;
/// Width of the outstanding-row counter: at most one row in the serializer, three in the
/// unit and one in the packer are outstanding at once.
pub const ROW_COUNT_BITS: usize = 4;

#[derive(LogicBlock)]
pub struct L1Path<
    const W: usize,
    const A: usize,
    const NB: usize,
    const RB: usize,
    const SB: usize,
    const QB: usize,
    const N2B: usize,
    const DW: usize,
    const DH: usize,
    const EW: usize,
    const P: usize,
    const CB: usize,
    const EB: usize,
    const NW: usize,
    const K: usize,
    const K1: usize,
    const PW: usize,
    const B: usize,
    const IB: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    /// A good L1NORM header is accepted: one more row outstanding.
    pub start: Signal<In, Bit>,
    /// A data beat of a good row is accepted this cycle (`cmd_data`), holding `beat_count`
    /// elements; `beat_final`: the row's last element is among them.
    pub beat: Signal<In, Bit>,
    pub beat_count: Signal<In, Bits<ADDR_BITS>>,
    pub beat_final: Signal<In, Bit>,
    pub cmd_data: Vec<Signal<In, Bits<WORD_BITS>>>,
    /// The serializer takes a data beat this cycle.
    pub beat_ready: Signal<Out, Bit>,
    /// The responder is idle: a complete beat may be offered.
    pub turn: Signal<In, Bit>,
    pub rsp_ready: Signal<In, Bit>,
    pub rsp_valid: Signal<Out, Bit>,
    pub rsp_data: Vec<Signal<Out, Bits<WORD_BITS>>>,
    /// Rows accepted whose last response beat has not left.
    pub pending: Signal<Out, Bit>,
    unit: L1Norm<W, A, NB, RB, SB, QB, N2B, DW, DH, EW, P, CB, EB, NW, K, K1, PW, B, IB>,
    unpack: WordLanes<W>,
    pack: CodeWords<B>,
    lanes: Vec<DFF<Bits<W>>>,
    left: DFF<Bits<ADDR_BITS>>,
    fin: DFF<Bit>,
    codes: Vec<DFF<Bits<B>>>,
    cnt: DFF<Bits<CODE_COUNT_BITS>>,
    full: DFF<Bit>,
    last: DFF<Bit>,
    rows: DFF<Bits<ROW_COUNT_BITS>>,
    take: Signal<Local, Bit>,
    fire: Signal<Local, Bit>,
    hold: Signal<Local, Bit>,
    code_in: Signal<Local, Bit>,
    lane_index: Vec<Constant<Bits<CODE_COUNT_BITS>>>,
    last_lane: Constant<Bits<CODE_COUNT_BITS>>,
    zero_cnt: Constant<Bits<CODE_COUNT_BITS>>,
    one_cnt: Constant<Bits<CODE_COUNT_BITS>>,
    zero_code: Constant<Bits<B>>,
    zero_left: Constant<Bits<ADDR_BITS>>,
    one_left: Constant<Bits<ADDR_BITS>>,
    one_row: Constant<Bits<ROW_COUNT_BITS>>,
    zero_rows: Constant<Bits<ROW_COUNT_BITS>>,
    _in_lanes: usize,
    _codes: usize,
    _cmd_words: usize,
    _rsp_words: usize,
}

impl<
        const W: usize,
        const A: usize,
        const NB: usize,
        const RB: usize,
        const SB: usize,
        const QB: usize,
        const N2B: usize,
        const DW: usize,
        const DH: usize,
        const EW: usize,
        const P: usize,
        const CB: usize,
        const EB: usize,
        const NW: usize,
        const K: usize,
        const K1: usize,
        const PW: usize,
        const B: usize,
        const IB: usize,
    > L1Path<W, A, NB, RB, SB, QB, N2B, DW, DH, EW, P, CB, EB, NW, K, K1, PW, B, IB>
{
    /// The path for the unit constants `c`, `cmd_words` / `rsp_words` 32-bit words per command
    /// / response beat, `in_lanes` elements per command beat (`AccelGeometry::l1_in_lanes`).
    pub fn new(c: &L1NormConsts, cmd_words: usize, in_lanes: usize, rsp_words: usize) -> Self {
        let unpack = WordLanes::<W>::new(cmd_words, in_lanes);
        let pack = CodeWords::<B>::new(rsp_words);
        let (in_lanes, codes) = (unpack.lanes.len(), pack.codes.len());
        assert!(codes < 1 << CODE_COUNT_BITS);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            start: Default::default(),
            beat: Default::default(),
            beat_count: Default::default(),
            beat_final: Default::default(),
            cmd_data: (0..cmd_words).map(|_| Default::default()).collect(),
            beat_ready: Default::default(),
            turn: Default::default(),
            rsp_ready: Default::default(),
            rsp_valid: Default::default(),
            rsp_data: (0..rsp_words).map(|_| Default::default()).collect(),
            pending: Default::default(),
            unit: L1Norm::new(c),
            unpack,
            pack,
            lanes: (0..in_lanes).map(|_| Default::default()).collect(),
            left: Default::default(),
            fin: Default::default(),
            codes: (0..codes).map(|_| Default::default()).collect(),
            cnt: Default::default(),
            full: Default::default(),
            last: Default::default(),
            rows: Default::default(),
            take: Default::default(),
            fire: Default::default(),
            hold: Default::default(),
            code_in: Default::default(),
            lane_index: (0..codes).map(|l| Constant::new(bits(l as u64))).collect(),
            last_lane: Constant::new(bits(codes as u64 - 1)),
            zero_cnt: Constant::new(bits(0)),
            one_cnt: Constant::new(bits(1)),
            zero_code: Constant::new(bits(0)),
            zero_left: Constant::new(bits(0)),
            one_left: Constant::new(bits(1)),
            one_row: Constant::new(bits(1)),
            zero_rows: Constant::new(bits(0)),
            _in_lanes: in_lanes,
            _codes: codes,
            _cmd_words: cmd_words,
            _rsp_words: rsp_words,
        }
    }
}

impl<
        const W: usize,
        const A: usize,
        const NB: usize,
        const RB: usize,
        const SB: usize,
        const QB: usize,
        const N2B: usize,
        const DW: usize,
        const DH: usize,
        const EW: usize,
        const P: usize,
        const CB: usize,
        const EB: usize,
        const NW: usize,
        const K: usize,
        const K1: usize,
        const PW: usize,
        const B: usize,
        const IB: usize,
    > Logic for L1Path<W, A, NB, RB, SB, QB, N2B, DW, DH, EW, P, CB, EB, NW, K, K1, PW, B, IB>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, left, fin, cnt, full, last, rows);
        for i in 0..self._in_lanes {
            self.lanes[i].clock.next = self.clock.val();
            self.lanes[i].d.next = self.lanes[i].q.val();
        }
        for l in 0..self._codes {
            self.codes[l].clock.next = self.clock.val();
            self.codes[l].d.next = self.codes[l].q.val();
        }
        self.unit.clock.next = self.clock.val();
        self.unit.reset.next = self.reset.val();
        // Serializer: lane 0 to the unit, one element per cycle.
        self.take.next = (self.left.q.val() != self.zero_left.val()) && self.unit.in_ready.val();
        self.unit.in_valid.next = self.left.q.val() != self.zero_left.val();
        self.unit.in_data.next = self.lanes[0].q.val();
        self.unit.in_last.next = self.fin.q.val() && (self.left.q.val() == self.one_left.val());
        self.beat_ready.next = (self.left.q.val() == self.zero_left.val())
            || ((self.left.q.val() == self.one_left.val()) && self.unit.in_ready.val());
        for w in 0..self._cmd_words {
            self.unpack.words[w].next = self.cmd_data[w].val();
        }
        if self.take.val() {
            self.left.d.next = self.left.q.val() - self.one_left.val();
            for i in 1..self._in_lanes {
                self.lanes[i - 1].d.next = self.lanes[i].q.val();
            }
        }
        if self.beat.val() {
            self.left.d.next = self.beat_count.val();
            self.fin.d.next = self.beat_final.val();
            for i in 0..self._in_lanes {
                self.lanes[i].d.next = self.unpack.lanes[i].val();
            }
        }
        // Packer: a complete beat leaves when the responder is idle and the host is ready;
        // until then the unit's output stands still.
        self.fire.next = self.full.q.val() && self.turn.val() && self.rsp_ready.val();
        self.hold.next = self.full.q.val() && !self.fire.val();
        self.unit.out_hold.next = self.hold.val();
        self.code_in.next = self.unit.out_valid.val() && !self.hold.val();
        self.rsp_valid.next = self.full.q.val() && self.turn.val();
        for l in 0..self._codes {
            self.pack.codes[l].next = self.codes[l].q.val();
        }
        for w in 0..self._rsp_words {
            self.rsp_data[w].next = self.pack.words[w].val();
        }
        if self.fire.val() {
            self.full.d.next = false;
        }
        if self.code_in.val() {
            self.cnt.d.next = self.cnt.q.val() + self.one_cnt.val();
            for l in 0..self._codes {
                if self.cnt.q.val() == self.zero_cnt.val() {
                    self.codes[l].d.next = self.zero_code.val();
                }
                if self.cnt.q.val() == self.lane_index[l].val() {
                    self.codes[l].d.next = self.unit.out_code.val();
                }
            }
            if (self.cnt.q.val() == self.last_lane.val()) || self.unit.out_last.val() {
                self.cnt.d.next = self.zero_cnt.val();
                self.full.d.next = true;
                self.last.d.next = self.unit.out_last.val();
            }
        }
        // Outstanding rows.
        self.pending.next = self.rows.q.val() != self.zero_rows.val();
        if self.start.val() && !(self.fire.val() && self.last.q.val()) {
            self.rows.d.next = self.rows.q.val() + self.one_row.val();
        }
        if !self.start.val() && self.fire.val() && self.last.q.val() {
            self.rows.d.next = self.rows.q.val() - self.one_row.val();
        }
        if self.reset.val() {
            self.left.d.next = self.zero_left.val();
            self.cnt.d.next = self.zero_cnt.val();
            self.full.d.next = false;
            self.rows.d.next = self.zero_rows.val();
        }
    }
}
