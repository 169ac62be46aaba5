//! The grokking data sets: modular addition (as the paper's public code builds it) and a small
//! MNIST subset.

use crate::data::mnist;
use crate::data::shuffle;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::rng::SplitMix64;

/// A model's inputs: token ids per example, or dense feature rows.
#[derive(Clone, Debug)]
pub enum Inputs {
    Tokens(Vec<Vec<usize>>),
    Dense(Matrix),
}

#[derive(Clone, Debug)]
pub struct Split {
    pub inputs: Inputs,
    pub labels: Vec<usize>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

pub struct Dataset {
    pub train: Split,
    pub test: Split,
    pub classes: usize,
}

/// (x + y) mod p over the symmetric pairs x <= y, split `train_frac` / rest by seed.
pub fn modular_addition(p: usize, train_frac: f64, seed: u64) -> Result<Dataset> {
    if p < 2 {
        return Err(Error::Usage(format!(
            "--p {p} is too small: use a modulus of at least 2"
        )));
    }
    if !(train_frac > 0.0 && train_frac < 1.0) {
        return Err(Error::Usage(format!(
            "--train-frac {train_frac} must be strictly between 0 and 1"
        )));
    }
    let mut pairs: Vec<(usize, usize)> = (0..p).flat_map(|x| (x..p).map(move |y| (x, y))).collect();
    shuffle(&mut pairs, &mut SplitMix64::new(seed ^ 0x5EED_DA7A));
    let cut = ((train_frac * pairs.len() as f64) as usize).clamp(1, pairs.len() - 1);
    let split = |ps: &[(usize, usize)]| Split {
        inputs: Inputs::Tokens(ps.iter().map(|&(x, y)| vec![x, y]).collect()),
        labels: ps.iter().map(|&(x, y)| (x + y) % p).collect(),
    };
    Ok(Dataset {
        train: split(&pairs[..cut]),
        test: split(&pairs[cut..]),
        classes: p,
    })
}

/// `n_train` training and `n_test` test images drawn (disjoint) by seed from the shipped MNIST set.
pub fn mnist_subset(n_train: usize, n_test: usize, seed: u64) -> Result<Dataset> {
    let m = mnist::shipped_test_set()?;
    if n_train + n_test > m.len() {
        return Err(Error::Usage(format!(
            "{n_train} training + {n_test} test images exceed the {} MNIST images shipped",
            m.len()
        )));
    }
    let mut idx: Vec<usize> = (0..m.len()).collect();
    shuffle(&mut idx, &mut SplitMix64::new(seed ^ 0x3A15_7000));
    let split = |ids: &[usize]| Split {
        inputs: Inputs::Dense(Matrix::from_fn(ids.len(), 784, |r, c| m.image(ids[r])[c])),
        labels: ids.iter().map(|&i| m.labels[i] as usize).collect(),
    };
    Ok(Dataset {
        train: split(&idx[..n_train]),
        test: split(&idx[n_train..n_train + n_test]),
        classes: 10,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modular_split_covers_every_symmetric_pair_once() {
        let d = modular_addition(67, 0.4, 3).unwrap();
        assert_eq!(d.train.len() + d.test.len(), 67 * 68 / 2);
        assert_eq!(d.train.len(), (0.4 * 2278.0) as usize);
        let Inputs::Tokens(t) = &d.train.inputs else {
            panic!("tokens")
        };
        assert!(t
            .iter()
            .zip(&d.train.labels)
            .all(|(xy, &l)| xy[0] <= xy[1] && (xy[0] + xy[1]) % 67 == l));
        let other = modular_addition(67, 0.4, 4).unwrap();
        assert_ne!(d.train.labels, other.train.labels);
    }
}
