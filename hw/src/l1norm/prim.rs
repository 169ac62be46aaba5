//! Leaf primitives of the L1-norm unit whose Verilog is written by hand (like `crate::prim`):
//! the row buffer, zero extension, the odd extension `2u + 1`, and a narrowing.
//!
//! Each has a Rust `update` (exercised by the rust-hdl simulations) and a Verilog body that says
//! the same thing (exercised by Verilator and yosys).

use rust_hdl::prelude::*;

/// One row buffer: `2^A x D` bits, one write port and one registered read port on one clock
/// (`rdata` shows `mem[raddr]` of the previous edge; a read and a write of the same address in
/// one cycle return the old value, which the unit never does). The Verilog is the template that
/// yosys maps to block RAM (`SB_RAM40_4K` on ice40, `RAMB18E1`/`RAMB36E1` on xc7).
#[derive(LogicBlock)]
pub struct RowRam<const D: usize, const A: usize> {
    pub clock: Signal<In, Clock>,
    pub we: Signal<In, Bit>,
    pub waddr: Signal<In, Bits<A>>,
    pub wdata: Signal<In, Bits<D>>,
    pub raddr: Signal<In, Bits<A>>,
    pub rdata: Signal<Out, Bits<D>>,
    _mem: Vec<Bits<D>>,
}

impl<const D: usize, const A: usize> Default for RowRam<D, A> {
    fn default() -> Self {
        assert!(A >= 1 && A <= 16, "RowRam<{D}, {A}>: 1 <= A <= 16");
        Self {
            clock: Default::default(),
            we: Default::default(),
            waddr: Default::default(),
            wdata: Default::default(),
            raddr: Default::default(),
            rdata: Default::default(),
            _mem: vec![Bits::default(); 1 << A],
        }
    }
}

impl<const D: usize, const A: usize> Logic for RowRam<D, A> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            self.rdata.next = self._mem[self.raddr.val().index()];
            if self.we.val() {
                self._mem[self.waddr.val().index()] = self.wdata.val();
            }
        }
    }

    fn connect(&mut self) {
        self.rdata.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "\
reg [{dm}:0] mem [0:{depth}];

always @(posedge clock) begin
   if (we) begin
      mem[waddr] <= wdata;
   end
   rdata <= mem[raddr];
end
",
            dm = D - 1,
            depth = (1usize << A) - 1
        ))
    }
}

pub use crate::prim::ZeroExtend;

/// `y = {x, 1'b1} = 2x + 1` (`M = N + 1`): the centre of the interval `[x, x + 1)` in units of
/// one half.
#[derive(LogicBlock)]
pub struct Odd<const N: usize, const M: usize> {
    pub x: Signal<In, Bits<N>>,
    pub y: Signal<Out, Bits<M>>,
}

impl<const N: usize, const M: usize> Default for Odd<N, M> {
    fn default() -> Self {
        assert!(M == N + 1, "Odd<{N}, {M}> needs M = N + 1");
        Self {
            x: Default::default(),
            y: Default::default(),
        }
    }
}

impl<const N: usize, const M: usize> Logic for Odd<N, M> {
    fn update(&mut self) {
        self.y.next = (bit_cast::<M, N>(self.x.val()) << 1) | bits::<M>(1);
    }

    fn connect(&mut self) {
        self.y.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom("always @(*) y = {x, 1'b1};".into())
    }
}

/// `y = x[M-1:0]` where the unit guarantees that `x` fits `M` bits signed (bits `M..N` are copies
/// of bit `M - 1`). Verilator's `-Wall` reports bits that are never read; the dropped copies are
/// read into a wire named `unused_*`, which Verilator's default `--unused-regexp` (`*unused*`)
/// exempts by name, rather than waiving the warning for the whole design.
#[derive(LogicBlock)]
pub struct Narrow<const N: usize, const M: usize> {
    pub x: Signal<In, Bits<N>>,
    pub y: Signal<Out, Bits<M>>,
}

impl<const N: usize, const M: usize> Default for Narrow<N, M> {
    fn default() -> Self {
        assert!(N > M && M > 0, "Narrow<{N}, {M}> must narrow");
        Self {
            x: Default::default(),
            y: Default::default(),
        }
    }
}

impl<const N: usize, const M: usize> Logic for Narrow<N, M> {
    fn update(&mut self) {
        self.y.next = bit_cast::<M, N>(self.x.val());
    }

    fn connect(&mut self) {
        self.y.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "always @(*) y = x[{m1}:0];\nwire unused_sign_copies = ^x[{n1}:{m}];",
            m1 = M - 1,
            n1 = N - 1,
            m = M
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wiring_primitives() {
        let mut z = ZeroExtend::<3, 8>::default();
        z.connect_all();
        z.narrow.next = bits(0b101);
        assert!(simulate(&mut z, 10));
        assert_eq!(z.wide.val().to_u64(), 0b101);
        let mut o = Odd::<4, 5>::default();
        o.connect_all();
        o.x.next = bits(0b1011);
        assert!(simulate(&mut o, 10));
        assert_eq!(o.y.val().to_u64(), 0b10111);
        let mut n = Narrow::<9, 4>::default();
        n.connect_all();
        n.x.next = bits(0x1fa);
        assert!(simulate(&mut n, 10));
        assert_eq!(n.y.val().to_u64(), 0xa);
    }

    #[test]
    fn row_ram_reads_registered() {
        let mut r = RowRam::<5, 3>::default();
        r.connect_all();
        let clk = |r: &mut RowRam<5, 3>, v: bool| r.clock.next = Clock { clk: v };
        let tick = |r: &mut RowRam<5, 3>| {
            assert!(simulate(r, 50));
            clk(r, true);
            assert!(simulate(r, 50));
            clk(r, false);
            assert!(simulate(r, 50));
        };
        for a in 0..8u64 {
            r.we.next = true;
            r.waddr.next = bits(a);
            r.wdata.next = bits(3 * a + 1);
            tick(&mut r);
        }
        r.we.next = false;
        for a in [5u64, 0, 7] {
            r.raddr.next = bits(a);
            tick(&mut r);
            assert_eq!(r.rdata.val().to_u64(), 3 * a + 1);
        }
    }
}
