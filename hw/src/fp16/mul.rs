//! Stage 1 of the PE: the exact binary16 x binary16 product, as a binary32 bit pattern, in two
//! pipeline halves (the PE registers between them; [`Fp16Mul`] chains them without a register).
//!
//! ```text
//!   1a  Fp16MulFront: a, b --unpack--> (sign, 11-bit significand, exponent) x 2
//!                         --SigMul11--> 22-bit product (exact), esum = ea + eb + 98, classes
//!   1b  Fp16MulBack:  --LzNorm<22>--> normalized, lz --pack--> binary32 {s, esum - lz, frac}
//! ```
//!
//! Splitting stage 1 costs 35 flip-flops (3 logic cells on an iCE40, where they pack with the
//! LUTs that drive them) and balances the pipeline: in one cycle, multiplier plus normalizer
//! were the PE's critical path (34 ns on an HX8K, 29 MHz); split, the critical path is stage 2 of
//! the accumulator loop (25 ns, 39 MHz).
//!
//! The significands are not normalized on the way in: a subnormal operand is just `{0, frac}`
//! with exponent 1, and the one normalizer on the product absorbs both operands' leading zeros
//! (and the usual 0/1-bit product normalization). Every nonzero product is then a normal binary32
//! number, `2^-48 <= |p| < 2^32`, with biased exponent in `79..=158`; the 11 x 11 = 22-bit
//! significand fits binary32's 24 bits, so the product is exact, as SPEC §4 requires.
//!
//! Why `E = esum - lz = ea + eb + 98 - lz`: the value is `P * 2^(ea + eb - 50)` (each operand is
//! `sig * 2^(e - 25)`), and after normalization `{P << lz, 2'b00}` is the 24-bit binary32
//! significand, worth `sig24 * 2^(E - 150)`.
//!
//! Specials (never produced by the runtime, which rejects inf/NaN before offloading, but defined):
//! IEEE products. NaN if an operand is NaN or for inf x 0 (the canonical quiet NaN 0x7fc00000);
//! inf (signed) if an operand is inf; a zero product keeps the sign `sa ^ sb`. `valid = 0` gives
//! -0, the identity of IEEE addition for every accumulator value (+0 + -0 = +0), so a bubble
//! leaves the accumulator bit for bit unchanged.

use super::norm::LzNorm;
use super::prim::{Concat, ZeroExtend};
use super::{F32_NEG_INF, F32_NEG_ZERO, F32_POS_INF, F32_QNAN};
use rust_hdl::prelude::*;

/// Unsigned 11 x 11 -> 22-bit array multiplier: one ripple-carry adder per row.
///
/// Row `i` adds `b_i ? a : 0` to the running sum shifted right by one; the bit that falls off
/// the right of each row is a final product bit. yosys merges a plain sum of partial products
/// (`*` included, at 16 bits or 11) into one `$macc` and builds a Wallace tree of LUT full adders
/// (305 LUT4 / 242 LUT6 for 11 x 11); this form keeps one adder per row, which maps onto the carry
/// chains (231 LUT4 + 110 SB_CARRY / 209 LUT6): the rows' outputs are sliced, so `alumacc` cannot
/// merge them.
#[derive(LogicBlock)]
pub struct SigMul11 {
    pub a: Signal<In, Bits<11>>,
    pub b: Signal<In, Bits<11>>,
    pub p: Signal<Out, Bits<22>>,
    a_ext: ZeroExtend<11, 12>,
    /// `pp[i] = b_i ? a : 0`.
    pp: Vec<Signal<Local, Bits<12>>>,
    /// `s[i] = (s[i-1] >> 1) + pp[i]` (`= (sum of rows 0..=i) >> i`).
    s: Vec<Signal<Local, Bits<12>>>,
    /// Product bits `0..10` collect at the top and shift down one place per row.
    lo: Vec<Signal<Local, Bits<10>>>,
    cat: Concat<12, 10, 22>,
    zero12: Constant<Bits<12>>,
    zero10: Constant<Bits<10>>,
    top10: Constant<Bits<10>>,
}

