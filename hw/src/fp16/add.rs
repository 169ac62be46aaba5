//! Stages 2 and 3 of the PE: binary32 addition, round-to-nearest-even, results below 2^-126
//! flushed to a signed zero.
//!
//! A single-path adder (no near/far split: the area matters more than the latency here):
//!
//! - [`AlignAdd`] (stage 2): order the operands by magnitude (one 31-bit compare: the magnitude
//!   order of binary32 values is the integer order of their low 31 bits), shift the smaller
//!   significand right by the exponent difference keeping guard, round and a sticky bit, then add
//!   or subtract in a 28-bit frame `{carry, 24-bit significand, G, R, S}`. The larger operand
//!   goes first, so the result is never negative and needs no negation.
//! - [`NormRound`] (stage 3): leading-zero normalization of the frame ([`LzNorm`]), RNE on the
//!   bits below the 24-bit significand, exponent `eb + 1 - lz`, flush, overflow and specials.
//!
//! Why three extra bits suffice: with an exponent difference `d <= 1` nothing is shifted past G,
//! so the sum is exact and any normalization shift is exact too; with `d >= 2` a subtraction
//! loses at most one leading bit, and the true sum and the frame's sum (low bits replaced by
//! their OR) lie strictly inside the same interval between neighbouring multiples of R's weight,
//! which contains no rounding boundary at either possible normalization.
//!
//! Flush: a sum of two normal binary32 values below 2^-126 can only come from cancellation with
//! `d <= 1`, so it is exact: "the IEEE result is subnormal" is exactly "the normalized exponent is
//! <= 0", and no rounding can carry it back to 2^-126. Zero results: an exact cancellation gives
//! +0, and two zeros give +0 unless both are -0 (IEEE RNE).
//!
//! Operands are never binary32 subnormals here (the accumulator is flushed, and products are at
//! least 2^-48), so no gate is spent on them: a zero exponent field with a nonzero fraction would
//! be read as `frac * 2^-150` instead of `frac * 2^-149`. Only true zeros are expected there.
//!
//! Specials follow IEEE: NaN in -> NaN out, inf - inf = NaN, inf + finite = inf, overflow
//! (`|sum| >= 2^128` after rounding) = inf; every NaN result is the canonical 0x7fc00000.

use super::norm::LzNorm;
use super::prim::{Concat, ZeroExtend};
use super::{F32_NEG_INF, F32_NEG_ZERO, F32_POS_INF, F32_QNAN};
use rust_hdl::prelude::*;

/// Width of the sum frame: carry, 24-bit significand, guard, round, sticky.
pub const FRAME_BITS: usize = 28;

/// Order two binary32 operands by magnitude and split them into fields (combinational).
#[derive(LogicBlock)]
pub struct MagOrder {
    pub x: Signal<In, Bits<32>>,
    pub y: Signal<In, Bits<32>>,
    pub l_sign: Signal<Out, Bit>,
    pub l_exp: Signal<Out, Bits<8>>,
    pub l_frac: Signal<Out, Bits<23>>,
    pub s_sign: Signal<Out, Bit>,
    pub s_exp: Signal<Out, Bits<8>>,
    pub s_frac: Signal<Out, Bits<23>>,
    xm: Signal<Local, Bits<31>>,
    ym: Signal<Local, Bits<31>>,
    larger: Signal<Local, Bits<31>>,
    smaller: Signal<Local, Bits<31>>,
    sign_bit: Constant<Bits<5>>,
    lsb: Constant<Bits<5>>,
    exp_lsb: Constant<Bits<5>>,
}

impl Default for MagOrder {
    fn default() -> Self {
        Self {
            x: Default::default(),
            y: Default::default(),
            l_sign: Default::default(),
            l_exp: Default::default(),
            l_frac: Default::default(),
            s_sign: Default::default(),
            s_exp: Default::default(),
            s_frac: Default::default(),
            xm: Default::default(),
            ym: Default::default(),
            larger: Default::default(),
            smaller: Default::default(),
            sign_bit: Constant::new(bits(31)),
            lsb: Constant::new(bits(0)),
            exp_lsb: Constant::new(bits(23)),
        }
    }
}

