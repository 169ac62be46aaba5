//! Lottery tickets: global magnitude pruning over every weight matrix, rewinding to the
//! initialization, and the paper's controls (random masks; dense nets scaled to a ticket's norm).

use crate::matrix::Matrix;
use crate::rng::SplitMix64;

/// Masks that prune the `rate` fraction of smallest-magnitude weights across all matrices
/// together (ties broken by position, so the count is exact).
pub fn magnitude_masks(weights: &[&Matrix], rate: f64) -> Vec<Vec<bool>> {
    let mut all: Vec<(f32, usize, usize)> = weights
        .iter()
        .enumerate()
        .flat_map(|(w, m)| m.data.iter().enumerate().map(move |(i, v)| (v.abs(), w, i)))
        .collect();
    let n_prune = prune_count(all.len(), rate);
    let mut masks: Vec<Vec<bool>> = weights.iter().map(|m| vec![true; m.data.len()]).collect();
    if n_prune > 0 {
        all.select_nth_unstable_by(n_prune - 1, |a, b| {
            a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2)))
        });
        for &(_, w, i) in &all[..n_prune] {
            masks[w][i] = false;
        }
    }
    masks
}

/// Masks that prune exactly the same count as `magnitude_masks`, chosen uniformly at random.
pub fn random_masks(weights: &[&Matrix], rate: f64, seed: u64) -> Vec<Vec<bool>> {
    let total: usize = weights.iter().map(|m| m.data.len()).sum();
    let n_prune = prune_count(total, rate);
    let mut idx: Vec<usize> = (0..total).collect();
    let mut rng = SplitMix64::new(seed ^ 0x7A4D_0A5C);
    // Partial Fisher-Yates: the first n_prune positions are a uniform sample.
    for i in 0..n_prune {
        let j = i + rng.below((total - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut flat = vec![true; total];
    idx[..n_prune].iter().for_each(|&i| flat[i] = false);
    let mut masks = Vec::new();
    let mut at = 0;
    for m in weights {
        masks.push(flat[at..at + m.data.len()].to_vec());
        at += m.data.len();
    }
    masks
}

fn prune_count(total: usize, rate: f64) -> usize {
    ((rate.clamp(0.0, 1.0) * total as f64).round() as usize).min(total)
}

/// The Lp norm of all weights together, counting only unpruned entries when masks are given.
pub fn lp_norm(weights: &[&Matrix], masks: Option<&[Vec<bool>]>, p: u32) -> f64 {
    let mut sum = 0.0f64;
    for (w, m) in weights.iter().enumerate() {
        for (i, &v) in m.data.iter().enumerate() {
            if masks.is_none_or(|ms| ms[w][i]) {
                sum += (v.abs() as f64).powi(p as i32);
            }
        }
    }
    sum.powf(1.0 / p as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_pruning_removes_the_smallest_globally() {
        let a = Matrix::new(1, 4, vec![0.1, -5.0, 0.3, 2.0]).unwrap();
        let b = Matrix::new(1, 3, vec![-0.2, 4.0, 0.0]).unwrap();
        let masks = magnitude_masks(&[&a, &b], 4.0 / 7.0);
        assert_eq!(masks[0], vec![false, true, false, true]);
        assert_eq!(masks[1], vec![false, true, false]);
    }

    #[test]
    fn random_pruning_prunes_the_same_count() {
        let a = Matrix::zeros(10, 10);
        let b = Matrix::zeros(5, 7);
        let masks = random_masks(&[&a, &b], 0.6, 1);
        let pruned: usize = masks.iter().flatten().filter(|&&k| !k).count();
        assert_eq!(pruned, 81);
        assert_ne!(masks, random_masks(&[&a, &b], 0.6, 2));
    }

    #[test]
    fn norms_count_only_kept_weights() {
        let a = Matrix::new(1, 3, vec![3.0, -4.0, 12.0]).unwrap();
        assert_eq!(lp_norm(&[&a], None, 1), 19.0);
        assert_eq!(lp_norm(&[&a], Some(&[vec![true, true, false]]), 2), 5.0);
    }
}