impl Default for SigMul11 {
    fn default() -> Self {
        Self {
            a: Default::default(),
            b: Default::default(),
            p: Default::default(),
            a_ext: Default::default(),
            pp: (0..11).map(|_| Default::default()).collect(),
            s: (0..11).map(|_| Default::default()).collect(),
            lo: (0..10).map(|_| Default::default()).collect(),
            cat: Default::default(),
            zero12: Constant::new(bits(0)),
            zero10: Constant::new(bits(0)),
            top10: Constant::new(bits(1 << 9)),
        }
    }
}

impl Logic for SigMul11 {
    // Loop bounds are evaluated in Rust and unrolled in the Verilog; bodies use only the loop
    // variable (see `crate::mul`).
    #[hdl_gen]
    fn update(&mut self) {
        self.a_ext.narrow.next = self.a.val();
        for i in 0..11 {
            self.pp[i].next = self.zero12.val();
            if self.b.val().get_bit(i) {
                self.pp[i].next = self.a_ext.wide.val();
            }
        }
        self.s[0].next = self.pp[0].val();
        for i in 1..11 {
            self.s[i].next = (self.s[i - 1].val() >> 1) + self.pp[i].val();
        }
        self.lo[0].next = self.zero10.val();
        if self.s[0].val().get_bit(0) {
            self.lo[0].next = self.top10.val();
        }
        for i in 1..10 {
            self.lo[i].next = self.lo[i - 1].val() >> 1;
            if self.s[i].val().get_bit(0) {
                self.lo[i].next = (self.lo[i - 1].val() >> 1) | self.top10.val();
            }
        }
        self.cat.hi.next = self.s[10].val();
        self.cat.lo.next = self.lo[9].val();
        self.p.next = self.cat.y.val();
    }
}

/// Stage 1a: unpack, multiply the significands, add the exponents, classify (combinational).
#[derive(LogicBlock)]
pub struct Fp16MulFront {
    pub a: Signal<In, Bits<16>>,
    pub b: Signal<In, Bits<16>>,
    /// The exact significand product, not normalized.
    pub prod: Signal<Out, Bits<22>>,
    /// `max(ea, 1) + max(eb, 1) + 98`: the biased binary32 exponent before normalization.
    pub esum: Signal<Out, Bits<8>>,
    pub sign: Signal<Out, Bit>,
    /// NaN operand, or inf x 0.
    pub nan: Signal<Out, Bit>,
    /// inf operand (and not NaN).
    pub inf: Signal<Out, Bit>,
    /// `{e != 0, frac}`: the significand, normal or subnormal.
    siga: Concat<1, 10, 11>,
    sigb: Concat<1, 10, 11>,
    /// `max(e, 1)`: subnormals share the exponent of the smallest normals.
    ea1: ZeroExtend<5, 8>,
    eb1: ZeroExtend<5, 8>,
    mul: SigMul11,
    a_inf: Signal<Local, Bit>,
    b_inf: Signal<Local, Bit>,
    a_zero: Signal<Local, Bit>,
    b_zero: Signal<Local, Bit>,
    /// Field offsets, sized to index a 16-bit vector.
    sign_bit: Constant<Bits<4>>,
    exp_lsb: Constant<Bits<4>>,
    lsb16: Constant<Bits<4>>,
    one5: Constant<Bits<5>>,
    bias: Constant<Bits<8>>,
}

