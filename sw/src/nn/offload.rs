//! The layers' single door to the accelerator. Each GEMM of training has a role, and the role
//! fixes how its operands are quantized (SQ formats):
//!
//! | role | C = A x B | A: axis, rounding | B: axis, rounding |
//! | --- | --- | --- | --- |
//! | `Forward` | Y = X W | X per-K (input feature), nearest-even | W per-N (output feature), nearest-even |
//! | `InputGrad` | dX = dY W^T | dY per-K (output feature), stochastic | W^T per-N (input feature), nearest-even |
//! | `WeightGrad` | dW = X^T dY | X^T per-M (input feature), nearest-even | dY per-K (example), stochastic |
//!
//! Activations and weights are scaled per *feature* channel: activation outliers live in
//! features, and per-feature exponents on the K side become shifts inside the PE. The weight
//! gradient's K axis is the batch, and there the output gradients are scaled per *example*
//! (again a shift in the PE): late in training a few examples carry most of the gradient, and one
//! scale per output feature across the batch would round the others to noise. That choice decides
//! grokking: sq6, seed 2, generalizes at epoch 15,650 with per-example dY (fp32: 13,370) and was
//! still at 0.89 test accuracy after 30,000 epochs with per-feature dY.
//! Gradients use stochastic rounding (unbiased); each stochastic quantization draws a fresh seed
//! from the run's seed and a call counter, so a run is bit-reproducible and `golden` and `rtl` see
//! the same bits.

use crate::engine::{ArrayShape, Counters, Engine, EngineKind, GemmOp};
use crate::error::{Error, Result};
use crate::format::{AAxis, BAxis, Format};
use crate::matrix::Matrix;
use crate::rng::mix64;
use crate::sq::Rounding;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GemmKind {
    Forward,
    InputGrad,
    WeightGrad,
}

pub struct Offload {
    engine: Box<dyn Engine>,
    /// An ablation: GEMMs of these roles run in fp32 on the host (not counted as accelerator
    /// work), to see which role's quantization a result depends on.
    host_roles: Vec<GemmKind>,
    host: crate::engine::cpu::CpuEngine,
    format: Format,
    window: u32,
    seed: u64,
    draws: u64,
}

impl Offload {
    /// An offload context for `format` on `kind` (fp32 must run on `cpu`, the others must not).
    pub fn new(
        format: Format,
        kind: EngineKind,
        shape: ArrayShape,
        window: u32,
        seed: u64,
    ) -> Result<Self> {
        match (format, kind) {
            (Format::Fp32, EngineKind::Cpu) => {}
            (Format::Fp32, _) => {
                return Err(Error::Usage(format!(
                    "fp32 trains on the host: use --engine cpu (or a format such as sq6 for --engine {})",
                    kind.name()
                )))
            }
            (_, EngineKind::Cpu) => {
                return Err(Error::Usage(format!(
                    "the cpu engine trains in fp32 only: use --engine golden for {format}"
                )))
            }
            _ => {}
        }
        let engine = crate::engine::create(kind, shape)?;
        Ok(Offload {
            engine,
            host_roles: Vec::new(),
            host: Default::default(),
            format,
            window,
            seed,
            draws: 0,
        })
    }

    /// Run the GEMMs of `roles` in fp32 on the host instead (see `host_roles`).
    pub fn with_host_roles(mut self, roles: &[GemmKind]) -> Self {
        self.host_roles = roles.to_vec();
        self
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn engine_kind(&self) -> EngineKind {
        self.engine.kind()
    }

    pub fn counters(&self) -> &Counters {
        self.engine.counters()
    }

    fn stochastic(&mut self) -> Rounding {
        self.draws += 1;
        Rounding::Stochastic {
            seed: mix64(self.seed ^ mix64(self.draws)),
        }
    }

    /// C = A x B for a GEMM of the given role.
    pub fn gemm(&mut self, a: &Matrix, b: &Matrix, kind: GemmKind) -> Result<Matrix> {
        if self.host_roles.contains(&kind) {
            return self.host.gemm(a, b, &GemmOp::new(Format::Fp32));
        }
        let op = self.op(kind);
        self.engine.gemm(a, b, &op)
    }

    /// C = A x B with A given as its transpose (K x M), for the weight gradient `X^T dY`:
    /// the same bits as `gemm(&a_t.transpose(), b, kind)`, without the transpose where the
    /// engine can read A transposed.
    pub fn gemm_at(&mut self, a_t: &Matrix, b: &Matrix, kind: GemmKind) -> Result<Matrix> {
        if self.host_roles.contains(&kind) {
            return self.host.gemm_at(a_t, b, &GemmOp::new(Format::Fp32));
        }
        let op = self.op(kind);
        self.engine.gemm_at(a_t, b, &op)
    }

    /// The quantization of a GEMM of this role (the table above; draws the stochastic seeds).
    fn op(&mut self, kind: GemmKind) -> GemmOp {
        let mut op = GemmOp::new(self.format);
        op.window = self.window;
        if self.format.sq_bits().is_some() {
            match kind {
                GemmKind::Forward => {
                    (op.a_axis, op.b_axis) = (AAxis::K, BAxis::N);
                }
                GemmKind::InputGrad => {
                    (op.a_axis, op.b_axis) = (AAxis::K, BAxis::N);
                    op.a_rounding = self.stochastic();
                }
                GemmKind::WeightGrad => {
                    (op.a_axis, op.b_axis) = (AAxis::M, BAxis::K);
                    op.b_rounding = self.stochastic();
                }
            }
        }
        op
    }
}
