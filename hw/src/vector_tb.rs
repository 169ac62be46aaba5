//! Trace-driven SystemVerilog testbenches for Verilator (unit tests only).
//!
//! A test records what the rust-hdl simulation did at a design's ports, cycle by cycle, and
//! replays it on the generated Verilog: the testbench drives the recorded inputs and compares
//! the outputs. The cycles live in `$readmemh` files (one per port) read by one loop, so the
//! testbench is the same few lines whatever the trace's length. (Unrolling one statement per
//! cycle made Verilator translate and g++ compile thousands of lines: 70-200 s per test.)

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// When a cycle's outputs are compared: settled before the rising edge (the inputs' effect
/// through combinational paths) or after it (registered outputs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    BeforeEdge,
    AfterEdge,
}

/// A port of the design under test (not the clock): its name and width in bits.
pub(crate) struct Port {
    pub name: String,
    pub width: usize,
}

impl Port {
    pub fn new(name: impl Into<String>, width: usize) -> Self {
        Port {
            name: name.into(),
            width,
        }
    }
}

/// A value as 32-bit words, least significant first.
pub(crate) type Words = Vec<u32>;

pub(crate) struct VectorTb {
    top: String,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
    check: Check,
    /// Per cycle: each input's value, and each output's expected value (`None`: not compared).
    cycles: Vec<(Vec<Words>, Vec<Option<Words>>)>,
}

impl VectorTb {
    /// A testbench for module `top`, clocked on port `clock`.
    pub fn new(top: &str, inputs: Vec<Port>, outputs: Vec<Port>, check: Check) -> Self {
        VectorTb {
            top: top.to_string(),
            inputs,
            outputs,
            check,
            cycles: Vec::new(),
        }
    }

    /// One cycle: the inputs' values and the outputs' expected values, in port order.
    pub fn cycle(&mut self, inputs: Vec<Words>, expected: Vec<Option<Words>>) {
        assert_eq!(inputs.len(), self.inputs.len(), "one value per input");
        assert_eq!(expected.len(), self.outputs.len(), "one value per output");
        self.cycles.push((inputs, expected));
    }

