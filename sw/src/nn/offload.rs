//! The layers' single door to the accelerator. Each GEMM of training has a role, and the role
//! fixes how its operands are quantized (SQ formats):
//!
//! | role | C = A x B | A: axis, rounding | B: axis, rounding |
//! | --- | --- | --- | --- |
//! | `Forward` | Y = X W | X per-K (input feature), nearest-even | W per-N (output feature), nearest-even |
//! | `InputGrad` | dX = dY W^T | dY per-K (output feature), stochastic | W^T per-N (input feature), nearest-even |
//! | `WeightGrad` | dW = X^T dY | X^T per-M (input feature), nearest-even | dY per-K (example), stochastic |
//! | `AttnScores` | S = Q K^T | Q per-K (head feature), nearest-even | K^T per-N (key token), nearest-even |
//! | `AttnContext` | Z = P V | P per-M (query token), nearest-even | V per-N (head feature), nearest-even |
//! | `AttnProbsGrad` | dP = dZ V^T | dZ per-K (head feature), stochastic | V^T per-N (key token), nearest-even |
//! | `AttnValueGrad` | dV = P^T dZ | P^T per-M (key token), nearest-even | dZ per-K (query token), stochastic |
//! | `AttnQueryGrad` | dQ = dS K | dS per-M (query token), stochastic | K per-N (head feature), nearest-even |
//! | `AttnKeyGrad` | dK = dS^T Q | dS^T per-M (key token), stochastic | Q per-N (head feature), nearest-even |
//!
//! Activations and weights are scaled per *feature* channel: activation outliers live in
//! features, and per-feature exponents on the K side become shifts inside the PE. The weight
//! gradient's K axis is the batch, and there the output gradients are scaled per *example*
//! (again a shift in the PE): late in training a few examples carry most of the gradient, and one
//! scale per output feature across the batch would round the others to noise. That choice decides
//! grokking: sq6, seed 2, generalizes at epoch 15,650 with per-example dY (fp32: 13,370) and was
//! still at 0.89 test accuracy after 30,000 epochs with per-feature dY.
//!
//! The six attention products (one per image and head, `T x d_head` operands) follow the same
//! two rules: a token-by-feature activation is scaled per *feature* where features are the K axis
//! (Q in the scores, dZ in dP: the PE shifts them, and outlier features keep their own exponent),
//! and per *token* where tokens are the other axis (K^T's and V^T's columns, P's, dS's rows),
//! so that a key or query of small norm is not rounded to zero by a large one; those exponents
//! are applied on drain and do not shorten the accumulator's K chunks. The probabilities P are
//! scaled per query row: each row sums to one, and its own peak sets its scale (a per-key scale
//! would let one sharply attended key round every other query's weights to noise). Where the
//! K axis is tokens (dV = P^T dZ), the gradient is scaled per token, stochastic, for the reason
//! `WeightGrad` scales dY per example. The score gradient dS = P * (dP - rowsum(P dP)) is
//! scaled per query row in dQ and per key row in dK (its rows carry P's per-query scale).
//! Gradients use stochastic rounding (unbiased); each stochastic quantization draws a fresh seed
//! from the run's seed and a call counter, so a run is bit-reproducible and `golden` and `rtl` see
//! the same bits.

