//! Golden model of the ShiftQuant MAC array, SPEC §3.
//!
//!   acc[m][n] = sum_k qa[m][k] * qb[k][n] * 2^(ea_k + eb_k)          exact integer
//!   C[m][n]   = f32(((acc * sA) * sB) * 2^(ea_m + eb_n))              in f64, then rounded
//!
//! The per-K shift is folded into the operands (qa << ea_k, qb << eb_k) so the sum is a plain
//! integer GEMM; when both folded operands fit i16 it runs on the fast SIMD kernel.

use crate::error::{Error, Result};
use crate::format::Axis;
use crate::kernels;
use crate::matrix::Matrix;
use crate::sq::{pow2, SqMatrix};
use rayon::prelude::*;
use shiftkit_hw::ArrayConfig;

/// Does A (M x K) carry per-K exponents? (Its channel axis is K = its columns.)
fn a_per_k(a: &SqMatrix) -> bool {
    a.axis == Axis::Cols
}

/// Does B (K x N) carry per-K exponents? (Its channel axis is K = its rows.)
fn b_per_k(b: &SqMatrix) -> bool {
    b.axis == Axis::Rows
}

pub fn check_operands(a: &SqMatrix, b: &SqMatrix) -> Result<()> {
    if a.cols != b.rows {
        return Err(Error::Shape(format!(
            "A is {}x{} and B is {}x{}: A's columns must equal B's rows",
            a.rows, a.cols, b.rows, b.cols
        )));
    }
    if a.params.bits != b.params.bits {
        return Err(Error::Shape(format!(
            "A is sq{} and B is sq{}: both operands of one GEMM share a bit-width",
            a.params.bits, b.params.bits
        )));
    }
    Ok(())
}

/// Operand codes with the per-K shift folded in when `per_k` (the exponents of a per-K operand
/// are exactly its per-K shifts), and a bound on their magnitude (Q << largest shift); `None` when
/// that bound does not fit `T`.
fn fold<T>(q: &SqMatrix, per_k: bool) -> Option<(Vec<T>, i32)>
where
    T: TryFrom<i32> + Copy + Default + std::ops::Mul<Output = T> + From<i8> + Send + Sync,
{
    let max_shift = if per_k {
        q.exps.iter().copied().max().unwrap_or(0) as u32
    } else {
        0
    };
    let bound = q.params.q() << max_shift;
    T::try_from(bound).ok()?;
    // Multiplying by 2^e is the shift; a multiply by a per-lane factor vectorizes where a
    // per-lane shift of 16-bit lanes would not.
    let factor = |e: u8| T::try_from(1i32 << e).ok().unwrap_or_default();
    let mut out = vec![T::default(); q.codes.len()];
    let cols = q.cols.max(1);
    match (per_k, q.axis) {
        (false, _) => out
            .iter_mut()
            .zip(&q.codes)
            .for_each(|(o, &c)| *o = T::from(c)),
        (true, Axis::Rows) => {
            for ((o_row, q_row), &e) in out.chunks_mut(cols).zip(q.codes.chunks(cols)).zip(&q.exps)
            {
                let f = factor(e);
                o_row
                    .iter_mut()
                    .zip(q_row)
                    .for_each(|(o, &c)| *o = T::from(c) * f);
            }
        }
        (true, Axis::Cols) => {
            let factors: Vec<T> = q.exps.iter().map(|&e| factor(e)).collect();
            let row = |(o_row, q_row): (&mut [T], &[i8])| {
                for ((o, &c), &f) in o_row.iter_mut().zip(q_row).zip(&factors) {
                    *o = T::from(c) * f;
                }
            };
            if q.codes.len() >= 1 << 16 {
                out.par_chunks_mut(cols)
                    .zip(q.codes.par_chunks(cols))
                    .for_each(row);
            } else {
                out.chunks_mut(cols).zip(q.codes.chunks(cols)).for_each(row);
            }
        }
    }
    Some((out, bound))
}

/// The exact accumulator matrix (M x N, row-major) of SPEC §3, before per-M/N exponents.
pub fn accumulate(a: &SqMatrix, b: &SqMatrix) -> Result<Vec<i64>> {
    check_operands(a, b)?;
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let (a_k, b_k) = (a_per_k(a), b_per_k(b));
    let mut acc = vec![0i64; m * n];
    if let (Some((fa, max_a)), Some((fb, max_b))) = (fold::<i16>(a, a_k), fold::<i16>(b, b_k)) {
        kernels::gemm_i16(m, n, k, &fa, &fb, max_a, max_b, &mut acc);
        return Ok(acc);
    }
    // Wide operands (large windows): the i32 path, after proving the i64 sum cannot overflow.
    let (fa, max_a) = fold::<i32>(a, a_k).expect("codes << 15 fit i32");
    let (fb, max_b) = fold::<i32>(b, b_k).expect("codes << 15 fit i32");
    let bound = k as u128 * max_a as u128 * max_b as u128;
    if bound >= 1u128 << 63 {
        return Err(Error::Accumulator(format!(
            "K = {k} with |A| <= {max_a} and |B| <= {max_b} could exceed i64: split K or use a smaller --window"
        )));
    }
    kernels::gemm_i32(m, n, k, &fa, &fb, &mut acc);
    Ok(acc)
}

