//! What every accelerator engine does the same way around its datapath: turn f32 operands into
//! what the array is fed (SQ-b codes and exponents, or binary16), and turn what it drains back
//! into f32. Shared so `golden` and `rtl` cannot drift apart.

use super::GemmOp;
use crate::error::{Error, Result};
use crate::format::Axis;
use crate::fp16::{to_half, HalfMatrix};
use crate::matrix::{check_gemm_shapes, Matrix};
use crate::sq::{quantize, SqMatrix, SqParams};
use crate::sq_gemm::k_chunk;
use shiftkit_hw::accel::AccelGeometry;
use shiftkit_hw::ArrayConfig;

/// Quantize A and B for a ShiftQuant GEMM as `op` says.
pub fn quantize_operands(
    a: &Matrix,
    b: &Matrix,
    op: &GemmOp,
    bits: u32,
) -> Result<(SqMatrix, SqMatrix)> {
    check_gemm_shapes(a, b)?;
    let params = SqParams::new(bits, op.window)?;
    let qa = quantize(a, "A", params, op.a_axis.axis(), op.a_rounding)?;
    let qb = quantize(b, "B", params, op.b_axis.axis(), op.b_rounding)?;
    Ok((qa, qb))
}

/// Convert A and B to binary16 for the FP16 reference datapath.
pub fn half_operands(a: &Matrix, b: &Matrix) -> Result<(HalfMatrix, HalfMatrix)> {
    check_gemm_shapes(a, b)?;
    Ok((to_half(a, "A")?, to_half(b, "B")?))
}

/// Operand buffer depth of the accelerator tops the engines model (the generated designs'
/// default): the longest K chunk one LOAD / COMPUTE moves.
pub const K_MAX: usize = shiftkit_hw::accel::DEFAULT_K_MAX;

/// The host-side geometry (lanes, port widths) of the accelerator top built from `config`.
pub fn accel_geometry(config: &ArrayConfig) -> Result<AccelGeometry> {
    AccelGeometry::new(config, K_MAX).map_err(|e| Error::Unsupported(e.to_string()))
}

/// The K chunk the accelerator's command stream uses for a ShiftQuant GEMM: the longest run whose
/// partial sums fit the declared accumulator (`sq_gemm::k_chunk`), at most `K_MAX`. (FP16 chains
/// chunks of `K_MAX` in the array: pass `K_MAX`.)
pub fn sq_stream_chunk(config: &ArrayConfig, op: &GemmOp) -> Result<usize> {
    // A's channel axis is K when it has one exponent per column, B's when one per row.
    let a_k = op.a_axis.axis() == Axis::Cols;
    let b_k = op.b_axis.axis() == Axis::Rows;
    Ok(k_chunk(config, a_k, b_k)?.min(K_MAX))
}