    /// `tb.sv` and its vector files in `dir`; returns the testbench's path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let n = self.cycles.len().max(1);
        let hex = |words: &[u32], width: usize| -> String {
            let digits: String = words.iter().rev().map(|w| format!("{w:08x}")).collect();
            let keep = width.div_ceil(4);
            let digits = format!("{digits:0>keep$}");
            digits[digits.len() - keep..].to_string()
        };
        let file = |name: &str, lines: &mut dyn Iterator<Item = String>| -> PathBuf {
            let path = dir.join(format!("{name}.hex"));
            let text: String = lines.map(|l| l + "\n").collect();
            std::fs::write(&path, text).expect("write vectors");
            path
        };
        let mut tb = String::from("module tb;\n  reg clock;\n  integer n, errors;\n");
        let mut reads = String::new();
        for (i, p) in self.inputs.iter().enumerate() {
            let path = file(
                &format!("in_{}", p.name),
                &mut self.cycles.iter().map(|c| hex(&c.0[i], p.width)),
            );
            let _ = writeln!(
                tb,
                "  reg [{w}:0] {name};\n  reg [{w}:0] in_{name} [0:{last}];",
                w = p.width - 1,
                name = p.name,
                last = n - 1
            );
            let _ = writeln!(
                reads,
                "    $readmemh(\"{}\", in_{});",
                path.display(),
                p.name
            );
        }
        for (i, p) in self.outputs.iter().enumerate() {
            let want = file(
                &format!("want_{}", p.name),
                &mut self.cycles.iter().map(|c| match &c.1[i] {
                    Some(v) => hex(v, p.width),
                    None => "0".into(),
                }),
            );
            let compare = file(
                &format!("cmp_{}", p.name),
                &mut self
                    .cycles
                    .iter()
                    .map(|c| u8::from(c.1[i].is_some()).to_string()),
            );
            let _ = writeln!(
                tb,
                "  wire [{w}:0] {name};\n  reg [{w}:0] want_{name} [0:{last}];\n  reg cmp_{name} [0:{last}];",
                w = p.width - 1,
                name = p.name,
                last = n - 1
            );
            let _ = writeln!(
                reads,
                "    $readmemh(\"{}\", want_{name});\n    $readmemh(\"{}\", cmp_{name});",
                want.display(),
                compare.display(),
                name = p.name
            );
        }
        let conns: Vec<String> = std::iter::once("clock")
            .chain(self.inputs.iter().map(|p| p.name.as_str()))
            .chain(self.outputs.iter().map(|p| p.name.as_str()))
            .map(|name| format!(".{name}({name})"))
            .collect();
        let _ = writeln!(tb, "  {} dut({});", self.top, conns.join(", "));
        let mut compare = String::new();
        for p in &self.outputs {
            let _ = writeln!(
                compare,
                "      if (cmp_{name}[n] && {name} !== want_{name}[n]) begin errors = errors + 1; \
                 $display(\"MISMATCH cycle %0d {name}: %h, want %h\", n, {name}, want_{name}[n]); end",
                name = p.name
            );
        }
        let drive: String = self
            .inputs
            .iter()
            .map(|p| format!(" {0} = in_{0}[n];", p.name))
            .collect();
        let (before, after) = match self.check {
            Check::BeforeEdge => (compare.as_str(), ""),
            Check::AfterEdge => ("", compare.as_str()),
        };
        let _ = write!(
            tb,
            "  initial begin\n{reads}    errors = 0;\n    clock = 1'b0;\n    \
             for (n = 0; n < {cycles}; n = n + 1) begin\n     {drive}\n      #1;\n{before}      \
             clock = 1'b1; #1; clock = 1'b0; #1;\n{after}    end\n    \
             if (errors == 0) $display(\"TB PASS\"); else $display(\"TB FAIL %0d\", errors);\n    \
             $finish;\n  end\nendmodule\n",
            cycles = self.cycles.len()
        );
        let path = dir.join("tb.sv");
        std::fs::write(&path, tb).expect("write tb");
        path
    }

    /// Builds the testbench with `design_files` in Verilator in `dir` and runs it; returns the
    /// simulation's output, which holds `TB PASS` when every compared output matched.
    pub fn run_in_verilator(&self, design_files: &[PathBuf], dir: &Path) -> String {
        let tb = self.write(dir);
        let bin = crate::tools::VERILATOR
            .locate()
            .unwrap_or_else(|e| panic!("{e}"));
        let obj = dir.join("obj");
        let out = std::process::Command::new(bin)
            .args([
                "--binary",
                "-Wno-fatal",
                "--top-module",
                "tb",
                "-o",
                "tb",
                "--Mdir",
            ])
            .arg(&obj)
            .args(["-MAKEFLAGS", "OPT_FAST=-O0 OPT_SLOW=-O0"])
            .args(design_files)
            .arg(&tb)
            .output()
            .expect("runs verilator");
        assert!(
            out.status.success(),
            "verilator build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let run = std::process::Command::new(obj.join("tb"))
            .output()
            .expect("runs the testbench");
        String::from_utf8_lossy(&run.stdout).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An adder replayed from vectors: a right trace passes, a wrong one is caught at the cycle
    /// it is wrong, and an uncompared cycle (its want file holds 0) is not checked.
    #[test]
    fn vectors_replay_and_catch_a_mismatch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rtl = dir.path().join("add.v");
        std::fs::write(
            &rtl,
            "module add(input clock, input [39:0] a, input [3:0] b, output [39:0] s);\n  \
             assign s = a + b;\nendmodule\n",
        )
        .expect("write rtl");
        let build = |wrong_at: Option<usize>, sub: &str| {
            let mut tb = VectorTb::new(
                "add",
                vec![Port::new("a", 40), Port::new("b", 4)],
                vec![Port::new("s", 40)],
                Check::BeforeEdge,
            );
            for i in 0..50u64 {
                let a = (i << 33) | (i * 7);
                let mut s = a + (i % 16);
                if wrong_at == Some(i as usize) {
                    s ^= 1 << 35;
                }
                let w = |v: u64| vec![v as u32, (v >> 32) as u32];
                tb.cycle(
                    vec![w(a), vec![(i % 16) as u32]],
                    vec![(i != 3).then(|| w(s))],
                );
            }
            let d = dir.path().join(sub);
            std::fs::create_dir(&d).expect("dir");
            tb.run_in_verilator(std::slice::from_ref(&rtl), &d)
        };
        assert!(build(None, "ok").contains("TB PASS"));
        let bad = build(Some(17), "bad");
        assert!(bad.contains("TB FAIL 1"), "{bad}");
        assert!(bad.contains("MISMATCH cycle 17 s"), "{bad}");
    }
}