/// C from the exact accumulators: the per-M / per-N exponents and both scales (SPEC §3).
/// Multiplying by 2^ea_m and then 2^eb_n equals multiplying by 2^(ea_m + eb_n): powers of two
/// scale exactly.
pub fn scale_out(acc: &[i64], a: &SqMatrix, b: &SqMatrix) -> Matrix {
    let (m, n) = (a.rows, b.cols);
    let row_pow: Vec<f64> = (0..m)
        .map(|r| {
            if a_per_k(a) {
                1.0
            } else {
                pow2(a.exps[r] as u32)
            }
        })
        .collect();
    let col_pow: Vec<f64> = (0..n)
        .map(|c| {
            if b_per_k(b) {
                1.0
            } else {
                pow2(b.exps[c] as u32)
            }
        })
        .collect();
    let mut data = vec![0.0f32; m * n];
    let (sa, sb) = (a.scale, b.scale);
    let row = |(r, (out, acc_row)): (usize, (&mut [f32], &[i64]))| {
        scale_kernel::scale_row(acc_row, out, sa, sb, row_pow[r], &col_pow)
    };
    let n1 = n.max(1);
    if m * n >= 1 << 15 {
        data.par_chunks_mut(n1)
            .zip(acc.par_chunks(n1))
            .enumerate()
            .for_each(row);
    } else {
        data.chunks_mut(n1)
            .zip(acc.chunks(n1))
            .enumerate()
            .for_each(row);
    }
    Matrix {
        rows: m,
        cols: n,
        data,
    }
}

/// The per-element loop of `scale_out`, also compiled with AVX-512DQ (vector i64 -> f64).
mod scale_kernel {
    #[inline(always)]
    fn body(acc: &[i64], out: &mut [f32], sa: f64, sb: f64, rp: f64, col_pow: &[f64]) {
        for ((o, &v), &cp) in out.iter_mut().zip(acc).zip(col_pow) {
            *o = ((v as f64 * sa * sb) * rp * cp) as f32;
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    unsafe fn body_avx512(
        acc: &[i64],
        out: &mut [f32],
        sa: f64,
        sb: f64,
        rp: f64,
        col_pow: &[f64],
    ) {
        body(acc, out, sa, sb, rp, col_pow)
    }

    pub(super) fn scale_row(
        acc: &[i64],
        out: &mut [f32],
        sa: f64,
        sb: f64,
        rp: f64,
        col_pow: &[f64],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f")
                && has!("avx512dq")
                && has!("avx512vl")
                && has!("avx2")
                && has!("fma")
            {
                // SAFETY: the CPU supports every feature the function enables (checked above).
                return unsafe { body_avx512(acc, out, sa, sb, rp, col_pow) };
            }
        }
        body(acc, out, sa, sb, rp, col_pow)
    }
}

/// C = A x B through the golden model.
pub fn sq_gemm(a: &SqMatrix, b: &SqMatrix) -> Result<Matrix> {
    let acc = accumulate(a, b)?;
    Ok(scale_out(&acc, a, b))
}

/// Longest K run whose partial sums cannot overflow the array's `acc_bits` accumulator:
/// K_chunk * Q^2 * 2^(shift) < 2^(acc_bits - 1), where `shift` is the largest per-K shift the
/// operands can carry (E for each operand whose channel axis is K; the spec's 2E when both are).
/// The runtime adds the chunk sums in i64, so the result never depends on the chunking.
pub fn k_chunk(config: &ArrayConfig, a_k: bool, b_k: bool) -> Result<usize> {
    let q = config.q_max() as u128;
    let shift = config.window * (a_k as u32 + b_k as u32);
    let per_k = (q * q) << shift;
    let limit = 1u128 << (config.acc_bits - 1);
    let chunk = (limit - 1) / per_k.max(1);
    if chunk == 0 {
        return Err(Error::Accumulator(format!(
            "one product needs more than {} bits: raise --acc-bits or lower --window",
            config.acc_bits
        )));
    }
    Ok(chunk.min(usize::MAX as u128) as usize)
}

/// The per-K flags of a pair of operands, for `k_chunk`.
pub fn per_k_flags(a: &SqMatrix, b: &SqMatrix) -> (bool, bool) {
    (a_per_k(a), b_per_k(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiftkit_hw::Datapath;

    #[test]
    fn chunk_bound_matches_the_spec_formula() {
        let c = ArrayConfig::new(4, 4, Datapath::Sq { bits: 6 }).unwrap(); // E = 7, 32-bit acc
                                                                           // 961 * 2^14 = 15,745,024 per k; 2^31 / that = 136.39.. -> 136
        assert_eq!(k_chunk(&c, true, true).unwrap(), 136);
        let c4 = ArrayConfig::new(4, 4, Datapath::Sq { bits: 4 }).unwrap();
        assert_eq!(
            k_chunk(&c4, false, false).unwrap(),
            ((1u64 << 31) - 1) as usize / 49
        );
    }
}
