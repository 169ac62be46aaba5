//! Optimizers over fp32 master weights (host).

use super::Param;

/// AdamW with decoupled weight decay (Loshchilov & Hutter), as `torch.optim.AdamW`.
pub struct AdamW {
    pub lr: f32,
    pub betas: (f32, f32),
    pub eps: f32,
    pub weight_decay: f32,
    step: i32,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl AdamW {
    pub fn new(lr: f32, betas: (f32, f32), weight_decay: f32) -> Self {
        AdamW {
            lr,
            betas,
            eps: 1e-8,
            weight_decay,
            step: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    pub fn step(&mut self, params: &mut [&mut Param]) {
        if self.m.is_empty() {
            self.m = params.iter().map(|p| vec![0.0; p.len()]).collect();
            self.v = params.iter().map(|p| vec![0.0; p.len()]).collect();
        }
        self.step += 1;
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powi(self.step);
        let bc2 = 1.0 - b2.powi(self.step);
        let step_size = self.lr / bc1;
        let decay = 1.0 - self.lr * self.weight_decay;
        for ((p, m), v) in params.iter_mut().zip(&mut self.m).zip(&mut self.v) {
            for (((w, &g), mi), vi) in p
                .value
                .data
                .iter_mut()
                .zip(&p.grad.data)
                .zip(m.iter_mut())
                .zip(v.iter_mut())
            {
                *w *= decay;
                *mi = b1 * *mi + (1.0 - b1) * g;
                *vi = b2 * *vi + (1.0 - b2) * g * g;
                let denom = (*vi / bc2).sqrt() + self.eps;
                *w -= step_size * *mi / denom;
            }
            p.apply_mask();
        }
    }
}

/// How SGD applies weight decay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decay {
    /// L2 regularization: `weight_decay * w` is added to the gradient before momentum, as
    /// `torch.optim.SGD(weight_decay=...)` and the data-diet paper's code do.
    L2,
    /// Decoupled (Loshchilov & Hutter): `w *= 1 - lr * weight_decay` apart from the gradient.
    Decoupled,
}

/// Mini-batch SGD with (optionally Nesterov) momentum and L2 or decoupled weight decay, as
/// `torch.optim.SGD`: `g = grad (+ wd w)`, `buf = momentum buf + g`, step along `buf`, or along
/// `g + momentum buf` with Nesterov. The learning rate is set per step (see `LrSchedule`).
pub struct SgdMomentum {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub nesterov: bool,
    pub decay: Decay,
    buf: Vec<Vec<f32>>,
}

impl SgdMomentum {
    /// Heavy-ball momentum and L2 weight decay (`torch.optim.SGD` defaults).
    pub fn new(lr: f32, momentum: f32, weight_decay: f32) -> Self {
        SgdMomentum {
            lr,
            momentum,
            weight_decay,
            nesterov: false,
            decay: Decay::L2,
            buf: Vec::new(),
        }
    }

    pub fn with_nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    pub fn with_decay(mut self, decay: Decay) -> Self {
        self.decay = decay;
        self
    }

    pub fn step(&mut self, params: &mut [&mut Param]) {
        if self.buf.is_empty() {
            self.buf = params.iter().map(|p| vec![0.0; p.len()]).collect();
        }
        let (lr, m, wd) = (self.lr, self.momentum, self.weight_decay);
        let l2 = if self.decay == Decay::L2 { wd } else { 0.0 };
        let shrink = if self.decay == Decay::Decoupled {
            1.0 - lr * wd
        } else {
            1.0
        };
        for (p, buf) in params.iter_mut().zip(&mut self.buf) {
            for ((w, &g), b) in p
                .value
                .data
                .iter_mut()
                .zip(&p.grad.data)
                .zip(buf.iter_mut())
            {
                let g = g + l2 * *w;
                *b = m * *b + g;
                let dir = if self.nesterov { g + m * *b } else { *b };
                *w = *w * shrink - lr * dir;
            }
            p.apply_mask();
        }
    }
}

/// Learning rate against the optimizer step.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum LrSchedule {
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        every: usize,
        gamma: f32,
    },
    /// Half a cosine from the base rate to 0 over `total` steps, after `warmup` linear steps.
    Cosine {
        total: usize,
        warmup: usize,
    },
}

impl LrSchedule {
    /// The rate at step `step` (0-based) for base rate `base`.
    pub fn lr_at(&self, base: f32, step: usize) -> f32 {
        match *self {
            LrSchedule::Constant => base,
            LrSchedule::Step { every, gamma } => base * gamma.powi((step / every.max(1)) as i32),
            LrSchedule::Cosine { total, warmup } => {
                if step < warmup {
                    return base * (step + 1) as f32 / warmup as f32;
                }
                let span = total.saturating_sub(warmup).max(1);
                let t = ((step - warmup) as f64 / span as f64).min(1.0);
                (base as f64 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())) as f32
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;

    fn param(w: f32, g: f32) -> Param {
        let mut p = Param::new("w", Matrix::new(1, 1, vec![w]).unwrap());
        p.grad.data[0] = g;
        p
    }

    #[test]
    fn sgd_matches_torch_update_rules() {
        // Two steps with constant gradient 1 from w = 1, lr 0.1, momentum 0.9, wd 0.01.
        let run = |nesterov: bool, decay: Decay| {
            let mut p = param(1.0, 1.0);
            let mut opt = SgdMomentum::new(0.1, 0.9, 0.01)
                .with_nesterov(nesterov)
                .with_decay(decay);
            opt.step(&mut [&mut p]);
            let w1 = p.value.data[0];
            opt.step(&mut [&mut p]);
            (w1, p.value.data[0])
        };
        // torch: g = 1 + 0.01 w; buf = g (step 1), 0.9 buf + g; w -= lr * buf.
        let (w1, w2) = run(false, Decay::L2);
        let g1 = 1.0 + 0.01;
        assert!((w1 - (1.0 - 0.1 * g1)).abs() < 1e-6);
        let g2 = 1.0 + 0.01 * w1;
        assert!((w2 - (w1 - 0.1 * (0.9 * g1 + g2))).abs() < 1e-6);
        // Nesterov: w -= lr (g + 0.9 buf).
        let (w1, _) = run(true, Decay::L2);
        assert!((w1 - (1.0 - 0.1 * (g1 + 0.9 * g1))).abs() < 1e-6);
        // Decoupled: w = w (1 - lr wd) - lr buf, buf from the raw gradient.
        let (w1, _) = run(false, Decay::Decoupled);
        assert!((w1 - (1.0 * (1.0 - 0.1 * 0.01) - 0.1)).abs() < 1e-6);
    }

    #[test]
    fn schedules() {
        let step = LrSchedule::Step {
            every: 10,
            gamma: 0.5,
        };
        assert_eq!(step.lr_at(1.0, 9), 1.0);
        assert_eq!(step.lr_at(1.0, 10), 0.5);
        assert_eq!(step.lr_at(1.0, 25), 0.25);
        let cos = LrSchedule::Cosine {
            total: 100,
            warmup: 0,
        };
        assert_eq!(cos.lr_at(0.2, 0), 0.2);
        assert!((cos.lr_at(0.2, 50) - 0.1).abs() < 1e-6);
        assert!(cos.lr_at(0.2, 100).abs() < 1e-7);
        let warm = LrSchedule::Cosine {
            total: 100,
            warmup: 4,
        };
        assert!((warm.lr_at(0.2, 1) - 0.1).abs() < 1e-7);
        assert_eq!(warm.lr_at(0.2, 4), 0.2);
    }
}
