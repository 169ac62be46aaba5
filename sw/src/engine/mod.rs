//! One accelerator interface, several engines behind it (TVM VTA's split):
//! `cpu` is the fp32 host reference, `golden` the bit-exact functional model of the hardware,
//! `rtl` (co-simulation) the generated Verilog under Verilator. Callers hold a `Box<dyn Engine>`
//! and never know which one runs.

pub mod cost;
pub mod cpu;
pub mod golden;
pub mod l1norm_op;
pub mod link;
pub mod offload;
pub mod rtl;

use crate::error::{Error, Result};
use crate::format::{AAxis, BAxis, Format};
use crate::matrix::Matrix;
use crate::sq::Rounding;
use serde::{Deserialize, Serialize};
use shiftkit_hw::config::DEFAULT_WINDOW;
use shiftkit_hw::ArrayConfig;

pub use counters::Counters;
pub use l1norm_op::{L1NormCodes, L1NormOp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Cpu,
    Golden,
    Rtl,
}

impl EngineKind {
    /// The engine a format runs on when none is named: fp32 on the host, the rest on `golden`.
    pub fn default_for(format: Format) -> Self {
        if format == Format::Fp32 {
            EngineKind::Cpu
        } else {
            EngineKind::Golden
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Cpu => "cpu",
            EngineKind::Golden => "golden",
            EngineKind::Rtl => "rtl",
        }
    }
}

/// How one GEMM is to be computed: the format and, for ShiftQuant, how each operand is quantized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmOp {
    pub format: Format,
    pub a_axis: AAxis,
    pub b_axis: BAxis,
    pub window: u32,
    pub a_rounding: Rounding,
    pub b_rounding: Rounding,
}

impl GemmOp {
    /// SPEC §7 defaults: A per-K, B per-N, window 7, round half to even.
    pub fn new(format: Format) -> Self {
        GemmOp {
            format,
            a_axis: AAxis::K,
            b_axis: BAxis::N,
            window: DEFAULT_WINDOW,
            a_rounding: Rounding::NearestEven,
            b_rounding: Rounding::NearestEven,
        }
    }
}

/// The array an engine models: its geometry and declared accumulator width. The datapath and
/// window come from each GEMM's format, so one engine serves every format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrayShape {
    pub rows: usize,
    pub cols: usize,
    /// `None`: 32 bits, or the narrowest width that holds one shifted product when 32 cannot.
    pub acc_bits: Option<u32>,
}

impl Default for ArrayShape {
    fn default() -> Self {
        ArrayShape {
            rows: 8,
            cols: 8,
            acc_bits: None,
        }
    }
}

impl ArrayShape {
    /// The full design configuration that executes `op`.
    pub fn config_for(&self, op: &GemmOp) -> Result<ArrayConfig> {
        let datapath = op.format.datapath().ok_or_else(|| {
            Error::Unsupported(
                "fp32 runs on the host, not on an accelerator: use --engine cpu".into(),
            )
        })?;
        Ok(ArrayConfig::sized(
            self.rows,
            self.cols,
            datapath,
            op.window,
            self.acc_bits,
        )?)
    }
}

pub trait Engine: Send {
    fn kind(&self) -> EngineKind;
    /// C = A x B in `op.format`. Errors leave the counters unchanged.
    fn gemm(&mut self, a: &Matrix, b: &Matrix, op: &GemmOp) -> Result<Matrix>;
    /// C = A x B with A given as its transpose `a_t` (K x M): exactly `gemm(a_t^T, b, op)`, bits,
    /// errors and counters, without the caller materializing A. Training's weight gradients
    /// (`X^T dY`) take this door; engines that can read A transposed override it.
    fn gemm_at(&mut self, a_t: &Matrix, b: &Matrix, op: &GemmOp) -> Result<Matrix> {
        self.gemm(&a_t.transpose(), b, op)
    }
    /// One layer's two gradient GEMMs: the weight gradient `gemm_at(wg)` and the input gradient
    /// `gemm(ig)`, with the same bits, errors and counters as those two calls in that order.
    /// Engines whose GEMMs are pure functions of their operands run the two side by side (on a
    /// 2-core machine one product per core beats splitting each small one across both).
    fn gradients(&mut self, wg: GemmCall, ig: GemmCall) -> Result<(Matrix, Matrix)> {
        let dw = self.gemm_at(wg.a, wg.b, wg.op)?;
        let dx = self.gemm(ig.a, ig.b, ig.op)?;
        Ok((dw, dx))
    }
    /// L1-normalize integer rows (the unit's `W`-bit inputs) on the accelerator's L1-norm unit
    /// of `op.format`: SQ-b codes with step `2^-f` (`l1norm_op`). Adds the stream's cycles and
    /// bytes to the counters; errors leave them unchanged. Engines without the unit refuse.
    fn l1norm(&mut self, rows: &[Vec<i64>], op: &L1NormOp) -> Result<L1NormCodes> {
        let _ = (rows, op);
        Err(Error::Unsupported(format!(
            "the {} engine has no L1-norm unit: fp32 rows are normalized on the host \
             (shiftkit::l1norm::forward); use --engine golden or rtl with an sq format",
            self.kind().name()
        )))
    }
    /// What the work so far has cost.
    fn counters(&self) -> &Counters;
    fn reset_counters(&mut self);
}

/// The operands and quantization of one GEMM call (for `Engine::gradients`: `a` is the
/// transposed A of a `gemm_at`).
#[derive(Clone, Copy)]
pub struct GemmCall<'a> {
    pub a: &'a Matrix,
    pub b: &'a Matrix,
    pub op: &'a GemmOp,
}

/// An engine of the given kind modelling an array of the given shape.
pub fn create(kind: EngineKind, shape: ArrayShape) -> Result<Box<dyn Engine>> {
    // Validate the geometry up front so a bad --rows/--cols fails before any work.
    ArrayConfig::new(shape.rows, shape.cols, shiftkit_hw::Datapath::Fp16)?;
    match kind {
        EngineKind::Cpu => Ok(Box::new(cpu::CpuEngine::default())),
        EngineKind::Golden => Ok(Box::new(golden::GoldenEngine::new(shape))),
        EngineKind::Rtl => Ok(Box::new(rtl::RtlEngine::new(
            shape,
            shiftkit_sim::BuildOptions::default(),
        )?)),
    }
}

mod counters {
    use serde::{Deserialize, Serialize};
    use std::ops::AddAssign;

    /// What work on an engine cost. Host-only work (the `cpu` engine) moves no bytes and takes
    /// no accelerator cycles.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Counters {
        pub gemms: u64,
        /// Useful multiply-accumulates, M * K * N per GEMM.
        pub macs: u64,
        pub bytes_to_device: u64,
        pub bytes_from_device: u64,
        /// Modelled (`golden`) or simulated (`rtl`) accelerator clock cycles.
        pub cycles: u64,
    }

    impl Counters {
        /// Useful MACs over the MACs the array could have done in the cycles spent.
        pub fn utilization(&self, pes: usize) -> f64 {
            if self.cycles == 0 {
                0.0
            } else {
                self.macs as f64 / (pes as f64 * self.cycles as f64)
            }
        }
    }

    impl AddAssign for Counters {
        fn add_assign(&mut self, o: Counters) {
            self.gemms += o.gemms;
            self.macs += o.macs;
            self.bytes_to_device += o.bytes_to_device;
            self.bytes_from_device += o.bytes_from_device;
            self.cycles += o.cycles;
        }
    }
}
