//! A small CNN for 28x28 digits (NCHW, 1 channel), of any width (`CnnConfig`). The data-diet
//! CNN (`CnnConfig::DATA_DIET`) is:
//!
//! | layer | output | parameters |
//! | --- | --- | --- |
//! | conv 5x5, 16 channels, stride 1, no padding; ReLU | 16 x 24 x 24 | 416 |
//! | max pool 2x2 | 16 x 12 x 12 | |
//! | conv 5x5, 32 channels; ReLU | 32 x 8 x 8 | 12,832 |
//! | max pool 2x2, flatten | 512 | |
//! | fully connected 512 -> 128; ReLU (the penultimate features) | 128 | 65,664 |
//! | fully connected 128 -> 10 (logits) | 10 | 1,290 |
//!
//! 80,202 parameters; per example 1.12 M multiply-accumulates forward. Other widths change the
//! channel counts (`conv1`, `conv2`) and the hidden width (`hidden`) only. Every product is a GEMM
//! through `Offload` (the convolutions by im2col), three per layer in training. Weights are
//! He-normal (std sqrt(2 / fan-in); the logit layer sqrt(1 / fan-in)), biases zero, inputs the
//! raw pixels in [0, 1].

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::nn::conv::{nchw_to_positions, Conv2d, ConvCache, ConvGeometry};
use crate::nn::grad_norms::{bias_sq_norms, weight_sq_norms};
use crate::nn::linear::Linear;
use crate::nn::nchw::Nchw;
use crate::nn::pool::{MaxPool2d, PoolCache};
use crate::nn::{GemmKind, Offload, Param};
use crate::rng::SplitMix64;

pub use crate::data::mnist::batch_of;

pub const CLASSES: usize = 10;

/// Widths of the CNN: output channels of the two convolutions, and the hidden (penultimate)
/// width of the first fully connected layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CnnConfig {
    pub conv1: usize,
    pub conv2: usize,
    pub hidden: usize,
}

impl CnnConfig {
    pub const DATA_DIET: CnnConfig = CnnConfig {
        conv1: 16,
        conv2: 32,
        hidden: 128,
    };

    /// fc1's input: conv2's channels over the 4x4 map after the second pool.
    pub fn flat(&self) -> usize {
        self.conv2 * 16
    }

    /// Multiply-accumulates of one example's forward pass.
    pub fn macs_per_example(&self) -> usize {
        576 * 25 * self.conv1
            + 64 * 25 * self.conv1 * self.conv2
            + self.flat() * self.hidden
            + self.hidden * CLASSES
    }

    pub fn parameters(&self) -> usize {
        (25 + 1) * self.conv1
            + (25 * self.conv1 + 1) * self.conv2
            + (self.flat() + 1) * self.hidden
            + (self.hidden + 1) * CLASSES
    }

    /// e.g. `conv5x5-16 relu pool2, conv5x5-32 relu pool2, fc-128 relu, fc-10`.
    pub fn describe(&self) -> String {
        format!(
            "conv5x5-{} relu pool2, conv5x5-{} relu pool2, fc-{} relu, fc-{CLASSES}",
            self.conv1, self.conv2, self.hidden
        )
    }
}

pub struct Cnn {
    pub config: CnnConfig,
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub fc1: Linear,
    pub fc2: Linear,
    pool: MaxPool2d,
    cache: Option<Cache>,
}

/// What the backward pass needs from the forward pass.
struct Cache {
    c1: ConvCache,
    /// conv1 output after ReLU (its sign is ReLU's mask).
    a1: Nchw,
    p1: PoolCache,
    c2: ConvCache,
    a2: Nchw,
    p2: PoolCache,
    /// fc1's input (the flattened pool output) and its output after ReLU (fc2's input).
    flat: Matrix,
    h: Matrix,
}

fn relu(v: &mut [f32]) {
    v.iter_mut().for_each(|x| *x = x.max(0.0));
}

/// dy *= (y > 0), with y the ReLU output. Written as a select of values, which vectorizes; the
/// conditional store it replaces did not (5 % of a CNN training step).
fn relu_back(y: &[f32], dy: &mut [f32]) {
    dy.iter_mut()
        .zip(y)
        .for_each(|(g, &a)| *g = if a <= 0.0 { 0.0 } else { *g });
}

