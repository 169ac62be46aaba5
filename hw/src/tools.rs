//! Running the external tools: Verilator (lint) and Yosys (elaboration check, synthesis stats).
//!
//! The tools are a hard requirement of the project: a missing tool is an error that names the
//! tool and how to install it, never a skipped check.

use crate::error::HwError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An external program: its binary name, the variable that overrides its path, its package.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    pub name: &'static str,
    pub env: &'static str,
    pub package: &'static str,
}

pub const VERILATOR: Tool = Tool {
    name: "verilator",
    env: "SHIFTKIT_VERILATOR",
    package: "verilator",
};
pub const YOSYS: Tool = Tool {
    name: "yosys",
    env: "SHIFTKIT_YOSYS",
    package: "yosys",
};

/// Lint waivers, each forced by the shape of rust-hdl's output. Nothing else is waived, except one
/// inline `UNUSED` waiver around the carry-in bit of `prim::AddCarry` (explained there).
pub const LINT_WAIVERS: &[(&str, &str)] = &[(
    "-Wno-DECLFILENAME",
    "rust-hdl prints the whole module hierarchy (one module per block instance) as one text, so \
     only the top module can match the file name",
)];

impl Tool {
    /// The binary: `$ENV` if set, else the first `name` on `PATH`.
    pub fn locate(&self) -> Result<PathBuf, HwError> {
        let missing = || HwError::ToolMissing {
            tool: self.name.into(),
            env: self.env.into(),
            package: self.package.into(),
        };
        if let Some(p) = std::env::var_os(self.env) {
            let p = PathBuf::from(p);
            return if p.is_file() { Ok(p) } else { Err(missing()) };
        }
        let path = std::env::var_os("PATH").ok_or_else(missing)?;
        std::env::split_paths(&path)
            .map(|d| d.join(self.name))
            .find(|p| p.is_file())
            .ok_or_else(missing)
    }

    /// Run with `args`: whether it succeeded, the exit status, and stdout + stderr.
    fn run_raw(&self, args: &[&str]) -> Result<(bool, String, String), HwError> {
        let bin = self.locate()?;
        let out = Command::new(&bin)
            .args(args)
            .output()
            .map_err(HwError::io("cannot run", &bin))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), out.status.to_string(), text))
    }

    /// Run with `args`; the combined stdout + stderr on success, an error with its tail otherwise.
    fn run(&self, args: &[&str], input: &Path) -> Result<String, HwError> {
        let (ok, status, text) = self.run_raw(args)?;
        if ok {
            Ok(text)
        } else {
            Err(HwError::ToolFailed {
                tool: self.name.into(),
                status,
                input: input.display().to_string(),
                output: tail(&text, 40),
            })
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `verilator --lint-only -Wall` with [`LINT_WAIVERS`]; any warning is an error.
pub fn verilator_lint(file: &Path, top: &str) -> Result<(), HwError> {
    let file_s = file.to_string_lossy();
    let mut args = vec!["--lint-only", "-Wall", "--top-module", top];
    args.extend(LINT_WAIVERS.iter().map(|w| w.0));
    args.push(&file_s);
    // Verilator exits non-zero on any warning under -Wall: count them from the full output.
    let (ok, status, output) = VERILATOR.run_raw(&args)?;
    let count = output.lines().filter(|l| l.starts_with("%Warning")).count();
    if count > 0 {
        return Err(HwError::LintWarnings {
            input: file.display().to_string(),
            count,
            output: tail(&output, 60),
        });
    }
    if !ok || output.contains("%Error") {
        return Err(HwError::ToolFailed {
            tool: VERILATOR.name.into(),
            status,
            input: file.display().to_string(),
            output: tail(&output, 40),
        });
    }
    Ok(())
}

/// Yosys elaboration check: `read_verilog; hierarchy -check -top TOP; proc`.
pub fn yosys_check(file: &Path, top: &str) -> Result<(), HwError> {
    let script = format!(
        "read_verilog {}; hierarchy -check -top {top}; proc",
        quote(file)
    );
    YOSYS.run(&["-q", "-p", &script], file).map(|_| ())
}

/// The FPGA families we report resources for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynthTarget {
    /// `synth_ice40`: LUT4 + SB_CARRY.
    Ice40,
    /// `synth_xilinx -family xc7 -nodsp -flatten -noiopad`: LUT6 + CARRY4, no DSP blocks.
    Xc7,
}

impl SynthTarget {
    pub fn command(&self, top: &str) -> String {
        match self {
            SynthTarget::Ice40 => format!("synth_ice40 -top {top}"),
            SynthTarget::Xc7 => {
                format!("synth_xilinx -family xc7 -nodsp -flatten -noiopad -top {top}")
            }
        }
    }
}

/// Resource counts of a flattened synthesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SynthStats {
    pub target: SynthTarget,
    /// LUT4 on ice40, LUT1..LUT6 summed on xc7.
    pub luts: usize,
    pub carries: usize,
    pub ffs: usize,
    pub cells_by_type: BTreeMap<String, usize>,
}

