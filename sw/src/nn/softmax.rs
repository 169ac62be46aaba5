//! Softmax over the last axis (host, f32), forward and backward, with an optional causal prefix.
//! Sums start from the first term (not from +0), so a two-key softmax is exactly
//! e0 / (e0 + e1) as the grokking Transformer always computed it.

use crate::matrix::Matrix;

/// Softmax of `row[..len]` in place (max-subtracted); entries from `len` on become 0 (masked).
pub fn softmax_prefix(row: &mut [f32], len: usize) {
    let (live, masked) = row.split_at_mut(len);
    masked.iter_mut().for_each(|v| *v = 0.0);
    let m = live.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    live.iter_mut().for_each(|v| *v = (*v - m).exp());
    let sum = live.iter().skip(1).fold(live[0], |s, &e| s + e);
    live.iter_mut().for_each(|v| *v /= sum);
}

/// dL/ds from the softmax output `y` and dL/dy: ds_j = y_j (dy_j - sum_i y_i dy_i). Masked
/// entries (y = 0) get 0.
pub fn softmax_backward_row(y: &[f32], dy: &[f32], ds: &mut [f32]) {
    let dot = y
        .iter()
        .zip(dy)
        .skip(1)
        .fold(y[0] * dy[0], |s, (a, g)| s + a * g);
    for ((d, &a), &g) in ds.iter_mut().zip(y).zip(dy) {
        *d = a * (g - dot);
    }
}

/// Row-wise softmax of a matrix.
pub fn softmax(x: &Matrix) -> Matrix {
    let mut y = x.clone();
    for row in y.data.chunks_mut(x.cols) {
        softmax_prefix(row, x.cols);
    }
    y
}

/// Row-wise softmax backward: dL/dx from y = softmax(x) and dL/dy.
pub fn softmax_backward(y: &Matrix, dy: &Matrix) -> Matrix {
    let mut dx = Matrix::zeros(y.rows, y.cols);
    for ((d, yr), g) in dx
        .data
        .chunks_mut(y.cols)
        .zip(y.data.chunks(y.cols))
        .zip(dy.data.chunks(y.cols))
    {
        softmax_backward_row(yr, g, d);
    }
    dx
}
