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

/// A loss term and its gradient with respect to its first input.
pub struct TermOut {
    pub loss: f64,
    pub grad: Matrix,
}

fn log_softmax_scaled(row: &[f32], inv_t: f64) -> Vec<f64> {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64 * inv_t;
    let lse = max
        + row
            .iter()
            .map(|&v| (v as f64 * inv_t - max).exp())
            .sum::<f64>()
            .ln();
    row.iter().map(|&v| v as f64 * inv_t - lse).collect()
}

/// Hinton's distillation term, as the ND paper's public code (`KDLoss`, `batchmean`):
/// `weight * T^2 * mean_i KL(softmax(t_i / T) || softmax(s_i / T))`, with its gradient
/// `weight * T / B * (softmax(s_i / T) - softmax(t_i / T))` with respect to the student logits.
pub fn kd_kl(student: &Matrix, teacher: &Matrix, temperature: f64, weight: f64) -> TermOut {
    let (b, c) = (student.rows, student.cols);
    assert_eq!(
        (teacher.rows, teacher.cols),
        (b, c),
        "teacher and student logits"
    );
    let inv_t = 1.0 / temperature;
    let mut grad = Matrix::zeros(b, c);
    let mut kl = 0.0f64;
    for i in 0..b {
        let ls = log_softmax_scaled(student.row(i), inv_t);
        let lt = log_softmax_scaled(teacher.row(i), inv_t);
        let g = &mut grad.data[i * c..(i + 1) * c];
        for j in 0..c {
            let pt = lt[j].exp();
            kl += pt * (lt[j] - ls[j]);
            g[j] = (weight * temperature / b as f64 * (ls[j].exp() - pt)) as f32;
        }
    }
    TermOut {
        loss: weight * temperature * temperature * kl / b as f64,
        grad,
    }
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn norm(a: &[f32]) -> f64 {
    dot(a, a).sqrt()
}

/// The ND loss (Wang et al., "Improving Knowledge Distillation via Regularizing Feature Norm
/// and Direction"; `DirectNormLoss` of the public code):
/// `weight * mean_i [1 - <s_i, c_{y_i} / ||c_{y_i}||> / max(||s_i||, ||t_i||)]`, with `s` the
/// student's (projected) embeddings, `t` the teacher's embeddings of the same inputs and
/// `centers` the teacher's class means (one row per class). The gradient with respect to `s`
/// flows through the norm in the denominator when the student's is the larger (ties: the
/// student's, as Python's `max`).
pub fn nd(s: &Matrix, t: &Matrix, centers: &Matrix, labels: &[usize], weight: f64) -> TermOut {
    let (b, d) = (s.rows, s.cols);
    assert_eq!((t.rows, t.cols), (b, d), "teacher and student embeddings");
    assert_eq!(centers.cols, d, "class means and embeddings");
    let mut grad = Matrix::zeros(b, d);
    let mut loss = 0.0f64;
    for (i, &y) in labels.iter().enumerate() {
        let (si, c) = (s.row(i), centers.row(y));
        let cn = norm(c).max(1e-12);
        let (ns, nt) = (norm(si), norm(t.row(i)));
        let student_max = ns >= nt;
        let m = if student_max { ns } else { nt }.max(1e-12);
        let proj = dot(si, c) / cn; // <s, e_c>
        loss += 1.0 - proj / m;
        // d/ds [-proj / m] = -e_c / m + proj / m^2 * dm/ds, dm/ds = s / ||s|| if the student's.
        let k = -weight / b as f64;
        let g = &mut grad.data[i * d..(i + 1) * d];
        for j in 0..d {
            let mut v = c[j] as f64 / cn / m;
            if student_max {
                v -= proj / (m * m) * si[j] as f64 / m;
            }
            g[j] = (k * v) as f32;
        }
    }
    TermOut {
        loss: weight * loss / b as f64,
        grad,
    }
}

/// Mean over rows of cos(s_i, c_{y_i}) (0 for a zero vector).
pub fn mean_cosine_to_rows(s: &Matrix, centers: &Matrix, labels: &[usize]) -> f64 {
    let total: f64 = labels
        .iter()
        .enumerate()
        .map(|(i, &y)| {
            let (a, c) = (s.row(i), centers.row(y));
            let n = norm(a) * norm(c);
            if n > 0.0 {
                dot(a, c) / n
            } else {
                0.0
            }
        })
        .sum();
    total / labels.len().max(1) as f64
}

/// Mean over rows of cos(a_i, b_i).
pub fn mean_rowwise_cosine(a: &Matrix, b: &Matrix) -> f64 {
    let ids: Vec<usize> = (0..a.rows).collect();
    mean_cosine_to_rows(a, b, &ids)
}

/// Mean L2 norm of the rows.
pub fn mean_row_norm(a: &Matrix) -> f64 {
    (0..a.rows).map(|i| norm(a.row(i))).sum::<f64>() / a.rows.max(1) as f64
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
