//! Element-wise activations (host).

use crate::error::{Error, Result};
use crate::matrix::Matrix;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    /// tanh approximation, as PyTorch's `gelu(approximate="tanh")` (Hugging Face `gelu_new`).
    Gelu,
    /// The exact GELU, x * Phi(x) = x / 2 * (1 + erf(x / sqrt 2)) (Hugging Face `gelu`).
    GeluErf,
    /// x * sigmoid(1.702 x), OpenAI CLIP's approximation (Hugging Face `quick_gelu`).
    QuickGelu,
}

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const QUICK_GELU_K: f32 = 1.702;

impl Activation {
    /// The activation a Hugging Face config's `hidden_act` names.
    pub fn from_hf(name: &str) -> Result<Self> {
        match name {
            "gelu" => Ok(Activation::GeluErf),
            "quick_gelu" => Ok(Activation::QuickGelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::Gelu),
            "relu" => Ok(Activation::Relu),
            other => Err(Error::Usage(format!(
                "hidden_act \"{other}\" is not supported: use quick_gelu, gelu, gelu_new or relu"
            ))),
        }
    }

    fn value(self, v: f32) -> f32 {
        match self {
            Activation::Relu => v.max(0.0),
            Activation::Gelu => {
                0.5 * v * (1.0 + (SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)).tanh())
            }
            Activation::GeluErf => {
                (0.5 * f64::from(v)
                    * (1.0 + libm::erf(f64::from(v) * std::f64::consts::FRAC_1_SQRT_2)))
                    as f32
            }
            Activation::QuickGelu => v * sigmoid(QUICK_GELU_K * v),
        }
    }

    /// dy/dx at x.
    fn slope(self, v: f32) -> f32 {
        match self {
            Activation::Relu => {
                if v > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Gelu => {
                let u = SQRT_2_OVER_PI * (v + 0.044715 * v * v * v);
                let t = u.tanh();
                let du = SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * v * v);
                0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du
            }
            Activation::GeluErf => {
                // Phi(x) + x phi(x).
                let x = f64::from(v);
                let cdf = 0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2));
                let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (cdf + x * pdf) as f32
            }
            Activation::QuickGelu => {
                let s = sigmoid(QUICK_GELU_K * v);
                s + QUICK_GELU_K * v * s * (1.0 - s)
            }
        }
    }

    pub fn forward(self, x: &Matrix) -> Matrix {
        Matrix {
            rows: x.rows,
            cols: x.cols,
            data: x.data.iter().map(|&v| self.value(v)).collect(),
        }
    }

    /// dL/dx from dL/dy and the forward input x.
    pub fn backward(self, x: &Matrix, dy: &Matrix) -> Matrix {
        let data = x
            .data
            .iter()
            .zip(&dy.data)
            .map(|(&v, &g)| match self {
                // ReLU passes the gradient through as is (no multiply by 1.0, no -0.0).
                Activation::Relu => {
                    if v > 0.0 {
                        g
                    } else {
                        0.0
                    }
                }
                _ => g * self.slope(v),
            })
            .collect();
        Matrix {
            rows: x.rows,
            cols: x.cols,
            data,
        }
    }
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slopes_match_finite_differences() {
        for act in [Activation::Gelu, Activation::GeluErf, Activation::QuickGelu] {
            for i in -40..=40 {
                let v = i as f32 * 0.15 + 0.01;
                let h = 1e-2f64;
                let f = |x: f64| f64::from(act.value(x as f32));
                let fd = (f(f64::from(v) + h) - f(f64::from(v) - h)) / (2.0 * h);
                let g = f64::from(act.slope(v));
                assert!((fd - g).abs() < 2e-3, "{act:?} at {v}: {g} vs {fd}");
            }
        }
    }

    #[test]
    fn exact_gelu_values() {
        // x * Phi(x) from the normal CDF: Phi(1) = 0.841344746, Phi(-2) = 0.022750132.
        assert!((Activation::GeluErf.value(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((Activation::GeluErf.value(-2.0) + 0.045_500_26).abs() < 1e-6);
        assert_eq!(Activation::from_hf("gelu").unwrap(), Activation::GeluErf);
        assert!(Activation::from_hf("swish")
            .unwrap_err()
            .to_string()
            .contains("swish"));
    }
}
