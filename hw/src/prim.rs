//! Leaf primitives whose Verilog is written by hand.
//!
//! rust-hdl widens a value with `bit_cast`, which it prints as `((x) & N'hff..)`: the widening is
//! left to Verilog's implicit extension, and `verilator -Wall` flags every such use (WIDTHEXPAND).
//! rust-hdl has no concatenation either, so a lint-clean sign extension has to be a leaf block with
//! a one-line hand-written body, exactly like rust-hdl's own `DFF`. The Rust `update` and the Verilog
//! body below say the same thing, and both are exercised: the former by the rust-hdl simulations,
//! the latter by the Verilator lint and the yosys runs.

use rust_hdl::prelude::*;

/// Two's-complement sign extension from `N` to `M` bits (`M > N`), combinational.
#[derive(LogicBlock)]
pub struct SignExtend<const N: usize, const M: usize> {
    pub narrow: Signal<In, Bits<N>>,
    pub wide: Signal<Out, Bits<M>>,
}

impl<const N: usize, const M: usize> Default for SignExtend<N, M> {
    fn default() -> Self {
        assert!(M > N && N > 0, "SignExtend<{N}, {M}> must widen");
        Self {
            narrow: Default::default(),
            wide: Default::default(),
        }
    }
}

impl<const N: usize, const M: usize> Logic for SignExtend<N, M> {
    fn update(&mut self) {
        let x = self.narrow.val();
        let mut y: Bits<M> = bit_cast::<M, N>(x);
        if x.get_bit(N - 1) {
            // Set bits N..M-1: the all-ones mask of M bits with the low N bits cleared.
            y = y | (Bits::<M>::mask() ^ bit_cast::<M, N>(Bits::<N>::mask()));
        }
        self.wide.next = y;
    }

    fn connect(&mut self) {
        self.wide.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "always @(*) wide = {{{{{ext}{{narrow[{msb}]}}}}, narrow}};",
            ext = M - N,
            msb = N - 1
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_extends_every_4_bit_value() {
        let mut uut = SignExtend::<4, 9>::default();
        uut.connect_all();
        for v in -8i64..8 {
            uut.narrow.next = bits::<4>((v as u64) & 0xf);
            assert!(simulate(&mut uut, 10));
            let got = uut.wide.val().to_u64();
            assert_eq!(got, (v as u64) & 0x1ff, "value {v}");
        }
        let v = SignExtend::<4, 9>::default().hdl();
        match v {
            Verilog::Custom(s) => assert_eq!(s, "always @(*) wide = {{5{narrow[3]}}, narrow};"),
            _ => panic!("expected custom Verilog"),
        }
    }
}
