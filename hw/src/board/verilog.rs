//! rust-hdl block -> Verilog text, through the crate's one generator path
//! (`crate::verilog::emit_verilog`: structural check, print, `$` names rewritten, clashes refused).

use crate::error::HwError;
use crate::verilog::Port;
use rust_hdl::prelude::*;

/// Check `uut`, then print it with `top` as the top module's name and `$` names rewritten.
pub fn emit<U: Block>(uut: U, top: &str) -> Result<String, HwError> {
    emit_with_ports(uut, top).map(|(v, _)| v)
}

/// [`emit`], plus the top module's ports (renamed like the text), in declaration order.
pub fn emit_with_ports<U: Block>(uut: U, top: &str) -> Result<(String, Vec<Port>), HwError> {
    crate::verilog::emit_verilog(uut, top)
}