impl Logic for MagOrder {
    #[hdl_gen]
    fn update(&mut self) {
        self.xm.next = self.x.val().get_bits::<31>(self.lsb.val().index());
        self.ym.next = self.y.val().get_bits::<31>(self.lsb.val().index());
        self.larger.next = self.ym.val();
        self.smaller.next = self.xm.val();
        self.l_sign.next = self.y.val().get_bit(self.sign_bit.val().index());
        self.s_sign.next = self.x.val().get_bit(self.sign_bit.val().index());
        if self.xm.val() >= self.ym.val() {
            self.larger.next = self.xm.val();
            self.smaller.next = self.ym.val();
            self.l_sign.next = self.x.val().get_bit(self.sign_bit.val().index());
            self.s_sign.next = self.y.val().get_bit(self.sign_bit.val().index());
        }
        self.l_exp.next = self.larger.val().get_bits::<8>(self.exp_lsb.val().index());
        self.l_frac.next = self.larger.val().get_bits::<23>(self.lsb.val().index());
        self.s_exp.next = self.smaller.val().get_bits::<8>(self.exp_lsb.val().index());
        self.s_frac.next = self.smaller.val().get_bits::<23>(self.lsb.val().index());
    }
}

/// Stage 2: compare, swap, align, add (combinational).
#[derive(LogicBlock)]
pub struct AlignAdd {
    pub x: Signal<In, Bits<32>>,
    pub y: Signal<In, Bits<32>>,
    /// Sign of a nonzero (or infinite) result: the sign of the larger operand.
    pub sign: Signal<Out, Bit>,
    /// Sign of a zero result: `sx & sy`.
    pub zsign: Signal<Out, Bit>,
    /// Biased exponent of the larger operand.
    pub exp: Signal<Out, Bits<8>>,
    /// `{carry, significand, G, R, S}`: bit 26 weighs 2^(exp - 127).
    pub sum: Signal<Out, Bits<FRAME_BITS>>,
    pub nan: Signal<Out, Bit>,
    pub inf: Signal<Out, Bit>,
    order: MagOrder,
    /// `{hidden, frac}` of each operand.
    mb: Concat<1, 23, 24>,
    ms: Concat<1, 23, 24>,
    /// `{mb, G=0, R=0, S=0}` and `{ms, G=0, R=0}` (before the shift).
    big_f: Concat<24, 3, 27>,
    small_f: Concat<24, 2, 26>,
    d: Signal<Local, Bits<8>>,
    /// The alignment shifter: value and sticky after the 1-, 2-, 4-, 8-, 16-bit stages.
    v1: Signal<Local, Bits<26>>,
    v2: Signal<Local, Bits<26>>,
    v4: Signal<Local, Bits<26>>,
    v8: Signal<Local, Bits<26>>,
    v16: Signal<Local, Bits<26>>,
    s1: Signal<Local, Bit>,
    s2: Signal<Local, Bit>,
    s4: Signal<Local, Bit>,
    s8: Signal<Local, Bit>,
    s16: Signal<Local, Bit>,
    aligned: Concat<26, 1, 27>,
    big28: ZeroExtend<27, 28>,
    small28: ZeroExtend<27, 28>,
    cin28: ZeroExtend<1, 28>,
    small_x: Signal<Local, Bits<28>>,
    sign_bit: Constant<Bits<5>>,
    d1: Constant<Bits<8>>,
    d2: Constant<Bits<8>>,
    d4: Constant<Bits<8>>,
    d8: Constant<Bits<8>>,
    d16: Constant<Bits<8>>,
    /// `d >= 32`: everything is shifted out.
    d_far: Constant<Bits<8>>,
    /// The bits each shifter stage pushes out: the low 1, 2, 4, 8, 16.
    out1: Constant<Bits<26>>,
    out2: Constant<Bits<26>>,
    out4: Constant<Bits<26>>,
    out8: Constant<Bits<26>>,
    out16: Constant<Bits<26>>,
    zero2: Constant<Bits<2>>,
    zero3: Constant<Bits<3>>,
    zero26: Constant<Bits<26>>,
    exp_max: Constant<Bits<8>>,
}

