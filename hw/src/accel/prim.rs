//! Wiring leaves of the accelerator whose Verilog is written by hand (rust-hdl has no
//! concatenation; see `crate::prim`). Each has a one-line Verilog body and a Rust `update` that
//! says the same thing; they are pure wiring, synthesis sees no logic in them.

use super::WORD_BITS;
use crate::pe::{MacCtl, CTL_BITS, SHIFT_BITS};
use rust_hdl::prelude::*;

/// `ctl = {shift, flush, valid}`: the array's control bundle (`crate::pe::MacCtl`).
#[derive(LogicBlock, Default)]
pub struct PackCtl {
    pub valid: Signal<In, Bit>,
    pub flush: Signal<In, Bit>,
    pub shift: Signal<In, Bits<SHIFT_BITS>>,
    pub ctl: Signal<Out, Bits<CTL_BITS>>,
}

impl Logic for PackCtl {
    fn update(&mut self) {
        let c = MacCtl::new(
            self.valid.val(),
            self.flush.val(),
            self.shift.val().to_u64() as u32,
        );
        self.ctl.next = c.to_bits();
    }

    fn connect(&mut self) {
        self.ctl.connect();
    }

    fn hdl(&self) -> Verilog {
        assert_eq!(
            (MacCtl::VALID_BIT, MacCtl::FLUSH_BIT, MacCtl::SHIFT_LSB),
            (0, 1, 2)
        );
        Verilog::Custom("always @(*) ctl = {shift, flush, valid};".into())
    }
}

/// `word = {0..., flags[n-1], ..., flags[0]}`: single-bit flags packed into a 32-bit word.
#[derive(LogicBlock)]
pub struct FlagWord {
    pub flags: Vec<Signal<In, Bit>>,
    pub word: Signal<Out, Bits<WORD_BITS>>,
}

impl FlagWord {
    pub fn new(n: usize) -> Self {
        assert!((1..WORD_BITS).contains(&n));
        Self {
            flags: (0..n).map(|_| Default::default()).collect(),
            word: Default::default(),
        }
    }
}

impl Logic for FlagWord {
    fn update(&mut self) {
        let mut w = 0u64;
        for (i, f) in self.flags.iter().enumerate() {
            w |= u64::from(f.val()) << i;
        }
        self.word.next = bits(w);
    }

    fn connect(&mut self) {
        self.word.connect();
    }

    fn hdl(&self) -> Verilog {
        let n = self.flags.len();
        let flags: Vec<String> = (0..n).rev().map(|i| format!("flags${i}")).collect();
        Verilog::Custom(format!(
            "always @(*) word = {{{}'b0, {}}};",
            WORD_BITS - n,
            flags.join(", ")
        ))
    }
}

/// `ctl = {flush, valid}`: the FP16 array's control bundle (`crate::fp16::Fp16Ctl`).
#[derive(LogicBlock, Default)]
pub struct PackFlushValid {
    pub valid: Signal<In, Bit>,
    pub flush: Signal<In, Bit>,
    pub ctl: Signal<Out, Bits<{ crate::fp16::FP16_CTL_BITS }>>,
}

impl Logic for PackFlushValid {
    fn update(&mut self) {
        let c = crate::fp16::Fp16Ctl::new(self.valid.val(), self.flush.val());
        self.ctl.next = c.to_bits();
    }

    fn connect(&mut self) {
        self.ctl.connect();
    }

    fn hdl(&self) -> Verilog {
        use crate::fp16::Fp16Ctl;
        assert_eq!((Fp16Ctl::VALID_BIT, Fp16Ctl::FLUSH_BIT), (0, 1));
        Verilog::Custom("always @(*) ctl = {flush, valid};".into())
    }
}