use crate::engine::link::{op_link_cost, LinkModel, LinkTotals};
use crate::engine::{
    ArrayShape, Counters, Engine, EngineKind, GemmCall, GemmOp, L1NormCodes, L1NormOp,
};
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
    /// Attention scores S = Q K^T (per image and head).
    AttnScores,
    /// Attention context Z = P V.
    AttnContext,
    /// dP = dZ V^T.
    AttnProbsGrad,
    /// dV = P^T dZ.
    AttnValueGrad,
    /// dQ = dS K.
    AttnQueryGrad,
    /// dK = dS^T Q.
    AttnKeyGrad,
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
    l1norm_counters: Counters,
    shape: ArrayShape,
    /// The host-link model every accelerator GEMM is also timed with (`with_link`).
    link: Option<LinkModel>,
    link_totals: LinkTotals,
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
        crate::alloc::keep_freed_buffers();
        let engine = crate::engine::create(kind, shape)?;
        Ok(Offload {
            engine,
            host_roles: Vec::new(),
            host: Default::default(),
            format,
            window,
            seed,
            draws: 0,
            l1norm_counters: Counters::default(),
            shape,
            link: None,
            link_totals: LinkTotals::default(),
        })
    }

    /// Run the GEMMs of `roles` in fp32 on the host instead (see `host_roles`).
    /// `format` on its default engine (`EngineKind::default_for`) with the default array,
    /// window and seed 0: what the benches and profiles time.
    pub fn for_format(format: Format) -> Result<Self> {
        Offload::new(
            format,
            EngineKind::default_for(format),
            ArrayShape::default(),
            shiftkit_hw::config::DEFAULT_WINDOW,
            0,
        )
    }

    pub fn with_host_roles(mut self, roles: &[GemmKind]) -> Self {
        self.host_roles = roles.to_vec();
        self
    }

    /// Also time every accelerator GEMM over this host link (`link_totals`).
    pub fn with_link(mut self, link: Option<LinkModel>) -> Self {
        self.link = link;
        self
    }

    /// The link model, if any, and the accelerator GEMMs' link costs so far.
    pub fn link(&self) -> Option<(&LinkModel, &LinkTotals)> {
        self.link.as_ref().map(|m| (m, &self.link_totals))
    }

    fn add_link(&mut self, op: &GemmOp, dims: (usize, usize, usize)) -> Result<()> {
        if let Some(model) = &self.link {
            if let Some(c) = op_link_cost(&self.shape, op, dims, model)? {
                self.link_totals.add(c);
            }
        }
        Ok(())
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
        let c = self.engine.gemm(a, b, &op)?;
        self.add_link(&op, (a.rows, a.cols, b.cols))?;
        Ok(c)
    }

    /// C = A x B with A given as its transpose (K x M), for the weight gradient `X^T dY`:
    /// the same bits as `gemm(&a_t.transpose(), b, kind)`, without the transpose where the
    /// engine can read A transposed.
    pub fn gemm_at(&mut self, a_t: &Matrix, b: &Matrix, kind: GemmKind) -> Result<Matrix> {
        if self.host_roles.contains(&kind) {
            return self.host.gemm_at(a_t, b, &GemmOp::new(Format::Fp32));
        }
        let op = self.op(kind);
        let c = self.engine.gemm_at(a_t, b, &op)?;
        self.add_link(&op, (a_t.cols, a_t.rows, b.cols))?;
        Ok(c)
    }

    /// A layer's weight gradient `x^T dy` and input gradient `dy w_t` (`w_t` = W^T): the same
    /// bits, counters and stochastic seeds as `gemm_at(x, dy, WeightGrad)` then
    /// `gemm(dy, w_t, InputGrad)`; the engine may run the two side by side.
    pub fn gradients(&mut self, x: &Matrix, dy: &Matrix, w_t: &Matrix) -> Result<(Matrix, Matrix)> {
        if self.host_roles.contains(&GemmKind::WeightGrad)
            || self.host_roles.contains(&GemmKind::InputGrad)
        {
            let dw = self.gemm_at(x, dy, GemmKind::WeightGrad)?;
            let dx = self.gemm(dy, w_t, GemmKind::InputGrad)?;
            return Ok((dw, dx));
        }
        // Seeds are drawn in the order of the two calls.
        let wg = self.op(GemmKind::WeightGrad);
        let ig = self.op(GemmKind::InputGrad);
        let out = self.engine.gradients(
            GemmCall {
                a: x,
                b: dy,
                op: &wg,
            },
            GemmCall {
                a: dy,
                b: w_t,
                op: &ig,
            },
        )?;
        self.add_link(&wg, (x.cols, x.rows, dy.cols))?;
        self.add_link(&ig, (dy.rows, dy.cols, w_t.cols))?;
        Ok(out)
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
                GemmKind::AttnScores => {
                    (op.a_axis, op.b_axis) = (AAxis::K, BAxis::N);
                }
                GemmKind::AttnContext => {
                    (op.a_axis, op.b_axis) = (AAxis::M, BAxis::N);
                }
                GemmKind::AttnProbsGrad => {
                    (op.a_axis, op.b_axis) = (AAxis::K, BAxis::N);
                    op.a_rounding = self.stochastic();
                }
                GemmKind::AttnValueGrad => {
                    (op.a_axis, op.b_axis) = (AAxis::M, BAxis::K);
                    op.b_rounding = self.stochastic();
                }
                GemmKind::AttnQueryGrad | GemmKind::AttnKeyGrad => {
                    (op.a_axis, op.b_axis) = (AAxis::M, BAxis::N);
                    op.a_rounding = self.stochastic();
                }
            }
        }
        op
    }

    /// L1-normalize integer rows on the accelerator's L1-norm unit of this context's format
    /// (`Engine::l1norm`); its cycles and bytes join the counters and are also kept apart in
    /// `l1norm_counters`.
    pub fn l1norm(&mut self, rows: &[Vec<i64>]) -> Result<L1NormCodes> {
        let op = L1NormOp {
            format: self.format,
            window: self.window,
        };
        let before = *self.engine.counters();
        let codes = self.engine.l1norm(rows, &op)?;
        let after = *self.engine.counters();
        self.l1norm_counters.cycles += after.cycles - before.cycles;
        self.l1norm_counters.bytes_to_device += after.bytes_to_device - before.bytes_to_device;
        self.l1norm_counters.bytes_from_device +=
            after.bytes_from_device - before.bytes_from_device;
        Ok(codes)
    }

    /// The part of `counters` that the L1-norm unit spent.
    pub fn l1norm_counters(&self) -> &Counters {
        &self.l1norm_counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn random(rows: usize, cols: usize, g: &mut SplitMix64) -> Matrix {
        Matrix::from_fn(rows, cols, |_, _| g.normal() as f32)
    }

    /// `gradients` (side by side on golden) gives the bits, counters and later seeds of the two
    /// calls in order.
    #[test]
    fn gradients_equal_the_two_calls_in_order() {
        let mut g = SplitMix64::new(11);
        let (x, dy, w) = (
            random(70, 33, &mut g),
            random(70, 20, &mut g),
            random(33, 20, &mut g),
        );
        let w_t = w.transpose();
        for format in [Format::Sq4, Format::Sq6, Format::Fp16] {
            let ctx =
                || Offload::new(format, EngineKind::Golden, ArrayShape::default(), 7, 5).unwrap();
            let (mut one, mut two) = (ctx(), ctx());
            let (dw, dx) = one.gradients(&x, &dy, &w_t).unwrap();
            let dw2 = two.gemm_at(&x, &dy, GemmKind::WeightGrad).unwrap();
            let dx2 = two.gemm(&dy, &w_t, GemmKind::InputGrad).unwrap();
            assert_eq!((&dw, &dx), (&dw2, &dx2), "{format}");
            assert_eq!(one.counters(), two.counters(), "{format}");
            // The next stochastic draw is the same too.
            let next = |c: &mut Offload| c.gemm(&dy, &w_t, GemmKind::InputGrad).unwrap();
            assert_eq!(next(&mut one), next(&mut two), "{format}");
        }
    }
}
