//! Verilog text from rust-hdl blocks: the one path every generator in this crate uses
//! (structural check, print, `$` names rewritten with clashes refused), the top module's ports,
//! and the atomic file write the generators share. A leaf module: it depends on nothing else in
//! the crate but the error type, so `generate`, `l1norm`, `board` and `synth` all build on it.
//!
//! rust-hdl names every module and net by its path with `$` separators (`top$pes$3$mac$acc`).
//! Those names are legal Verilog but turn into `__024` in Verilator's C++ and are awkward in every
//! tool, so the text is rewritten with `_` separators; the rewrite refuses (with an error, never
//! silently) if two distinct names would become one.

use crate::error::HwError;
use rust_hdl::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortDirection {
    Input,
    Output,
}

/// One port of the top module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub name: String,
    pub direction: PortDirection,
    pub width: usize,
}

/// Write through a temporary file and rename, so no partial file is ever left behind.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> Result<(), HwError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(HwError::io("cannot write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        HwError::io("cannot write", path)(e)
    })
}

/// Check the block, print it with `top` as the top module's name, and rewrite rust-hdl's `$`
/// names (ports renamed alike): the one way every generator in this crate turns a block into
/// Verilog.
pub(crate) fn emit_verilog<U: Block>(uut: U, top: &str) -> Result<(String, Vec<Port>), HwError> {
    let (raw, raw_ports) = emit(uut, top)?;
    let (verilog, renames) = rename_for_verilog(&raw)?;
    let ports = raw_ports
        .into_iter()
        .map(|p| Port {
            name: renames.get(&p.name).cloned().unwrap_or(p.name),
            ..p
        })
        .collect();
    Ok((verilog, ports))
}

/// Check the block, then print it with `top` as the top module's name.
pub(crate) fn emit<U: Block>(mut uut: U, top: &str) -> Result<(String, Vec<Port>), HwError> {
    uut.connect_all();
    check_all(&uut).map_err(|e| HwError::DesignCheck(format!("{e:?}")))?;
    let mut defines = ModuleDefines::default();
    uut.accept(top, &mut defines);
    let mut ports = PortProbe::default();
    uut.accept(top, &mut ports);
    Ok((defines.defines(), ports.ports))
}

/// Collects the top module's ports, in declaration order.
#[derive(Default)]
struct PortProbe {
    depth: usize,
    ports: Vec<Port>,
}

impl Probe for PortProbe {
    fn visit_start_scope(&mut self, _name: &str, _node: &dyn Block) {
        self.depth += 1;
    }
    fn visit_atom(&mut self, name: &str, signal: &dyn Atom) {
        if self.depth != 1 {
            return;
        }
        let direction = match signal.kind() {
            AtomKind::InputParameter => PortDirection::Input,
            AtomKind::OutputParameter | AtomKind::OutputPassthrough => PortDirection::Output,
            _ => return,
        };
        self.ports.push(Port {
            name: name.to_string(),
            direction,
            width: signal.bits(),
        });
    }
    fn visit_end_scope(&mut self, _name: &str, _node: &dyn Block) {
        self.depth -= 1;
    }
}

/// Identifiers of the text (maximal runs of `[A-Za-z0-9_$]` starting with a letter or `_`), with
/// their byte ranges. System functions (`$signed`) start with `$` and are not identifiers here.
fn identifiers(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let is_id = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if is_id(b[i]) {
            let start = i;
            while i < b.len() && is_id(b[i]) {
                i += 1;
            }
            // Skip numbers and sized literals (`32'h1f` splits into `32` and `h1f`: harmless).
            if b[start].is_ascii_alphabetic() || b[start] == b'_' {
                out.push((start, i));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The text with every `$` name rewritten, and the renames applied.
pub(crate) fn rename_for_verilog(raw: &str) -> Result<(String, BTreeMap<String, String>), HwError> {
    let renames = plan_renames(raw)?;
    Ok((apply_renames(raw, &renames), renames))
}

/// Map every identifier containing `$` to its `_` form; fail if the map is not one-to-one.
fn plan_renames(text: &str) -> Result<BTreeMap<String, String>, HwError> {
    let mut renames = BTreeMap::new();
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    for (s, e) in identifiers(text) {
        let id = &text[s..e];
        let new = id.replace('$', "_");
        if let Some(prev) = taken.get(&new) {
            if prev != id {
                return Err(HwError::NameClash {
                    a: prev.clone(),
                    b: id.to_string(),
                });
            }
            continue;
        }
        taken.insert(new.clone(), id.to_string());
        if new != id {
            renames.insert(id.to_string(), new);
        }
    }
    Ok(renames)
}

fn apply_renames(text: &str, renames: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (s, e) in identifiers(text) {
        if let Some(new) = renames.get(&text[s..e]) {
            out.push_str(&text[last..s]);
            out.push_str(new);
            last = e;
        }
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_dollar_names_and_detects_clashes() {
        let text = "module top$a(x$0); wire x_1; assign y = $signed(x$0); endmodule // top$a";
        let r = plan_renames(text).expect("no clash");
        assert_eq!(
            apply_renames(text, &r),
            "module top_a(x_0); wire x_1; assign y = $signed(x_0); endmodule // top_a"
        );
        assert!(matches!(
            plan_renames("wire a$b; wire a_b;"),
            Err(HwError::NameClash { .. })
        ));
    }
}
