//! Verilator co-simulation of the generated hardware (the `rtl` engine's back end).
//!
//! Any Verilog design becomes a cycle-accurate [`Model`] that the host drives from Rust (the
//! approach of TVM's VTA simulator):
//!
//! 1. [`build_library`] runs Verilator on the sources and links the model, the Verilator runtime
//!    and a *generated* C++ wrapper into `lib<key>.so`, which exports a fixed C ABI (`skm_*`,
//!    documented in `src/wrapper.rs`) over the design's ports;
//! 2. libraries are cached by a hash of the Verilog, top, Verilator version and flags, so a
//!    second build is a lookup;
//! 3. a fixed C++ loader (`cpp/loader.cc`), reached through a `cxx` bridge, `dlopen`s a library
//!    and forwards to that ABI, so the host side is compiled once and loads any design.
//!
//! [`array_driver`] holds the port protocol of the ShiftQuant MAC array (`shiftkit-hw`);
//! [`accel_driver`] streams commands through a whole accelerator top (`docs/accelerator.md`).

pub mod accel_driver;
pub mod array_driver;
mod compile;
mod error;
mod interrupt;
mod model;
mod ports;
mod verilator;
mod wrapper;

pub use compile::{
    build_library, cache_dir, read_sources, BuildObserver, BuildOptions, BuildProfile,
    BuildProgress, BuildStage, BuiltLibrary, SourceFile, TraceFormat, CACHE_ENV, JOBS_ENV,
    PROFILE_ENV,
};
pub use error::{Result, SimError};
pub use model::{Model, PortId};
pub use ports::{PortDir, PortInfo};
pub use verilator::{Verilator, VERILATOR_ENV};
