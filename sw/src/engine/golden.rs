//! The `golden` engine: the bit-exact functional model of the accelerator, fast enough to train
//! on. Its counters are those of the command stream the `rtl` engine sends for the same GEMM
//! (`cost`), so `golden` and `rtl` agree on cycles as well as on bits.
//!
//! ShiftQuant GEMMs take the fused path (`sq_fused`: quantize straight into the packed layout of
//! the 8-bit VNNI kernel, scale in its store) where the CPU has AVX-512 VNNI, and the reference
//! path (`quantize`, `accumulate`, `scale_out`) elsewhere; the two are bit-identical
//! (`sq_fused::tests`, and every golden-vs-rtl test runs on the fused path). FP16 GEMMs round
//! both operands through binary16 in one pass (`fp16::fp16_gemm_f32`).

use super::cost::gemm_cost;
use super::l1norm_op::{L1NormCodes, L1NormOp, L1NormStream};
use super::offload::{accel_geometry, quantize_operands, sq_stream_chunk, K_MAX};
use super::{ArrayShape, Counters, Engine, EngineKind, GemmOp};
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
        let config = self.shape.config_for(op)?;
        let geom = accel_geometry(&config)?;
        let shape = (a.rows, a.cols, b.cols);
        let (c, cost) = match config.datapath {
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
                (c, gemm_cost(&geom, shape, chunk)?)
            }
            Datapath::Fp16 => (fp16_gemm_f32(a, b)?, gemm_cost(&geom, shape, K_MAX)?),
        };
        self.counters += cost;
        Ok(c)
    }

    fn gemm_at(&mut self, a_t: &Matrix, b: &Matrix, op: &GemmOp) -> Result<Matrix> {
        if let Ok(config) = self.shape.config_for(op) {
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
                    self.counters += gemm_cost(&geom, (a_t.cols, a_t.rows, b.cols), chunk)?;
                    return Ok(c);
                }
            }
        }
        // Everything else (and every error) exactly as `gemm` on the transpose.
        self.gemm(&a_t.transpose(), b, op)
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
