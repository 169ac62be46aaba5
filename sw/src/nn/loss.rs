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

/// Rows scaled to unit L2 norm, and 1 / norm of each row (the norm floored at 1e-12).
pub fn l2_normalize_rows(x: &Matrix) -> (Matrix, Vec<f32>) {
    let mut y = x.clone();
    let mut inv = Vec::with_capacity(x.rows);
    for row in y.data.chunks_mut(x.cols.max(1)) {
        let n = (norm(row) as f32).max(1e-12);
        let r = 1.0 / n;
        row.iter_mut().for_each(|v| *v *= r);
        inv.push(r);
    }
    (y, inv)
}

/// dL/dx of y = x / ||x|| per row, from y, the inverse norms and dL/dy:
/// dx = (dy - y <y, dy>) / ||x||.
pub fn l2_normalize_backward(y: &Matrix, inv: &[f32], dy: &Matrix) -> Matrix {
    let c = y.cols.max(1);
    let mut dx = Matrix::zeros(y.rows, y.cols);
    for (((d, yr), g), &r) in dx
        .data
        .chunks_mut(c)
        .zip(y.data.chunks(c))
        .zip(dy.data.chunks(c))
        .zip(inv)
    {
        let k = dot(yr, g) as f32;
        for ((dv, &yv), &gv) in d.iter_mut().zip(yr).zip(g) {
            *dv = (gv - yv * k) * r;
        }
    }
    dx
}

/// The symmetric InfoNCE loss of CLIP and its gradients.
pub struct InfoNceOut {
    pub loss: f64,
    /// dL/d(cosine similarities), N x N.
    pub dcos: Matrix,
    /// dL/d(logit_scale), the log of the inverse temperature.
    pub dlogit_scale: f64,
    /// Share of images whose most similar caption is their own (ties: the first).
    pub image_to_text_accuracy: f64,
    pub text_to_image_accuracy: f64,
}

/// CLIP's loss (Radford et al. 2021; transformers' `clip_loss`): with logits
/// `exp(logit_scale) * cos` (row i: image i against every caption), the mean of the
/// cross-entropy of each row against its diagonal entry and of each column against its
/// diagonal entry, halved: `(CE(logits, I) + CE(logits^T, I)) / 2`.
pub fn symmetric_infonce(cos: &Matrix, logit_scale: f32) -> InfoNceOut {
    let n = cos.rows;
    assert_eq!(cos.cols, n, "a square similarity matrix");
    let s = f64::from(logit_scale).exp();
    let logits = Matrix::from_fn(n, n, |i, j| (s * f64::from(cos.at(i, j))) as f32);
    let rows = softmax_cross_entropy(&logits, &(0..n).collect::<Vec<_>>(), true);
    let t = logits.transpose();
    let cols = softmax_cross_entropy(&t, &(0..n).collect::<Vec<_>>(), true);
    let mut dcos = Matrix::zeros(n, n);
    let mut dscale = 0.0f64;
    for i in 0..n {
        for j in 0..n {
            // d/dlogits of the mean of the two means (each CE grad already has the 1/N).
            let g = 0.5 * (f64::from(rows.grad.at(i, j)) + f64::from(cols.grad.at(j, i)));
            dcos.data[i * n + j] = (g * s) as f32;
            dscale += g * s * f64::from(cos.at(i, j));
        }
    }
    InfoNceOut {
        loss: 0.5 * (rows.loss + cols.loss),
        dcos,
        dlogit_scale: dscale,
        image_to_text_accuracy: rows.accuracy,
        text_to_image_accuracy: cols.accuracy,
    }
}

fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum()
}

