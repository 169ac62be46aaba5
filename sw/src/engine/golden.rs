//! The `golden` engine: the bit-exact functional model of the accelerator, fast enough to train
//! on. Its counters are those of the command stream the `rtl` engine sends for the same GEMM
//! (`cost`), so `golden` and `rtl` agree on cycles as well as on bits.

use super::cost::gemm_cost;
use super::offload::{accel_geometry, half_operands, quantize_operands, sq_stream_chunk, K_MAX};
use super::{ArrayShape, Counters, Engine, EngineKind, GemmOp};
use crate::error::Result;
use crate::fp16::fp16_gemm;
use crate::matrix::Matrix;
use crate::sq_gemm::{accumulate, scale_out};
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
                let (qa, qb) = quantize_operands(a, b, op, bits)?;
                let chunk = sq_stream_chunk(&config, &qa, &qb)?;
                let acc = accumulate(&qa, &qb)?;
                let cost = gemm_cost(&geom, shape, chunk)?;
                (scale_out(&acc, &qa, &qb), cost)
            }
            Datapath::Fp16 => {
                let (ha, hb) = half_operands(a, b)?;
                (fp16_gemm(&ha, &hb)?, gemm_cost(&geom, shape, K_MAX)?)
            }
        };
        self.counters += cost;
        Ok(c)
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn reset_counters(&mut self) {
        self.counters = Counters::default();
    }
}
