//! Element-wise activations (host).

use crate::matrix::Matrix;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    /// tanh approximation, as PyTorch's `gelu(approximate="tanh")`.
    Gelu,
}

const SQRT_2_OVER_PI: f32 = 0.797_884_6;

impl Activation {
    pub fn forward(self, x: &Matrix) -> Matrix {
        let f: fn(f32) -> f32 = match self {
            Activation::Relu => |v| v.max(0.0),
            Activation::Gelu => {
                |v| 0.5 * v * (1.0 + (SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)).tanh())
            }
        };
        Matrix {
            rows: x.rows,
            cols: x.cols,
            data: x.data.iter().map(|&v| f(v)).collect(),
        }
    }

    /// dL/dx from dL/dy and the forward input x.
    pub fn backward(self, x: &Matrix, dy: &Matrix) -> Matrix {
        let data = x
            .data
            .iter()
            .zip(&dy.data)
            .map(|(&v, &g)| match self {
                Activation::Relu => {
                    if v > 0.0 {
                        g
                    } else {
                        0.0
                    }
                }
                Activation::Gelu => {
                    let u = SQRT_2_OVER_PI * (v + 0.044715 * v * v * v);
                    let t = u.tanh();
                    let du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * v * v);
                    g * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du)
                }
            })
            .collect();
        Matrix {
            rows: x.rows,
            cols: x.cols,
            data,
        }
    }
}
