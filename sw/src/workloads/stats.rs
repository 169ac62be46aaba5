//! The statistics the experiment reports need: mean +- standard error, paired differences,
//! AUROC, AP, EER and ROC curves, top-R precision and Spearman's rank correlation.

use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct MeanSe {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for one value.
    pub std: f64,
    /// std / sqrt(n).
    pub se: f64,
}

pub fn mean_se(v: &[f64]) -> MeanSe {
    let n = v.len();
    if n == 0 {
        return MeanSe::default();
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    MeanSe {
        n,
        mean,
        std,
        se: std / (n as f64).sqrt(),
    }
}

/// Average ranks (1-based; ties share their mean rank).
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        order[i..=j].iter().for_each(|&k| r[k] = rank);
        i = j + 1;
    }
    r
}

/// Area under the ROC curve of `scores` for finding the `positive` examples (Mann-Whitney U,
/// ties count half). `None` when either class is empty.
pub fn auroc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let r = ranks(scores);
    let pos = positive.iter().filter(|&&p| p).count();
    let neg = positive.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let rank_sum: f64 = r
        .iter()
        .zip(positive)
        .filter(|(_, &p)| p)
        .map(|(x, _)| x)
        .sum();
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos * neg) as f64)
}

/// The share of positives among the `k` highest scores.
pub fn top_k_precision(scores: &[f64], positive: &[bool], k: usize) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let k = k.min(order.len()).max(1);
    order[..k].iter().filter(|&&i| positive[i]).count() as f64 / k as f64
}

/// Spearman's rho: Pearson's correlation of the average ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

/// Least squares with an intercept: the (d_x + 1) x d_y map W minimizing ||[X 1] W - Y||^2 (a
/// tiny ridge, 1e-8 of the mean diagonal, keeps a rank-deficient X solvable), by Cholesky of the
/// normal equations in f64. `x` and `y` are row-major with `n` rows.
pub fn fit_linear_map(x: &[f32], dx: usize, y: &[f32], dy: usize, n: usize) -> Vec<f64> {
    let d = dx + 1;
    let row = |i: usize| {
        x[i * dx..(i + 1) * dx]
            .iter()
            .map(|&v| v as f64)
            .chain([1.0])
    };
    let mut ata = vec![0.0f64; d * d];
    let mut aty = vec![0.0f64; d * dy];
    for i in 0..n {
        let a: Vec<f64> = row(i).collect();
        let yi = &y[i * dy..(i + 1) * dy];
        for p in 0..d {
            if a[p] == 0.0 {
                continue;
            }
            for q in p..d {
                ata[p * d + q] += a[p] * a[q];
            }
            for (t, &v) in aty[p * dy..(p + 1) * dy].iter_mut().zip(yi) {
                *t += a[p] * v as f64;
            }
        }
    }
    for p in 0..d {
        for q in 0..p {
            ata[p * d + q] = ata[q * d + p];
        }
    }
    let ridge = 1e-8 * (0..d).map(|p| ata[p * d + p]).sum::<f64>() / d as f64 + 1e-12;
    (0..d).for_each(|p| ata[p * d + p] += ridge);
    // Cholesky: ata = L L^T.
    let mut l = vec![0.0f64; d * d];
    for p in 0..d {
        for q in 0..=p {
            let s: f64 = (0..q).map(|k| l[p * d + k] * l[q * d + k]).sum();
            if p == q {
                l[p * d + p] = (ata[p * d + p] - s).max(1e-300).sqrt();
            } else {
                l[p * d + q] = (ata[p * d + q] - s) / l[q * d + q];
            }
        }
    }
    // Solve L Z = A^T Y, then L^T W = Z, column by column.
    let mut w = aty;
    for c in 0..dy {
        for p in 0..d {
            let s: f64 = (0..p).map(|k| l[p * d + k] * w[k * dy + c]).sum();
            w[p * dy + c] = (w[p * dy + c] - s) / l[p * d + p];
        }
        for p in (0..d).rev() {
            let s: f64 = (p + 1..d).map(|k| l[k * d + p] * w[k * dy + c]).sum();
            w[p * dy + c] = (w[p * dy + c] - s) / l[p * d + p];
        }
    }
    w
}

/// `[X 1] W` for a map from `fit_linear_map`, as f32 rows.
pub fn apply_linear_map(x: &[f32], dx: usize, w: &[f64], dy: usize) -> Vec<f32> {
    let n = x.len() / dx.max(1);
    let mut out = vec![0.0f32; n * dy];
    for i in 0..n {
        let xi = &x[i * dx..(i + 1) * dx];
        for c in 0..dy {
            let mut s = w[dx * dy + c];
            for (p, &v) in xi.iter().enumerate() {
                s += v as f64 * w[p * dy + c];
            }
            out[i * dy + c] = s as f32;
        }
    }
    out
}

/// The ROC curve of `scores` for finding the `positive` examples: (false-positive rate,
/// true-positive rate) at every distinct threshold from the highest score down, starting at
/// (0, 0) and ending at (1, 1); tied scores move together. Empty when either class is empty.
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Vec<(f64, f64)> {
    let pos = positive.iter().filter(|&&p| p).count();
    let neg = positive.len() - pos;
    if pos == 0 || neg == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            if positive[order[i]] {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        points.push((fp as f64 / neg as f64, tp as f64 / pos as f64));
    }
    points
}

