//! `B x B` sign-magnitude multiplier (`P = 2B` product bits), combinational, shift-and-add.
//!
//! rust-hdl's `*` exists only for 16 x 16 bits, so the product is built from partial products.
//! The operands are sign-magnitude words (`crate::signmag`): the `B - 1`-bit magnitudes multiply
//! unsigned,
//!
//! ```text
//!   |a| * |b| = sum_{i < B-1} b_i * (|a| << i),        sign = a_{B-1} xor b_{B-1}
//! ```
//!
//! Each partial product is an AND of the shifted magnitude with one bit of `b` (an operand gate
//! that folds into the adder's LUT), and the partial sums ripple through `B - 2` adders. Against
//! a two's-complement multiplier this drops one partial-product row (the MSB's `-2^(B-1)` row)
//! and all sign extension: the product is at most `(2^(B-1) - 1)^2 < 2^(2B-2)`, so its top two
//! bits are always zero. The sign is applied later, by the accumulator (`crate::pe`).
//!
//! `P` is a separate const generic because stable Rust cannot write `2 * B` in a type; `new`
//! checks `P == 2 * B`. Use the aliases [`Mul4`], [`Mul6`], [`Mul8`].

use crate::prim::ZeroExtend;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct SignMagMul<const B: usize, const P: usize> {
    /// Sign-magnitude operands `{sign, |q|}`.
    pub a: Signal<In, Bits<B>>,
    pub b: Signal<In, Bits<B>>,
    /// `|a| * |b|`, unsigned.
    pub mag: Signal<Out, Bits<P>>,
    /// The product is negative (or `-0`).
    pub neg: Signal<Out, Bit>,
    ext: ZeroExtend<B, P>,
    /// `a_sh[i] = |a| << i`, `i < B - 1`.
    a_sh: Vec<Signal<Local, Bits<P>>>,
    /// `pp[i] = b_i ? a_sh[i] : 0`.
    pp: Vec<Signal<Local, Bits<P>>>,
    /// `psum[i] = pp[0] + ... + pp[i]`.
    psum: Vec<Signal<Local, Bits<P>>>,
    mag_mask: Constant<Bits<B>>,
    sign_bit: Constant<Bits<B>>,
    zero: Constant<Bits<P>>,
}

pub type Mul4 = SignMagMul<4, 8>;
pub type Mul6 = SignMagMul<6, 12>;
pub type Mul8 = SignMagMul<8, 16>;

impl<const B: usize, const P: usize> SignMagMul<B, P> {
    pub fn new() -> Self {
        assert!(
            B >= 2 && P == 2 * B,
            "SignMagMul<{B}, {P}>: need B >= 2 and P = 2B"
        );
        Self {
            a: Default::default(),
            b: Default::default(),
            mag: Default::default(),
            neg: Default::default(),
            ext: ZeroExtend::default(),
            a_sh: (0..B - 1).map(|_| Default::default()).collect(),
            pp: (0..B - 1).map(|_| Default::default()).collect(),
            psum: (0..B - 1).map(|_| Default::default()).collect(),
            mag_mask: Constant::new(bits((1 << (B - 1)) - 1)),
            sign_bit: Constant::new(bits(1 << (B - 1))),
            zero: Constant::new(Bits::default()),
        }
    }
}

impl<const B: usize, const P: usize> Default for SignMagMul<B, P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize, const P: usize> Logic for SignMagMul<B, P> {
    // Loop bounds are evaluated in Rust when the Verilog is generated (and unrolled there), so
    // they may use `B` (parenthesized: the macro appends `.into()` to them); expressions inside
    // the loops may only use the loop variables.
    #[hdl_gen]
    fn update(&mut self) {
        self.ext.narrow.next = self.a.val() & self.mag_mask.val();
        self.a_sh[0].next = self.ext.wide.val();
        for i in 1..(B - 1) {
            self.a_sh[i].next = self.a_sh[i - 1].val() << 1;
        }
        for i in 0..(B - 1) {
            self.pp[i].next = self.zero.val();
            if self.b.val().get_bit(i) {
                self.pp[i].next = self.a_sh[i].val();
            }
        }
        self.psum[0].next = self.pp[0].val();
        for i in 1..(B - 1) {
            self.psum[i].next = self.psum[i - 1].val() + self.pp[i].val();
        }
        // A one-pass loop binds `i = B - 2` for the generated Verilog.
        for i in (B - 2)..(B - 1) {
            self.mag.next = self.psum[i].val();
        }
        self.neg.next = ((self.a.val() ^ self.b.val()) & self.sign_bit.val()).any();
    }
}

/// The value of a `w`-bit two's-complement field.
pub fn from_twos(v: u64, w: usize) -> i64 {
    let shift = 64 - w as u32;
    ((v << shift) as i64) >> shift
}

/// The `w`-bit two's-complement encoding of `v` (wraps if `v` does not fit).
pub fn to_twos(v: i64, w: usize) -> u64 {
    if w >= 64 {
        v as u64
    } else {
        (v as u64) & ((1u64 << w) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signmag::to_sign_mag;

    /// Drive `(a, b)` pairs of SQ codes through the rust-hdl simulation of the multiplier.
    fn check_pairs<const B: usize, const P: usize>(
        pairs: impl Iterator<Item = (i64, i64)>,
    ) -> usize {
        let mut uut = SignMagMul::<B, P>::new();
        uut.connect_all();
        check_all(&uut).expect("multiplier is fully connected");
        let mut n = 0;
        for (a, b) in pairs {
            uut.a.next = bits::<B>(to_sign_mag(a, B));
            uut.b.next = bits::<B>(to_sign_mag(b, B));
            assert!(simulate(&mut uut, 100), "settles");
            let mag = uut.mag.val().to_u64() as i64;
            assert!(mag < 1 << (P - 2), "top two product bits stay zero");
            let got = if uut.neg.val() { -mag } else { mag };
            assert_eq!(got, a * b, "{a} * {b} at b={B}");
            assert_eq!(uut.neg.val(), (a < 0) != (b < 0), "sign of {a} * {b}");
            n += 1;
        }
        n
    }

    /// Every pair of SQ-b codes, `-Q..=Q`.
    fn all_pairs(b: usize) -> impl Iterator<Item = (i64, i64)> {
        let q = (1i64 << (b - 1)) - 1;
        (-q..=q).flat_map(move |x| (-q..=q).map(move |y| (x, y)))
    }

    #[test]
    fn mul4_exhaustive() {
        assert_eq!(check_pairs::<4, 8>(all_pairs(4)), 15 * 15);
    }

    #[test]
    fn mul6_exhaustive() {
        assert_eq!(check_pairs::<6, 12>(all_pairs(6)), 63 * 63);
    }

    #[test]
    fn mul8_random_and_corners() {
        let mut rng = crate::testutil::Rng::new(0x5eed_0008);
        let corners = [-127i64, -126, -1, 0, 1, 127];
        let mut pairs: Vec<(i64, i64)> = corners
            .iter()
            .flat_map(|&x| corners.iter().map(move |&y| (x, y)))
            .collect();
        pairs.extend((0..3000).map(|_| (rng.range(-127, 127), rng.range(-127, 127))));
        assert_eq!(check_pairs::<8, 16>(pairs.into_iter()), 36 + 3000);
    }

    #[test]
    fn generated_verilog_uses_no_multiply_operator() {
        let mut uut = Mul4::new();
        uut.connect_all();
        let v = generate_verilog(&uut);
        assert!(!v.contains(" * "), "{v}");
        assert!(v.contains("module top("));
    }
}
