//! Losses with their gradients, averaged over the batch. Log-sum-exp in f64 for stability.

use crate::matrix::Matrix;

pub struct LossOut {
    pub loss: f64,
    /// Fraction of rows whose arg-max equals the label.
    pub accuracy: f64,
    /// dL/dlogits (zero-sized when not requested).
    pub grad: Matrix,
}

/// Mean softmax cross-entropy of `logits` (B x C) against `labels`.
pub fn softmax_cross_entropy(logits: &Matrix, labels: &[usize], want_grad: bool) -> LossOut {
    let (b, c) = (logits.rows, logits.cols);
    let mut grad = if want_grad {
        Matrix::zeros(b, c)
    } else {
        Matrix::zeros(0, 0)
    };
    let mut loss = 0.0f64;
    let mut correct = 0usize;
    for (i, &label) in labels.iter().enumerate() {
        let row = logits.row(i);
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        let lse = max + sum.ln();
        loss += lse - row[label] as f64;
        if argmax(row) == label {
            correct += 1;
        }
        if want_grad {
            let g = &mut grad.data[i * c..(i + 1) * c];
            for (j, gj) in g.iter_mut().enumerate() {
                let p = (row[j] as f64 - lse).exp();
                *gj = ((p - (j == label) as u8 as f64) / b as f64) as f32;
            }
        }
    }
    LossOut {
        loss: loss / b as f64,
        accuracy: correct as f64 / b as f64,
        grad,
    }
}

/// Mean over the batch of sum_j (y - onehot(label))^2, as in the grokking MNIST setup; accuracy is
/// arg-max accuracy.
pub fn mse_onehot(out: &Matrix, labels: &[usize], want_grad: bool) -> LossOut {
    let (b, c) = (out.rows, out.cols);
    let mut grad = if want_grad {
        Matrix::zeros(b, c)
    } else {
        Matrix::zeros(0, 0)
    };
    let mut loss = 0.0f64;
    let mut correct = 0usize;
    for (i, &label) in labels.iter().enumerate() {
        let row = out.row(i);
        if argmax(row) == label {
            correct += 1;
        }
        for (j, &v) in row.iter().enumerate() {
            let d = v as f64 - (j == label) as u8 as f64;
            loss += d * d;
            if want_grad {
                grad.data[i * c + j] = (2.0 * d / b as f64) as f32;
            }
        }
    }
    LossOut {
        loss: loss / b as f64,
        accuracy: correct as f64 / b as f64,
        grad,
    }
}

pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let logits = Matrix::new(2, 3, vec![0.5, -1.0, 2.0, 0.1, 0.2, -0.3]).unwrap();
        let labels = [2, 0];
        let out = softmax_cross_entropy(&logits, &labels, true);
        for i in 0..6 {
            let mut up = logits.clone();
            up.data[i] += 1e-3;
            let mut down = logits.clone();
            down.data[i] -= 1e-3;
            let fd = (softmax_cross_entropy(&up, &labels, false).loss
                - softmax_cross_entropy(&down, &labels, false).loss)
                / 2e-3;
            assert!(
                (fd - out.grad.data[i] as f64).abs() < 1e-4,
                "{i}: {fd} vs {}",
                out.grad.data[i]
            );
        }
        assert_eq!(out.accuracy, 0.5);
    }
}
