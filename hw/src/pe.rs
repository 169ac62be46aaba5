//! The ShiftQuant processing element (Gemmini style): forwarding registers around a MAC block.
//!
//! ```text
//!                 b_in
//!                  |
//!   a_in, ctl_in --+--[a_reg, ctl_reg]--> a_out, ctl_out      (A and its control go east)
//!                  |        |
//!              [b_reg]      v
//!                  |-->  ShiftMac  <-- drain_in   (from the PE to the south)
//!                  v        |--------> drain_out  (to the PE to the north)
//!                b_out                             (B goes south)
//! ```
//!
//! The control bundle [`MacCtl`] (valid, flush, per-K shift) travels east with A, so every PE sees
//! the shift of exactly the `k` whose operands it is multiplying.
//!
//! Operands arrive as sign-magnitude words (the array converts its two's-complement inputs once
//! per row and column: `crate::signmag`), so the MAC multiplies and shifts unsigned magnitudes
//! and lets the sign ride along: a negative product enters the accumulator as the one's
//! complement of its shifted magnitude plus a carry-in (`prim::AddCarry`), so the adder stays one
//! plain carry chain. Against a two's-complement multiplier with a sign-extending shifter this
//! saves LUTs on every target (figures in `crate::signmag`).
//!
//! [`ShiftMac`] is a three-stage pipeline: multiply, shift, accumulate. At each clock edge,
//!
//! ```text
//!   stage 1:  prod  <= valid ? |qa| * |qb| : 0,  neg <= sign(qa) ^ sign(qb)   (product registers)
//!   stage 2:  term  <= neg ? ~(zext(prod) << shift) : zext(prod) << shift,  tneg <= neg
//!   stage 3:  sum    = acc + term + tneg                        (ACC-bit two's complement)
//!             acc   <= flush ? 0   : sum
//!             drain <= flush ? sum : drain_in                   (second buffer + drain chain)
//! ```
//!
//! where `shift` and `flush` are those of the `k` whose product is in the stage (delayed along
//! with it). Why three stages: in one cycle, multiplier -> barrel shifter -> ACC-bit carry chain
//! held a 4x4 sq4 accelerator on an iCE40 UP5K to 20 MHz (of its 49 ns, about 20 in the
//! multiplier, 13 in the shifter, 13 in the adder); with the product register alone, shifter +
//! adder still made 34 ns. Each stage is now one of the three. The registers cost almost no LUTs:
//! their bits come out of LUTs that the flip-flops pack with, an invalid cycle is the product
//! register's synchronous reset, and the delayed shift / flush bits equal other PEs' control
//! registers (synthesis merges the copies). The math is unchanged; every result leaves two cycles
//! later than in a single-stage MAC.
//!
//! Two accumulators (Gemmini's double buffering, done by copy rather than by swapping roles): `acc`
//! computes; on `flush` its final value moves into `drain`, which from then on is one stage of the
//! per-column drain chain that shifts results north, one PE per clock, while `acc` already
//! accumulates the next tile. Copying costs only the 2:1 mux that any drain chain needs; swapping
//! roles would add muxes on the adder's input as well. The clear on `flush` maps onto the
//! flip-flops' synchronous reset, so it costs no LUTs.
//!
//! Widths: `B` operand bits, `P = 2B` product bits, `ACC` the accumulator *container*. The
//! declared accumulator width `acc_bits <= ACC` and the largest shift `2E` are run-time
//! parameters that become Verilog `localparam`s: the sum is wrapped to `acc_bits` (bits above are
//! copies of bit `acc_bits - 1`) and the shift amount is masked to the bits that `2E` needs.
//! Synthesis folds both constants, so a design pays only for `acc_bits` accumulator bits and for
//! the shifter stages its window needs, while rust-hdl needs just one type per `(B, ACC)`.

use crate::mul::SignMagMul;
use crate::prim::{AddCarry, ZeroExtend};
use rust_hdl::prelude::*;

/// Bits of the per-K shift amount: `2 * MAX_WINDOW = 30 < 2^5`.
pub const SHIFT_BITS: usize = 5;

/// Width of the packed control bundle: `valid`, `flush`, `shift`.
pub const CTL_BITS: usize = 2 + SHIFT_BITS;