fn linear(name: &str, fan_in: usize, out: usize, gain: f64, rng: &mut SplitMix64) -> Linear {
    let std = (gain / fan_in as f64).sqrt();
    Linear::new(
        Param::normal(&format!("{name}.weight"), fan_in, out, std, rng),
        Some(Param::new(&format!("{name}.bias"), Matrix::zeros(1, out))),
    )
}

impl Cnn {
    /// A fresh data-diet CNN; the same `seed` gives the same weights.
    pub fn new(seed: u64) -> Self {
        Cnn::with_config(CnnConfig::DATA_DIET, seed)
    }

    /// A fresh network of widths `config`; the same `seed` gives the same weights.
    pub fn with_config(config: CnnConfig, seed: u64) -> Self {
        let mut rng = SplitMix64::new(crate::rng::mix64(seed ^ 0xC0DE_D1E7));
        let g = |in_ch, out_ch| ConvGeometry {
            in_ch,
            out_ch,
            kernel: 5,
            stride: 1,
            pad: 0,
        };
        let c = config;
        Cnn {
            config,
            conv1: Conv2d::new("conv1", g(1, c.conv1), &mut rng),
            conv2: Conv2d::new("conv2", g(c.conv1, c.conv2), &mut rng),
            fc1: linear("fc1", c.flat(), c.hidden, 2.0, &mut rng),
            fc2: linear("fc2", c.hidden, CLASSES, 1.0, &mut rng),
            pool: MaxPool2d::new(2),
            cache: None,
        }
    }

    /// Logits (batch x 10). `keep` keeps the activations for a backward pass.
    pub fn forward(&mut self, ctx: &mut Offload, x: &Nchw, keep: bool) -> Result<Matrix> {
        Ok(self.forward_features(ctx, x, keep)?.0)
    }

    /// Logits and the penultimate features (fc1's output after ReLU, batch x hidden).
    pub fn forward_features(
        &mut self,
        ctx: &mut Offload,
        x: &Nchw,
        keep: bool,
    ) -> Result<(Matrix, Matrix)> {
        if (x.c, x.h, x.w) != (1, 28, 28) {
            return Err(Error::Shape(format!(
                "the CNN takes 1x28x28 images, got {}x{}x{}",
                x.c, x.h, x.w
            )));
        }
        let (mut a1, c1) = self.conv1.forward(ctx, x)?;
        relu(&mut a1.data);
        let (p1out, p1) = self.pool.forward(&a1);
        let (mut a2, c2) = self.conv2.forward(ctx, &p1out)?;
        relu(&mut a2.data);
        let (p2out, p2) = self.pool.forward(&a2);
        let flat = p2out.flatten();
        let mut h = self.fc1.forward(ctx, &flat)?;
        relu(&mut h.data);
        let logits = self.fc2.forward(ctx, &h)?;
        let features = h.clone();
        self.cache = keep.then_some(Cache {
            c1,
            a1,
            p1,
            c2,
            a2,
            p2,
            flat,
            h,
        });
        Ok((logits, features))
    }

    fn take_cache(&mut self) -> Result<Cache> {
        self.cache.take().ok_or_else(|| {
            Error::Usage("backward without a forward pass that kept its activations".into())
        })
    }

    /// Accumulate every parameter's gradient from dL/dlogits (the last forward must have kept
    /// its activations).
    pub fn backward(&mut self, ctx: &mut Offload, dlogits: &Matrix) -> Result<()> {
        self.backward_with_features(ctx, dlogits, None)
    }

    /// As `backward`, with a further loss term's gradient `dfeatures` with respect to the
    /// penultimate features (batch x hidden) added to what flows back from the logits.
    pub fn backward_with_features(
        &mut self,
        ctx: &mut Offload,
        dlogits: &Matrix,
        dfeatures: Option<&Matrix>,
    ) -> Result<()> {
        let c = self.take_cache()?;
        let mut dh = self
            .fc2
            .backward(ctx, &c.h, dlogits, true)?
            .expect("dx requested");
        if let Some(df) = dfeatures {
            if (df.rows, df.cols) != (dh.rows, dh.cols) {
                return Err(Error::Shape(format!(
                    "a feature gradient of {}x{} for features of {}x{}",
                    df.rows, df.cols, dh.rows, dh.cols
                )));
            }
            super::residual::add_into(&mut dh, df);
        }
        relu_back(&c.h.data, &mut dh.data);
        let dflat = self
            .fc1
            .backward(ctx, &c.flat, &dh, true)?
            .expect("dx requested");
        let mut da2 = self
            .pool
            .backward(&c.p2, &Nchw::unflatten(dflat, self.config.conv2, 4, 4));
        relu_back(&c.a2.data, &mut da2.data);
        let dp1 = self
            .conv2
            .backward(ctx, &c.c2, &da2, true)?
            .expect("dx requested");
        let mut da1 = self.pool.backward(&c.p1, &dp1);
        relu_back(&c.a1.data, &mut da1.data);
        self.conv1.backward(ctx, &c.c1, &da1, false)?;
        Ok(())
    }

