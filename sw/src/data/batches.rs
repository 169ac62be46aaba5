//! Seeded shuffling and mini-batches: a stream of batches of example positions that reshuffles
//! at every epoch boundary, for any number of steps (subset retraining runs the same number of
//! steps as the full-data run, so one "epoch" of a subset is shorter).

use crate::rng::SplitMix64;

/// Seeded Fisher-Yates shuffle.
pub fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Batches of `batch` positions in `0..n`; epoch e's order is a shuffle seeded by (seed, e),
/// and the last batch of an epoch may be short (`drop_last = False`).
pub struct Batches {
    n: usize,
    batch: usize,
    seed: u64,
    epoch: u64,
    order: Vec<usize>,
    pos: usize,
}

impl Batches {
    pub fn new(n: usize, batch: usize, seed: u64) -> Self {
        assert!(n > 0 && batch > 0, "batches of {batch} from {n} examples");
        let mut b = Batches {
            n,
            batch,
            seed,
            epoch: 0,
            order: Vec::new(),
            pos: 0,
        };
        b.reshuffle();
        b
    }

    /// Optimizer steps in one pass over the examples.
    pub fn steps_per_epoch(n: usize, batch: usize) -> usize {
        n.div_ceil(batch)
    }

    fn reshuffle(&mut self) {
        self.order = (0..self.n).collect();
        let seed = crate::rng::mix64(self.seed ^ crate::rng::mix64(self.epoch + 1));
        shuffle(&mut self.order, &mut SplitMix64::new(seed));
        self.pos = 0;
    }

    /// The next batch (never empty).
    pub fn next_batch(&mut self) -> Vec<usize> {
        if self.pos >= self.n {
            self.epoch += 1;
            self.reshuffle();
        }
        let end = (self.pos + self.batch).min(self.n);
        let out = self.order[self.pos..end].to_vec();
        self.pos = end;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_epoch_is_a_permutation_and_seeds_differ() {
        let mut b = Batches::new(10, 4, 1);
        for _ in 0..3 {
            let mut seen: Vec<usize> = (0..3).flat_map(|_| b.next_batch()).collect();
            seen.sort();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
        let first = |seed| Batches::new(10, 10, seed).next_batch();
        assert_eq!(first(1), first(1));
        assert_ne!(first(1), first(2));
        assert_eq!(Batches::steps_per_epoch(10, 4), 3);
    }
}
