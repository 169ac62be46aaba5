//! Sign-magnitude operand codes: how the PEs see SQ-b codes.
//!
//! SQ-b codes are symmetric, `-Q..=Q` with `Q = 2^(b-1) - 1` (SPEC §2), which is exactly the
//! range of a `b`-bit sign-magnitude word `{sign, |q|}`. In that form a PE multiplies two
//! `(b-1)`-bit magnitudes (unsigned, no sign-correction row), shifts an unsigned product, and
//! folds the product's sign into the accumulator's carry-in (`prim::AddCarry`). Yosys 0.23: the
//! 4x4 multiplier drops from 24 to 9 LUT6 (35 to 14 LUT4), and a 4x4 array, edge converters
//! included, from 1,800 to 1,640 LUT6 on xc7 without DSPs and from 2,318 to 2,118 LUT4 on iCE40
//! (sq4); from 2,740 to 2,458 and from 3,341 to 3,260 (sq6).
//!
//! The array's ports keep two's-complement codes; [`SignMagEncode`] converts each row of A and
//! each column of B once at the array's edge, and [`SignMagDecode`] converts the cascade outputs
//! back. The two's-complement code `-2^(b-1)` lies outside SQ-b; it encodes as `-0` and
//! multiplies as 0 (the host never sends it: `shiftkit_hw::accel::commands` and the simulator's
//! driver take SQ codes).

use rust_hdl::prelude::*;

/// The `b`-bit sign-magnitude word of an SQ-b code `v` (`|v| <= 2^(b-1) - 1`).
pub fn to_sign_mag(v: i64, b: usize) -> u64 {
    let sign = u64::from(v < 0) << (b - 1);
    sign | v.unsigned_abs()
}

/// The value of a `b`-bit sign-magnitude word (`-0` reads as 0).
pub fn from_sign_mag(w: u64, b: usize) -> i64 {
    let mag = (w & ((1 << (b - 1)) - 1)) as i64;
    if w >> (b - 1) & 1 == 1 {
        -mag
    } else {
        mag
    }
}

/// Two's complement -> sign-magnitude, `B` bits, combinational.
#[derive(LogicBlock)]
pub struct SignMagEncode<const B: usize> {
    pub twos: Signal<In, Bits<B>>,
    pub sign_mag: Signal<Out, Bits<B>>,
    /// Bits `0..B-1` (the magnitude field) and bit `B-1` (the sign).
    mag_mask: Constant<Bits<B>>,
    sign_mask: Constant<Bits<B>>,
    zero: Constant<Bits<B>>,
}

/// Sign-magnitude -> two's complement, `B` bits, combinational (`-0` becomes 0).
#[derive(LogicBlock)]
pub struct SignMagDecode<const B: usize> {
    pub sign_mag: Signal<In, Bits<B>>,
    pub twos: Signal<Out, Bits<B>>,
    mag_mask: Constant<Bits<B>>,
    sign_mask: Constant<Bits<B>>,
    zero: Constant<Bits<B>>,
}

fn masks<const B: usize>() -> (Constant<Bits<B>>, Constant<Bits<B>>) {
    assert!(B >= 2, "a sign-magnitude code needs B >= 2");
    let mag: Bits<B> = bits((1 << (B - 1)) - 1);
    let sign: Bits<B> = bits(1 << (B - 1));
    (Constant::new(mag), Constant::new(sign))
}

impl<const B: usize> Default for SignMagEncode<B> {
    fn default() -> Self {
        let (mag_mask, sign_mask) = masks::<B>();
        Self {
            twos: Default::default(),
            sign_mag: Default::default(),
            mag_mask,
            sign_mask,
            zero: Constant::new(Bits::default()),
        }
    }
}

impl<const B: usize> Default for SignMagDecode<B> {
    fn default() -> Self {
        let (mag_mask, sign_mask) = masks::<B>();
        Self {
            sign_mag: Default::default(),
            twos: Default::default(),
            mag_mask,
            sign_mask,
            zero: Constant::new(Bits::default()),
        }
    }
}

impl<const B: usize> Logic for SignMagEncode<B> {
    #[hdl_gen]
    fn update(&mut self) {
        self.sign_mag.next = self.twos.val();
        if (self.twos.val() & self.sign_mask.val()).any() {
            self.sign_mag.next =
                ((self.zero.val() - self.twos.val()) & self.mag_mask.val()) | self.sign_mask.val();
        }
    }
}

impl<const B: usize> Logic for SignMagDecode<B> {
    #[hdl_gen]
    fn update(&mut self) {
        self.twos.next = self.sign_mag.val();
        if (self.sign_mag.val() & self.sign_mask.val()).any() {
            self.twos.next = self.zero.val() - (self.sign_mag.val() & self.mag_mask.val());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mul::{from_twos, to_twos};

    #[test]
    fn software_encoding_round_trips_every_sq_code() {
        for b in [4usize, 6, 8] {
            let q = (1i64 << (b - 1)) - 1;
            for v in -q..=q {
                let w = to_sign_mag(v, b);
                assert!(w < 1 << b);
                assert_eq!(from_sign_mag(w, b), v);
            }
            assert_eq!(from_sign_mag(1 << (b - 1), b), 0, "-0");
        }
    }

    fn blocks_agree<const B: usize>() {
        let mut enc = SignMagEncode::<B>::default();
        let mut dec = SignMagDecode::<B>::default();
        enc.connect_all();
        dec.connect_all();
        let q = (1i64 << (B - 1)) - 1;
        for v in -q..=q {
            enc.twos.next = bits(to_twos(v, B));
            assert!(simulate(&mut enc, 10));
            assert_eq!(enc.sign_mag.val().to_u64(), to_sign_mag(v, B), "encode {v}");
            dec.sign_mag.next = bits(to_sign_mag(v, B));
            assert!(simulate(&mut dec, 10));
            assert_eq!(from_twos(dec.twos.val().to_u64(), B), v, "decode {v}");
        }
        // Outside SQ-b: -2^(B-1) encodes as -0, and -0 decodes as 0.
        enc.twos.next = bits(1 << (B - 1));
        assert!(simulate(&mut enc, 10));
        assert_eq!(enc.sign_mag.val().to_u64(), 1 << (B - 1));
        dec.sign_mag.next = bits(1 << (B - 1));
        assert!(simulate(&mut dec, 10));
        assert_eq!(dec.twos.val().to_u64(), 0);
    }

    #[test]
    fn encoder_and_decoder_blocks_match_the_software_encoding() {
        blocks_agree::<4>();
        blocks_agree::<6>();
        blocks_agree::<8>();
    }
}
