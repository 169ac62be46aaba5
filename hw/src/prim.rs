//! Leaf primitives whose Verilog is written by hand.
//!
//! rust-hdl widens a value with `bit_cast`, which it prints as `((x) & N'hff..)`: the widening is
//! left to Verilog's implicit extension, and `verilator -Wall` flags every such use (WIDTHEXPAND).
//! rust-hdl has no concatenation either, so a lint-clean sign extension has to be a leaf block with
//! a one-line hand-written body, exactly like rust-hdl's own `DFF`. The Rust `update` and the Verilog
//! body below say the same thing, and both are exercised: the former by the rust-hdl simulations,
//! the latter by the Verilator lint and the yosys runs (and, through whole designs, by the
//! Verilator co-simulations held against the golden model).

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

/// Zero extension from `N` to `M` bits (`M > N`), combinational.
#[derive(LogicBlock)]
pub struct ZeroExtend<const N: usize, const M: usize> {
    pub narrow: Signal<In, Bits<N>>,
    pub wide: Signal<Out, Bits<M>>,
}

impl<const N: usize, const M: usize> Default for ZeroExtend<N, M> {
    fn default() -> Self {
        assert!(M > N && N > 0, "ZeroExtend<{N}, {M}> must widen");
        Self {
            narrow: Default::default(),
            wide: Default::default(),
        }
    }
}

impl<const N: usize, const M: usize> Logic for ZeroExtend<N, M> {
    fn update(&mut self) {
        self.wide.next = bit_cast::<M, N>(self.narrow.val());
    }

    fn connect(&mut self) {
        self.wide.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "always @(*) wide = {{{{{ext}{{1'b0}}}}, narrow}};",
            ext = M - N
        ))
    }
}

/// `sum = a + b + cin` (mod `2^N`) on one carry chain, combinational.
///
/// Written as `{a, 1} + {b, cin}`: the extra low bit turns `cin` into the chain's carry-in
/// (yosys 0.23 maps a three-operand `a + b + cin` to more than one chain). The low bit of that
/// sum is the one Verilog signal the design leaves unread, hence the one inline lint waiver
/// (`tools::LINT_WAIVERS`).
#[derive(LogicBlock)]
pub struct AddCarry<const N: usize> {
    pub a: Signal<In, Bits<N>>,
    pub b: Signal<In, Bits<N>>,
    pub cin: Signal<In, Bit>,
    pub sum: Signal<Out, Bits<N>>,
}

impl<const N: usize> Default for AddCarry<N> {
    fn default() -> Self {
        assert!(N > 0, "AddCarry<{N}> needs a width");
        Self {
            a: Default::default(),
            b: Default::default(),
            cin: Default::default(),
            sum: Default::default(),
        }
    }
}

impl<const N: usize> Logic for AddCarry<N> {
    fn update(&mut self) {
        let sum = self.a.val() + self.b.val();
        self.sum.next = if self.cin.val() {
            sum + Bits::<N>::from(1u64)
        } else {
            sum
        };
    }

    fn connect(&mut self) {
        self.sum.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "/* verilator lint_off UNUSED */\n\
             wire [{n}:0] with_carry_in = {{a, 1'b1}} + {{b, cin}};\n\
             /* verilator lint_on UNUSED */\n\
             always @(*) sum = with_carry_in[{n}:1];",
            n = N
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
    #[test]
    fn zero_extends_every_4_bit_value() {
        let mut uut = ZeroExtend::<4, 9>::default();
        uut.connect_all();
        for v in 0u64..16 {
            uut.narrow.next = bits::<4>(v);
            assert!(simulate(&mut uut, 10));
            assert_eq!(uut.wide.val().to_u64(), v);
        }
        match ZeroExtend::<4, 9>::default().hdl() {
            Verilog::Custom(s) => assert_eq!(s, "always @(*) wide = {{5{1'b0}}, narrow};"),
            _ => panic!("expected custom Verilog"),
        }
    }

    #[test]
    fn add_carry_wraps_at_the_width() {
        let mut uut = AddCarry::<5>::default();
        uut.connect_all();
        for a in 0u64..32 {
            for b in 0u64..32 {
                for cin in [false, true] {
                    uut.a.next = bits::<5>(a);
                    uut.b.next = bits::<5>(b);
                    uut.cin.next = cin;
                    assert!(simulate(&mut uut, 10));
                    let want = (a + b + u64::from(cin)) & 31;
                    assert_eq!(uut.sum.val().to_u64(), want, "{a} + {b} + {cin}");
                }
            }
        }
    }
}
