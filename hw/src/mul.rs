//! `B x B` two's-complement multiplier (`P = 2B` product bits), combinational, shift-and-add.
//!
//! rust-hdl's `*` exists only for 16 x 16 bits, so the product is built from partial products:
//! with `a` sign-extended to `P` bits,
//!
//! ```text
//!   a * b = sum_{i < B-1} b_i * (a << i)  -  b_{B-1} * (a << (B-1))      (mod 2^P)
//! ```
//!
//! because the MSB of a two's-complement `b` weighs `-2^(B-1)`. Each partial product is an AND of
//! the shifted `a` with one bit of `b` (an operand gate that folds into the adder's LUT), and the
//! partial sums ripple through `B - 1` adders. The result is exact: `|a*b| <= 2^(2B-2)` fits `P`
//! bits signed.
//!
//! `P` is a separate const generic because stable Rust cannot write `2 * B` in a type; `new`
//! checks `P == 2 * B`. Use the aliases [`Mul4`], [`Mul6`], [`Mul8`].

use crate::prim::SignExtend;
use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct SignedMul<const B: usize, const P: usize> {
    pub a: Signal<In, Bits<B>>,
    pub b: Signal<In, Bits<B>>,
    pub p: Signal<Out, Bits<P>>,
    ext: SignExtend<B, P>,
    /// `a_sh[i] = sext(a) << i`, `i < B`.
    a_sh: Vec<Signal<Local, Bits<P>>>,
    /// `pp[i] = b_i ? a_sh[i] : 0`.
    pp: Vec<Signal<Local, Bits<P>>>,
    /// `psum[i] = pp[0] + ... + pp[i]`, `i < B - 1`.
    psum: Vec<Signal<Local, Bits<P>>>,
    zero: Constant<Bits<P>>,
}

pub type Mul4 = SignedMul<4, 8>;
pub type Mul6 = SignedMul<6, 12>;
pub type Mul8 = SignedMul<8, 16>;

impl<const B: usize, const P: usize> SignedMul<B, P> {
    pub fn new() -> Self {
        assert!(
            B >= 2 && P == 2 * B,
            "SignedMul<{B}, {P}>: need B >= 2 and P = 2B"
        );
        Self {
            a: Default::default(),
            b: Default::default(),
            p: Default::default(),
            ext: SignExtend::default(),
            a_sh: (0..B).map(|_| Default::default()).collect(),
            pp: (0..B).map(|_| Default::default()).collect(),
            psum: (0..B - 1).map(|_| Default::default()).collect(),
            zero: Constant::new(Bits::default()),
        }
    }
}

impl<const B: usize, const P: usize> Default for SignedMul<B, P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize, const P: usize> Logic for SignedMul<B, P> {
    // Loop bounds are evaluated in Rust when the Verilog is generated (and unrolled there), so
    // they may use `B` (parenthesized: the macro appends `.into()` to them); expressions inside
    // the loops may only use the loop variables.
    #[hdl_gen]
    fn update(&mut self) {
        self.ext.narrow.next = self.a.val();
        self.a_sh[0].next = self.ext.wide.val();
        for i in 1..B {
            self.a_sh[i].next = self.a_sh[i - 1].val() << 1;
        }
        for i in 0..B {
            self.pp[i].next = self.zero.val();
            if self.b.val().get_bit(i) {
                self.pp[i].next = self.a_sh[i].val();
            }
        }
        self.psum[0].next = self.pp[0].val();
        for i in 1..(B - 1) {
            self.psum[i].next = self.psum[i - 1].val() + self.pp[i].val();
        }
        // A one-pass loop binds `i = B - 1` for the generated Verilog.
        for i in (B - 1)..B {
            self.p.next = self.psum[i - 1].val() - self.pp[i].val();
        }
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

    /// Drive `(a, b)` pairs through the rust-hdl simulation of the multiplier.
    fn check_pairs<const B: usize, const P: usize>(
        pairs: impl Iterator<Item = (i64, i64)>,
    ) -> usize {
        let mut uut = SignedMul::<B, P>::new();
        uut.connect_all();
        check_all(&uut).expect("multiplier is fully connected");
        let mut n = 0;
        for (a, b) in pairs {
            uut.a.next = bits::<B>(to_twos(a, B));
            uut.b.next = bits::<B>(to_twos(b, B));
            assert!(simulate(&mut uut, 100), "settles");
            let got = from_twos(uut.p.val().to_u64(), P);
            assert_eq!(got, a * b, "{a} * {b} at b={B}");
            n += 1;
        }
        n
    }

    fn all_pairs(b: usize) -> impl Iterator<Item = (i64, i64)> {
        let lo = -(1i64 << (b - 1));
        let hi = 1i64 << (b - 1);
        (lo..hi).flat_map(move |x| (lo..hi).map(move |y| (x, y)))
    }

    #[test]
    fn mul4_exhaustive() {
        assert_eq!(check_pairs::<4, 8>(all_pairs(4)), 1 << 8);
    }

    #[test]
    fn mul6_exhaustive() {
        assert_eq!(check_pairs::<6, 12>(all_pairs(6)), 1 << 12);
    }

    #[test]
    fn mul8_random_and_corners() {
        let mut rng = crate::testutil::Rng::new(0x5eed_0008);
        let corners = [-128i64, -127, -1, 0, 1, 127];
        let mut pairs: Vec<(i64, i64)> = corners
            .iter()
            .flat_map(|&x| corners.iter().map(move |&y| (x, y)))
            .collect();
        pairs.extend((0..3000).map(|_| (rng.range(-128, 127), rng.range(-128, 127))));
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
