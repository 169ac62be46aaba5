//! Stage III of the L1-norm unit: the third pass over the row, one SQ-b code per cycle.
//!
//! A four-stage pipeline behind the row buffer's registered read:
//!
//! ```text
//!   read : raddr = i                                   (x'_i arrives next cycle)
//!   A    : w = (x' << (F+1)) - (2 MU + 1)              (NW-bit two's complement, exact)
//!   B    : y = w >>> s  (arithmetic: floor(w / 2^s)),  u = y saturated to K bits
//!   C    : prod = (2u + 1) * M                          (K+1 x P shift-and-add multiplier)
//!   D    : hs = floor(prod / 2^(T-1)) = {ip, half};     code = RNE(prod / 2^T) clamped to +-Q
//! ```
//!
//! Stage D rounds and clamps in `b + 2` bits: `hs >= 2Q + 1` means `v >= Q + 1/2` (code `Q`),
//! `hs <= -(2Q + 1)` means `v < -Q` (code `-Q`); otherwise `code = (hs + c) >> 1` with
//! `c = sticky | ip_odd`, which is round-half-even and already inside `[-Q, Q]`.

use super::prim::{Narrow, Odd, ZeroExtend};
use super::{bit_range, LoopConst};
use crate::prim::SignExtend;
use rust_hdl::prelude::*;

pub const ST_IDLE: u64 = 0;
pub const ST_RUN: u64 = 1;
pub const ST_DRAIN: u64 = 2;

/// Signed (`KA` bits) x unsigned (`PB` bits) -> `PW = KA + PB` bits, combinational
/// shift-and-add (rust-hdl's `*` exists only for 16 x 16 bits; see `crate::mul`).
#[derive(LogicBlock)]
pub struct MulSU<const KA: usize, const PB: usize, const PW: usize> {
    pub a: Signal<In, Bits<KA>>,
    pub b: Signal<In, Bits<PB>>,
    pub p: Signal<Out, Bits<PW>>,
    ext: SignExtend<KA, PW>,
    a_sh: Vec<Signal<Local, Bits<PW>>>,
    pp: Vec<Signal<Local, Bits<PW>>>,
    psum: Vec<Signal<Local, Bits<PW>>>,
    zero: Constant<Bits<PW>>,
}

impl<const KA: usize, const PB: usize, const PW: usize> Default for MulSU<KA, PB, PW> {
    fn default() -> Self {
        assert!(PB >= 2 && PW == KA + PB, "MulSU<{KA}, {PB}, {PW}>");
        Self {
            a: Default::default(),
            b: Default::default(),
            p: Default::default(),
            ext: Default::default(),
            a_sh: (0..PB).map(|_| Default::default()).collect(),
            pp: (0..PB).map(|_| Default::default()).collect(),
            psum: (0..PB - 1).map(|_| Default::default()).collect(),
            zero: Constant::new(Bits::default()),
        }
    }
}

impl<const KA: usize, const PB: usize, const PW: usize> Logic for MulSU<KA, PB, PW> {
    #[hdl_gen]
    fn update(&mut self) {
        self.ext.narrow.next = self.a.val();
        self.a_sh[0].next = self.ext.wide.val();
        for i in 1..PB {
            self.a_sh[i].next = self.a_sh[i - 1].val() << 1;
        }
        for i in 0..PB {
            self.pp[i].next = self.zero.val();
            if self.b.val().get_bit(i) {
                self.pp[i].next = self.a_sh[i].val();
            }
        }
        self.psum[0].next = self.pp[0].val();
        for i in 1..(PB - 1) {
            self.psum[i].next = self.psum[i - 1].val() + self.pp[i].val();
        }
        for i in (PB - 1)..PB {
            self.p.next = self.psum[i - 1].val() + self.pp[i].val();
        }
    }
}

/// Per-row constants of stage III.
#[derive(Clone, Copy, Debug)]
pub struct EmitParams {
    /// `F`.
    pub fbits: usize,
    /// `T`.
    pub t: usize,
    /// `Q`.
    pub q: u64,
}

/// Stage III. `NB = A + 1`, `QB = W + Fmax`, `NW = W + Fmax + 2`, `K`, `K1 = K + 1`, `P`,
/// `PW = K1 + P`, `B` = b, `IB = b + 2`.
#[derive(LogicBlock)]
pub struct Emit<
    const W: usize,
    const A: usize,
    const NB: usize,
    const QB: usize,
    const NW: usize,
    const K: usize,
    const K1: usize,
    const P: usize,
    const PW: usize,
    const B: usize,
    const IB: usize,
