//! Which training examples a run keeps, and the seeded label noise.

use crate::data::shuffle;
use crate::rng::SplitMix64;

/// How a subset is chosen from per-example scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The highest scores, after dropping the `offset` very highest (the paper's offset).
    Highest { offset: usize },
    /// The lowest scores (the baseline that keeps the easiest examples).
    Lowest,
}

/// `round(keep * n)` examples, at least one.
pub fn kept_count(n: usize, keep: f64) -> usize {
    ((keep * n as f64).round() as usize).clamp(1, n)
}

/// Positions (ascending) of the examples `pick` keeps, over all examples or, `balanced`, the
/// same fraction of each class (the offset then scaled to the class's share).
pub fn by_score(
    scores: &[f64],
    labels: &[u8],
    keep: f64,
    pick: Pick,
    balanced: bool,
) -> Vec<usize> {
    let n = scores.len();
    let groups: Vec<Vec<usize>> = if balanced {
        let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
        (0..classes)
            .map(|c| {
                (0..n)
                    .filter(|&i| labels[i] as usize == c)
                    .collect::<Vec<_>>()
            })
            .filter(|g| !g.is_empty())
            .collect()
    } else {
        vec![(0..n).collect()]
    };
    let mut out = Vec::new();
    for mut g in groups {
        // Highest first; ties by position, so the order is total and reproducible.
        g.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let take = kept_count(g.len(), keep);
        let start = match pick {
            Pick::Lowest => g.len() - take,
            Pick::Highest { offset } => {
                let off = if balanced {
                    (offset as f64 * g.len() as f64 / n as f64).round() as usize
                } else {
                    offset
                };
                off.min(g.len() - take)
            }
        };
        out.extend_from_slice(&g[start..start + take]);
    }
    out.sort_unstable();
    out
}

/// A seeded random subset of the same size (per class when `balanced`).
pub fn random(labels: &[u8], keep: f64, balanced: bool, seed: u64) -> Vec<usize> {
    let mut rng = SplitMix64::new(crate::rng::mix64(seed ^ 0x005A_B5E7));
    let scores: Vec<f64> = (0..labels.len()).map(|_| rng.uniform()).collect();
    by_score(&scores, labels, keep, Pick::Highest { offset: 0 }, balanced)
}

/// The smallest number of examples of any class in `subset` (0 when a class is missing).
pub fn smallest_class(labels: &[u8], subset: &[usize], classes: usize) -> usize {
    let mut counts = vec![0usize; classes];
    subset.iter().for_each(|&i| counts[labels[i] as usize] += 1);
    counts.into_iter().min().unwrap_or(0)
}

/// Flip `round(rate * n)` seeded labels, each to a uniformly drawn other class. Returns which
/// examples were flipped.
pub fn flip_labels(labels: &mut [u8], rate: f64, classes: usize, seed: u64) -> Vec<bool> {
    let n = labels.len();
    let mut rng = SplitMix64::new(crate::rng::mix64(seed ^ 0xF11B_5EED));
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, &mut rng);
    let mut flipped = vec![false; n];
    let count = (rate * n as f64).round() as usize;
    for &i in &order[..count.min(n)] {
        let shift = 1 + rng.below(classes as u64 - 1) as u8;
        labels[i] = (labels[i] + shift) % classes as u8;
        flipped[i] = true;
    }
    flipped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_follow_scores_offset_and_balance() {
        let scores = [0.9, 0.1, 0.5, 0.7, 0.3, 0.8];
        let labels = [0, 0, 0, 1, 1, 1];
        let hi = |off| by_score(&scores, &labels, 0.5, Pick::Highest { offset: off }, false);
        assert_eq!(hi(0), vec![0, 3, 5]);
        assert_eq!(hi(1), vec![2, 3, 5]);
        assert_eq!(hi(10), vec![1, 2, 4]); // the offset stops where the subset still fits
        assert_eq!(
            by_score(&scores, &labels, 0.5, Pick::Lowest, false),
            vec![1, 2, 4]
        );
        let bal = by_score(&scores, &labels, 0.34, Pick::Highest { offset: 0 }, true);
        assert_eq!(bal, vec![0, 5]);
        assert_eq!(smallest_class(&labels, &hi(0), 2), 1);
        assert_eq!(smallest_class(&labels, &[0, 1], 2), 0);
        let r = random(&labels, 0.5, true, 3);
        assert_eq!(r.len(), 4); // round(1.5) = 2 of each class
        assert_eq!(
            random(&labels, 0.5, false, 3),
            random(&labels, 0.5, false, 3)
        );
    }

    #[test]
    fn label_noise_flips_the_rate_to_other_classes() {
        let orig: Vec<u8> = (0..1000).map(|i| (i % 10) as u8).collect();
        let mut noisy = orig.clone();
        let flipped = flip_labels(&mut noisy, 0.1, 10, 7);
        assert_eq!(flipped.iter().filter(|&&f| f).count(), 100);
        for i in 0..1000 {
            assert_eq!(flipped[i], noisy[i] != orig[i]);
        }
    }
}
