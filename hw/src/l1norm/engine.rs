//! Stage II of the L1-norm unit: the second pass over the row (`Xp`, `cgt`) and the one
//! reciprocal per row (`s`, `M`).
//!
//! ```text
//!   IDLE    take {bank, n, S', MU} from stage I; qS = MU >> F; start the side engine.
//!   P2      read x'_0 .. x'_{n-1} (one per cycle; data one cycle later):
//!           x' > qS  =>  Xp += x', cgt += 1.
//!   P2END   the last datum arrives.
//!   WAITSUB wait for the side engine (n^2 and the eps term, started in IDLE).
//!   MD      A + 1 steps, MSB first:  Dh = 2 Dh + n_j * Xp - cgt_j * S'      -> Dh = n Xp - S' cgt
//!   MC      CB steps over the constant c_m: C = 2 C + c_j * Dh               -> C = c_m Dh
//!   DEN     den = C + TE; Dh = 0 => M = 0, s = 0, done. Else r = n^2 << SA, s = 0.
//!   NORM    while r < den: r << 4 < den ? (r <<= 4, s += 4) : (r <<= 1, s += 1)
//!   DIVS    P steps: ge = r >= den; M = 2M + ge; r = 2 (ge ? r - den : r)
//!   HAND    offer {bank, n, MU, M, s} to stage III.
//!
//!   side engine (during P2):  N2 = n * n (A + 1 steps), then E = e_m * N2 (EB steps),
//!                             TE = (E << SL) >> SR.
//! ```
//!
//! All products are Horner (shift-and-add, MSB first) over the bits of one operand, with the
//! other operand or the constant on the adder input: one adder per product, no multiplier.

use super::prim::ZeroExtend;
use super::{bit_range, LoopConst};
use rust_hdl::prelude::*;

pub const ST_IDLE: u64 = 0;
pub const ST_P2: u64 = 1;
pub const ST_P2END: u64 = 2;
pub const ST_WAITSUB: u64 = 3;
pub const ST_MD: u64 = 4;
pub const ST_MC: u64 = 5;
pub const ST_DEN: u64 = 6;
pub const ST_NORM: u64 = 7;
pub const ST_DIVS: u64 = 8;
pub const ST_HAND: u64 = 9;

pub const SUB_IDLE: u64 = 0;
pub const SUB_N: u64 = 1;
pub const SUB_E: u64 = 2;
pub const SUB_DONE: u64 = 3;

/// Per-row constants of stage II (from [`super::golden::L1NormConsts`]).
#[derive(Clone, Copy, Debug)]
pub struct EngineParams {
    pub fbits: usize,
    pub c_m: u64,
    pub e_m: u64,
    pub sl: usize,
    pub sr: usize,
    pub sa: usize,
}

/// Stage II. `NB = A + 1`, `SB = W + A`, `QB = W + Fmax`, `N2B = 2A + 1`, `DW` row-engine width,
/// `P` mantissa bits, `CB` bits of `c_m`, `EB` bits of `e_m`.
#[derive(LogicBlock)]
pub struct Engine<
    const W: usize,
    const A: usize,
    const NB: usize,
    const SB: usize,
    const QB: usize,
    const N2B: usize,
    const DW: usize,
    const DH: usize,
    const EW: usize,
    const P: usize,
    const CB: usize,
    const EB: usize,