/// Synthesize `file` with yosys and count the cells of the flattened top.
pub fn synth_stats(file: &Path, top: &str, target: SynthTarget) -> Result<SynthStats, HwError> {
    let cells_by_type = yosys_cells(&[file], top, &target.command(top))?;
    let sum = |f: &dyn Fn(&str) -> bool| {
        cells_by_type
            .iter()
            .filter(|(k, _)| f(k))
            .map(|(_, n)| n)
            .sum()
    };
    let (luts, carries, ffs) = match target {
        SynthTarget::Ice40 => (
            sum(&|k| k == "SB_LUT4"),
            sum(&|k| k == "SB_CARRY"),
            sum(&|k| k.starts_with("SB_DFF")),
        ),
        SynthTarget::Xc7 => (
            sum(&|k| k.len() == 4 && k.starts_with("LUT")),
            sum(&|k| k == "CARRY4"),
            sum(&|k| k.starts_with("FD")),
        ),
    };
    Ok(SynthStats {
        target,
        luts,
        carries,
        ffs,
        cells_by_type,
    })
}

/// Read `files`, run the synthesis `command` and return the flattened top's cell counts by type
/// (yosys `stat -json`).
pub fn yosys_cells(
    files: &[&Path],
    top: &str,
    command: &str,
) -> Result<BTreeMap<String, usize>, HwError> {
    let reads: Vec<String> = files
        .iter()
        .map(|f| format!("read_verilog {}", quote(f)))
        .collect();
    let script = format!(
        "{}; {command}; tee -q -o /dev/stdout stat -json",
        reads.join("; ")
    );
    let input = files.first().copied().unwrap_or(Path::new("-"));
    let out = YOSYS.run(&["-q", "-p", &script], input)?;
    let start = out.find('{').ok_or_else(|| HwError::Parse {
        what: "yosys `stat -json` output".into(),
        detail: tail(&out, 10),
    })?;
    let mut de = serde_json::Deserializer::from_str(&out[start..]);
    let v = serde_json::Value::deserialize(&mut de).map_err(|e| HwError::Parse {
        what: "yosys `stat -json` output".into(),
        detail: e.to_string(),
    })?;
    let cells = v
        .get("modules")
        .and_then(|m| m.get(format!("\\{top}")))
        .and_then(|m| m.get("num_cells_by_type"))
        .and_then(|c| c.as_object())
        .ok_or_else(|| HwError::Parse {
            what: "yosys `stat -json` output".into(),
            detail: format!("no cell counts for module {top}"),
        })?;
    Ok(cells
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0) as usize))
        .collect())
}

/// The installed yosys's version line, e.g. `Yosys 0.23 (git sha1 7ce5011c24b)`.
pub fn yosys_version() -> Result<String, HwError> {
    let (_, _, text) = YOSYS.run_raw(&["-V"])?;
    Ok(text.trim().to_string())
}

/// Quote a path for a yosys script (yosys splits commands on `;` and words on spaces).
fn quote(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_is_a_clear_error() {
        let t = Tool {
            name: "shiftkit-no-such-tool",
            env: "SHIFTKIT_NO_SUCH_TOOL",
            package: "nothing",
        };
        let e = t.locate().expect_err("missing");
        let msg = e.to_string();
        assert!(
            msg.contains("shiftkit-no-such-tool was not found")
                && msg.contains("$SHIFTKIT_NO_SUCH_TOOL"),
            "{msg}"
        );
    }
}
