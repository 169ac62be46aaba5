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

/// Address bits of one bank of an operand buffer holding `k_max` K steps, `steps` per entry.
pub fn operand_addr_bits(k_max: usize, steps: usize) -> usize {
    addr_bits_for(k_max.div_ceil(steps))
}

/// An operand buffer: two banks of `2^addr_bits >= ceil(K_MAX / P)` entries; entry `j` holds
/// the `P` K steps (`AccelGeometry::k_per_beat`) of LOAD data beat `j`: per step, `lanes` codes
/// of `LW` bits and (sq) the `EXP_BITS`-bit per-K exponent.
///
/// The write port takes a command beat as it arrives (`write_words`, 32-bit words; step `s` at
/// bit `s * step_bits`, its lane `i` at `stride * i` and its exponent at `exp_lsb` above that)
/// and writes entry `write_addr`. The read port takes a K step `read_addr = k`: entry `k / P`,
/// step `k mod P` (the step is picked after the synchronous read), and returns the lanes and the
/// exponent zero-extended to the shift width.
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
    _layout: BeatLayout,
    _addr_bits: usize,
    /// Simulation state: entries (per step: lanes then exponent), the read register and the
    /// step it selects.
    _mem: Vec<Vec<u64>>,
    _rd: Vec<u64>,
    _sel: usize,
}

/// Where the fields of a LOAD data beat sit (`AccelGeometry`'s layout, for one buffer).
#[derive(Clone, Copy, Debug)]
pub struct BeatLayout {
    /// 32-bit words per beat.
    pub words: usize,
    /// Bits per lane in the beat (the code width `b`, or 16).
    pub stride: usize,
    /// Bits per K step in the beat.
    pub step_bits: usize,
    /// The exponent's offset within a K step.
    pub exp_lsb: usize,
    /// Stored exponent bits (`EXP_BITS`, or 0 without a per-K exponent).
    pub exp_bits: usize,
    /// K steps per beat and per entry.
    pub steps: usize,
}

impl BeatLayout {
    pub fn of(geom: &super::AccelGeometry) -> Self {
        BeatLayout {
            words: geom.cmd_words(),
            stride: geom.lane_bits,
            step_bits: geom.step_bits(),
            exp_lsb: geom.exp_lsb(),
            exp_bits: if geom.has_exp { EXP_BITS } else { 0 },
            steps: geom.k_per_beat,
        }
    }
    fn steps_log2(&self) -> usize {
        self.steps.trailing_zeros() as usize
    }
}

impl<const LW: usize> OperandRam<LW> {
    /// `lanes` codes per K step, laid out in a beat as `layout` says, `k_max` K steps per bank.
    pub fn new(lanes: usize, layout: BeatLayout, k_max: usize) -> Self {
        let l = layout;
        assert!(lanes >= 1 && LW <= l.stride && l.steps.is_power_of_two());
        assert!(l.stride * lanes <= l.exp_lsb && l.exp_lsb + l.exp_bits <= l.step_bits);
        assert!(l.steps * l.step_bits <= WORD_BITS * l.words);
        let addr_bits = operand_addr_bits(k_max, l.steps);
        assert!(addr_bits + l.steps_log2() <= ADDR_BITS);
        Self {
            clock: Default::default(),
            write_enable: Default::default(),
            write_bank: Default::default(),
            write_addr: Default::default(),
            write_words: (0..l.words).map(|_| Default::default()).collect(),
            read_bank: Default::default(),
            read_addr: Default::default(),
            read_lanes: (0..lanes).map(|_| Default::default()).collect(),
            read_exp: Default::default(),
            _lanes: lanes,
            _layout: l,
            _addr_bits: addr_bits,
            _mem: vec![vec![0; l.steps * (lanes + 1)]; 2 << addr_bits],
            _rd: vec![0; l.steps * (lanes + 1)],
            _sel: 0,
        }
    }

    /// `width` bits at `lsb` of a beat (fields may cross a word boundary).
    fn field(words: &[u64], lsb: usize, width: usize) -> u64 {
        let (w, s) = (lsb / WORD_BITS, lsb % WORD_BITS);
        let mut v = words[w] >> s;
        if s + width > WORD_BITS {
            v |= words[w + 1] << (WORD_BITS - s);
        }
        v & ((1u64 << width) - 1)
    }

    fn entry(&self, bank: bool, addr: usize) -> usize {
        (usize::from(bank) << self._addr_bits) | (addr & ((1 << self._addr_bits) - 1))
    }

    /// Bits of one stored K step.
    fn step_width(&self) -> usize {
        self._lanes * LW + self._layout.exp_bits
    }
}

