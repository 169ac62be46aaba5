//! On-chip buffers: the operand buffers (A and B) and the result buffers (C), each a simple
//! dual-port RAM (one write port, one synchronous read port, one clock) holding both banks.
//!
//! Both are leaf blocks with hand-written Verilog, like rust-hdl's own `RAM` widget, for three
//! reasons: the depth (`K_MAX`) is a run-time generation parameter while `RAM<D, N>` fixes
//! `2^N` entries in the type; an entry packs several lanes, which rust-hdl cannot concatenate;
//! and the memory needs yosys's `(* no_rw_check *)` attribute. Without it yosys adds bypass
//! logic that emulates read-before-write on an address collision (35 flip-flops and 18 LUTs on a
//! 512 x 12 buffer); the accelerator never reads and writes one bank in the same cycle (the bank
//! interlocks guarantee it), so the attribute is safe, and the memories map onto block RAM
//! (`SB_RAM40_4K` on ice40, `RAMB18E1` or LUT RAM on xc7) with no logic around them.
//!
//! The Rust `update` of each block models the same behaviour for rust-hdl's simulator: on the
//! clock edge the read register takes the entry at the read address (the value before this
//! edge's write), then the write happens.
//!
//! Bits of an address or a command word that a buffer does not use are collected in a wire named
//! `unused_ok`, Verilator's standard idiom (its default `--unused-regexp` is `*unused*`), so the
//! lint stays clean without waivers.

use super::{ADDR_BITS, EXP_BITS, ROW_BITS, WORD_BITS};
use crate::pe::SHIFT_BITS;
use rust_hdl::prelude::*;

/// `ceil(log2(n))`, at least 1.
pub fn addr_bits_for(n: usize) -> usize {
    let mut b = 1;
    while (1usize << b) < n {
        b += 1;
    }
    b
}

/// An operand buffer: two banks of `2^addr_bits >= K_MAX` entries; entry `k` holds one data
/// vector of the command stream: `lanes` codes of `LW` bits and (sq) the `EXP_BITS`-bit per-K
/// exponent.
///
/// The write port takes a command beat as it arrives (`write_words`, 32-bit words, lane `i` at
/// bits `stride * i` of the beat, exponent byte at `exp_lsb`); the read port returns the lanes
/// and the exponent zero-extended to the shift width.
#[derive(LogicBlock)]
pub struct OperandRam<const LW: usize> {
    pub clock: Signal<In, Clock>,
    pub write_enable: Signal<In, Bit>,
    pub write_bank: Signal<In, Bit>,
    pub write_addr: Signal<In, Bits<ADDR_BITS>>,
    pub write_words: Vec<Signal<In, Bits<WORD_BITS>>>,
    pub read_bank: Signal<In, Bit>,
    pub read_addr: Signal<In, Bits<ADDR_BITS>>,
    pub read_lanes: Vec<Signal<Out, Bits<LW>>>,
    pub read_exp: Signal<Out, Bits<SHIFT_BITS>>,
    _lanes: usize,
    _stride: usize,
    _exp_lsb: usize,
    _exp_bits: usize,
    _addr_bits: usize,
    /// Simulation state: entries (lanes then exponent) and the read register.
    _mem: Vec<Vec<u64>>,
    _rd: Vec<u64>,
}

impl<const LW: usize> OperandRam<LW> {
    /// `lanes` codes per entry, `stride` bits per lane in a command beat (8 or 16), `words`
    /// 32-bit words per beat, the exponent byte at bit `exp_lsb` (`has_exp`: sq designs), and
    /// `k_max` entries per bank.
    pub fn new(
        lanes: usize,
        stride: usize,
        words: usize,
        exp_lsb: usize,
        has_exp: bool,
        k_max: usize,
    ) -> Self {
        assert!(lanes >= 1 && LW <= stride && WORD_BITS / stride * stride == WORD_BITS);
        assert!(stride * lanes <= exp_lsb && exp_lsb + 8 <= WORD_BITS * words);
        let addr_bits = addr_bits_for(k_max);
        assert!(addr_bits <= ADDR_BITS);
        Self {
            clock: Default::default(),
            write_enable: Default::default(),
            write_bank: Default::default(),
            write_addr: Default::default(),
            write_words: (0..words).map(|_| Default::default()).collect(),
            read_bank: Default::default(),
            read_addr: Default::default(),
            read_lanes: (0..lanes).map(|_| Default::default()).collect(),
            read_exp: Default::default(),
            _lanes: lanes,
            _stride: stride,
            _exp_lsb: exp_lsb,
            _exp_bits: if has_exp { EXP_BITS } else { 0 },
            _addr_bits: addr_bits,
            _mem: vec![vec![0; lanes + 1]; 2 << addr_bits],
            _rd: vec![0; lanes + 1],
        }
    }