/// Average precision (scikit-learn's `average_precision_score`): sum over thresholds of
/// (recall step) x precision, tied scores counted together. `None` without positives.
pub fn average_precision(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let pos = positive.iter().filter(|&&p| p).count();
    if pos == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut seen, mut ap, mut last_recall) = (0usize, 0usize, 0.0f64, 0.0f64);
    let mut i = 0;
    while i < order.len() {
        let s = scores[order[i]];
        while i < order.len() && scores[order[i]] == s {
            tp += usize::from(positive[order[i]]);
            seen += 1;
            i += 1;
        }
        let recall = tp as f64 / pos as f64;
        ap += (recall - last_recall) * tp as f64 / seen as f64;
        last_recall = recall;
    }
    Some(ap)
}

/// Equal error rate: where the false-positive rate equals the false-negative rate on the ROC
/// curve, linearly interpolated between its points. `None` when either class is empty.
pub fn equal_error_rate(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let roc = roc_curve(scores, positive);
    for w in roc.windows(2) {
        let ((f0, t0), (f1, t1)) = (w[0], w[1]);
        // g = fnr - fpr falls from 1 to -1 along the curve.
        let (g0, g1) = ((1.0 - t0) - f0, (1.0 - t1) - f1);
        if g1 <= 0.0 {
            let a = if g0 == g1 { 0.0 } else { g0 / (g0 - g1) };
            return Some(f0 + a * (f1 - f0));
        }
    }
    roc.last().map(|p| p.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_map_recovers_an_exact_affine_relation() {
        // y = x A + b for a random 3 -> 2 map: the fit returns A and b, and applies exactly.
        let mut g = crate::rng::SplitMix64::new(3);
        let a = [0.5, -1.0, 2.0, 0.25, -0.75, 1.5];
        let b = [0.1, -0.2];
        let n = 40;
        let x: Vec<f32> = (0..n * 3).map(|_| g.normal() as f32).collect();
        let y: Vec<f32> = (0..n)
            .flat_map(|i| {
                let xi = &x[i * 3..i * 3 + 3];
                (0..2)
                    .map(|c| (0..3).map(|p| xi[p] as f64 * a[p * 2 + c]).sum::<f64>() + b[c])
                    .map(|v| v as f32)
                    .collect::<Vec<_>>()
            })
            .collect();
        let w = fit_linear_map(&x, 3, &y, 2, n);
        for (got, want) in w.iter().zip(a.iter().chain(&b)) {
            assert!((got - want).abs() < 1e-4, "{w:?}");
        }
        let back = apply_linear_map(&x, 3, &w, 2);
        assert!(back.iter().zip(&y).all(|(p, q)| (p - q).abs() < 1e-4));
    }

    #[test]
    fn known_values() {
        let m = mean_se(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m.mean, 2.5);
        assert!((m.std - 1.290_994_4).abs() < 1e-6);
        assert!((m.se - 0.645_497_2).abs() < 1e-6);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
        let pos = [true, false, true, false];
        assert_eq!(auroc(&[0.9, 0.1, 0.8, 0.2], &pos), Some(1.0));
        assert_eq!(auroc(&[0.1, 0.9, 0.2, 0.8], &pos), Some(0.0));
        assert_eq!(auroc(&[0.5; 4], &pos), Some(0.5));
        assert_eq!(auroc(&[0.5; 4], &[false; 4]), None);
        assert_eq!(top_k_precision(&[0.9, 0.1, 0.8, 0.95], &pos, 2), 0.5);
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    }
    #[test]
    fn detection_metrics_known_values() {
        // scikit-learn: y = [0, 0, 1, 1], s = [0.1, 0.4, 0.35, 0.8]: AUROC 0.75, AP 0.8333.
        let s = [0.1, 0.4, 0.35, 0.8];
        let y = [false, false, true, true];
        assert_eq!(auroc(&s, &y), Some(0.75));
        assert!((average_precision(&s, &y).unwrap() - 0.833_333_333).abs() < 1e-9);
        assert_eq!(
            roc_curve(&s, &y),
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        assert_eq!(equal_error_rate(&s, &y), Some(0.5));
        // Separable: EER 0, AP 1; reversed: EER 1, AUROC 0.
        let good = [0.0, 0.1, 0.8, 0.9];
        assert_eq!(equal_error_rate(&good, &y), Some(0.0));
        assert_eq!(average_precision(&good, &y), Some(1.0));
        let bad = [0.9, 0.8, 0.1, 0.0];
        assert_eq!(equal_error_rate(&bad, &y), Some(1.0));
        assert_eq!(auroc(&bad, &y), Some(0.0));
        // One negative in three at the top: fpr = fnr = 1/3 at the crossing.
        let s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let y = [true, false, true, false, true, false];
        let e = equal_error_rate(&s, &y).unwrap();
        assert!((e - 1.0 / 3.0).abs() < 1e-12, "{e}");
        assert_eq!(average_precision(&s, &[false; 6]), None);
    }
}
