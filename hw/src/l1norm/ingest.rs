//! Stage I of the L1-norm unit: take one element per cycle into the current row buffer, add up
//! `S'`, and at the end of the row divide once for the mean `MU = floor(S' * 2^F / n)`.
//!
//! ```text
//!   ING  : in_ready = 1. Each accepted x: bank[bank][idx] <= x' = x ^ 2^(W-1),
//!          acc += x', idx += 1. On `in_last` (or the 2^A-th element): S' = acc + x',
//!          n = idx + 1, start the divider.
//!   DIV  : W + F cycles of restoring division of S' * 2^F by n (MSB first; the remainder
//!          starts as S' >> W, which is < n, so only the W + F low quotient bits can be 1).
//!   HAND : offer {bank, n, S', MU} to stage II; when taken, move to the next bank (mod 3).
//! ```

use super::prim::ZeroExtend;
use super::{bit_range, LoopConst};
use rust_hdl::prelude::*;

pub const ST_ING: u64 = 0;
pub const ST_DIV: u64 = 1;
pub const ST_HAND: u64 = 2;

/// Stage I. `NB = A + 1`, `RB = A + 2`, `SB = W + A`, `QB = W + Fmax`.
#[derive(LogicBlock)]
pub struct Ingest<
    const W: usize,
    const A: usize,
    const NB: usize,
    const RB: usize,
    const SB: usize,
    const QB: usize,
> {
    pub clock: Signal<In, Clock>,
    /// Synchronous reset: back to `ING`, bank 0, an empty row (a row in progress is dropped).
    pub reset: Signal<In, Bit>,
    pub in_valid: Signal<In, Bit>,
    pub in_data: Signal<In, Bits<W>>,
    pub in_last: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    /// Row-buffer write port (`wbank` selects the buffer).
    pub we: Signal<Out, Bit>,
    pub waddr: Signal<Out, Bits<A>>,
    pub wdata: Signal<Out, Bits<W>>,
    pub wbank: Signal<Out, Bits<2>>,
    /// Hand-off to stage II.
    pub h_valid: Signal<Out, Bit>,
    pub h_ack: Signal<In, Bit>,
    pub h_bank: Signal<Out, Bits<2>>,
    pub h_n: Signal<Out, Bits<NB>>,
    pub h_s: Signal<Out, Bits<SB>>,
    pub h_mu: Signal<Out, Bits<QB>>,
    state: DFF<Bits<2>>,
    bank: DFF<Bits<2>>,
    idx: DFF<Bits<A>>,
    acc: DFF<Bits<SB>>,
    s_row: DFF<Bits<SB>>,
    n_row: DFF<Bits<NB>>,
    rem: DFF<Bits<RB>>,
    num: DFF<Bits<W>>,
    quo: DFF<Bits<QB>>,
    cnt: DFF<Bits<6>>,
    xflip: Signal<Local, Bits<W>>,
    sum: Signal<Local, Bits<SB>>,
    rr: Signal<Local, Bits<RB>>,
    xz: ZeroExtend<W, SB>,
    topz: ZeroExtend<A, RB>,
    idxz: ZeroExtend<A, NB>,
    nz: ZeroExtend<NB, RB>,
    st_ing: Constant<Bits<2>>,
    st_div: Constant<Bits<2>>,
    st_hand: Constant<Bits<2>>,
    bank_one: Constant<Bits<2>>,
    bank_two: Constant<Bits<2>>,
    bank_zero: Constant<Bits<2>>,
    msb_w: Constant<Bits<W>>,
    idx_last: Constant<Bits<A>>,
    one_a: Constant<Bits<A>>,
    zero_a: Constant<Bits<A>>,
    one_nb: Constant<Bits<NB>>,
    one_rb: Constant<Bits<RB>>,
    zero_sb: Constant<Bits<SB>>,
    one_qb: Constant<Bits<QB>>,
    zero_qb: Constant<Bits<QB>>,
    one6: Constant<Bits<6>>,
    /// `W + F`: division steps.
    div_steps: Constant<Bits<6>>,
    /// `W` (where the top `A` bits of `S'` start).
    _w: LoopConst,
}

