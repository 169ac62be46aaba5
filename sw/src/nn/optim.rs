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

/// SGD with momentum (and optional L2 weight decay), as `torch.optim.SGD`.
pub struct SgdMomentum {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    buf: Vec<Vec<f32>>,
}

impl SgdMomentum {
    pub fn new(lr: f32, momentum: f32, weight_decay: f32) -> Self {
        SgdMomentum {
            lr,
            momentum,
            weight_decay,
            buf: Vec::new(),
        }
    }

    pub fn step(&mut self, params: &mut [&mut Param]) {
        if self.buf.is_empty() {
            self.buf = params.iter().map(|p| vec![0.0; p.len()]).collect();
        }
        for (p, buf) in params.iter_mut().zip(&mut self.buf) {
            for ((w, &g), b) in p
                .value
                .data
                .iter_mut()
                .zip(&p.grad.data)
                .zip(buf.iter_mut())
            {
                let g = g + self.weight_decay * *w;
                *b = self.momentum * *b + g;
                *w -= self.lr * *b;
            }
            p.apply_mask();
        }
    }
}
