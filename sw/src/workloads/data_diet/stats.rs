//! The statistics the data-diet report needs: mean +- standard error, paired differences,
//! AUROC, top-R precision and Spearman's rank correlation.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