> {
    pub clock: Signal<In, Clock>,
    /// Synchronous reset: back to `IDLE`, the pipeline emptied.
    pub reset: Signal<In, Bit>,
    /// While high nothing moves: every register keeps its value (so `out_*` stay), no row is
    /// taken, and the read port re-reads the address of the last read, so the datum that
    /// stage A takes when the hold ends is the one it would have taken.
    pub hold: Signal<In, Bit>,
    pub r_valid: Signal<In, Bit>,
    pub r_ack: Signal<Out, Bit>,
    pub r_bank: Signal<In, Bits<2>>,
    pub r_n: Signal<In, Bits<NB>>,
    pub r_mu: Signal<In, Bits<QB>>,
    pub r_m: Signal<In, Bits<P>>,
    pub r_s: Signal<In, Bits<5>>,
    /// Row-buffer read port (bank `rbank`; stage II has priority only on its own bank).
    pub raddr: Signal<Out, Bits<A>>,
    pub rbank: Signal<Out, Bits<2>>,
    pub rdata: Signal<In, Bits<W>>,
    pub out_valid: Signal<Out, Bit>,
    pub out_code: Signal<Out, Bits<B>>,
    pub out_last: Signal<Out, Bit>,
    st: DFF<Bits<2>>,
    bank: DFF<Bits<2>>,
    n: DFF<Bits<NB>>,
    mu2: DFF<Bits<NW>>,
    m: DFF<Bits<P>>,
    s: DFF<Bits<5>>,
    ridx: DFF<Bits<A>>,
    v0: DFF<Bit>,
    l0: DFF<Bit>,
    wq: DFF<Bits<NW>>,
    va: DFF<Bit>,
    la: DFF<Bit>,
    uq: DFF<Bits<K>>,
    vb: DFF<Bit>,
    lb: DFF<Bit>,
    pq: DFF<Bits<PW>>,
    vc: DFF<Bit>,
    lc: DFF<Bit>,
    code: DFF<Bits<B>>,
    vd: DFF<Bit>,
    ld: DFF<Bit>,
    xz: ZeroExtend<W, NW>,
    muz: ZeroExtend<QB, NW>,
    ridxz: ZeroExtend<A, NB>,
    odd: Odd<K, K1>,
    mul: MulSU<K1, P, PW>,
    nar: Narrow<IB, B>,
    nm1: Signal<Local, Bits<NB>>,
    w: Signal<Local, Bits<NW>>,
    neg: Signal<Local, Bit>,
    sh1: Signal<Local, Bits<NW>>,
    sh2: Signal<Local, Bits<NW>>,
    sh4: Signal<Local, Bits<NW>>,
    sh8: Signal<Local, Bits<NW>>,
    sh16: Signal<Local, Bits<NW>>,
    hi: Signal<Local, Bits<NW>>,
    u: Signal<Local, Bits<K>>,
    hs: Signal<Local, Bits<IB>>,
    hs_neg: Signal<Local, Bit>,
    sticky: Signal<Local, Bit>,
    hr: Signal<Local, Bits<IB>>,
    /// The code in `IB` bits (rounded, clamped).
    hc: Signal<Local, Bits<IB>>,
    st_idle: Constant<Bits<2>>,
    st_run: Constant<Bits<2>>,
    st_drain: Constant<Bits<2>>,
    one_nb: Constant<Bits<NB>>,
    one_a: Constant<Bits<A>>,
    zero_a: Constant<Bits<A>>,
    one_nw: Constant<Bits<NW>>,
    zero_nw: Constant<Bits<NW>>,
    msb_nw: Constant<Bits<NW>>,
    /// Sign fill of the shifter stages: the top 1, 2, 4, 8, 16 bits.
    fill1: Constant<Bits<NW>>,
    fill2: Constant<Bits<NW>>,
    fill4: Constant<Bits<NW>>,
    fill8: Constant<Bits<NW>>,
    fill16: Constant<Bits<NW>>,
    sb1: Constant<Bits<5>>,
    sb2: Constant<Bits<5>>,
    sb4: Constant<Bits<5>>,
    sb8: Constant<Bits<5>>,
    sb16: Constant<Bits<5>>,
    /// Bits `K-1 .. NW-1` (all equal when `y` fits `K` bits signed).
    himask: Constant<Bits<NW>>,
    kmax: Constant<Bits<K>>,
    kmin: Constant<Bits<K>>,
    /// Bits `0 .. T-2` of the product (the sticky bits).
    lowmask: Constant<Bits<PW>>,
    msb_ib: Constant<Bits<IB>>,
    odd_ib: Constant<Bits<IB>>,
    one_ib: Constant<Bits<IB>>,
    /// `2Q + 1`, `-(2Q + 1)`, `Q` and `-Q` in `IB` bits.
    hpos: Constant<Bits<IB>>,
    hneg: Constant<Bits<IB>>,
    qpos: Constant<Bits<IB>>,
    qneg: Constant<Bits<IB>>,
    _f1: LoopConst,
    _t1: LoopConst,
}

