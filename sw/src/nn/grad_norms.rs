//! Exact per-example gradient norms of linear and convolution layers from what backprop already
//! has: the layer's inputs X and its output gradients G, per example (GraNd, Paul et al. 2021).
//!
//! For one example, a layer whose weight gradient is a sum over P positions
//! (`dW = sum_p x_p^T g_p`, P = 1 for a linear layer, P = OH*OW for a convolution on im2col
//! rows) has
//!
//! `||dW||_F^2 = sum_{p,q} (x_p . x_q)(g_p . g_q)`.
//!
//! For P = 1 that is `||x||^2 ||g||^2`, and no gradient is formed at all. For P > 1 two exact
//! ways exist, and the cheaper is taken per layer: the Gram form above (P^2 (K + C)
//! multiply-adds) or the example's own `X^T G` (P K C), formed one example at a time per thread
//! and discarded, so the batch's per-example gradients never exist together in memory. (For
//! the data-diet CNN the direct form is cheaper for both convolutions: P K C = 230k and 819k
//! against P^2 (K + C) = 13.6M and 1.8M.) The bias gradient is `sum_p g_p`.
//!
//! Inputs are the rows of `x` (N*P x K) and `g` (N*P x C), example-major as im2col lays them
//! out. Sums are in f64.

use crate::matrix::Matrix;
use rayon::prelude::*;

/// ||dW_b||_F^2 for every example b.
pub fn weight_sq_norms(x: &Matrix, g: &Matrix, positions: usize) -> Vec<f64> {
    assert_eq!(x.rows, g.rows, "x and g need one row per position");
    let (k, c, p) = (x.cols, g.cols, positions.max(1));
    let n = x.rows / p;
    let gram = p * p * (k + c);
    let direct = p * k * c;
    (0..n)
        .into_par_iter()
        .map(|b| {
            let xb = &x.data[b * p * k..(b + 1) * p * k];
            let gb = &g.data[b * p * c..(b + 1) * p * c];
            if p == 1 {
                sq(xb) * sq(gb)
            } else if gram < direct {
                gram_form(xb, gb, p, k, c)
            } else {
                direct_form(xb, gb, p, k, c)
            }
        })
        .collect()
}

/// ||db_b||^2 = ||sum_p g_p||^2 for every example b.
pub fn bias_sq_norms(g: &Matrix, positions: usize) -> Vec<f64> {
    let (c, p) = (g.cols, positions.max(1));
    g.data
        .par_chunks(p * c)
        .map(|gb| {
            let mut s = vec![0.0f64; c];
            for row in gb.chunks(c) {
                s.iter_mut().zip(row).for_each(|(a, &v)| *a += v as f64);
            }
            s.iter().map(|v| v * v).sum()
        })
        .collect()
}

fn sq(v: &[f32]) -> f64 {
    v.iter().map(|&a| a as f64 * a as f64).sum()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

pub(crate) fn gram_form(xb: &[f32], gb: &[f32], p: usize, k: usize, c: usize) -> f64 {
    let mut total = 0.0;
    for i in 0..p {
        let (xi, gi) = (&xb[i * k..(i + 1) * k], &gb[i * c..(i + 1) * c]);
        total += sq(xi) * sq(gi);
        for j in 0..i {
            total += 2.0 * dot(xi, &xb[j * k..(j + 1) * k]) * dot(gi, &gb[j * c..(j + 1) * c]);
        }
    }
    total
}

pub(crate) fn direct_form(xb: &[f32], gb: &[f32], p: usize, k: usize, c: usize) -> f64 {
    let mut dw = vec![0.0f32; k * c];
    // SAFETY: A = xb viewed as its transpose (k x p: element (i, j) at j*k + i), B = gb (p x c,
    // row-major), C = dw (k x c, row-major); the slices hold exactly those elements.
    unsafe {
        matrixmultiply::sgemm(
            k,
            p,
            c,
            1.0,
            xb.as_ptr(),
            1,
            k as isize,
            gb.as_ptr(),
            c as isize,
            1,
            0.0,
            dw.as_mut_ptr(),
            c as isize,
            1,
        );
    }
    sq(&dw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    #[test]
    fn both_forms_equal_the_materialized_gradient() {
        let mut r = SplitMix64::new(3);
        let (n, p, k, c) = (3, 5, 4, 6);
        let x = Matrix::from_fn(n * p, k, |_, _| r.normal() as f32);
        let g = Matrix::from_fn(n * p, c, |_, _| r.normal() as f32);
        let norms = weight_sq_norms(&x, &g, p);
        for (b, &norm) in norms.iter().enumerate() {
            let mut want = 0.0f64;
            for i in 0..k {
                for j in 0..c {
                    let v: f64 = (0..p)
                        .map(|q| x.at(b * p + q, i) as f64 * g.at(b * p + q, j) as f64)
                        .sum();
                    want += v * v;
                }
            }
            let xb = &x.data[b * p * k..(b + 1) * p * k];
            let gb = &g.data[b * p * c..(b + 1) * p * c];
            for got in [
                norm,
                gram_form(xb, gb, p, k, c),
                direct_form(xb, gb, p, k, c),
            ] {
                assert!((got - want).abs() < 1e-4 * want, "{got} vs {want}");
            }
        }
        let bias = bias_sq_norms(&g, p);
        let want: f64 = (0..c)
            .map(|j| (0..p).map(|q| g.at(q, j) as f64).sum::<f64>().powi(2))
            .sum();
        assert!((bias[0] - want).abs() < 1e-9 * want.max(1.0));
    }
}
