//! The `golden` engine: the bit-exact functional model of the accelerator, fast enough to train
//! on. Its counters are those of the command stream the `rtl` engine sends for the same GEMM
//! (`cost`), so `golden` and `rtl` agree on cycles as well as on bits.
//!
//! ShiftQuant GEMMs take the fused path (`sq_fused`: quantize straight into the packed layout of
//! the 8-bit kernel, scale in its store) where the CPU runs that kernel (AVX-512 VNNI: every SQ
//! format; AVX2: up to SQ-7), and the reference path (`quantize`, `accumulate`, `scale_out`)
//! elsewhere; the two are bit-identical (`sq_fused::tests`, and every golden-vs-rtl test of
//! sq4/sq6 runs on the fused path). FP16 GEMMs round
//! both operands through binary16 in one pass (`fp16::fp16_gemm_f32`).

use super::cost::gemm_cost;
use super::l1norm_op::{L1NormCodes, L1NormOp, L1NormStream};
use super::offload::{accel_geometry, quantize_operands, sq_stream_chunk, K_MAX};
use super::{ArrayShape, Counters, Engine, EngineKind, GemmCall, GemmOp};
use crate::error::{Error, Result};
use crate::fp16::fp16_gemm_f32;
use crate::matrix::Matrix;
use crate::sq::SqParams;
use crate::sq_fused;
use crate::sq_gemm::{accumulate, scale_out};
use shiftkit_hw::l1norm;
use shiftkit_hw::Datapath;

pub struct GoldenEngine {
    shape: ArrayShape,
    counters: Counters,
}

impl GoldenEngine {
    pub fn new(shape: ArrayShape) -> Self {
        GoldenEngine {
            shape,
            counters: Counters::default(),
        }
    }
}

impl Engine for GoldenEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Golden
    }

    fn gemm(&mut self, a: &Matrix, b: &Matrix, op: &GemmOp) -> Result<Matrix> {
        let (c, cost) = product(self.shape, a, b, op)?;
        self.counters += cost;
        Ok(c)
    }

    fn gemm_at(&mut self, a_t: &Matrix, b: &Matrix, op: &GemmOp) -> Result<Matrix> {
        let (c, cost) = product_at(self.shape, a_t, b, op)?;
        self.counters += cost;
        Ok(c)
    }

    fn gradients(&mut self, wg: GemmCall, ig: GemmCall) -> Result<(Matrix, Matrix)> {
        let shape = self.shape;
        let (w, i) = rayon::join(
            || product_at(shape, wg.a, wg.b, wg.op),
            || product(shape, ig.a, ig.b, ig.op),
        );
        // As the two calls in order: an error in the first leaves the counters unchanged.
        let (dw, cost) = w?;
        self.counters += cost;
        let (dx, cost) = i?;
        self.counters += cost;
        Ok((dw, dx))
    }

    fn l1norm(&mut self, rows: &[Vec<i64>], op: &L1NormOp) -> Result<L1NormCodes> {
        let stream = L1NormStream::plan(&self.shape, rows, op)?;
        let codes = rows
            .iter()
            .map(|r| l1norm::golden(&stream.unit, r).map_err(|e| Error::Usage(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let cycles = stream.model_cycles()?;
        self.counters += stream.counters(cycles);
        Ok(stream.codes(codes))
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn reset_counters(&mut self) {
        self.counters = Counters::default();
    }
}

/// C = A x B on the modelled array and what it costs (a pure function of its inputs).
fn product(shape: ArrayShape, a: &Matrix, b: &Matrix, op: &GemmOp) -> Result<(Matrix, Counters)> {
    let config = shape.config_for(op)?;
    let geom = accel_geometry(&config)?;
    let dims = (a.rows, a.cols, b.cols);
    match config.datapath {
        Datapath::Sq { bits } => {
            let params = SqParams::new(bits, op.window)?;
            let side = |axis, rounding| sq_fused::Side { axis, rounding };
            let fast = sq_fused::gemm(
                a,
                b,
                params,
                side(op.a_axis.axis(), op.a_rounding),
                side(op.b_axis.axis(), op.b_rounding),
            )?;
            let c = match fast {
                Some(c) => c,
                None => {
                    let (qa, qb) = quantize_operands(a, b, op, bits)?;
                    scale_out(&accumulate(&qa, &qb)?, &qa, &qb)
                }
            };
            let chunk = sq_stream_chunk(&config, op)?;
            Ok((c, gemm_cost(&geom, dims, chunk)?))
        }
        Datapath::Fp16 => Ok((fp16_gemm_f32(a, b)?, gemm_cost(&geom, dims, K_MAX)?)),
    }
}

/// `product(a_t^T, b)` without materializing the transpose where the fused path applies.
fn product_at(
    shape: ArrayShape,
    a_t: &Matrix,
    b: &Matrix,
    op: &GemmOp,
) -> Result<(Matrix, Counters)> {
    if let Ok(config) = shape.config_for(op) {
        if let Datapath::Sq { bits } = config.datapath {
            let params = SqParams::new(bits, op.window)?;
            let side = |axis, rounding| sq_fused::Side { axis, rounding };
            let fast = sq_fused::gemm_at(
                a_t,
                b,
                params,
                side(op.a_axis.axis(), op.a_rounding),
                side(op.b_axis.axis(), op.b_rounding),
            )?;
            if let Some(c) = fast {
                let geom = accel_geometry(&config)?;
                let chunk = sq_stream_chunk(&config, op)?;
                return Ok((c, gemm_cost(&geom, (a_t.cols, a_t.rows, b.cols), chunk)?));
            }
        }
    }
    // Everything else (and every error) exactly as `product` on the transpose.
    product(shape, &a_t.transpose(), b, op)
}