fn twos(v: i64, w: usize) -> u64 {
    (v as u64) & (u64::MAX >> (64 - w))
}

impl<
        const W: usize,
        const A: usize,
        const NB: usize,
        const QB: usize,
        const NW: usize,
        const K: usize,
        const K1: usize,
        const P: usize,
        const PW: usize,
        const B: usize,
        const IB: usize,
    > Emit<W, A, NB, QB, NW, K, K1, P, PW, B, IB>
{
    pub fn new(p: EmitParams) -> Self {
        assert!(
            NB == A + 1
                && NW == QB + 2
                && QB >= W + p.fbits
                && K1 == K + 1
                && PW == K1 + P
                && IB == B + 2
                && PW == p.t + B + 1
                && NW > K
                && NW >= 17
                && NW <= 64,
            "Emit<{W}, {A}, {NB}, {QB}, {NW}, {K}, {K1}, {P}, {PW}, {B}, {IB}> with {p:?}"
        );
        let q = p.q as i64;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            hold: Default::default(),
            r_valid: Default::default(),
            r_ack: Default::default(),
            r_bank: Default::default(),
            r_n: Default::default(),
            r_mu: Default::default(),
            r_m: Default::default(),
            r_s: Default::default(),
            raddr: Default::default(),
            rbank: Default::default(),
            rdata: Default::default(),
            out_valid: Default::default(),
            out_code: Default::default(),
            out_last: Default::default(),
            st: Default::default(),
            bank: Default::default(),
            n: Default::default(),
            mu2: Default::default(),
            m: Default::default(),
            s: Default::default(),
            ridx: Default::default(),
            v0: Default::default(),
            l0: Default::default(),
            wq: Default::default(),
            va: Default::default(),
            la: Default::default(),
            uq: Default::default(),
            vb: Default::default(),
            lb: Default::default(),
            pq: Default::default(),
            vc: Default::default(),
            lc: Default::default(),
            code: Default::default(),
            vd: Default::default(),
            ld: Default::default(),
            xz: Default::default(),
            muz: Default::default(),
            ridxz: Default::default(),
            odd: Default::default(),
            mul: Default::default(),
            nar: Default::default(),
            nm1: Default::default(),
            w: Default::default(),
            neg: Default::default(),
            sh1: Default::default(),
            sh2: Default::default(),
            sh4: Default::default(),
            sh8: Default::default(),
            sh16: Default::default(),
            hi: Default::default(),
            u: Default::default(),
            hs: Default::default(),
            hs_neg: Default::default(),
            sticky: Default::default(),
            hr: Default::default(),
            hc: Default::default(),
            st_idle: Constant::new(bits(ST_IDLE)),
            st_run: Constant::new(bits(ST_RUN)),
            st_drain: Constant::new(bits(ST_DRAIN)),
            one_nb: Constant::new(bits(1)),
            one_a: Constant::new(bits(1)),
            zero_a: Constant::new(bits(0)),
            one_nw: Constant::new(bits(1)),
            zero_nw: Constant::new(Bits::default()),
            msb_nw: Constant::new(bit_range(NW - 1, NW)),
            fill1: Constant::new(bit_range(NW - 1, NW)),
            fill2: Constant::new(bit_range(NW - 2, NW)),
            fill4: Constant::new(bit_range(NW - 4, NW)),
            fill8: Constant::new(bit_range(NW - 8, NW)),
            fill16: Constant::new(bit_range(NW - 16, NW)),
            sb1: Constant::new(bits(1)),
            sb2: Constant::new(bits(2)),
            sb4: Constant::new(bits(4)),
            sb8: Constant::new(bits(8)),
            sb16: Constant::new(bits(16)),
            himask: Constant::new(bit_range(K - 1, NW)),
            kmax: Constant::new(bits((1u64 << (K - 1)) - 1)),
            kmin: Constant::new(bits(1u64 << (K - 1))),
            lowmask: Constant::new(bit_range(0, p.t - 1)),
            msb_ib: Constant::new(bit_range(IB - 1, IB)),
            odd_ib: Constant::new(bits(2)),
            one_ib: Constant::new(bits(1)),
            hpos: Constant::new(bits(twos(2 * q + 1, IB))),
            hneg: Constant::new(bits(twos(-(2 * q + 1), IB))),
            qpos: Constant::new(bits(twos(q, IB))),
            qneg: Constant::new(bits(twos(-q, IB))),
            _f1: LoopConst::new(p.fbits + 1),
            _t1: LoopConst::new(p.t - 1),
        }
    }
}

