//! shiftkit: co-design toolkit for FPGA accelerators that train neural networks in sub-8-bit
//! integers. This crate is the host side: the golden numerics of `docs/SPEC.md`, the engines that
//! execute GEMMs (`cpu`, `golden`, later `rtl`), and the `shiftkit` CLI.

pub mod alloc;
pub mod cli;
pub mod data;
pub mod demo;
pub mod design;
pub mod engine;
pub mod error;
pub mod format;
pub mod fp16;
pub mod kernels;
pub mod l1norm;
pub mod matrix;
pub mod nn;
pub mod npy;
pub mod progress;
pub mod rng;
pub mod sq;
pub mod sq_fused;
pub mod sq_gemm;
pub mod sweep;
pub mod workloads;

pub use error::{Error, Result};
pub use format::Format;
pub use matrix::Matrix;
pub use shiftkit_hw::{ArrayConfig, Datapath};