    fn field(words: &[u64], lsb: usize, width: usize) -> u64 {
        (words[lsb / WORD_BITS] >> (lsb % WORD_BITS)) & ((1u64 << width) - 1)
    }

    fn entry(&self, bank: bool, addr: usize) -> usize {
        (usize::from(bank) << self._addr_bits) | (addr & ((1 << self._addr_bits) - 1))
    }
}

impl<const LW: usize> Logic for OperandRam<LW> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let r = self.entry(self.read_bank.val(), self.read_addr.val().index());
            let rd = self._mem[r].clone();
            if self.write_enable.val() {
                let words: Vec<u64> = self.write_words.iter().map(|w| w.val().to_u64()).collect();
                let w = self.entry(self.write_bank.val(), self.write_addr.val().index());
                let mut e: Vec<u64> = (0..self._lanes)
                    .map(|i| Self::field(&words, i * self._stride, LW))
                    .collect();
                e.push(if self._exp_bits > 0 {
                    Self::field(&words, self._exp_lsb, self._exp_bits)
                } else {
                    0
                });
                self._mem[w] = e;
            }
            self._rd = rd;
            for i in 0..self._lanes {
                self.read_lanes[i].next = bits(self._rd[i]);
            }
            self.read_exp.next = bits(self._rd[self._lanes]);
        }
    }

    fn connect(&mut self) {
        for l in self.read_lanes.iter_mut() {
            l.connect();
        }
        self.read_exp.connect();
    }

    fn hdl(&self) -> Verilog {
        let ab = self._addr_bits;
        let width = self._lanes * LW + self._exp_bits;
        let sel = |lsb: usize, w: usize| {
            format!(
                "write_words${}[{}:{}]",
                lsb / WORD_BITS,
                lsb % WORD_BITS + w - 1,
                lsb % WORD_BITS
            )
        };
        // The entry, MSB first: exponent, lane L-1, ..., lane 0.
        let mut fields = vec![];
        if self._exp_bits > 0 {
            fields.push(sel(self._exp_lsb, self._exp_bits));
        }
        for i in (0..self._lanes).rev() {
            fields.push(sel(i * self._stride, LW));
        }
        let mut reads = String::new();
        for i in 0..self._lanes {
            reads.push_str(&format!(
                "    read_lanes${i} = rd[{}:{}];\n",
                i * LW + LW - 1,
                i * LW
            ));
        }
        if self._exp_bits > 0 {
            reads.push_str(&format!(
                "    read_exp = {{{}'b0, rd[{}:{}]}};\n",
                SHIFT_BITS - self._exp_bits,
                width - 1,
                width - self._exp_bits
            ));
        } else {
            reads.push_str(&format!("    read_exp = {SHIFT_BITS}'d0;\n"));
        }
        let words: Vec<String> = (0..self.write_words.len())
            .map(|w| format!("write_words${w}"))
            .collect();
        Verilog::Custom(format!(
            "\
(* no_rw_check *) reg [{msb}:0] mem [0:{last}];
reg [{msb}:0] rd;
always @(posedge clock) begin
    if (write_enable) mem[{{write_bank, write_addr[{amsb}:0]}}] <= {{{fields}}};
    rd <= mem[{{read_bank, read_addr[{amsb}:0]}}];
end
always @(*) begin
{reads}end
wire unused_ok = &{{1'b0, write_addr, read_addr, {words}}};
",
            msb = width - 1,
            last = (2 << ab) - 1,
            amsb = ab - 1,
            fields = fields.join(", "),
            words = words.join(", "),
        ))
    }
}

/// One column's result buffer: two banks of `2^row_bits >= R` accumulators of `ACC` bits,
/// written by that column's drain output, read by the DRAIN command. The read port returns the
/// accumulator sign-extended to 64 bits, as two 32-bit words (`read_lo`, `read_hi`; a design
/// with 32-bit response lanes uses only `read_lo`).
#[derive(LogicBlock)]
pub struct ResultRam<const ACC: usize> {
    pub clock: Signal<In, Clock>,
    pub write_enable: Signal<In, Bit>,
    pub write_bank: Signal<In, Bit>,
    pub write_row: Signal<In, Bits<ROW_BITS>>,
    pub write_data: Signal<In, Bits<ACC>>,
    pub read_bank: Signal<In, Bit>,
    pub read_row: Signal<In, Bits<ROW_BITS>>,
    pub read_lo: Signal<Out, Bits<WORD_BITS>>,
    pub read_hi: Signal<Out, Bits<WORD_BITS>>,
    _row_bits: usize,
    _mem: Vec<u64>,
}

impl<const ACC: usize> ResultRam<ACC> {
    pub fn new(rows: usize) -> Self {
        assert!((WORD_BITS..2 * WORD_BITS).contains(&ACC) && (1..=1 << ROW_BITS).contains(&rows));
        let row_bits = addr_bits_for(rows);
        Self {
            clock: Default::default(),
            write_enable: Default::default(),
            write_bank: Default::default(),
            write_row: Default::default(),
            write_data: Default::default(),
            read_bank: Default::default(),
            read_row: Default::default(),
            read_lo: Default::default(),
            read_hi: Default::default(),
            _row_bits: row_bits,
            _mem: vec![0; 2 << row_bits],
        }
    }

    fn entry(&self, bank: bool, row: usize) -> usize {
        (usize::from(bank) << self._row_bits) | (row & ((1 << self._row_bits) - 1))
    }
}

impl<const ACC: usize> Logic for ResultRam<ACC> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let rd = self._mem[self.entry(self.read_bank.val(), self.read_row.val().index())];
            if self.write_enable.val() {
                let w = self.entry(self.write_bank.val(), self.write_row.val().index());
                self._mem[w] = self.write_data.val().to_u64();
            }
            // Sign-extend from ACC bits to the response lane.
            let s = 64 - ACC as u32;
            let wide = ((rd << s) as i64 >> s) as u64;
            self.read_lo.next = bits(wide & 0xffff_ffff);
            self.read_hi.next = bits(wide >> WORD_BITS);
        }
    }

    fn connect(&mut self) {
        self.read_lo.connect();
        self.read_hi.connect();
    }

    fn hdl(&self) -> Verilog {
        let rb = self._row_bits;
        let lo = if ACC == WORD_BITS {
            "rd".to_string()
        } else {
            format!("rd[{}:0]", WORD_BITS - 1)
        };
        let hi = if ACC == WORD_BITS {
            format!("{{{WORD_BITS}{{rd[{}]}}}}", ACC - 1)
        } else {
            format!(
                "{{{{{}{{rd[{}]}}}}, rd[{}:{WORD_BITS}]}}",
                2 * WORD_BITS - ACC,
                ACC - 1,
                ACC - 1
            )
        };
        let reads = format!("    read_lo = {lo};\n    read_hi = {hi};\n");
        Verilog::Custom(format!(
            "\
(* no_rw_check *) reg [{msb}:0] mem [0:{last}];
reg [{msb}:0] rd;
always @(posedge clock) begin
    if (write_enable) mem[{{write_bank, write_row[{rmsb}:0]}}] <= write_data;
    rd <= mem[{{read_bank, read_row[{rmsb}:0]}}];
end
always @(*) begin
{reads}end
wire unused_ok = &{{1'b0, write_row, read_row}};
",
            msb = ACC - 1,
            last = (2 << rb) - 1,
            rmsb = rb - 1,
        ))
    }
}