/// The control bundle that travels with A, packed LSB first as `{shift[4:0], flush, valid}`.
///
/// It is a plain `Bits<CTL_BITS>` in the hardware rather than a rust-hdl `LogicStruct`: rust-hdl
/// prints struct-field selects with 64-bit offsets (`ctl[(64'h2)+:(5)]`), which Verilator flags;
/// the PE selects the fields with `localparam` indices of the right width instead.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MacCtl {
    /// This cycle's operands belong to the tile: accumulate their product.
    pub valid: bool,
    /// Last element of a tile: after accumulating it (if valid), move the sum into the drain
    /// register and clear the accumulator. A bubble (`valid = 0`) with `flush = 1` just drains.
    pub flush: bool,
    /// The per-K shift `ea_k + eb_k`, `0..=2E`.
    pub shift: u32,
}

impl MacCtl {
    pub const VALID_BIT: usize = 0;
    pub const FLUSH_BIT: usize = 1;
    pub const SHIFT_LSB: usize = 2;

    pub fn new(valid: bool, flush: bool, shift: u32) -> Self {
        MacCtl {
            valid,
            flush,
            shift,
        }
    }
    pub fn idle() -> Self {
        MacCtl::default()
    }
    /// The packed value to drive on a `ctl` port.
    pub fn pack(&self) -> u64 {
        u64::from(self.valid)
            | u64::from(self.flush) << Self::FLUSH_BIT
            | (u64::from(self.shift) & ((1 << SHIFT_BITS) - 1)) << Self::SHIFT_LSB
    }
    pub fn to_bits(&self) -> Bits<CTL_BITS> {
        bits(self.pack())
    }
}

/// Run-time parameters of a PE (they become `localparam`s; see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeParams {
    /// Declared accumulator width, `<= ACC`.
    pub acc_bits: usize,
    /// Largest per-K shift the design must support (`2E`), `< 2^SHIFT_BITS`.
    pub max_shift: u32,
}

impl PeParams {
    /// The shift-amount mask: every bit that a value `0..=max_shift` can set.
    pub fn shift_mask(&self) -> u64 {
        if self.max_shift == 0 {
            0
        } else {
            (1u64 << (32 - self.max_shift.leading_zeros())) - 1
        }
    }
}

/// All-ones in bits `lo..hi` of an `N`-bit vector.
fn bit_range<const N: usize>(lo: usize, hi: usize) -> Bits<N> {
    let mut v = Bits::<N>::default();
    for i in lo..hi.min(N) {
        v = v.replace_bit(i, true);
    }
    v
}

/// Multiply, barrel-shift, accumulate; plus the drain register (see the module doc).
#[derive(LogicBlock)]
pub struct ShiftMac<const B: usize, const P: usize, const ACC: usize> {
    pub clock: Signal<In, Clock>,
    pub a: Signal<In, Bits<B>>,
    pub b: Signal<In, Bits<B>>,
    pub ctl: Signal<In, Bits<CTL_BITS>>,
    /// Drain chain input, from the PE to the south (zero at the bottom row).
    pub drain_in: Signal<In, Bits<ACC>>,
    pub drain_valid_in: Signal<In, Bit>,
    /// This PE's drain register, to the PE to the north (the array output at the top row).
    pub drain_out: Signal<Out, Bits<ACC>>,
    pub drain_valid_out: Signal<Out, Bit>,
    mul: SignMagMul<B, P>,
    /// Stage 1 -> 2: the product's magnitude (zero in an invalid cycle) and sign, its shift
    /// and flush.
    prod: DFF<Bits<P>>,
    prod_neg: DFF<Bit>,
    prod_shift: DFF<Bits<SHIFT_BITS>>,
    prod_flush: DFF<Bit>,
    /// Stage 2 -> 3: the shifted magnitude (inverted when negative), its sign and flush.
    term: DFF<Bits<ACC>>,
    term_neg: DFF<Bit>,
    term_flush: DFF<Bit>,
    pext: ZeroExtend<P, ACC>,
    /// `acc + term + term_neg`.
    add: AddCarry<ACC>,
    sum: Signal<Local, Bits<ACC>>,
    /// `sum` wrapped to `acc_bits` and sign-extended to the container.
    sum_w: Signal<Local, Bits<ACC>>,
    /// `drain_in` likewise (so that container bits above `acc_bits` are provably copies).
    drain_w: Signal<Local, Bits<ACC>>,
    acc: DFF<Bits<ACC>>,
    drain: DFF<Bits<ACC>>,
    drain_valid: DFF<Bit>,
    zero: Constant<Bits<ACC>>,
    zero_p: Constant<Bits<P>>,
    /// Field indices into `ctl`; `localparam`s sized to index a `CTL_BITS` vector.
    valid_bit: Constant<Bits<3>>,
    flush_bit: Constant<Bits<3>>,
    shift_lsb: Constant<Bits<3>>,
    shift_mask: Constant<Bits<SHIFT_BITS>>,
    /// Bits `0..acc_bits`.
    acc_keep: Constant<Bits<ACC>>,
    /// Bit `acc_bits - 1` (the sign of the declared accumulator).
    acc_sign: Constant<Bits<ACC>>,
    /// Bits `acc_bits..ACC`.
    acc_ext: Constant<Bits<ACC>>,
}