/// Uniformity on the unit sphere (Wang & Isola 2020): `log mean_{i<j} exp(-2 ||x_i - x_j||^2)`
/// over all pairs of rows, times `weight`, and its gradient with respect to `x`. Zero for a
/// single row.
pub fn uniformity(x: &Matrix, weight: f64) -> TermOut {
    let (n, d) = (x.rows, x.cols);
    let mut grad = Matrix::zeros(n, d);
    if n < 2 {
        return TermOut { loss: 0.0, grad };
    }
    let pairs = (n * (n - 1) / 2) as f64;
    // Log-sum-exp over the pairs for stability (exponents -2 d^2 in [-8, 0]).
    let mut e = vec![0.0f64; n * n];
    let mut total = 0.0f64;
    for i in 0..n {
        for j in i + 1..n {
            let v = (-2.0 * sq_dist(x.row(i), x.row(j))).exp();
            e[i * n + j] = v;
            total += v;
        }
    }
    let loss = (total / pairs).ln();
    for i in 0..n {
        for j in i + 1..n {
            // d/dx_i of log(sum) = (1 / sum) e_ij (-4 (x_i - x_j)).
            let k = weight * e[i * n + j] / total * -4.0;
            for c in 0..d {
                let diff = f64::from(x.at(i, c)) - f64::from(x.at(j, c));
                grad.data[i * d + c] += (k * diff) as f32;
                grad.data[j * d + c] -= (k * diff) as f32;
            }
        }
    }
    TermOut {
        loss: weight * loss,
        grad,
    }
}

/// Label-aware alignment: the mean of `||x_i - x_j||^2` over the pairs of rows with the same
/// label, times `weight`, and its gradient. Zero when no two rows share a label.
pub fn alignment(x: &Matrix, labels: &[usize], weight: f64) -> TermOut {
    let (n, d) = (x.rows, x.cols);
    let mut grad = Matrix::zeros(n, d);
    let same: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .filter(|&(i, j)| labels[i] == labels[j])
        .collect();
    if same.is_empty() {
        return TermOut { loss: 0.0, grad };
    }
    let p = same.len() as f64;
    let mut loss = 0.0;
    for &(i, j) in &same {
        loss += sq_dist(x.row(i), x.row(j));
        for c in 0..d {
            let g = (weight * 2.0 * (f64::from(x.at(i, c)) - f64::from(x.at(j, c))) / p) as f32;
            grad.data[i * d + c] += g;
            grad.data[j * d + c] -= g;
        }
    }
    TermOut {
        loss: weight * loss / p,
        grad,
    }
}

/// Which rows slerp augmentation moved, toward which partner, how far.
pub struct SlerpCache {
    /// (row, partner, t) for every moved row.
    moves: Vec<(usize, usize, f64)>,
    x: Matrix,
}

/// Spherical interpolation from `a` toward `b` (unit rows) by `t`, with the coefficients
/// (alpha, beta) of `a` and `b` and their derivatives in theta = acos(<a, b>).
fn slerp_coefficients(cos: f64, t: f64) -> (f64, f64, f64, f64, f64) {
    let c = cos.clamp(-1.0 + 1e-7, 1.0 - 1e-7);
    let th = c.acos();
    let s = th.sin();
    let alpha = ((1.0 - t) * th).sin() / s;
    let beta = (t * th).sin() / s;
    // d/dtheta of sin(k theta) / sin(theta).
    let d = |k: f64| (k * (k * th).cos() * s - (k * th).sin() * th.cos()) / (s * s);
    (alpha, beta, d(1.0 - t), d(t), s)
}

/// Slerp augmentation: each row (unit norm) is, with probability `p`, replaced by the slerp
/// toward a random other row of its label, `t` uniform in [0, 1] (rows without a partner stay).
pub fn slerp_augment(
    x: &Matrix,
    labels: &[usize],
    p: f64,
    rng: &mut crate::rng::SplitMix64,
) -> (Matrix, SlerpCache) {
    let (n, d) = (x.rows, x.cols);
    let mut y = x.clone();
    let mut moves = Vec::new();
    for i in 0..n {
        if p <= 0.0 || rng.uniform() >= p {
            continue;
        }
        let partners: Vec<usize> = (0..n)
            .filter(|&j| j != i && labels[j] == labels[i])
            .collect();
        if partners.is_empty() {
            continue;
        }
        let j = partners[rng.below(partners.len() as u64) as usize];
        let t = rng.uniform();
        let (alpha, beta, _, _, _) = slerp_coefficients(dot(x.row(i), x.row(j)), t);
        for c in 0..d {
            y.data[i * d + c] =
                (alpha * f64::from(x.at(i, c)) + beta * f64::from(x.at(j, c))) as f32;
        }
        moves.push((i, j, t));
    }
    (
        y,
        SlerpCache {
            moves,
            x: x.clone(),
        },
    )
}