impl Default for Fp16MulFront {
    fn default() -> Self {
        Self {
            a: Default::default(),
            b: Default::default(),
            prod: Default::default(),
            esum: Default::default(),
            sign: Default::default(),
            nan: Default::default(),
            inf: Default::default(),
            siga: Default::default(),
            sigb: Default::default(),
            ea1: Default::default(),
            eb1: Default::default(),
            mul: Default::default(),
            a_inf: Default::default(),
            b_inf: Default::default(),
            a_zero: Default::default(),
            b_zero: Default::default(),
            sign_bit: Constant::new(bits(15)),
            exp_lsb: Constant::new(bits(10)),
            lsb16: Constant::new(bits(0)),
            one5: Constant::new(bits(1)),
            bias: Constant::new(bits(98)),
        }
    }
}

impl Logic for Fp16MulFront {
    // Fields are sliced from the ports wherever they are used rather than kept in shared locals:
    // statements that feed a wiring primitive and statements that read one share no local
    // signal (see `prim`).
    #[hdl_gen]
    fn update(&mut self) {
        self.siga.hi.next = self
            .a
            .val()
            .get_bits::<5>(self.exp_lsb.val().index())
            .any()
            .into();
        self.siga.lo.next = self.a.val().get_bits::<10>(self.lsb16.val().index());
        self.sigb.hi.next = self
            .b
            .val()
            .get_bits::<5>(self.exp_lsb.val().index())
            .any()
            .into();
        self.sigb.lo.next = self.b.val().get_bits::<10>(self.lsb16.val().index());
        self.mul.a.next = self.siga.y.val();
        self.mul.b.next = self.sigb.y.val();
        self.prod.next = self.mul.p.val();
        self.ea1.narrow.next = self.a.val().get_bits::<5>(self.exp_lsb.val().index());
        if !self.a.val().get_bits::<5>(self.exp_lsb.val().index()).any() {
            self.ea1.narrow.next = self.one5.val();
        }
        self.eb1.narrow.next = self.b.val().get_bits::<5>(self.exp_lsb.val().index());
        if !self.b.val().get_bits::<5>(self.exp_lsb.val().index()).any() {
            self.eb1.narrow.next = self.one5.val();
        }
        self.esum.next = self.ea1.wide.val() + self.eb1.wide.val() + self.bias.val();
        self.sign.next = self.a.val().get_bit(self.sign_bit.val().index())
            ^ self.b.val().get_bit(self.sign_bit.val().index());
        self.a_inf.next = self.a.val().get_bits::<5>(self.exp_lsb.val().index()).all()
            & !self.a.val().get_bits::<10>(self.lsb16.val().index()).any();
        self.b_inf.next = self.b.val().get_bits::<5>(self.exp_lsb.val().index()).all()
            & !self.b.val().get_bits::<10>(self.lsb16.val().index()).any();
        self.a_zero.next = !self.a.val().get_bits::<15>(self.lsb16.val().index()).any();
        self.b_zero.next = !self.b.val().get_bits::<15>(self.lsb16.val().index()).any();
        self.nan.next = (self.a.val().get_bits::<5>(self.exp_lsb.val().index()).all()
            & self.a.val().get_bits::<10>(self.lsb16.val().index()).any())
            | (self.b.val().get_bits::<5>(self.exp_lsb.val().index()).all()
                & self.b.val().get_bits::<10>(self.lsb16.val().index()).any())
            | (self.a_inf.val() & self.b_zero.val())
            | (self.b_inf.val() & self.a_zero.val());
        self.inf.next = (self.a_inf.val() | self.b_inf.val()) & !self.nan.val();
    }
}

/// Stage 1b: normalize the product, pack it as binary32, apply the special cases
/// (combinational).
#[derive(LogicBlock)]
pub struct Fp16MulBack {
    pub prod: Signal<In, Bits<22>>,
    pub esum: Signal<In, Bits<8>>,
    pub sign: Signal<In, Bit>,
    pub nan: Signal<In, Bit>,
    pub inf: Signal<In, Bit>,
    pub valid: Signal<In, Bit>,
    pub p: Signal<Out, Bits<32>>,
    norm: LzNorm<22>,
    lz8: ZeroExtend<5, 8>,
    exp: Signal<Local, Bits<8>>,
    /// `{normalized product without its leading one, 2'b00}`.
    frac: Concat<21, 2, 23>,
    mag: Concat<8, 23, 31>,
    word: Concat<1, 31, 32>,
    lsb22: Constant<Bits<5>>,
    lead22: Constant<Bits<5>>,
    zero2: Constant<Bits<2>>,
    pos_zero: Constant<Bits<32>>,
    neg_zero: Constant<Bits<32>>,
    pos_inf: Constant<Bits<32>>,
    neg_inf: Constant<Bits<32>>,
    qnan: Constant<Bits<32>>,
}