impl<
        const W: usize,
        const A: usize,
        const NB: usize,
        const QB: usize,
        const NW: usize,
        const K: usize,
        const K1: usize,
        const P: usize,
        const PW: usize,
        const B: usize,
        const IB: usize,
    > Logic for Emit<W, A, NB, QB, NW, K, K1, P, PW, B, IB>
{
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, st, bank, n, mu2, m, s, ridx, v0, l0, wq, va, la, uq, vb, lb, pq, vc, lc,
            code, vd, ld
        );
        self.xz.narrow.next = self.rdata.val();
        self.muz.narrow.next = self.r_mu.val();
        self.ridxz.narrow.next = self.ridx.q.val();
        self.nm1.next = self.n.q.val() - self.one_nb.val();
        // Stage A.
        for f1 in self._f1.lo64()..self._f1.hi64() {
            self.w.next = (self.xz.wide.val() << f1) - self.mu2.q.val();
        }
        self.wq.d.next = self.w.val();
        self.va.d.next = self.v0.q.val();
        self.la.d.next = self.l0.q.val();
        // Stage B: arithmetic shift right by s, then saturate to K bits.
        self.neg.next = (self.wq.q.val() & self.msb_nw.val()).any();
        self.sh1.next = self.wq.q.val();
        if (self.s.q.val() & self.sb1.val()).any() {
            self.sh1.next = self.wq.q.val() >> 1;
            if self.neg.val() {
                self.sh1.next = (self.wq.q.val() >> 1) | self.fill1.val();
            }
        }
        self.sh2.next = self.sh1.val();
        if (self.s.q.val() & self.sb2.val()).any() {
            self.sh2.next = self.sh1.val() >> 2;
            if self.neg.val() {
                self.sh2.next = (self.sh1.val() >> 2) | self.fill2.val();
            }
        }
        self.sh4.next = self.sh2.val();
        if (self.s.q.val() & self.sb4.val()).any() {
            self.sh4.next = self.sh2.val() >> 4;
            if self.neg.val() {
                self.sh4.next = (self.sh2.val() >> 4) | self.fill4.val();
            }
        }
        self.sh8.next = self.sh4.val();
        if (self.s.q.val() & self.sb8.val()).any() {
            self.sh8.next = self.sh4.val() >> 8;
            if self.neg.val() {
                self.sh8.next = (self.sh4.val() >> 8) | self.fill8.val();
            }
        }
        self.sh16.next = self.sh8.val();
        if (self.s.q.val() & self.sb16.val()).any() {
            self.sh16.next = self.sh8.val() >> 16;
            if self.neg.val() {
                self.sh16.next = (self.sh8.val() >> 16) | self.fill16.val();
            }
        }
        self.hi.next = self.sh16.val() & self.himask.val();
        for lsb in 0..1 {
            self.u.next = self.sh16.val().get_bits::<K>(lsb);
        }
        if (self.hi.val() != self.zero_nw.val()) & (self.hi.val() != self.himask.val()) {
            self.u.next = self.kmax.val();
            if self.neg.val() {
                self.u.next = self.kmin.val();
            }
        }
        self.uq.d.next = self.u.val();
        self.vb.d.next = self.va.q.val();
        self.lb.d.next = self.la.q.val();
        // Stage C.
        self.odd.x.next = self.uq.q.val();
        self.mul.a.next = self.odd.y.val();
        self.mul.b.next = self.m.q.val();
        self.pq.d.next = self.mul.p.val();
        self.vc.d.next = self.vb.q.val();
        self.lc.d.next = self.lb.q.val();
        // Stage D: round half to even, clamp to [-Q, Q].
        for lsb in self._t1.lo()..self._t1.hi() {
            self.hs.next = self.pq.q.val().get_bits::<IB>(lsb);
        }
        self.sticky.next = (self.pq.q.val() & self.lowmask.val()).any();
        self.hs_neg.next = (self.hs.val() & self.msb_ib.val()).any();
        self.hr.next = self.hs.val();
        if self.sticky.val() | (self.hs.val() & self.odd_ib.val()).any() {
            self.hr.next = self.hs.val() + self.one_ib.val();
        }
        self.hc.next = self.hr.val() >> 1;
        if !self.hs_neg.val() & (self.hs.val() >= self.hpos.val()) {
            self.hc.next = self.qpos.val();
        }
        if self.hs_neg.val() & (self.hs.val() <= self.hneg.val()) {
            self.hc.next = self.qneg.val();
        }
        self.nar.x.next = self.hc.val();
        self.code.d.next = self.nar.y.val();
        self.vd.d.next = self.vc.q.val();
        self.ld.d.next = self.lc.q.val();
        self.out_valid.next = self.vd.q.val();
        self.out_code.next = self.code.q.val();
        self.out_last.next = self.ld.q.val();
        // Control: take a row, issue its n reads, wait until the row constants are free.
        self.r_ack.next = false;
        self.raddr.next = self.ridx.q.val();
        self.rbank.next = self.bank.q.val();
        self.v0.d.next = false;
        self.l0.d.next = false;
        if (self.st.q.val() == self.st_idle.val()) & self.r_valid.val() {
            self.r_ack.next = true;
            self.bank.d.next = self.r_bank.val();
            self.n.d.next = self.r_n.val();
            self.mu2.d.next = (self.muz.wide.val() << 1) | self.one_nw.val();
            self.m.d.next = self.r_m.val();
            self.s.d.next = self.r_s.val();
            self.ridx.d.next = self.zero_a.val();
            self.st.d.next = self.st_run.val();
        }
        if self.st.q.val() == self.st_run.val() {
            self.v0.d.next = true;
            self.ridx.d.next = self.ridx.q.val() + self.one_a.val();
            if self.ridxz.wide.val() == self.nm1.val() {
                self.l0.d.next = true;
                self.st.d.next = self.st_drain.val();
            }
        }
        if (self.st.q.val() == self.st_drain.val())
            & !(self.v0.q.val() | self.va.q.val() | self.vb.q.val())
        {
            self.st.d.next = self.st_idle.val();
        }
        if self.hold.val() {
            self.r_ack.next = false;
            self.raddr.next = self.ridx.q.val() - self.one_a.val();
            self.st.d.next = self.st.q.val();
            self.bank.d.next = self.bank.q.val();
            self.n.d.next = self.n.q.val();
            self.mu2.d.next = self.mu2.q.val();
            self.m.d.next = self.m.q.val();
            self.s.d.next = self.s.q.val();
            self.ridx.d.next = self.ridx.q.val();
            self.v0.d.next = self.v0.q.val();
            self.l0.d.next = self.l0.q.val();
            self.wq.d.next = self.wq.q.val();
            self.va.d.next = self.va.q.val();
            self.la.d.next = self.la.q.val();
            self.uq.d.next = self.uq.q.val();
            self.vb.d.next = self.vb.q.val();
            self.lb.d.next = self.lb.q.val();
            self.pq.d.next = self.pq.q.val();
            self.vc.d.next = self.vc.q.val();
            self.lc.d.next = self.lc.q.val();
            self.code.d.next = self.code.q.val();
            self.vd.d.next = self.vd.q.val();
            self.ld.d.next = self.ld.q.val();
        }
        if self.reset.val() {
            self.st.d.next = self.st_idle.val();
            self.v0.d.next = false;
            self.va.d.next = false;
            self.vb.d.next = false;
            self.vc.d.next = false;
            self.vd.d.next = false;
        }
    }
}
