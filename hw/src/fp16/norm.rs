//! Leading-zero normalization: `y = x << lz` with `lz` the number of leading zeros of `x`.
//!
//! A five-stage logarithmic normalizer (shift by 16, 8, 4, 2, 1 when the top 16, 8, 4, 2, 1 bits
//! are zero) that produces the count as it goes: each stage is a zero test on a few top bits and a
//! 2:1 mux, so the leading-zero count costs almost nothing beyond the shifter itself. Used twice:
//! on the 22-bit significand product (which has leading zeros when an operand is subnormal) and
//! on the 28-bit sum of the adder (cancellation). `17 <= N <= 32`; for `x = 0`, `y = 0` and
//! `lz = 31`, which callers never use (they test the top bit of `y` for zero instead).

use rust_hdl::prelude::*;

#[derive(LogicBlock)]
pub struct LzNorm<const N: usize> {
    pub x: Signal<In, Bits<N>>,
    pub y: Signal<Out, Bits<N>>,
    pub lz: Signal<Out, Bits<5>>,
    /// Value after the 16-, 8-, 4-, 2-bit stages (the 1-bit stage drives `y`).
    v16: Signal<Local, Bits<N>>,
    v8: Signal<Local, Bits<N>>,
    v4: Signal<Local, Bits<N>>,
    v2: Signal<Local, Bits<N>>,
    /// Each stage's contribution to the count (its shift or zero).
    c16: Signal<Local, Bits<5>>,
    c8: Signal<Local, Bits<5>>,
    c4: Signal<Local, Bits<5>>,
    c2: Signal<Local, Bits<5>>,
    c1: Signal<Local, Bits<5>>,
    /// Masks of the top 16, 8, 4, 2, 1 bits.
    top16: Constant<Bits<N>>,
    top8: Constant<Bits<N>>,
    top4: Constant<Bits<N>>,
    top2: Constant<Bits<N>>,
    top1: Constant<Bits<N>>,
    k16: Constant<Bits<5>>,
    k8: Constant<Bits<5>>,
    k4: Constant<Bits<5>>,
    k2: Constant<Bits<5>>,
    k1: Constant<Bits<5>>,
    k0: Constant<Bits<5>>,
}

/// The top `n` bits of an `N`-bit vector.
fn top_mask<const N: usize>(n: usize) -> Bits<N> {
    let mut v = Bits::<N>::default();
    for i in N - n..N {
        v = v.replace_bit(i, true);
    }
    v
}

impl<const N: usize> Default for LzNorm<N> {
    fn default() -> Self {
        assert!((17..=32).contains(&N), "LzNorm<{N}>: need 17 <= N <= 32");
        Self {
            x: Default::default(),
            y: Default::default(),
            lz: Default::default(),
            v16: Default::default(),
            v8: Default::default(),
            v4: Default::default(),
            v2: Default::default(),
            c16: Default::default(),
            c8: Default::default(),
            c4: Default::default(),
            c2: Default::default(),
            c1: Default::default(),
            top16: Constant::new(top_mask(16)),
            top8: Constant::new(top_mask(8)),
            top4: Constant::new(top_mask(4)),
            top2: Constant::new(top_mask(2)),
            top1: Constant::new(top_mask(1)),
            k16: Constant::new(bits(16)),
            k8: Constant::new(bits(8)),
            k4: Constant::new(bits(4)),
            k2: Constant::new(bits(2)),
            k1: Constant::new(bits(1)),
            k0: Constant::new(bits(0)),
        }
    }
}

impl<const N: usize> Logic for LzNorm<N> {
    #[hdl_gen]
    fn update(&mut self) {
        self.v16.next = self.x.val();
        self.c16.next = self.k0.val();
        if !(self.x.val() & self.top16.val()).any() {
            self.v16.next = self.x.val() << 16;
            self.c16.next = self.k16.val();
        }
        self.v8.next = self.v16.val();
        self.c8.next = self.k0.val();
        if !(self.v16.val() & self.top8.val()).any() {
            self.v8.next = self.v16.val() << 8;
            self.c8.next = self.k8.val();
        }
        self.v4.next = self.v8.val();
        self.c4.next = self.k0.val();
        if !(self.v8.val() & self.top4.val()).any() {
            self.v4.next = self.v8.val() << 4;
            self.c4.next = self.k4.val();
        }
        self.v2.next = self.v4.val();
        self.c2.next = self.k0.val();
        if !(self.v4.val() & self.top2.val()).any() {
            self.v2.next = self.v4.val() << 2;
            self.c2.next = self.k2.val();
        }
        self.y.next = self.v2.val();
        self.c1.next = self.k0.val();
        if !(self.v2.val() & self.top1.val()).any() {
            self.y.next = self.v2.val() << 1;
            self.c1.next = self.k1.val();
        }
        // The stage contributions are distinct powers of two: OR is their sum.
        self.lz.next =
            self.c16.val() | self.c8.val() | self.c4.val() | self.c2.val() | self.c1.val();
    }
}