impl<const B: usize, const P: usize, const ACC: usize> ShiftMac<B, P, ACC> {
    pub fn new(params: PeParams) -> Self {
        assert!(
            P == 2 * B && P < ACC,
            "ShiftMac<{B}, {P}, {ACC}>: need P = 2B < ACC"
        );
        // Same rule as `ArrayConfig::validated`: one product with the largest shift fits.
        let min = 2 * (B - 1) + params.max_shift as usize + 1;
        assert!(
            params.acc_bits >= min && params.acc_bits <= ACC,
            "acc_bits {} out of range",
            params.acc_bits
        );
        assert!(
            params.max_shift < (1 << SHIFT_BITS),
            "max_shift {} too large",
            params.max_shift
        );
        Self {
            clock: Default::default(),
            a: Default::default(),
            b: Default::default(),
            ctl: Default::default(),
            drain_in: Default::default(),
            drain_valid_in: Default::default(),
            drain_out: Default::default(),
            drain_valid_out: Default::default(),
            mul: SignMagMul::new(),
            prod: Default::default(),
            prod_neg: Default::default(),
            prod_shift: Default::default(),
            prod_flush: Default::default(),
            term: Default::default(),
            term_neg: Default::default(),
            term_flush: Default::default(),
            pext: ZeroExtend::default(),
            add: AddCarry::default(),
            sum: Default::default(),
            sum_w: Default::default(),
            drain_w: Default::default(),
            acc: Default::default(),
            drain: Default::default(),
            drain_valid: Default::default(),
            zero: Constant::new(Bits::default()),
            zero_p: Constant::new(Bits::default()),
            valid_bit: Constant::new(bits(MacCtl::VALID_BIT as u64)),
            flush_bit: Constant::new(bits(MacCtl::FLUSH_BIT as u64)),
            shift_lsb: Constant::new(bits(MacCtl::SHIFT_LSB as u64)),
            shift_mask: Constant::new(bits(params.shift_mask())),
            acc_keep: Constant::new(bit_range(0, params.acc_bits)),
            acc_sign: Constant::new(bit_range(params.acc_bits - 1, params.acc_bits)),
            acc_ext: Constant::new(bit_range(params.acc_bits, ACC)),
        }
    }
}