> {
    pub clock: Signal<In, Clock>,
    /// Synchronous reset: back to `IDLE` (a row in progress is dropped).
    pub reset: Signal<In, Bit>,
    pub h_valid: Signal<In, Bit>,
    pub h_ack: Signal<Out, Bit>,
    pub h_bank: Signal<In, Bits<2>>,
    pub h_n: Signal<In, Bits<NB>>,
    pub h_s: Signal<In, Bits<SB>>,
    pub h_mu: Signal<In, Bits<QB>>,
    /// Row-buffer read port: `ren` marks cycles in which this stage reads bank `rbank`.
    pub ren: Signal<Out, Bit>,
    pub raddr: Signal<Out, Bits<A>>,
    pub rbank: Signal<Out, Bits<2>>,
    pub rdata: Signal<In, Bits<W>>,
    /// Hand-off to stage III.
    pub o_valid: Signal<Out, Bit>,
    pub o_ack: Signal<In, Bit>,
    pub o_bank: Signal<Out, Bits<2>>,
    pub o_n: Signal<Out, Bits<NB>>,
    pub o_mu: Signal<Out, Bits<QB>>,
    pub o_m: Signal<Out, Bits<P>>,
    pub o_s: Signal<Out, Bits<5>>,
    st: DFF<Bits<4>>,
    sst: DFF<Bits<2>>,
    bank: DFF<Bits<2>>,
    n: DFF<Bits<NB>>,
    srow: DFF<Bits<SB>>,
    mu: DFF<Bits<QB>>,
    xp: DFF<Bits<SB>>,
    cgt: DFF<Bits<NB>>,
    ridx: DFF<Bits<A>>,
    p2v: DFF<Bit>,
    nsh: DFF<Bits<NB>>,
    csh: DFF<Bits<NB>>,
    cnt: DFF<Bits<6>>,
    cnt2: DFF<Bits<6>>,
    n2: DFF<Bits<N2B>>,
    esh: DFF<Bits<EB>>,
    eacc: DFF<Bits<EW>>,
    dacc: DFF<Bits<DH>>,
    cmsh: DFF<Bits<CB>>,
    cacc: DFF<Bits<DW>>,
    den: DFF<Bits<DW>>,
    mq: DFF<Bits<P>>,
    s: DFF<Bits<5>>,
    rz: ZeroExtend<W, SB>,
    xpz: ZeroExtend<SB, DH>,
    sz: ZeroExtend<SB, DH>,
    daccz: ZeroExtend<DH, DW>,
    n2e: ZeroExtend<N2B, EW>,
    eaccz: ZeroExtend<EW, DW>,
    nz2: ZeroExtend<NB, N2B>,
    n2z: ZeroExtend<N2B, DW>,
    ridxz: ZeroExtend<A, NB>,
    nm1: Signal<Local, Bits<NB>>,
    qs: Signal<Local, Bits<W>>,
    md1: Signal<Local, Bits<DH>>,
    md2: Signal<Local, Bits<DH>>,
    te: Signal<Local, Bits<DW>>,
    r4: Signal<Local, Bits<DW>>,
    rsub: Signal<Local, Bits<DW>>,
    /// `r >= den`: the sign of `r - den` (`r < 2 den < 2^(DW-1)`, so it cannot wrap).
    ge: Signal<Local, Bit>,
    st_idle: Constant<Bits<4>>,
    st_p2: Constant<Bits<4>>,
    st_p2end: Constant<Bits<4>>,
    st_waitsub: Constant<Bits<4>>,
    st_md: Constant<Bits<4>>,
    st_mc: Constant<Bits<4>>,
    st_den: Constant<Bits<4>>,
    st_norm: Constant<Bits<4>>,
    st_divs: Constant<Bits<4>>,
    st_hand: Constant<Bits<4>>,
    sub_n: Constant<Bits<2>>,
    sub_e: Constant<Bits<2>>,
    sub_done: Constant<Bits<2>>,
    msb_nb: Constant<Bits<NB>>,
    msb_cb: Constant<Bits<CB>>,
    msb_eb: Constant<Bits<EB>>,
    c_m: Constant<Bits<CB>>,
    e_m: Constant<Bits<EB>>,
    one_nb: Constant<Bits<NB>>,
    zero_nb: Constant<Bits<NB>>,
    zero_sb: Constant<Bits<SB>>,
    one_a: Constant<Bits<A>>,
    zero_a: Constant<Bits<A>>,
    zero_n2: Constant<Bits<N2B>>,
    zero_dw: Constant<Bits<DW>>,
    zero_dh: Constant<Bits<DH>>,
    zero_ew: Constant<Bits<EW>>,
    msb_dw: Constant<Bits<DW>>,
    one_p: Constant<Bits<P>>,
    zero_p: Constant<Bits<P>>,
    one5: Constant<Bits<5>>,
    four5: Constant<Bits<5>>,
    zero5: Constant<Bits<5>>,
    one6: Constant<Bits<6>>,
    steps_nb: Constant<Bits<6>>,
    steps_cb: Constant<Bits<6>>,
    steps_eb: Constant<Bits<6>>,
    steps_p: Constant<Bits<6>>,
    _f: LoopConst,
    _sl: LoopConst,
    _sr: LoopConst,
    _sa: LoopConst,
}