impl<const LW: usize> Logic for OperandRam<LW> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let l = self._layout;
            let k = self.read_addr.val().index();
            let r = self.entry(self.read_bank.val(), k >> l.steps_log2());
            let rd = self._mem[r].clone();
            if self.write_enable.val() {
                let words: Vec<u64> = self.write_words.iter().map(|w| w.val().to_u64()).collect();
                let w = self.entry(self.write_bank.val(), self.write_addr.val().index());
                let mut e = Vec::with_capacity(l.steps * (self._lanes + 1));
                for s in 0..l.steps {
                    let at = s * l.step_bits;
                    e.extend((0..self._lanes).map(|i| Self::field(&words, at + i * l.stride, LW)));
                    e.push(if l.exp_bits > 0 {
                        Self::field(&words, at + l.exp_lsb, l.exp_bits)
                    } else {
                        0
                    });
                }
                self._mem[w] = e;
            }
            self._rd = rd;
            self._sel = k & (l.steps - 1);
            let base = self._sel * (self._lanes + 1);
            for i in 0..self._lanes {
                self.read_lanes[i].next = bits(self._rd[base + i]);
            }
            self.read_exp.next = bits(self._rd[base + self._lanes]);
        }
    }

    fn connect(&mut self) {
        for l in self.read_lanes.iter_mut() {
            l.connect();
        }
        self.read_exp.connect();
    }

    fn hdl(&self) -> Verilog {
        let l = self._layout;
        let (ab, lp) = (self._addr_bits, l.steps_log2());
        let sw = self.step_width();
        let width = l.steps * sw;
        // `w` bits at `lsb` of the beat, as a Verilog expression (two words if it crosses).
        let sel = |lsb: usize, w: usize| {
            let (word, s) = (lsb / WORD_BITS, lsb % WORD_BITS);
            if s + w <= WORD_BITS {
                format!("write_words${word}[{}:{s}]", s + w - 1)
            } else {
                format!(
                    "write_words${}[{}:0], write_words${word}[{}:{s}]",
                    word + 1,
                    s + w - WORD_BITS - 1,
                    WORD_BITS - 1
                )
            }
        };
        // The entry, MSB first: per step (last first) exponent, lane L-1, ..., lane 0.
        let mut fields = vec![];
        for s in (0..l.steps).rev() {
            let at = s * l.step_bits;
            if l.exp_bits > 0 {
                fields.push(sel(at + l.exp_lsb, l.exp_bits));
            }
            for i in (0..self._lanes).rev() {
                fields.push(sel(at + i * l.stride, LW));
            }
        }
        // The read outputs of step `s` of the read register.
        let step_reads = |s: usize, indent: &str| {
            let at = s * sw;
            let mut out = String::new();
            for i in 0..self._lanes {
                out.push_str(&format!(
                    "{indent}read_lanes${i} = rd[{}:{}];\n",
                    at + i * LW + LW - 1,
                    at + i * LW
                ));
            }
            if l.exp_bits > 0 {
                out.push_str(&format!(
                    "{indent}read_exp = {{{}'b0, rd[{}:{}]}};\n",
                    SHIFT_BITS - l.exp_bits,
                    at + sw - 1,
                    at + sw - l.exp_bits
                ));
            } else {
                out.push_str(&format!("{indent}read_exp = {SHIFT_BITS}'d0;\n"));
            }
            out
        };
        let (sel_reg, sel_load, reads) = if l.steps == 1 {
            (String::new(), String::new(), step_reads(0, "    "))
        } else {
            let mut cases = String::new();
            for s in 0..l.steps {
                cases.push_str(&format!("    {lp}'d{s}: begin\n"));
                cases.push_str(&step_reads(s, "        "));
                cases.push_str("    end\n");
            }
            (
                format!("reg [{}:0] sel;\n", lp - 1),
                format!("    sel <= read_addr[{}:0];\n", lp - 1),
                format!("    case (sel)\n{cases}    endcase\n"),
            )
        };
        let words: Vec<String> = (0..self.write_words.len())
            .map(|w| format!("write_words${w}"))
            .collect();
        Verilog::Custom(format!(
            "\
(* no_rw_check *) reg [{msb}:0] mem [0:{last}];
reg [{msb}:0] rd;
{sel_reg}always @(posedge clock) begin
    if (write_enable) mem[{{write_bank, write_addr[{amsb}:0]}}] <= {{{fields}}};
    rd <= mem[{{read_bank, read_addr[{rmsb}:{lp}]}}];
{sel_load}end
always @(*) begin
{reads}end
wire unused_ok = &{{1'b0, write_addr, read_addr, {words}}};
",
            msb = width - 1,
            last = (2 << ab) - 1,
            amsb = ab - 1,
            rmsb = ab + lp - 1,
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
