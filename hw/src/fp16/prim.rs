//! Wiring primitives for the FP16 datapath whose Verilog is written by hand.
//!
//! rust-hdl has no concatenation, and its widening `bit_cast` prints as `((x) & N'hff..)`, which
//! leaves the extension to Verilog's implicit rules and trips `verilator -Wall` (WIDTHEXPAND).
//! Like `crate::prim::SignExtend`, each primitive here is a leaf block with a one-line Verilog body
//! and a Rust `update` that says the same thing: the simulations exercise the latter, Verilator
//! and yosys the former. They are pure wiring: synthesis sees no logic in them.
//!
//! One rule keeps their users lint-clean. rust-hdl prints a block's whole `update` as one
//! `always @(*)`; Verilator splits such a block into groups of statements linked by the local
//! signals they share, and a group that both feeds a primitive and reads (directly or further
//! down) that primitive's output is a combinational cycle to it (UNOPTFLAT). So in a block that
//! uses primitives, a local signal must not connect a statement upstream of a primitive with a
//! statement downstream of it: values needed on both sides come from ports or from a sub-block's
//! outputs (that is why `MagOrder` and `ExpAdjust` are blocks of their own).

use rust_hdl::prelude::*;

pub use crate::prim::ZeroExtend;

/// `y = {hi, lo}`: concatenation, `W = H + L`.
#[derive(LogicBlock)]
pub struct Concat<const H: usize, const L: usize, const W: usize> {
    pub hi: Signal<In, Bits<H>>,
    pub lo: Signal<In, Bits<L>>,
    pub y: Signal<Out, Bits<W>>,
}

impl<const H: usize, const L: usize, const W: usize> Default for Concat<H, L, W> {
    fn default() -> Self {
        assert!(
            W == H + L && H > 0 && L > 0,
            "Concat<{H}, {L}, {W}> needs W = H + L"
        );
        Self {
            hi: Default::default(),
            lo: Default::default(),
            y: Default::default(),
        }
    }
}

impl<const H: usize, const L: usize, const W: usize> Logic for Concat<H, L, W> {
    fn update(&mut self) {
        let hi = bit_cast::<W, H>(self.hi.val()) << (L as u64);
        self.y.next = hi | bit_cast::<W, L>(self.lo.val());
    }

    fn connect(&mut self) {
        self.y.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom("always @(*) y = {hi, lo};".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_extend_and_concat() {
        let mut z = ZeroExtend::<5, 8>::default();
        z.connect_all();
        z.narrow.next = bits(0x1f);
        assert!(simulate(&mut z, 10));
        assert_eq!(z.wide.val().to_u64(), 0x1f);
        let mut c = Concat::<3, 5, 8>::default();
        c.connect_all();
        c.hi.next = bits(0b101);
        c.lo.next = bits(0b10011);
        assert!(simulate(&mut c, 10));
        assert_eq!(c.y.val().to_u64(), 0b1011_0011);
        match (
            ZeroExtend::<5, 8>::default().hdl(),
            Concat::<3, 5, 8>::default().hdl(),
        ) {
            (Verilog::Custom(a), Verilog::Custom(b)) => {
                assert_eq!(a, "always @(*) wide = {{3{1'b0}}, narrow};");
                assert_eq!(b, "always @(*) y = {hi, lo};");
            }
            _ => panic!("expected custom Verilog"),
        }
    }
}
