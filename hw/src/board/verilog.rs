//! rust-hdl block -> Verilog text with `_` instead of `$` in names.
//!
//! The same steps as `generate.rs` (whose helpers are private to it): `connect_all`,
//! rust-hdl's structural check, print with the given top name, rewrite `$` names and refuse a
//! rewrite that would merge two names.

use crate::error::HwError;
use crate::generate::{Port, PortDirection};
use rust_hdl::prelude::*;
use std::collections::BTreeMap;

/// Check `uut`, then print it with `top` as the top module's name and `$` names rewritten.
pub fn emit<U: Block>(uut: U, top: &str) -> Result<String, HwError> {
    emit_with_ports(uut, top).map(|(v, _)| v)
}

/// [`emit`], plus the top module's ports (renamed like the text), in declaration order.
pub fn emit_with_ports<U: Block>(mut uut: U, top: &str) -> Result<(String, Vec<Port>), HwError> {
    uut.connect_all();
    check_all(&uut).map_err(|e| HwError::DesignCheck(format!("{e:?}")))?;
    let mut defines = ModuleDefines::default();
    uut.accept(top, &mut defines);
    let mut probe = PortProbe::default();
    uut.accept(top, &mut probe);
    let ports = probe
        .ports
        .into_iter()
        .map(|p| Port {
            name: p.name.replace('$', "_"),
            ..p
        })
        .collect();
    Ok((rename(&defines.defines())?, ports))
}

/// Collects the top module's ports.
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

/// Identifiers (maximal runs of `[A-Za-z0-9_$]` starting with a letter or `_`), by byte range.
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
            if b[start].is_ascii_alphabetic() || b[start] == b'_' {
                out.push((start, i));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Rewrite every identifier containing `$` with `_`; fail if two names would become one.
pub fn rename(text: &str) -> Result<String, HwError> {
    let ids = identifiers(text);
    let mut taken: BTreeMap<String, &str> = BTreeMap::new();
    for &(s, e) in &ids {
        let id = &text[s..e];
        let new = id.replace('$', "_");
        match taken.get(&new) {
            Some(prev) if *prev != id => {
                return Err(HwError::NameClash {
                    a: prev.to_string(),
                    b: id.to_string(),
                })
            }
            Some(_) => {}
            None => {
                taken.insert(new, id);
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (s, e) in ids {
        if text[s..e].contains('$') {
            out.push_str(&text[last..s]);
            out.push_str(&text[s..e].replace('$', "_"));
            last = e;
        }
    }
    out.push_str(&text[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_rename_rewrites_dollars_and_refuses_clashes() {
        assert_eq!(
            rename("module t$a(x$0); assign y = $signed(x$0); endmodule").unwrap(),
            "module t_a(x_0); assign y = $signed(x_0); endmodule"
        );
        assert!(rename("wire a$b; wire a_b;").is_err());
    }
}
