//! Inverted dropout (host), seeded: in training mode each element is zeroed with probability `p`
//! and the others scaled by 1 / (1 - p); in evaluation mode it is the identity. Call `c`'s mask
//! draws element i from `rng::uniform_at(mix64(seed ^ mix64(c)), i)`, so a run is reproducible
//! and the same on every engine.

use crate::matrix::Matrix;
use crate::rng::{mix64, uniform_at};

pub struct Dropout {
    pub p: f32,
    seed: u64,
    calls: u64,
}

/// The kept elements' scale (0 where dropped), for the backward pass.
pub struct DropoutMask {
    scale: Vec<f32>,
}

impl Dropout {
    pub fn new(p: f32, seed: u64) -> Self {
        assert!((0.0..1.0).contains(&p), "dropout rate {p} outside [0, 1)");
        Dropout { p, seed, calls: 0 }
    }

    pub fn forward_train(&mut self, x: &Matrix) -> (Matrix, DropoutMask) {
        self.calls += 1;
        let seed = mix64(self.seed ^ mix64(self.calls));
        let keep = 1.0 / (1.0 - self.p);
        let scale: Vec<f32> = (0..x.data.len())
            .map(|i| {
                if uniform_at(seed, i as u64) < self.p as f64 {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        let y = Matrix {
            rows: x.rows,
            cols: x.cols,
            data: x.data.iter().zip(&scale).map(|(v, s)| v * s).collect(),
        };
        (y, DropoutMask { scale })
    }

    pub fn backward(&self, dy: &Matrix, mask: &DropoutMask) -> Matrix {
        Matrix {
            rows: dy.rows,
            cols: dy.cols,
            data: dy
                .data
                .iter()
                .zip(&mask.scale)
                .map(|(d, s)| d * s)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_about_p_scales_the_rest_and_is_seeded() {
        let x = Matrix::from_fn(50, 40, |_, _| 1.0);
        let (y, m) = Dropout::new(0.25, 3).forward_train(&x);
        let zeros = y.data.iter().filter(|&&v| v == 0.0).count();
        assert!((400..600).contains(&zeros), "{zeros} of 2000 dropped");
        assert!(y
            .data
            .iter()
            .all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        let (y2, _) = Dropout::new(0.25, 3).forward_train(&x);
        assert_eq!(y.data, y2.data);
        let mut d = Dropout::new(0.25, 3);
        d.forward_train(&x);
        assert_ne!(d.forward_train(&x).0.data, y.data, "a fresh mask per call");
        let g = Dropout::new(0.25, 3).backward(&x, &m);
        assert_eq!(g.data, y.data);
    }
}
