//! What every accelerator engine does the same way around its datapath: turn f32 operands into
//! what the array is fed (SQ-b codes and exponents, or binary16), and turn what it drains back
//! into f32. Shared so `golden` and `rtl` cannot drift apart.

use super::GemmOp;
use crate::error::Result;
use crate::fp16::{to_half, HalfMatrix};
use crate::matrix::{check_gemm_shapes, Matrix};
use crate::sq::{quantize, SqMatrix, SqParams};

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