/// dL/dx from dL/dy of `slerp_augment` (through both endpoints and the angle between them).
pub fn slerp_backward(dy: &Matrix, cache: &SlerpCache) -> Matrix {
    let x = &cache.x;
    let d = x.cols;
    let mut dx = dy.clone();
    for &(i, j, t) in &cache.moves {
        let (a, b) = (x.row(i), x.row(j));
        let (alpha, beta, dalpha, dbeta, s) = slerp_coefficients(dot(a, b), t);
        let g = dy.row(i);
        // y = alpha a + beta b; dtheta/da = -b / sin, dtheta/db = -a / sin.
        let k = (dalpha * dot(g, a) + dbeta * dot(g, b)) / -s;
        for c in 0..d {
            let gc = f64::from(g[c]);
            let di = alpha * gc + k * f64::from(b[c]);
            let dj = beta * gc + k * f64::from(a[c]);
            // Row i's own gradient is replaced (its value was replaced), j's is added to.
            dx.data[i * d + c] += (di - gc) as f32;
            dx.data[j * d + c] += dj as f32;
        }
    }
    dx
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
    /// The composition CLIP trains (normalize both sides, cosines, symmetric InfoNCE with a
    /// learned scale) against central differences in every input and in logit_scale.
    #[test]
    fn infonce_through_normalization_matches_finite_differences() {
        let mut rng = crate::rng::SplitMix64::new(3);
        let (n, d) = (5usize, 4usize);
        let img = Matrix::from_fn(n, d, |_, _| rng.normal() as f32);
        let txt = Matrix::from_fn(n, d, |_, _| rng.normal() as f32);
        let scale = 1.3f32;
        let cosines = |a: &Matrix, b: &Matrix| {
            let (an, _) = l2_normalize_rows(a);
            let (bn, _) = l2_normalize_rows(b);
            Matrix::from_fn(n, n, |i, j| dot(an.row(i), bn.row(j)) as f32)
        };
        let loss = |a: &Matrix, b: &Matrix, s: f32| symmetric_infonce(&cosines(a, b), s).loss;
        let (an, ia) = l2_normalize_rows(&img);
        let (bn, ib) = l2_normalize_rows(&txt);
        let out = symmetric_infonce(&cosines(&img, &txt), scale);
        // dL/d(an) = dcos bn, dL/d(bn) = dcos^T an.
        let da = Matrix::from_fn(n, d, |i, k| {
            (0..n).map(|j| out.dcos.at(i, j) * bn.at(j, k)).sum()
        });
        let db = Matrix::from_fn(n, d, |j, k| {
            (0..n).map(|i| out.dcos.at(i, j) * an.at(i, k)).sum()
        });
        let dimg = l2_normalize_backward(&an, &ia, &da);
        let dtxt = l2_normalize_backward(&bn, &ib, &db);
        let h = 1e-3f32;
        for which in 0..2 {
            for e in 0..n * d {
                let (mut up, mut down) = if which == 0 {
                    (img.clone(), img.clone())
                } else {
                    (txt.clone(), txt.clone())
                };
                up.data[e] += h;
                down.data[e] -= h;
                let fd = if which == 0 {
                    loss(&up, &txt, scale) - loss(&down, &txt, scale)
                } else {
                    loss(&img, &up, scale) - loss(&img, &down, scale)
                } / (2.0 * f64::from(h));
                let g = f64::from(if which == 0 {
                    dimg.data[e]
                } else {
                    dtxt.data[e]
                });
                assert!((fd - g).abs() < 2e-3, "input {which}, {e}: {g} vs {fd}");
            }
        }
        let fd = (loss(&img, &txt, scale + h) - loss(&img, &txt, scale - h)) / (2.0 * f64::from(h));
        assert!(
            (fd - out.dlogit_scale).abs() < 2e-3,
            "logit_scale: {} vs {fd}",
            out.dlogit_scale
        );
        // Matched pairs make the loss small and the accuracies 1.
        let same = symmetric_infonce(&cosines(&img, &img), 4.0);
        assert!(same.loss < out.loss);
        assert_eq!(same.image_to_text_accuracy, 1.0);
        assert_eq!(same.text_to_image_accuracy, 1.0);
    }
    fn unit_rows(n: usize, d: usize, seed: u64) -> Matrix {
        let mut rng = crate::rng::SplitMix64::new(seed);
        l2_normalize_rows(&Matrix::from_fn(n, d, |_, _| rng.normal() as f32)).0
    }

    /// Central differences of `f` in every entry of `x` against `grad`.
    fn fd_check(x: &Matrix, grad: &Matrix, f: impl Fn(&Matrix) -> f64, what: &str) {
        let h = 1e-3f32;
        for e in 0..x.data.len() {
            let (mut up, mut down) = (x.clone(), x.clone());
            up.data[e] += h;
            down.data[e] -= h;
            let fd = (f(&up) - f(&down)) / (2.0 * f64::from(h));
            let g = f64::from(grad.data[e]);
            assert!(
                (fd - g).abs() < 2e-3 + 0.01 * fd.abs(),
                "{what} {e}: {g} vs {fd}"
            );
        }
    }

    #[test]
    fn sphere_losses_match_finite_differences() {
        let x = unit_rows(6, 4, 9);
        let labels = [0, 1, 0, 1, 1, 0];
        let u = uniformity(&x, 0.5);
        fd_check(&x, &u.grad, |m| uniformity(m, 0.5).loss, "uniformity");
        let a = alignment(&x, &labels, 0.1);
        fd_check(
            &x,
            &a.grad,
            |m| alignment(m, &labels, 0.1).loss,
            "alignment",
        );
        // Identical rows: alignment 0; uniformity is log 1 = 0 at its maximum.
        let same = Matrix::from_fn(3, 2, |_, c| c as f32);
        assert_eq!(alignment(&same, &[0, 0, 0], 1.0).loss, 0.0);
        assert!(uniformity(&same, 1.0).loss.abs() < 1e-12);
        assert!(uniformity(&x, 1.0).loss < 0.0);
    }

    #[test]
    fn slerp_stays_on_the_sphere_between_partners_and_its_gradient_matches() {
        let x = unit_rows(6, 4, 11);
        let labels = [0, 1, 0, 1, 1, 0];
        let w = unit_rows(6, 4, 12);
        let run = |m: &Matrix| {
            let mut rng = crate::rng::SplitMix64::new(5);
            slerp_augment(m, &labels, 0.8, &mut rng)
        };
        let (y, cache) = run(&x);
        assert!(!cache.moves.is_empty());
        for &(i, j, _) in &cache.moves {
            assert_eq!(labels[i], labels[j]);
            assert!((norm(y.row(i)) - 1.0).abs() < 1e-5);
            // On the arc: the angle to a plus the angle to b is the angle between them.
            let ang = |p: &[f32], q: &[f32]| dot(p, q).clamp(-1.0, 1.0).acos();
            let (a, b) = (x.row(i), x.row(j));
            assert!((ang(y.row(i), a) + ang(y.row(i), b) - ang(a, b)).abs() < 1e-3);
        }
        // L = sum(w * y): the same draws for perturbed inputs (the rng is reseeded).
        let loss = |m: &Matrix| {
            let (y, _) = run(m);
            y.data
                .iter()
                .zip(&w.data)
                .map(|(&a, &b)| f64::from(a * b))
                .sum()
        };
        let dx = slerp_backward(&w, &cache);
        fd_check(&x, &dx, loss, "slerp");
    }
}
