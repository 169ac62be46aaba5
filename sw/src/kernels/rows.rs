//! Row sweeps for the host normalizations (L1 norm, LayerNorm), written once so that both are
//! tuned alike and compare like for like.
//!
//! - Sums run in [`LANES`] independent partial sums: an f32 sum kept in one accumulator is a
//!   serial chain that LLVM may not reassociate, so it would neither vectorize nor pipeline.
//! - Rows go in fixed blocks of [`BLOCK_ROWS`] over the rayon threads. Each row is computed the
//!   same way wherever it runs, and per-feature sums over rows (dgamma, dbeta) are added block
//!   by block in block order: the bits do not depend on the thread count or on scheduling.

/// Independent partial sums per reduction.
pub const LANES: usize = 16;
/// Rows per parallel block.
pub const BLOCK_ROWS: usize = 16;
/// Below this many elements a sweep stays on the calling thread (same bits either way).
const PAR_MIN_ELEMENTS: usize = 1 << 15;

/// `sum_i f(x_i)` in [`LANES`] partial sums.
#[inline]
pub fn sum_by(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `sum_i f(a_i, b_i)` in [`LANES`] partial sums (`a` and `b` of one length).
#[inline]
pub fn sum_by2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x, y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((s, &u), &v) in acc.iter_mut().zip(x).zip(y) {
            *s += f(u, v);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// One pass for a backward: `out_i = a_i * w_i`, and the `K` sums `sum_i f(out_i, c_i)`, each
/// in [`LANES`] partial sums (all slices of one length).
#[inline]
pub fn product_and_sums<const K: usize>(
    out: &mut [f32],
    a: &[f32],
    w: &[f32],
    c: &[f32],
    f: impl Fn(f32, f32) -> [f32; K],
) -> [f32; K] {
    debug_assert!(a.len() == out.len() && w.len() == out.len() && c.len() == out.len());
    let mut acc = [[0.0f32; LANES]; K];
    let mut tail = [0.0f32; K];
    let mut o = out.chunks_exact_mut(LANES);
    let (ca, cw, cc) = (
        a.chunks_exact(LANES),
        w.chunks_exact(LANES),
        c.chunks_exact(LANES),
    );
    let rest = (ca.remainder(), cw.remainder(), cc.remainder());
    for (((o, a), w), c) in (&mut o).zip(ca).zip(cw).zip(cc) {
        for j in 0..LANES {
            let p = a[j] * w[j];
            o[j] = p;
            let v = f(p, c[j]);
            for k in 0..K {
                acc[k][j] += v[k];
            }
        }
    }
    for (((o, &a), &w), &c) in o
        .into_remainder()
        .iter_mut()
        .zip(rest.0)
        .zip(rest.1)
        .zip(rest.2)
    {
        *o = a * w;
        let v = f(*o, c);
        for k in 0..K {
            tail[k] += v[k];
        }
    }
    let mut sums = [0.0f32; K];
    for k in 0..K {
        sums[k] = acc[k].iter().sum::<f32>() + tail[k];
    }
    sums
}

/// sign(t): 1, -1, or 0 at 0 (branch-free, so that sums of it vectorize).
#[inline]
pub fn sign(t: f32) -> f32 {
    if t > 0.0 {
        1.0
    } else if t < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// The `with_min_len` for a parallel sweep over blocks of [`BLOCK_ROWS`] rows of `elements`
/// elements in all: small inputs run as one piece (no thread hand-off), large ones block by block.
pub fn min_blocks(elements: usize) -> usize {
    if elements < PAR_MIN_ELEMENTS {
        usize::MAX
    } else {
        1
    }
}

/// The sum of per-block partial sums (each `len` long), added in block order.
pub fn add_in_order(partials: &[Vec<f32>], len: usize) -> Vec<f32> {
    let mut total = vec![0.0f32; len];
    for p in partials {
        for (t, &v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn sums_match_a_plain_loop_at_every_length() {
        for n in [0, 1, 15, 16, 17, 100, 768] {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let y: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f64 = x.iter().map(|&v| f64::from(v.abs())).sum();
            let dot: f64 = x.iter().zip(&y).map(|(&a, &b)| f64::from(a * b)).sum();
            assert!(
                (f64::from(sum_by(&x, f32::abs)) - plain).abs() < 1e-4,
                "n {n}"
            );
            assert!(
                (f64::from(sum_by2(&x, &y, |a, b| a * b)) - dot).abs() < 1e-4,
                "n {n}"
            );
        }
        assert_eq!(
            (sign(2.0), sign(-0.5), sign(0.0), sign(-0.0)),
            (1.0, -1.0, 0.0, 0.0)
        );
    }

    #[test]
    fn blocked_sweeps_are_the_same_bits_whatever_the_split() {
        // 40 rows x 1000 elements: above the parallel threshold; the same blocks run serially
        // must give identical per-feature sums.
        let (n, rows) = (1000, 40);
        let x: Vec<f32> = (0..rows * n).map(|i| (i as f32 * 0.013).sin()).collect();
        let block = |(b, xb): (usize, &[f32])| {
            let mut acc = vec![0.0f32; n];
            for (i, row) in xb.chunks(n).enumerate() {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v * (b * BLOCK_ROWS + i) as f32;
                }
            }
            acc
        };
        let par: Vec<Vec<f32>> = x
            .par_chunks(BLOCK_ROWS * n)
            .enumerate()
            .with_min_len(min_blocks(x.len()))
            .map(block)
            .collect();
        let serial: Vec<Vec<f32>> = x.chunks(BLOCK_ROWS * n).enumerate().map(block).collect();
        assert_eq!(min_blocks(x.len()), 1);
        assert_eq!(add_in_order(&par, n), add_in_order(&serial, n));
    }
}