impl<const B: usize, const P: usize, const ACC: usize> Logic for ShiftMac<B, P, ACC> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            prod,
            prod_neg,
            prod_shift,
            prod_flush,
            term,
            term_neg,
            term_flush,
            acc,
            drain,
            drain_valid
        );
        // Stage 1: multiply. An invalid cycle registers 0 (the flip-flops' synchronous reset).
        self.mul.a.next = self.a.val();
        self.mul.b.next = self.b.val();
        self.prod.d.next = self.mul.mag.val();
        if !self.ctl.val().get_bit(self.valid_bit.val().index()) {
            self.prod.d.next = self.zero_p.val();
        }
        self.prod_neg.d.next = self.mul.neg.val();
        self.prod_shift.d.next = self
            .ctl
            .val()
            .get_bits::<SHIFT_BITS>(self.shift_lsb.val().index())
            & self.shift_mask.val();
        self.prod_flush.d.next = self.ctl.val().get_bit(self.flush_bit.val().index());
        // Stage 2: shift; a negative product's one's complement (the +1 is stage 3's carry-in).
        // The xor costs no LUTs on iCE40 (the shifter's last 2:1 mux has an input to spare) and
        // keeps the LUT in front of the carry chain a plain sum bit.
        self.pext.narrow.next = self.prod.q.val();
        self.term.d.next = self.pext.wide.val() << self.prod_shift.q.val();
        if self.prod_neg.q.val() {
            self.term.d.next = !(self.pext.wide.val() << self.prod_shift.q.val());
        }
        self.term_neg.d.next = self.prod_neg.q.val();
        self.term_flush.d.next = self.prod_flush.q.val();
        // Stage 3: accumulate; on flush, hand the sum to the drain register and restart.
        self.add.a.next = self.acc.q.val();
        self.add.b.next = self.term.q.val();
        self.add.cin.next = self.term_neg.q.val();
        self.sum.next = self.add.sum.val();
        self.sum_w.next = self.sum.val() & self.acc_keep.val();
        if (self.sum.val() & self.acc_sign.val()).any() {
            self.sum_w.next = self.sum.val() | self.acc_ext.val();
        }
        self.drain_w.next = self.drain_in.val() & self.acc_keep.val();
        if (self.drain_in.val() & self.acc_sign.val()).any() {
            self.drain_w.next = self.drain_in.val() | self.acc_ext.val();
        }
        self.acc.d.next = self.sum_w.val();
        self.drain.d.next = self.drain_w.val();
        self.drain_valid.d.next = self.drain_valid_in.val();
        if self.term_flush.q.val() {
            self.acc.d.next = self.zero.val();
            self.drain.d.next = self.sum_w.val();
            self.drain_valid.d.next = true;
        }
        self.drain_out.next = self.drain.q.val();
        self.drain_valid_out.next = self.drain_valid.q.val();
    }
}

/// One PE: registers that forward A + control east and B south, around a [`ShiftMac`].
#[derive(LogicBlock)]
pub struct SqPe<const B: usize, const P: usize, const ACC: usize> {
    pub clock: Signal<In, Clock>,
    pub a_in: Signal<In, Bits<B>>,
    pub ctl_in: Signal<In, Bits<CTL_BITS>>,
    pub b_in: Signal<In, Bits<B>>,
    pub a_out: Signal<Out, Bits<B>>,
    pub ctl_out: Signal<Out, Bits<CTL_BITS>>,
    pub b_out: Signal<Out, Bits<B>>,
    pub drain_in: Signal<In, Bits<ACC>>,
    pub drain_valid_in: Signal<In, Bit>,
    pub drain_out: Signal<Out, Bits<ACC>>,
    pub drain_valid_out: Signal<Out, Bit>,
    a_reg: DFF<Bits<B>>,
    ctl_reg: DFF<Bits<CTL_BITS>>,
    b_reg: DFF<Bits<B>>,
    mac: ShiftMac<B, P, ACC>,
}

impl<const B: usize, const P: usize, const ACC: usize> SqPe<B, P, ACC> {
    pub fn new(params: PeParams) -> Self {
        Self {
            clock: Default::default(),
            a_in: Default::default(),
            ctl_in: Default::default(),
            b_in: Default::default(),
            a_out: Default::default(),
            ctl_out: Default::default(),
            b_out: Default::default(),
            drain_in: Default::default(),
            drain_valid_in: Default::default(),
            drain_out: Default::default(),
            drain_valid_out: Default::default(),
            a_reg: Default::default(),
            ctl_reg: Default::default(),
            b_reg: Default::default(),
            mac: ShiftMac::new(params),
        }
    }
}

