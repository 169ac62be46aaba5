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

/// `lanes[i] = {words}[W i + W - 1 : W i]`: a command beat cut into `W`-bit lanes (the L1NORM
/// data vectors; `W` divides 32).
#[derive(LogicBlock)]
pub struct WordLanes<const W: usize> {
    pub words: Vec<Signal<In, Bits<WORD_BITS>>>,
    pub lanes: Vec<Signal<Out, Bits<W>>>,
}

impl<const W: usize> WordLanes<W> {
    /// The first `lanes` lanes of `words` 32-bit words (the bits above them are unused).
    pub fn new(words: usize, lanes: usize) -> Self {
        assert!(W > 0 && WORD_BITS.is_multiple_of(W) && lanes >= 1);
        assert!(lanes * W <= words * WORD_BITS);
        Self {
            words: (0..words).map(|_| Default::default()).collect(),
            lanes: (0..lanes).map(|_| Default::default()).collect(),
        }
    }
}

impl<const W: usize> Logic for WordLanes<W> {
    fn update(&mut self) {
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            let word = self.words[i * W / WORD_BITS].val().to_u64();
            lane.next = bits((word >> (i * W % WORD_BITS)) & (u64::MAX >> (64 - W)));
        }
    }

    fn connect(&mut self) {
        for lane in &mut self.lanes {
            lane.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let body: Vec<String> = (0..self.lanes.len())
            .map(|i| {
                let lsb = i * W % WORD_BITS;
                format!(
                    "   lanes${i} = words${}[{}:{lsb}];",
                    i * W / WORD_BITS,
                    lsb + W - 1
                )
            })
            .collect();
        // Words at and above the end of the last lane (a command beat wider than its L1NORM lanes): Verilator's
        // idiom for deliberately unused bits.
        let used = self.lanes.len() * W / WORD_BITS;
        let unused: Vec<String> = (used..self.words.len())
            .map(|w| format!("words${w}"))
            .collect();
        let waiver = if unused.is_empty() {
            String::new()
        } else {
            format!("\nwire unused_ok = &{{1'b0, {}}};", unused.join(", "))
        };
        Verilog::Custom(format!(
            "always @(*) begin\n{}\nend{waiver}",
            body.join("\n")
        ))
    }
}

/// `words = {..., sext8(codes[1]), sext8(codes[0])}`: `B`-bit codes sign-extended into byte
/// lanes, four per 32-bit word (the L1NORM response beats).
#[derive(LogicBlock)]
pub struct CodeWords<const B: usize> {
    pub codes: Vec<Signal<In, Bits<B>>>,
    pub words: Vec<Signal<Out, Bits<WORD_BITS>>>,
}

/// Bits per code lane of an L1NORM response beat.
pub const CODE_LANE_BITS: usize = 8;

impl<const B: usize> CodeWords<B> {
    /// `words` 32-bit words, `4 * words` codes.
    pub fn new(words: usize) -> Self {
        assert!((2..=CODE_LANE_BITS).contains(&B) && words > 0);
        Self {
            codes: (0..words * WORD_BITS / CODE_LANE_BITS)
                .map(|_| Default::default())
                .collect(),
            words: (0..words).map(|_| Default::default()).collect(),
        }
    }
}

impl<const B: usize> Logic for CodeWords<B> {
    fn update(&mut self) {
        let per = WORD_BITS / CODE_LANE_BITS;
        for (w, word) in self.words.iter_mut().enumerate() {
            let mut v = 0u64;
            for j in 0..per {
                let c = self.codes[w * per + j].val().to_u64();
                let sext = if c >> (B - 1) & 1 == 1 {
                    c | (0xff << B)
                } else {
                    c
                };
                v |= (sext & 0xff) << (CODE_LANE_BITS * j);
            }
            word.next = bits(v);
        }
    }

    fn connect(&mut self) {
        for word in &mut self.words {
            word.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let per = WORD_BITS / CODE_LANE_BITS;
        let lane = |i: usize| {
            if B == CODE_LANE_BITS {
                format!("codes${i}")
            } else {
                format!(
                    "{{{{{}{{codes${i}[{}]}}}}, codes${i}}}",
                    CODE_LANE_BITS - B,
                    B - 1
                )
            }
        };
        let body: Vec<String> = (0..self.words.len())
            .map(|w| {
                let parts: Vec<String> = (0..per).rev().map(|j| lane(w * per + j)).collect();
                format!("   words${w} = {{{}}};", parts.join(", "))
            })
            .collect();
        Verilog::Custom(format!("always @(*) begin\n{}\nend", body.join("\n")))
    }
}
