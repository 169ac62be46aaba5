//! Verilator co-simulation of the generated hardware (the `rtl` engine's back end).
//!
//! Filled in by the co-simulation work: a `cxx` bridge to a small C++ wrapper over each
//! Verilated model, built per configuration and cached by a hash of the Verilog.
