//! A trainable matrix: fp32 master value, its gradient, and an optional pruning mask.

use crate::matrix::Matrix;
use crate::rng::SplitMix64;

#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub value: Matrix,
    pub grad: Matrix,
    /// `false` entries are pruned: held at zero, gradients dropped.
    pub mask: Option<Vec<bool>>,
}

impl Param {
    pub fn new(name: &str, value: Matrix) -> Self {
        let grad = Matrix::zeros(value.rows, value.cols);
        Param {
            name: name.to_string(),
            value,
            grad,
            mask: None,
        }
    }

    /// N(0, std^2) entries.
    pub fn normal(name: &str, rows: usize, cols: usize, std: f64, rng: &mut SplitMix64) -> Self {
        Param::new(
            name,
            Matrix::from_fn(rows, cols, |_, _| (std * rng.normal()) as f32),
        )
    }

    pub fn zero_grad(&mut self) {
        self.grad.data.iter_mut().for_each(|g| *g = 0.0);
    }

    /// Install a mask and zero the pruned entries.
    pub fn set_mask(&mut self, mask: Vec<bool>) {
        self.mask = Some(mask);
        self.apply_mask();
    }

    /// Hold pruned entries (value and gradient) at zero.
    pub fn apply_mask(&mut self) {
        if let Some(mask) = &self.mask {
            for ((v, g), &keep) in self
                .value
                .data
                .iter_mut()
                .zip(self.grad.data.iter_mut())
                .zip(mask)
            {
                if !keep {
                    *v = 0.0;
                    *g = 0.0;
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.value.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.value.data.is_empty()
    }
}