impl<
        const W: usize,
        const A: usize,
        const NB: usize,
        const RB: usize,
        const SB: usize,
        const QB: usize,
    > Ingest<W, A, NB, RB, SB, QB>
{
    /// `fbits` = `F`, the fraction bits of the mean.
    pub fn new(fbits: usize) -> Self {
        assert!(
            NB == A + 1 && RB == A + 2 && SB == W + A && QB >= W + fbits && W + fbits < 64,
            "Ingest<{W}, {A}, {NB}, {RB}, {SB}, {QB}> with F = {fbits}"
        );
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_valid: Default::default(),
            in_data: Default::default(),
            in_last: Default::default(),
            in_ready: Default::default(),
            we: Default::default(),
            waddr: Default::default(),
            wdata: Default::default(),
            wbank: Default::default(),
            h_valid: Default::default(),
            h_ack: Default::default(),
            h_bank: Default::default(),
            h_n: Default::default(),
            h_s: Default::default(),
            h_mu: Default::default(),
            state: Default::default(),
            bank: Default::default(),
            idx: Default::default(),
            acc: Default::default(),
            s_row: Default::default(),
            n_row: Default::default(),
            rem: Default::default(),
            num: Default::default(),
            quo: Default::default(),
            cnt: Default::default(),
            xflip: Default::default(),
            sum: Default::default(),
            rr: Default::default(),
            xz: Default::default(),
            topz: Default::default(),
            idxz: Default::default(),
            nz: Default::default(),
            st_ing: Constant::new(bits(ST_ING)),
            st_div: Constant::new(bits(ST_DIV)),
            st_hand: Constant::new(bits(ST_HAND)),
            bank_one: Constant::new(bits(1)),
            bank_two: Constant::new(bits(2)),
            bank_zero: Constant::new(bits(0)),
            msb_w: Constant::new(bit_range(W - 1, W)),
            idx_last: Constant::new(bit_range(0, A)),
            one_a: Constant::new(bits(1)),
            zero_a: Constant::new(bits(0)),
            one_nb: Constant::new(bits(1)),
            one_rb: Constant::new(bits(1)),
            zero_sb: Constant::new(Bits::default()),
            one_qb: Constant::new(bit_range(0, 1)),
            zero_qb: Constant::new(Bits::default()),
            one6: Constant::new(bits(1)),
            div_steps: Constant::new(bits((W + fbits) as u64)),
            _w: LoopConst::new(W),
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
    > Logic for Ingest<W, A, NB, RB, SB, QB>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, state, bank, idx, acc, s_row, n_row, rem, num, quo, cnt);
        // Offset binary: x' = x + 2^(W-1) in [0, 2^W).
        self.xflip.next = self.in_data.val() ^ self.msb_w.val();
        self.xz.narrow.next = self.xflip.val();
        self.sum.next = self.acc.q.val() + self.xz.wide.val();
        self.idxz.narrow.next = self.idx.q.val();
        self.nz.narrow.next = self.n_row.q.val();
        for lsb in self._w.lo()..self._w.hi() {
            self.topz.narrow.next = self.sum.val().get_bits::<A>(lsb);
        }
        // Divider step: shift the next numerator bit into the remainder.
        self.rr.next = self.rem.q.val() << 1;
        if (self.num.q.val() & self.msb_w.val()).any() {
            self.rr.next = (self.rem.q.val() << 1) | self.one_rb.val();
        }
        self.in_ready.next = self.state.q.val() == self.st_ing.val();
        self.we.next = false;
        self.waddr.next = self.idx.q.val();
        self.wdata.next = self.xflip.val();
        self.wbank.next = self.bank.q.val();
        self.h_valid.next = self.state.q.val() == self.st_hand.val();
        self.h_bank.next = self.bank.q.val();
        self.h_n.next = self.n_row.q.val();
        self.h_s.next = self.s_row.q.val();
        self.h_mu.next = self.quo.q.val();
        if (self.state.q.val() == self.st_ing.val()) & self.in_valid.val() {
            self.we.next = true;
            self.acc.d.next = self.sum.val();
            self.idx.d.next = self.idx.q.val() + self.one_a.val();
            if self.in_last.val() | (self.idx.q.val() == self.idx_last.val()) {
                self.acc.d.next = self.zero_sb.val();
                self.idx.d.next = self.zero_a.val();
                self.s_row.d.next = self.sum.val();
                self.n_row.d.next = self.idxz.wide.val() + self.one_nb.val();
                self.rem.d.next = self.topz.wide.val();
                for lsb in 0..1 {
                    self.num.d.next = self.sum.val().get_bits::<W>(lsb);
                }
                self.quo.d.next = self.zero_qb.val();
                self.cnt.d.next = self.div_steps.val();
                self.state.d.next = self.st_div.val();
            }
        }
        if self.state.q.val() == self.st_div.val() {
            self.num.d.next = self.num.q.val() << 1;
            self.rem.d.next = self.rr.val();
            self.quo.d.next = self.quo.q.val() << 1;
            if self.rr.val() >= self.nz.wide.val() {
                self.rem.d.next = self.rr.val() - self.nz.wide.val();
                self.quo.d.next = (self.quo.q.val() << 1) | self.one_qb.val();
            }
            self.cnt.d.next = self.cnt.q.val() - self.one6.val();
            if self.cnt.q.val() == self.one6.val() {
                self.state.d.next = self.st_hand.val();
            }
        }
        if (self.state.q.val() == self.st_hand.val()) & self.h_ack.val() {
            self.state.d.next = self.st_ing.val();
            self.bank.d.next = self.bank.q.val() + self.bank_one.val();
            if self.bank.q.val() == self.bank_two.val() {
                self.bank.d.next = self.bank_zero.val();
            }
        }
        if self.reset.val() {
            self.state.d.next = self.st_ing.val();
            self.bank.d.next = self.bank_zero.val();
            self.idx.d.next = self.zero_a.val();
            self.acc.d.next = self.zero_sb.val();
        }
    }
}
