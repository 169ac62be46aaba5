//! The `golden` engine: the bit-exact functional model of the accelerator, with the cost model's
//! counters. Fast enough to train on.

use super::cost::gemm_cost;
use super::offload::{half_operands, quantize_operands};
use super::{ArrayShape, Counters, Engine, EngineKind, GemmOp};
use crate::error::Result;
use crate::fp16::fp16_gemm;
use crate::matrix::Matrix;
use crate::sq_gemm::{accumulate, k_chunk, per_k_flags, scale_out};
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
        let (m, k, n) = (a.rows, a.cols, b.cols);
        let (c, cost) = match config.datapath {
            Datapath::Sq { bits } => {
                let (qa, qb) = quantize_operands(a, b, op, bits)?;
                let (a_k, b_k) = per_k_flags(&qa, &qb);
                let chunk = k_chunk(&config, a_k, b_k)?;
                let acc = accumulate(&qa, &qb)?;
                let cost = gemm_cost(&config, m, k, n, chunk, qa.exps.len(), qb.exps.len());
                (scale_out(&acc, &qa, &qb), cost)
            }
            Datapath::Fp16 => {
                let (ha, hb) = half_operands(a, b)?;
                (fp16_gemm(&ha, &hb)?, gemm_cost(&config, m, k, n, k, 0, 0))
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