impl<
        const W: usize,
        const A: usize,
        const NB: usize,
        const SB: usize,
        const QB: usize,
        const N2B: usize,
        const DW: usize,
        const DH: usize,
        const EW: usize,
        const P: usize,
        const CB: usize,
        const EB: usize,
    > Engine<W, A, NB, SB, QB, N2B, DW, DH, EW, P, CB, EB>
{
    pub fn new(p: EngineParams) -> Self {
        assert!(
            NB == A + 1
                && SB == W + A
                && N2B == 2 * A + 1
                && QB >= W + p.fbits
                && DW <= 64
                && DH == 2 * A + W - 2
                && DH > SB
                && EW == EB + 2 * A,
            "Engine<{W}, {A}, {NB}, {SB}, {QB}, {N2B}, {DW}, ..>"
        );
        assert!(p.c_m >> (CB - 1) == 1 && p.e_m < 1 << EB && CB < 64 && EB < 64 && P < 64);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            h_valid: Default::default(),
            h_ack: Default::default(),
            h_bank: Default::default(),
            h_n: Default::default(),
            h_s: Default::default(),
            h_mu: Default::default(),
            ren: Default::default(),
            raddr: Default::default(),
            rbank: Default::default(),
            rdata: Default::default(),
            o_valid: Default::default(),
            o_ack: Default::default(),
            o_bank: Default::default(),
            o_n: Default::default(),
            o_mu: Default::default(),
            o_m: Default::default(),
            o_s: Default::default(),
            st: Default::default(),
            sst: Default::default(),
            bank: Default::default(),
            n: Default::default(),
            srow: Default::default(),
            mu: Default::default(),
            xp: Default::default(),
            cgt: Default::default(),
            ridx: Default::default(),
            p2v: Default::default(),
            nsh: Default::default(),
            csh: Default::default(),
            cnt: Default::default(),
            cnt2: Default::default(),
            n2: Default::default(),
            esh: Default::default(),
            eacc: Default::default(),
            dacc: Default::default(),
            cmsh: Default::default(),
            cacc: Default::default(),
            den: Default::default(),
            mq: Default::default(),
            s: Default::default(),
            rz: Default::default(),
            xpz: Default::default(),
            sz: Default::default(),
            daccz: Default::default(),
            n2e: Default::default(),
            eaccz: Default::default(),
            nz2: Default::default(),
            n2z: Default::default(),
            ridxz: Default::default(),
            nm1: Default::default(),
            qs: Default::default(),
            md1: Default::default(),
            md2: Default::default(),
            te: Default::default(),
            r4: Default::default(),
            rsub: Default::default(),
            ge: Default::default(),
            st_idle: Constant::new(bits(ST_IDLE)),
            st_p2: Constant::new(bits(ST_P2)),
            st_p2end: Constant::new(bits(ST_P2END)),
            st_waitsub: Constant::new(bits(ST_WAITSUB)),
            st_md: Constant::new(bits(ST_MD)),
            st_mc: Constant::new(bits(ST_MC)),
            st_den: Constant::new(bits(ST_DEN)),
            st_norm: Constant::new(bits(ST_NORM)),
            st_divs: Constant::new(bits(ST_DIVS)),
            st_hand: Constant::new(bits(ST_HAND)),
            sub_n: Constant::new(bits(SUB_N)),
            sub_e: Constant::new(bits(SUB_E)),
            sub_done: Constant::new(bits(SUB_DONE)),
            msb_nb: Constant::new(bit_range(NB - 1, NB)),
            msb_cb: Constant::new(bit_range(CB - 1, CB)),
            msb_eb: Constant::new(bit_range(EB - 1, EB)),
            c_m: Constant::new(bits(p.c_m)),
            e_m: Constant::new(bits(p.e_m)),
            one_nb: Constant::new(bits(1)),
            zero_nb: Constant::new(bits(0)),
            zero_sb: Constant::new(Bits::default()),
            one_a: Constant::new(bits(1)),
            zero_a: Constant::new(bits(0)),
            zero_n2: Constant::new(Bits::default()),
            zero_dw: Constant::new(Bits::default()),
            zero_dh: Constant::new(Bits::default()),
            zero_ew: Constant::new(Bits::default()),
            msb_dw: Constant::new(bit_range(DW - 1, DW)),
            one_p: Constant::new(bits(1)),
            zero_p: Constant::new(bits(0)),
            one5: Constant::new(bits(1)),
            four5: Constant::new(bits(4)),
            zero5: Constant::new(bits(0)),
            one6: Constant::new(bits(1)),
            steps_nb: Constant::new(bits(NB as u64)),
            steps_cb: Constant::new(bits(CB as u64)),
            steps_eb: Constant::new(bits(EB as u64)),
            steps_p: Constant::new(bits(P as u64)),
            _f: LoopConst::new(p.fbits),
            _sl: LoopConst::new(p.sl),
            _sr: LoopConst::new(p.sr),
            _sa: LoopConst::new(p.sa),
        }
    }
}