impl<const B: usize, const P: usize, const ACC: usize> Logic for SqPe<B, P, ACC> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, a_reg, ctl_reg, b_reg);
        self.mac.clock.next = self.clock.val();
        self.a_reg.d.next = self.a_in.val();
        self.ctl_reg.d.next = self.ctl_in.val();
        self.b_reg.d.next = self.b_in.val();
        self.a_out.next = self.a_reg.q.val();
        self.ctl_out.next = self.ctl_reg.q.val();
        self.b_out.next = self.b_reg.q.val();
        self.mac.a.next = self.a_reg.q.val();
        self.mac.b.next = self.b_reg.q.val();
        self.mac.ctl.next = self.ctl_reg.q.val();
        self.mac.drain_in.next = self.drain_in.val();
        self.mac.drain_valid_in.next = self.drain_valid_in.val();
        self.drain_out.next = self.mac.drain_out.val();
        self.drain_valid_out.next = self.mac.drain_valid_out.val();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mul::from_twos;
    use crate::signmag::to_sign_mag;
    use crate::testutil::Rng;

    /// One clock cycle: let the new inputs settle, then a rising and a falling edge.
    pub(crate) fn tick<T: Block>(uut: &mut T, clock: impl Fn(&mut T, bool)) {
        assert!(simulate(uut, 200), "settles before the edge");
        clock(uut, true);
        assert!(simulate(uut, 200), "settles after the rising edge");
        clock(uut, false);
        assert!(simulate(uut, 200), "settles after the falling edge");
    }

    /// Drive one `ShiftMac` directly: accumulate a random dot product with random shifts, flush,
    /// and read the sum from the drain register; twice, to see the clear.
    fn mac_dot<const B: usize, const P: usize, const ACC: usize>(
        acc_bits: usize,
        window: u32,
        seed: u64,
    ) {
        let params = PeParams {
            acc_bits,
            max_shift: 2 * window,
        };
        let mut uut = ShiftMac::<B, P, ACC>::new(params);
        uut.drain_in.next = Bits::default();
        uut.drain_valid_in.next = false;
        uut.connect_all();
        check_all(&uut).expect("connected");
        let q = (1i64 << (B - 1)) - 1;
        let mut rng = Rng::new(seed);
        let clk = |u: &mut ShiftMac<B, P, ACC>, v: bool| u.clock.next = Clock { clk: v };
        for _round in 0..2 {
            let k_len = rng.range(1, 12) as usize;
            let mut want = 0i64;
            for k in 0..k_len {
                let (a, b) = (rng.range(-q, q), rng.range(-q, q));
                let s = rng.range(0, 2 * window as i64) as u32;
                let valid = rng.range(0, 4) != 0;
                if valid {
                    want += (a * b) << s;
                }
                uut.a.next = bits(to_sign_mag(a, B));
                uut.b.next = bits(to_sign_mag(b, B));
                uut.ctl.next = MacCtl::new(valid, k + 1 == k_len, s).to_bits();
                tick(&mut uut, clk);
            }
            // The flush reaches stage 3 two cycles later.
            uut.ctl.next = MacCtl::idle().to_bits();
            for _ in 0..2 {
                assert!(!uut.drain_valid_out.val());
                tick(&mut uut, clk);
            }
            assert!(uut.drain_valid_out.val());
            let got = from_twos(uut.drain_out.val().to_u64(), ACC);
            assert_eq!(got, want, "B={B} ACC={ACC} acc_bits={acc_bits} E={window}");
        }
    }

    #[test]
    fn shift_mac_accumulates_shifted_products() {
        mac_dot::<4, 8, 32>(32, 7, 1);
        mac_dot::<4, 8, 32>(21, 7, 2);
        mac_dot::<6, 12, 32>(32, 7, 3);
        mac_dot::<8, 16, 48>(48, 15, 4);
        mac_dot::<4, 8, 32>(7, 0, 5);
    }

    #[test]
    fn accumulator_wraps_at_acc_bits() {
        // acc_bits = 9 with sq4, E = 0: products up to 49; 8 * 49 = 392 wraps to 392 - 512.
        let params = PeParams {
            acc_bits: 9,
            max_shift: 0,
        };
        let mut uut = ShiftMac::<4, 8, 32>::new(params);
        uut.drain_in.next = Bits::default();
        uut.connect_all();
        let clk = |u: &mut ShiftMac<4, 8, 32>, v: bool| u.clock.next = Clock { clk: v };
        for k in 0..8 {
            uut.a.next = bits(7);
            uut.b.next = bits(7);
            uut.ctl.next = MacCtl::new(true, k == 7, 0).to_bits();
            tick(&mut uut, clk);
        }
        uut.ctl.next = MacCtl::idle().to_bits();
        tick(&mut uut, clk);
        tick(&mut uut, clk);
        assert_eq!(from_twos(uut.drain_out.val().to_u64(), 32), 392 - 512);
    }

    #[test]
    fn shift_mask_covers_the_window() {
        let m = |s| {
            PeParams {
                acc_bits: 32,
                max_shift: s,
            }
            .shift_mask()
        };
        assert_eq!(
            (m(0), m(1), m(2), m(14), m(15), m(16), m(30)),
            (0, 1, 3, 15, 15, 31, 31)
        );
    }
}