impl Default for Fp16MulBack {
    fn default() -> Self {
        Self {
            prod: Default::default(),
            esum: Default::default(),
            sign: Default::default(),
            nan: Default::default(),
            inf: Default::default(),
            valid: Default::default(),
            p: Default::default(),
            norm: Default::default(),
            lz8: Default::default(),
            exp: Default::default(),
            frac: Default::default(),
            mag: Default::default(),
            word: Default::default(),
            lsb22: Constant::new(bits(0)),
            lead22: Constant::new(bits(21)),
            zero2: Constant::new(bits(0)),
            pos_zero: Constant::new(bits(0)),
            neg_zero: Constant::new(bits(F32_NEG_ZERO as u64)),
            pos_inf: Constant::new(bits(F32_POS_INF as u64)),
            neg_inf: Constant::new(bits(F32_NEG_INF as u64)),
            qnan: Constant::new(bits(F32_QNAN as u64)),
        }
    }
}

impl Logic for Fp16MulBack {
    #[hdl_gen]
    fn update(&mut self) {
        self.norm.x.next = self.prod.val();
        self.lz8.narrow.next = self.norm.lz.val();
        self.exp.next = self.esum.val() - self.lz8.wide.val();
        self.frac.hi.next = self.norm.y.val().get_bits::<21>(self.lsb22.val().index());
        self.frac.lo.next = self.zero2.val();
        self.mag.hi.next = self.exp.val();
        self.mag.lo.next = self.frac.y.val();
        self.word.hi.next = self.sign.val().into();
        self.word.lo.next = self.mag.y.val();
        self.p.next = self.word.y.val();
        // A normalized nonzero product has its leading one at bit 21. (An inf operand has
        // significand 1.0, so inf x finite is never zero here: `nan` covers inf x 0.)
        if !self.norm.y.val().get_bit(self.lead22.val().index()) {
            self.p.next = self.pos_zero.val();
            if self.sign.val() {
                self.p.next = self.neg_zero.val();
            }
        }
        if self.inf.val() {
            self.p.next = self.pos_inf.val();
            if self.sign.val() {
                self.p.next = self.neg_inf.val();
            }
        }
        if self.nan.val() {
            self.p.next = self.qnan.val();
        }
        if !self.valid.val() {
            self.p.next = self.neg_zero.val();
        }
    }
}

/// Stage 1 without its pipeline register: the exact product of two binary16 values as
/// binary32 bits (combinational; the PE registers between the two halves).
#[derive(LogicBlock, Default)]
pub struct Fp16Mul {
    pub a: Signal<In, Bits<16>>,
    pub b: Signal<In, Bits<16>>,
    pub valid: Signal<In, Bit>,
    pub p: Signal<Out, Bits<32>>,
    front: Fp16MulFront,
    back: Fp16MulBack,
}

impl Logic for Fp16Mul {
    #[hdl_gen]
    fn update(&mut self) {
        self.front.a.next = self.a.val();
        self.front.b.next = self.b.val();
        self.back.prod.next = self.front.prod.val();
        self.back.esum.next = self.front.esum.val();
        self.back.sign.next = self.front.sign.val();
        self.back.nan.next = self.front.nan.val();
        self.back.inf.next = self.front.inf.val();
        self.back.valid.next = self.valid.val();
        self.p.next = self.back.p.val();
    }
}