impl<
        const W: usize,
        const A: usize,
        const NB: usize,
        const SB: usize,
        const QB: usize,
        const N2B: usize,
        const DW: usize,
        const DH: usize,
        const EW: usize,
        const P: usize,
        const CB: usize,
        const EB: usize,
    > Logic for Engine<W, A, NB, SB, QB, N2B, DW, DH, EW, P, CB, EB>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, st, sst, bank, n, srow, mu, xp, cgt, ridx, p2v, nsh, csh, cnt, cnt2, n2,
            esh, eacc, dacc, cmsh, cacc, den, mq, s
        );
        self.rz.narrow.next = self.rdata.val();
        self.xpz.narrow.next = self.xp.q.val();
        self.daccz.narrow.next = self.dacc.q.val();
        self.n2e.narrow.next = self.n2.q.val();
        self.eaccz.narrow.next = self.eacc.q.val();
        for lsb in self._f.lo()..self._f.hi() {
            self.qs.next = self.mu.q.val().get_bits::<W>(lsb);
        }
        self.sz.narrow.next = self.srow.q.val();
        self.nz2.narrow.next = self.n.q.val();
        self.n2z.narrow.next = self.n2.q.val();
        self.ridxz.narrow.next = self.ridx.q.val();
        self.nm1.next = self.n.q.val() - self.one_nb.val();
        for sl in self._sl.lo64()..self._sl.hi64() {
            for sr in self._sr.lo64()..self._sr.hi64() {
                self.te.next = (self.eaccz.wide.val() << sl) >> sr;
            }
        }
        self.r4.next = self.cacc.q.val() << 4;
        self.rsub.next = self.cacc.q.val() - self.den.q.val();
        self.ge.next = !(self.rsub.val() & self.msb_dw.val()).any();
        // One Horner step of Dh = n * Xp - cgt * S'.
        self.md1.next = self.dacc.q.val() << 1;
        if (self.nsh.q.val() & self.msb_nb.val()).any() {
            self.md1.next = (self.dacc.q.val() << 1) + self.xpz.wide.val();
        }
        self.md2.next = self.md1.val();
        if (self.csh.q.val() & self.msb_nb.val()).any() {
            self.md2.next = self.md1.val() - self.sz.wide.val();
        }
        // Outputs.
        self.h_ack.next = false;
        self.ren.next = false;
        self.raddr.next = self.ridx.q.val();
        self.rbank.next = self.bank.q.val();
        self.o_valid.next = self.st.q.val() == self.st_hand.val();
        self.o_bank.next = self.bank.q.val();
        self.o_n.next = self.n.q.val();
        self.o_mu.next = self.mu.q.val();
        self.o_m.next = self.mq.q.val();
        self.o_s.next = self.s.q.val();
        // Second pass: the datum of the read issued in the previous cycle.
        self.p2v.d.next = false;
        if self.p2v.q.val() & (self.rdata.val() > self.qs.val()) {
            self.xp.d.next = self.xp.q.val() + self.rz.wide.val();
            self.cgt.d.next = self.cgt.q.val() + self.one_nb.val();
        }
        // Side engine: N2 = n * n, then E = e_m * N2.
        if self.sst.q.val() == self.sub_n.val() {
            self.n2.d.next = self.n2.q.val() << 1;
            if (self.nsh.q.val() & self.msb_nb.val()).any() {
                self.n2.d.next = (self.n2.q.val() << 1) + self.nz2.wide.val();
            }
            self.nsh.d.next = self.nsh.q.val() << 1;
            self.cnt2.d.next = self.cnt2.q.val() - self.one6.val();
            if self.cnt2.q.val() == self.one6.val() {
                self.sst.d.next = self.sub_e.val();
                self.eacc.d.next = self.zero_ew.val();
                self.esh.d.next = self.e_m.val();
                self.cnt2.d.next = self.steps_eb.val();
            }
        }
        if self.sst.q.val() == self.sub_e.val() {
            self.eacc.d.next = self.eacc.q.val() << 1;
            if (self.esh.q.val() & self.msb_eb.val()).any() {
                self.eacc.d.next = (self.eacc.q.val() << 1) + self.n2e.wide.val();
            }
            self.esh.d.next = self.esh.q.val() << 1;
            self.cnt2.d.next = self.cnt2.q.val() - self.one6.val();
            if self.cnt2.q.val() == self.one6.val() {
                self.sst.d.next = self.sub_done.val();
            }
        }
        // Main sequence.
        if (self.st.q.val() == self.st_idle.val()) & self.h_valid.val() {
            self.h_ack.next = true;
            self.bank.d.next = self.h_bank.val();
            self.n.d.next = self.h_n.val();
            self.srow.d.next = self.h_s.val();
            self.mu.d.next = self.h_mu.val();
            self.xp.d.next = self.zero_sb.val();
            self.cgt.d.next = self.zero_nb.val();
            self.ridx.d.next = self.zero_a.val();
            self.st.d.next = self.st_p2.val();
            self.sst.d.next = self.sub_n.val();
            self.n2.d.next = self.zero_n2.val();
            self.nsh.d.next = self.h_n.val();
            self.cnt2.d.next = self.steps_nb.val();
        }
        if self.st.q.val() == self.st_p2.val() {
            self.ren.next = true;
            self.p2v.d.next = true;
            self.ridx.d.next = self.ridx.q.val() + self.one_a.val();
            if self.ridxz.wide.val() == self.nm1.val() {
                self.st.d.next = self.st_p2end.val();
            }
        }
        if self.st.q.val() == self.st_p2end.val() {
            self.st.d.next = self.st_waitsub.val();
        }
        if (self.st.q.val() == self.st_waitsub.val()) & (self.sst.q.val() == self.sub_done.val()) {
            self.dacc.d.next = self.zero_dh.val();
            self.nsh.d.next = self.n.q.val();
            self.csh.d.next = self.cgt.q.val();
            self.cnt.d.next = self.steps_nb.val();
            self.st.d.next = self.st_md.val();
        }
        if self.st.q.val() == self.st_md.val() {
            self.dacc.d.next = self.md2.val();
            self.nsh.d.next = self.nsh.q.val() << 1;
            self.csh.d.next = self.csh.q.val() << 1;
            self.cnt.d.next = self.cnt.q.val() - self.one6.val();
            if self.cnt.q.val() == self.one6.val() {
                self.cacc.d.next = self.zero_dw.val();
                self.cmsh.d.next = self.c_m.val();
                self.cnt.d.next = self.steps_cb.val();
                self.st.d.next = self.st_mc.val();
            }
        }
        if self.st.q.val() == self.st_mc.val() {
            self.cacc.d.next = self.cacc.q.val() << 1;
            if (self.cmsh.q.val() & self.msb_cb.val()).any() {
                self.cacc.d.next = (self.cacc.q.val() << 1) + self.daccz.wide.val();
            }
            self.cmsh.d.next = self.cmsh.q.val() << 1;
            self.cnt.d.next = self.cnt.q.val() - self.one6.val();
            if self.cnt.q.val() == self.one6.val() {
                self.st.d.next = self.st_den.val();
            }
        }
        if self.st.q.val() == self.st_den.val() {
            self.den.d.next = self.cacc.q.val() + self.te.val();
            self.s.d.next = self.zero5.val();
            self.mq.d.next = self.zero_p.val();
            self.st.d.next = self.st_norm.val();
            for sa in self._sa.lo64()..self._sa.hi64() {
                self.cacc.d.next = self.n2z.wide.val() << sa;
            }
            if self.dacc.q.val() == self.zero_dh.val() {
                self.st.d.next = self.st_hand.val();
            }
        }
        if self.st.q.val() == self.st_norm.val() {
            if self.ge.val() {
                self.cnt.d.next = self.steps_p.val();
                self.st.d.next = self.st_divs.val();
            } else if self.r4.val() < self.den.q.val() {
                self.cacc.d.next = self.r4.val();
                self.s.d.next = self.s.q.val() + self.four5.val();
            } else {
                self.cacc.d.next = self.cacc.q.val() << 1;
                self.s.d.next = self.s.q.val() + self.one5.val();
            }
        }
        if self.st.q.val() == self.st_divs.val() {
            self.cacc.d.next = self.cacc.q.val() << 1;
            self.mq.d.next = self.mq.q.val() << 1;
            if self.ge.val() {
                self.cacc.d.next = self.rsub.val() << 1;
                self.mq.d.next = (self.mq.q.val() << 1) | self.one_p.val();
            }
            self.cnt.d.next = self.cnt.q.val() - self.one6.val();
            if self.cnt.q.val() == self.one6.val() {
                self.st.d.next = self.st_hand.val();
            }
        }
        if (self.st.q.val() == self.st_hand.val()) & self.o_ack.val() {
            self.st.d.next = self.st_idle.val();
        }
        if self.reset.val() {
            // The side engine needs none: taking the next row restarts it.
            self.st.d.next = self.st_idle.val();
        }
    }
}
