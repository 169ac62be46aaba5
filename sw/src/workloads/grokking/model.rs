//! The grokking models, after the paper's public code (`OnlyMLP`, `MnistMLP`): no biases, weights
//! initialized N(0, (scale / sqrt(fan_in))^2).

use super::data::Inputs;
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::nn::activation::Activation;
use crate::nn::embedding::Embedding;
use crate::nn::linear::Linear;
use crate::nn::{Offload, Param};
use crate::rng::SplitMix64;

pub trait Model: Send {
    /// Logits (or outputs) for `inputs`; with `train` the activations are kept for `backward`.
    fn forward(&mut self, ctx: &mut Offload, inputs: &Inputs, train: bool) -> Result<Matrix>;
    /// Accumulate parameter gradients from dL/doutput of the last training forward pass.
    fn backward(&mut self, ctx: &mut Offload, dout: &Matrix) -> Result<()>;
    fn params(&self) -> Vec<&Param>;
    fn params_mut(&mut self) -> Vec<&mut Param>;
}

fn linear(name: &str, d_in: usize, d_out: usize, scale: f64, rng: &mut SplitMix64) -> Linear {
    Linear::new(
        Param::normal(name, d_in, d_out, scale / (d_in as f64).sqrt(), rng),
        None,
    )
}

/// Embedding (p x d_emb) -> sum of the two tokens -> inproj (d_emb -> d_model) -> ReLU ->
/// outproj (d_model -> d_emb) -> unembed (d_emb -> p).
pub struct GrokMlp {
    pub embed: Embedding,
    pub inproj: Linear,
    pub outproj: Linear,
    pub unembed: Linear,
    cache: Option<MlpCache>,
}

struct MlpCache {
    tokens: Vec<Vec<usize>>,
    h0: Matrix,
    h1: Matrix,
    a1: Matrix,
    h2: Matrix,
}

impl GrokMlp {
    pub fn new(p: usize, d_emb: usize, d_model: usize, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        // The paper's Embed: std 1 / sqrt(d_vocab).
        let embed = Embedding {
            table: Param::normal("embed", p, d_emb, 1.0 / (p as f64).sqrt(), &mut rng),
        };
        let inproj = linear("inproj", d_emb, d_model, 1.0, &mut rng);
        let outproj = linear("outproj", d_model, d_emb, 1.0, &mut rng);
        let unembed = linear("unembed", d_emb, p, 1.0, &mut rng);
        GrokMlp {
            embed,
            inproj,
            outproj,
            unembed,
            cache: None,
        }
    }
}

impl Model for GrokMlp {
    fn forward(&mut self, ctx: &mut Offload, inputs: &Inputs, train: bool) -> Result<Matrix> {
        let Inputs::Tokens(tokens) = inputs else {
            return Err(Error::Usage("the grokking MLP takes token inputs".into()));
        };
        let h0 = self.embed.forward_sum(tokens);
        let h1 = self.inproj.forward(ctx, &h0)?;
        let a1 = Activation::Relu.forward(&h1);
        let h2 = self.outproj.forward(ctx, &a1)?;
        let logits = self.unembed.forward(ctx, &h2)?;
        self.cache = train.then(|| MlpCache {
            tokens: tokens.clone(),
            h0,
            h1,
            a1,
            h2,
        });
        Ok(logits)
    }

    fn backward(&mut self, ctx: &mut Offload, dout: &Matrix) -> Result<()> {
        let c = self
            .cache
            .take()
            .ok_or_else(|| Error::Usage("backward without a training forward pass".into()))?;
        let dh2 = self
            .unembed
            .backward(ctx, &c.h2, dout, true)?
            .unwrap_or_else(|| Matrix::zeros(0, 0));
        let da1 = self
            .outproj
            .backward(ctx, &c.a1, &dh2, true)?
            .unwrap_or_else(|| Matrix::zeros(0, 0));
        let dh1 = Activation::Relu.backward(&c.h1, &da1);
        let dh0 = self
            .inproj
            .backward(ctx, &c.h0, &dh1, true)?
            .unwrap_or_else(|| Matrix::zeros(0, 0));
        self.embed.backward_sum(&c.tokens, &dh0);
        Ok(())
    }

    fn params(&self) -> Vec<&Param> {
        vec![
            &self.embed.table,
            &self.inproj.weight,
            &self.outproj.weight,
            &self.unembed.weight,
        ]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![
            &mut self.embed.table,
            &mut self.inproj.weight,
            &mut self.outproj.weight,
            &mut self.unembed.weight,
        ]
    }
}

/// 784 -> 200 -> ReLU -> 200 -> ReLU -> 10, init scale 8 (the grokking-on-MNIST setting).
pub struct MnistMlp {
    pub layers: Vec<Linear>,
    cache: Vec<(Matrix, Matrix)>, // (input, pre-activation) per hidden layer, then the last input
}

impl MnistMlp {
    pub fn new(widths: &[usize], init_scale: f64, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| linear(&format!("fc{i}"), w[0], w[1], init_scale, &mut rng))
            .collect();
        MnistMlp {
            layers,
            cache: Vec::new(),
        }
    }
}

impl Model for MnistMlp {
    fn forward(&mut self, ctx: &mut Offload, inputs: &Inputs, train: bool) -> Result<Matrix> {
        let Inputs::Dense(x) = inputs else {
            return Err(Error::Usage("the MNIST MLP takes dense inputs".into()));
        };
        self.cache.clear();
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let z = layer.forward(ctx, &h)?;
            let next = if i < last {
                Activation::Relu.forward(&z)
            } else {
                z.clone()
            };
            if train {
                self.cache.push((h, z));
            }
            h = next;
        }
        Ok(h)
    }

    fn backward(&mut self, ctx: &mut Offload, dout: &Matrix) -> Result<()> {
        if self.cache.len() != self.layers.len() {
            return Err(Error::Usage(
                "backward without a training forward pass".into(),
            ));
        }
        let last = self.layers.len() - 1;
        let mut grad = dout.clone();
        for i in (0..=last).rev() {
            let (x, z) = &self.cache[i];
            if i < last {
                grad = Activation::Relu.backward(z, &grad);
            }
            match self.layers[i].backward(ctx, x, &grad, i > 0)? {
                Some(g) => grad = g,
                None => break,
            }
        }
        self.cache.clear();
        Ok(())
    }

    fn params(&self) -> Vec<&Param> {
        self.layers.iter().map(|l| &l.weight).collect()
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.layers.iter_mut().map(|l| &mut l.weight).collect()
    }
}
