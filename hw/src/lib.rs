//! shiftkit hardware: the array configuration shared by every part of the toolkit, and the
//! rust-hdl designs that generate Verilog from it.
//!
//! - [`mul`]: `b x b` signed multiplier (shift-and-add), `b` = 4, 6, 8.
//! - [`pe`]: the ShiftQuant PE: multiply, barrel-shift by the per-K shift, accumulate; double
//!   buffered (accumulator + drain register).
//! - [`array`]: the R x C output-stationary systolic array with input skew and a drain chain.
//! - [`generate`]: `ArrayConfig` -> Verilog text (+ `manifest.json`).
//! - [`verilog`]: rust-hdl block -> Verilog text (check, print, `$` names rewritten), ports,
//!   atomic writes; the leaf every generator builds on.
//! - [`tools`]: Verilator lint, Yosys elaboration check and synthesis statistics.

pub mod accel;
pub mod array;
pub mod board;
pub mod config;
pub mod error;
pub mod flow;
pub mod fp16;
pub mod generate;
pub mod l1norm;
pub mod mul;
pub mod pe;
pub mod prim;
pub mod signmag;
pub mod synth;
pub mod tools;
pub mod verilog;

#[cfg(test)]
pub(crate) mod testutil;
#[cfg(test)]
pub(crate) mod vector_tb;

pub use config::{ArrayConfig, ConfigError, Dataflow, Datapath};
pub use error::HwError;
pub use generate::{generate, write_design, GeneratedDesign, Manifest};