impl Default for AlignAdd {
    fn default() -> Self {
        Self {
            x: Default::default(),
            y: Default::default(),
            sign: Default::default(),
            zsign: Default::default(),
            exp: Default::default(),
            sum: Default::default(),
            nan: Default::default(),
            inf: Default::default(),
            order: Default::default(),
            mb: Default::default(),
            ms: Default::default(),
            big_f: Default::default(),
            small_f: Default::default(),
            d: Default::default(),
            v1: Default::default(),
            v2: Default::default(),
            v4: Default::default(),
            v8: Default::default(),
            v16: Default::default(),
            s1: Default::default(),
            s2: Default::default(),
            s4: Default::default(),
            s8: Default::default(),
            s16: Default::default(),
            aligned: Default::default(),
            big28: Default::default(),
            small28: Default::default(),
            cin28: Default::default(),
            small_x: Default::default(),
            sign_bit: Constant::new(bits(31)),
            d1: Constant::new(bits(1)),
            d2: Constant::new(bits(2)),
            d4: Constant::new(bits(4)),
            d8: Constant::new(bits(8)),
            d16: Constant::new(bits(16)),
            d_far: Constant::new(bits(0xe0)),
            out1: Constant::new(bits(0x1)),
            out2: Constant::new(bits(0x3)),
            out4: Constant::new(bits(0xf)),
            out8: Constant::new(bits(0xff)),
            out16: Constant::new(bits(0xffff)),
            zero2: Constant::new(bits(0)),
            zero3: Constant::new(bits(0)),
            zero26: Constant::new(bits(0)),
            exp_max: Constant::new(bits(0xff)),
        }
    }
}

impl Logic for AlignAdd {
    // Statements that feed a wiring primitive and statements that read its output share no
    // local signal (see `prim`): the fields come from `MagOrder`'s outputs, not from locals.
    #[hdl_gen]
    fn update(&mut self) {
        self.order.x.next = self.x.val();
        self.order.y.next = self.y.val();
        self.mb.hi.next = self.order.l_exp.val().any().into();
        self.mb.lo.next = self.order.l_frac.val();
        self.ms.hi.next = self.order.s_exp.val().any().into();
        self.ms.lo.next = self.order.s_frac.val();
        self.big_f.hi.next = self.mb.y.val();
        self.big_f.lo.next = self.zero3.val();
        self.small_f.hi.next = self.ms.y.val();
        self.small_f.lo.next = self.zero2.val();
        // Align: shift right by d, ORing what falls off into the sticky bit.
        self.d.next = self.order.l_exp.val() - self.order.s_exp.val();
        self.v1.next = self.small_f.y.val();
        self.s1.next = false;
        if (self.d.val() & self.d1.val()).any() {
            self.v1.next = self.small_f.y.val() >> 1;
            self.s1.next = (self.small_f.y.val() & self.out1.val()).any();
        }
        self.v2.next = self.v1.val();
        self.s2.next = self.s1.val();
        if (self.d.val() & self.d2.val()).any() {
            self.v2.next = self.v1.val() >> 2;
            self.s2.next = self.s1.val() | (self.v1.val() & self.out2.val()).any();
        }
        self.v4.next = self.v2.val();
        self.s4.next = self.s2.val();
        if (self.d.val() & self.d4.val()).any() {
            self.v4.next = self.v2.val() >> 4;
            self.s4.next = self.s2.val() | (self.v2.val() & self.out4.val()).any();
        }
        self.v8.next = self.v4.val();
        self.s8.next = self.s4.val();
        if (self.d.val() & self.d8.val()).any() {
            self.v8.next = self.v4.val() >> 8;
            self.s8.next = self.s4.val() | (self.v4.val() & self.out8.val()).any();
        }
        self.v16.next = self.v8.val();
        self.s16.next = self.s8.val();
        if (self.d.val() & self.d16.val()).any() {
            self.v16.next = self.v8.val() >> 16;
            self.s16.next = self.s8.val() | (self.v8.val() & self.out16.val()).any();
        }
        self.aligned.hi.next = self.v16.val();
        self.aligned.lo.next = self.s16.val().into();
        if (self.d.val() & self.d_far.val()).any() {
            self.aligned.hi.next = self.zero26.val();
            self.aligned.lo.next = self.order.s_exp.val().any().into();
        }
        // Add or subtract: larger + (smaller ^ {28{sub}}) + sub, one adder with a carry-in.
        self.big28.narrow.next = self.big_f.y.val();
        self.small28.narrow.next = self.aligned.y.val();
        self.cin28.narrow.next = (self.order.l_sign.val() ^ self.order.s_sign.val()).into();
        self.small_x.next = self.small28.wide.val();
        if self.order.l_sign.val() ^ self.order.s_sign.val() {
            self.small_x.next = !self.small28.wide.val();
        }
        self.sum.next = self.big28.wide.val() + self.small_x.val() + self.cin28.wide.val();
        self.exp.next = self.order.l_exp.val();
        self.sign.next = self.order.l_sign.val();
        self.zsign.next = self.x.val().get_bit(self.sign_bit.val().index())
            & self.y.val().get_bit(self.sign_bit.val().index());
        // Specials: NaN sorts above inf above every finite magnitude, so the larger operand
        // tells: NaN if it is NaN, or for inf - inf; inf if it is inf otherwise.
        self.nan.next = (self.order.l_exp.val() == self.exp_max.val())
            & (self.order.l_frac.val().any()
                | ((self.order.s_exp.val() == self.exp_max.val())
                    & (self.order.l_sign.val() ^ self.order.s_sign.val())));
        self.inf.next = (self.order.l_exp.val() == self.exp_max.val())
            & !self.order.l_frac.val().any()
            & !((self.order.s_exp.val() == self.exp_max.val())
                & (self.order.l_sign.val() ^ self.order.s_sign.val()));
    }
}