    /// ||grad_theta loss_b||^2 over all parameters for each example b, where `dlogits` holds
    /// each example's own dloss_b/dlogits (not divided by the batch). Backpropagates with the
    /// input-gradient GEMMs only; each layer's per-example weight-gradient norm follows from
    /// its inputs and output gradients (`nn::grad_norms`). Parameter gradients are untouched.
    pub fn per_example_sq_grad_norms(
        &mut self,
        ctx: &mut Offload,
        dlogits: &Matrix,
    ) -> Result<Vec<f64>> {
        let c = self.take_cache()?;
        let mut total = vec![0.0f64; dlogits.rows];
        let mut add = |v: Vec<f64>| total.iter_mut().zip(v).for_each(|(t, x)| *t += x);
        add(weight_sq_norms(&c.h, dlogits, 1));
        add(bias_sq_norms(dlogits, 1));
        let mut dh = ctx.gemm(
            dlogits,
            &self.fc2.weight.value.transpose(),
            GemmKind::InputGrad,
        )?;
        relu_back(&c.h.data, &mut dh.data);
        add(weight_sq_norms(&c.flat, &dh, 1));
        add(bias_sq_norms(&dh, 1));
        let dflat = ctx.gemm(&dh, &self.fc1.weight.value.transpose(), GemmKind::InputGrad)?;
        let mut da2 = self
            .pool
            .backward(&c.p2, &Nchw::unflatten(dflat, self.config.conv2, 4, 4));
        relu_back(&c.a2.data, &mut da2.data);
        let g2 = nchw_to_positions(&da2);
        add(weight_sq_norms(&c.c2.cols, &g2, 64));
        add(bias_sq_norms(&g2, 64));
        let dp1 = self.conv2.input_grad(ctx, &c.c2, &g2)?;
        let mut da1 = self.pool.backward(&c.p1, &dp1);
        relu_back(&c.a1.data, &mut da1.data);
        let g1 = nchw_to_positions(&da1);
        add(weight_sq_norms(&c.c1.cols, &g1, 576));
        add(bias_sq_norms(&g1, 576));
        Ok(total)
    }

    pub fn params(&self) -> Vec<&Param> {
        let mut v = self.conv1.params();
        v.extend(self.conv2.params());
        v.push(&self.fc1.weight);
        v.extend(self.fc1.bias.as_ref());
        v.push(&self.fc2.weight);
        v.extend(self.fc2.bias.as_ref());
        v
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = self.conv1.params_mut();
        v.extend(self.conv2.params_mut());
        v.extend(self.fc1.params_mut());
        v.extend(self.fc2.params_mut());
        v
    }

    /// Every GEMM of one training step of the data-diet CNN at batch `b`: (layer, role, M, K, N).
    pub fn gemm_shapes(b: usize) -> Vec<(&'static str, GemmKind, usize, usize, usize)> {
        CnnConfig::DATA_DIET.gemm_shapes(b)
    }
}

impl CnnConfig {
    /// Every GEMM of one training step at batch `b`: (layer, role, M, K, N).
    pub fn gemm_shapes(&self, b: usize) -> Vec<(&'static str, GemmKind, usize, usize, usize)> {
        let c = self;
        let mut v = Vec::new();
        for (name, m, k, n, dx) in [
            ("conv1", b * 576, 25, c.conv1, false),
            ("conv2", b * 64, 25 * c.conv1, c.conv2, true),
            ("fc1", b, c.flat(), c.hidden, true),
            ("fc2", b, c.hidden, CLASSES, true),
        ] {
            v.push((name, GemmKind::Forward, m, k, n));
            v.push((name, GemmKind::WeightGrad, k, m, n));
            if dx {
                v.push((name, GemmKind::InputGrad, m, n, k));
            }
        }
        v
    }
}
