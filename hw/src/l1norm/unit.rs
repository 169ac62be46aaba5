//! The L1-norm unit: three row buffers and the three stages, a row in each.
//!
//! ```text
//!  in_valid/in_data/in_last ->  Ingest  --(bank, n, S', MU)-->  Engine  --(bank, n, MU, M, s)-->  Emit -> out_*
//!   in_ready <-                  | write                          | read (P2)                    | read
//!                                v                                v                              v
//!                     ram0 / ram1 / ram2  (row k in bank k mod 3; each bank has one writer or one reader)
//! ```
//!
//! A stage takes a new row only when idle and hands a row on only when the next stage is idle,
//! so when stage I starts row k (bank k mod 3), stage III has finished row k - 3: the three
//! banks rotate without any further bookkeeping. Bank `j`'s read address is stage II's when stage
//! II is reading bank `j` (its `ren`), else stage III's; the two never want the same bank.

use super::emit::{Emit, EmitParams};
use super::engine::{Engine, EngineParams};
use super::golden::{L1NormConsts, GUARD, RECIP_EXTRA};
use super::ingest::Ingest;
use super::prim::RowRam;
use rust_hdl::prelude::*;

/// The unit. The widths are derived from `(W, A, b)` (see [`super::dims`]); the crate-private
/// macro `l1norm_unit!(W, A, b)` names the concrete type.
#[derive(LogicBlock)]
pub struct L1Norm<
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
    /// Synchronous reset: every stage back to idle, rows in progress dropped (registers also
    /// start at 0 without it).
    pub reset: Signal<In, Bit>,
    /// Input stream: one element per cycle when `in_valid & in_ready`; `in_last` marks the last
    /// element of a row (a row also ends at its `2^A`-th element).
    pub in_valid: Signal<In, Bit>,
    pub in_data: Signal<In, Bits<W>>,
    pub in_last: Signal<In, Bit>,
    pub in_ready: Signal<Out, Bit>,
    /// Output stream: one SQ-b code per cycle while `out_valid`, in row order; `out_last` marks
    /// the last code of a row. The consumer takes every code unless it holds the output:
    pub out_valid: Signal<Out, Bit>,
    pub out_code: Signal<Out, Bits<B>>,
    pub out_last: Signal<Out, Bit>,
    /// While high, stage III stands still (`out_*` keep their values; a code moves only in a
    /// cycle without hold), and through the hand-offs the stages behind it wait too. Tie low
    /// for the free-running unit.
    pub out_hold: Signal<In, Bit>,
    ing: Ingest<W, A, NB, RB, SB, QB>,
    eng: Engine<W, A, NB, SB, QB, N2B, DW, DH, EW, P, CB, EB>,
    emit: Emit<W, A, NB, QB, NW, K, K1, P, PW, B, IB>,
    ram0: RowRam<W, A>,
    ram1: RowRam<W, A>,
    ram2: RowRam<W, A>,
    b0: Constant<Bits<2>>,
    b1: Constant<Bits<2>>,
    b2: Constant<Bits<2>>,
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
    > L1Norm<W, A, NB, RB, SB, QB, N2B, DW, DH, EW, P, CB, EB, NW, K, K1, PW, B, IB>
{
    /// The unit for the constants `c` (which must belong to this type's `(W, A, b)`).
    pub fn new(c: &L1NormConsts) -> Self {
        let want = super::dims(c.w as usize, c.a as usize, c.b as usize);
        let have = [
            W, A, NB, RB, SB, QB, N2B, DW, DH, EW, P, CB, EB, NW, K, K1, PW, B, IB,
        ];
        assert_eq!(
            have, want,
            "L1Norm type does not match W = {}, A = {}, b = {}",
            c.w, c.a, c.b
        );
        assert_eq!(
            (c.g, c.p as usize, c.k as usize),
            (GUARD, B + RECIP_EXTRA as usize, K)
        );
        assert_eq!((c.cb as usize, c.eb as usize, c.dw as usize), (CB, EB, DW));
        assert_eq!((c.dh as usize, c.ew as usize), (DH, EW));
        Self {
            clock: Default::default(),
            reset: Default::default(),
            in_valid: Default::default(),
            in_data: Default::default(),
            in_last: Default::default(),
            in_ready: Default::default(),
            out_valid: Default::default(),
            out_code: Default::default(),
            out_last: Default::default(),
            out_hold: Default::default(),
            ing: Ingest::new(c.fbits as usize),
            eng: Engine::new(EngineParams {
                fbits: c.fbits as usize,
                c_m: c.c_m,
                e_m: c.e_m,
                sl: c.sl as usize,
                sr: c.sr as usize,
                sa: c.sa as usize,
            }),
            emit: Emit::new(EmitParams {
                fbits: c.fbits as usize,
                t: c.t as usize,
                q: c.q as u64,
            }),
            ram0: Default::default(),
            ram1: Default::default(),
            ram2: Default::default(),
            b0: Constant::new(bits(0)),
            b1: Constant::new(bits(1)),
            b2: Constant::new(bits(2)),
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
    > Logic for L1Norm<W, A, NB, RB, SB, QB, N2B, DW, DH, EW, P, CB, EB, NW, K, K1, PW, B, IB>
{
    #[hdl_gen]
    fn update(&mut self) {
        self.ing.clock.next = self.clock.val();
        self.eng.clock.next = self.clock.val();
        self.emit.clock.next = self.clock.val();
        self.ram0.clock.next = self.clock.val();
        self.ram1.clock.next = self.clock.val();
        self.ram2.clock.next = self.clock.val();
        self.ing.reset.next = self.reset.val();
        self.eng.reset.next = self.reset.val();
        self.emit.reset.next = self.reset.val();
        self.emit.hold.next = self.out_hold.val();
        // Stage I.
        self.ing.in_valid.next = self.in_valid.val();
        self.ing.in_data.next = self.in_data.val();
        self.ing.in_last.next = self.in_last.val();
        self.in_ready.next = self.ing.in_ready.val();
        // Write ports.
        self.ram0.we.next = self.ing.we.val() & (self.ing.wbank.val() == self.b0.val());
        self.ram1.we.next = self.ing.we.val() & (self.ing.wbank.val() == self.b1.val());
        self.ram2.we.next = self.ing.we.val() & (self.ing.wbank.val() == self.b2.val());
        self.ram0.waddr.next = self.ing.waddr.val();
        self.ram1.waddr.next = self.ing.waddr.val();
        self.ram2.waddr.next = self.ing.waddr.val();
        self.ram0.wdata.next = self.ing.wdata.val();
        self.ram1.wdata.next = self.ing.wdata.val();
        self.ram2.wdata.next = self.ing.wdata.val();
        // Read ports: stage II on the bank it is reading, stage III elsewhere.
        self.ram0.raddr.next = self.emit.raddr.val();
        if self.eng.ren.val() & (self.eng.rbank.val() == self.b0.val()) {
            self.ram0.raddr.next = self.eng.raddr.val();
        }
        self.ram1.raddr.next = self.emit.raddr.val();
        if self.eng.ren.val() & (self.eng.rbank.val() == self.b1.val()) {
            self.ram1.raddr.next = self.eng.raddr.val();
        }
        self.ram2.raddr.next = self.emit.raddr.val();
        if self.eng.ren.val() & (self.eng.rbank.val() == self.b2.val()) {
            self.ram2.raddr.next = self.eng.raddr.val();
        }
        self.eng.rdata.next = self.ram2.rdata.val();
        if self.eng.rbank.val() == self.b0.val() {
            self.eng.rdata.next = self.ram0.rdata.val();
        }
        if self.eng.rbank.val() == self.b1.val() {
            self.eng.rdata.next = self.ram1.rdata.val();
        }
        self.emit.rdata.next = self.ram2.rdata.val();
        if self.emit.rbank.val() == self.b0.val() {
            self.emit.rdata.next = self.ram0.rdata.val();
        }
        if self.emit.rbank.val() == self.b1.val() {
            self.emit.rdata.next = self.ram1.rdata.val();
        }
        // Stage I -> II.
        self.eng.h_valid.next = self.ing.h_valid.val();
        self.eng.h_bank.next = self.ing.h_bank.val();
        self.eng.h_n.next = self.ing.h_n.val();
        self.eng.h_s.next = self.ing.h_s.val();
        self.eng.h_mu.next = self.ing.h_mu.val();
        self.ing.h_ack.next = self.eng.h_ack.val();
        // Stage II -> III.
        self.emit.r_valid.next = self.eng.o_valid.val();
        self.emit.r_bank.next = self.eng.o_bank.val();
        self.emit.r_n.next = self.eng.o_n.val();
        self.emit.r_mu.next = self.eng.o_mu.val();
        self.emit.r_m.next = self.eng.o_m.val();
        self.emit.r_s.next = self.eng.o_s.val();
        self.eng.o_ack.next = self.emit.r_ack.val();
        // Output.
        self.out_valid.next = self.emit.out_valid.val();
        self.out_code.next = self.emit.out_code.val();
        self.out_last.next = self.emit.out_last.val();
    }
}