/// The result exponent `exp + 1 - lz` of the normalized sum, and its range checks.
#[derive(LogicBlock)]
pub struct ExpAdjust {
    pub exp: Signal<In, Bits<8>>,
    pub lz: Signal<In, Bits<5>>,
    /// Low 8 bits of the biased exponent (meaningful when neither flag is set).
    pub e8: Signal<Out, Bits<8>>,
    /// Biased exponent <= 0: the sum is below 2^-126.
    pub tiny: Signal<Out, Bit>,
    /// Biased exponent 255: overflow.
    pub huge: Signal<Out, Bit>,
    exp10: ZeroExtend<8, 10>,
    lz10: ZeroExtend<5, 10>,
    /// Two's complement, `-26..=255`.
    e: Signal<Local, Bits<10>>,
    e_lsb: Constant<Bits<4>>,
    e_sign: Constant<Bits<4>>,
    one10: Constant<Bits<10>>,
    zero10: Constant<Bits<10>>,
    max10: Constant<Bits<10>>,
}

impl Default for ExpAdjust {
    fn default() -> Self {
        Self {
            exp: Default::default(),
            lz: Default::default(),
            e8: Default::default(),
            tiny: Default::default(),
            huge: Default::default(),
            exp10: Default::default(),
            lz10: Default::default(),
            e: Default::default(),
            e_lsb: Constant::new(bits(0)),
            e_sign: Constant::new(bits(9)),
            one10: Constant::new(bits(1)),
            zero10: Constant::new(bits(0)),
            max10: Constant::new(bits(255)),
        }
    }
}

impl Logic for ExpAdjust {
    #[hdl_gen]
    fn update(&mut self) {
        self.exp10.narrow.next = self.exp.val();
        self.lz10.narrow.next = self.lz.val();
        // Bit 27 of the frame weighs 2^(exp + 1 - 127).
        self.e.next = self.exp10.wide.val() + self.one10.val() - self.lz10.wide.val();
        self.e8.next = self.e.val().get_bits::<8>(self.e_lsb.val().index());
        self.tiny.next =
            self.e.val().get_bit(self.e_sign.val().index()) | (self.e.val() == self.zero10.val());
        self.huge.next = self.e.val() == self.max10.val();
    }
}

/// Stage 3: normalize, round to nearest even, flush, pack (combinational).
#[derive(LogicBlock)]
pub struct NormRound {
    pub sign: Signal<In, Bit>,
    pub zsign: Signal<In, Bit>,
    pub exp: Signal<In, Bits<8>>,
    pub sum: Signal<In, Bits<FRAME_BITS>>,
    pub nan: Signal<In, Bit>,
    pub inf: Signal<In, Bit>,
    pub r: Signal<Out, Bits<32>>,
    norm: LzNorm<FRAME_BITS>,
    adj: ExpAdjust,
    round_up: Signal<Local, Bit>,
    mag: Concat<8, 23, 31>,
    rnd31: ZeroExtend<1, 31>,
    rounded: Signal<Local, Bits<31>>,
    word: Concat<1, 31, 32>,
    lead: Constant<Bits<5>>,
    frac_lsb: Constant<Bits<5>>,
    round_bit: Constant<Bits<5>>,
    sticky_bits: Constant<Bits<FRAME_BITS>>,
    pos_zero: Constant<Bits<32>>,
    neg_zero: Constant<Bits<32>>,
    pos_inf: Constant<Bits<32>>,
    neg_inf: Constant<Bits<32>>,
    qnan: Constant<Bits<32>>,
}

impl Default for NormRound {
    fn default() -> Self {
        Self {
            sign: Default::default(),
            zsign: Default::default(),
            exp: Default::default(),
            sum: Default::default(),
            nan: Default::default(),
            inf: Default::default(),
            r: Default::default(),
            norm: Default::default(),
            adj: Default::default(),
            round_up: Default::default(),
            mag: Default::default(),
            rnd31: Default::default(),
            rounded: Default::default(),
            word: Default::default(),
            lead: Constant::new(bits(27)),
            frac_lsb: Constant::new(bits(4)),
            round_bit: Constant::new(bits(3)),
            sticky_bits: Constant::new(bits(0x7)),
            pos_zero: Constant::new(bits(0)),
            neg_zero: Constant::new(bits(F32_NEG_ZERO as u64)),
            pos_inf: Constant::new(bits(F32_POS_INF as u64)),
            neg_inf: Constant::new(bits(F32_NEG_INF as u64)),
            qnan: Constant::new(bits(F32_QNAN as u64)),
        }
    }
}

impl Logic for NormRound {
    #[hdl_gen]
    fn update(&mut self) {
        self.norm.x.next = self.sum.val();
        self.adj.exp.next = self.exp.val();
        self.adj.lz.next = self.norm.lz.val();
        // Normalized frame: bit 27 the leading one, 26..4 the fraction, 3 round, 2..0 sticky.
        self.round_up.next = self.norm.y.val().get_bit(self.round_bit.val().index())
            & (self.norm.y.val().get_bit(self.frac_lsb.val().index())
                | (self.norm.y.val() & self.sticky_bits.val()).any());
        self.mag.hi.next = self.adj.e8.val();
        self.mag.lo.next = self
            .norm
            .y
            .val()
            .get_bits::<23>(self.frac_lsb.val().index());
        self.rnd31.narrow.next = self.round_up.val().into();
        // A carry out of the fraction increments the exponent, and 254 -> 255 is inf.
        self.rounded.next = self.mag.y.val() + self.rnd31.wide.val();
        self.word.hi.next = self.sign.val().into();
        self.word.lo.next = self.rounded.val();
        self.r.next = self.word.y.val();
        if !self.norm.y.val().get_bit(self.lead.val().index()) {
            // Exact zero.
            self.r.next = self.pos_zero.val();
            if self.zsign.val() {
                self.r.next = self.neg_zero.val();
            }
        } else if self.adj.tiny.val() {
            // Below 2^-126: flush to a zero of the same sign.
            self.r.next = self.pos_zero.val();
            if self.sign.val() {
                self.r.next = self.neg_zero.val();
            }
        }
        if self.inf.val() | self.adj.huge.val() {
            self.r.next = self.pos_inf.val();
            if self.sign.val() {
                self.r.next = self.neg_inf.val();
            }
        }
        if self.nan.val() {
            self.r.next = self.qnan.val();
        }
    }
}
