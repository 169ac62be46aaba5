//! 2-D convolution over NCHW batches by im2col, so that all three products of training are
//! ordinary GEMMs through `Offload` with their usual roles:
//!
//! | product | GEMM | shape |
//! | --- | --- | --- |
//! | forward | Y = cols(X) W (`Forward`) | (N*OH*OW) x (C*KH*KW) times (C*KH*KW) x C_out |
//! | input gradient | dcols = dY W^T (`InputGrad`), then col2im | (N*OH*OW) x C_out times C_out x (C*KH*KW) |
//! | weight gradient | dW = cols(X)^T dY (`WeightGrad`) | (C*KH*KW) x (N*OH*OW) times (N*OH*OW) x C_out |
//!
//! A row of `cols` is one output position of one example (row `(b*OH + oy)*OW + ox`), a column
//! one input tap (column `(c*KH + ky)*KW + kx`). The quantization axes therefore follow the
//! same logic as for `Linear`: per input tap for X, per output channel for W, per output
//! position for dY in the weight gradient. im2col, col2im and the NCHW <-> position-major
//! reorderings run on the host, in parallel over the examples.

use super::nchw::Nchw;
use super::{GemmKind, Offload, Param};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::rng::SplitMix64;
use rayon::prelude::*;

/// Geometry of a convolution: kernel size, stride and zero padding (square).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    pub in_ch: usize,
    pub out_ch: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeometry {
    /// Output size along one axis for an input of `size`.
    pub fn out_size(&self, size: usize) -> Result<usize> {
        let padded = size + 2 * self.pad;
        if self.stride == 0 || padded < self.kernel {
            return Err(Error::Shape(format!(
                "a {k}x{k} kernel (stride {s}, padding {p}) does not fit an input of size {size}",
                k = self.kernel,
                s = self.stride,
                p = self.pad
            )));
        }
        Ok((padded - self.kernel) / self.stride + 1)
    }

    /// Taps per output value (the GEMMs' K): C * KH * KW.
    pub fn taps(&self) -> usize {
        self.in_ch * self.kernel * self.kernel
    }
}

/// What the forward pass keeps for the backward pass.
pub struct ConvCache {
    /// im2col of the input, (N*OH*OW) x taps.
    pub cols: Matrix,
    pub in_shape: (usize, usize, usize, usize),
    pub out_hw: (usize, usize),
}

pub struct Conv2d {
    pub geom: ConvGeometry,
    /// taps x C_out, so the forward GEMM needs no transpose (as `Linear`).
    pub weight: Param,
    pub bias: Param,
}

impl Conv2d {
    /// He-normal weights (std sqrt(2 / taps)), zero bias.
    pub fn new(name: &str, geom: ConvGeometry, rng: &mut SplitMix64) -> Self {
        let std = (2.0 / geom.taps() as f64).sqrt();
        Conv2d {
            geom,
            weight: Param::normal(
                &format!("{name}.weight"),
                geom.taps(),
                geom.out_ch,
                std,
                rng,
            ),
            bias: Param::new(&format!("{name}.bias"), Matrix::zeros(1, geom.out_ch)),
        }
    }

    pub fn forward(&self, ctx: &mut Offload, x: &Nchw) -> Result<(Nchw, ConvCache)> {
        if x.c != self.geom.in_ch {
            return Err(Error::Shape(format!(
                "{} expects {} input channels, got {}",
                self.weight.name, self.geom.in_ch, x.c
            )));
        }
        let (oh, ow) = (self.geom.out_size(x.h)?, self.geom.out_size(x.w)?);
        let cols = im2col(x, &self.geom, oh, ow);
        let y = ctx.gemm(&cols, &self.weight.value, GemmKind::Forward)?;
        let out = positions_to_nchw(&y, x.n, oh * ow, Some(&self.bias.value.data), oh, ow);
        let cache = ConvCache {
            cols,
            in_shape: (x.n, x.c, x.h, x.w),
            out_hw: (oh, ow),
        };
        Ok((out, cache))
    }

    /// Accumulates dW and db; returns dX when `need_dx`.
    pub fn backward(
        &mut self,
        ctx: &mut Offload,
        cache: &ConvCache,
        dy: &Nchw,
        need_dx: bool,
    ) -> Result<Option<Nchw>> {
        let dy_pos = nchw_to_positions(dy);
        let (dw, dcols) = if need_dx {
            let w_t = self.weight.value.transpose();
            let (dw, dcols) = ctx.gradients(&cache.cols, &dy_pos, &w_t)?;
            (dw, Some(dcols))
        } else {
            (
                ctx.gemm_at(&cache.cols, &dy_pos, GemmKind::WeightGrad)?,
                None,
            )
        };
        super::residual::add_into(&mut self.weight.grad, &dw);
        add_bias_grad(&mut self.bias.grad.data, &dy_pos);
        Ok(dcols.map(|d| col2im(&d, &self.geom, cache)))
    }

    /// The input gradient only (no weight-gradient GEMM), for per-example gradient norms.
    pub fn input_grad(
        &self,
        ctx: &mut Offload,
        cache: &ConvCache,
        dy_pos: &Matrix,
    ) -> Result<Nchw> {
        let dcols = ctx.gemm(dy_pos, &self.weight.value.transpose(), GemmKind::InputGrad)?;
        Ok(col2im(&dcols, &self.geom, cache))
    }

    pub fn params(&self) -> Vec<&Param> {
        vec![&self.weight, &self.bias]
    }

    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.weight, &mut self.bias]
    }
}

/// db += the sum of dY over every row (position).
pub fn add_bias_grad(db: &mut [f32], dy_rows: &Matrix) {
    for row in dy_rows.data.chunks(dy_rows.cols) {
        db.iter_mut().zip(row).for_each(|(g, d)| *g += d);
    }
}

/// im2col: one row per output position of each example, one column per input tap; taps in the
/// zero padding are 0.
pub fn im2col(x: &Nchw, g: &ConvGeometry, oh: usize, ow: usize) -> Matrix {
    let (k, s, p) = (g.kernel, g.stride, g.pad as isize);
    let taps = g.taps();
    let per_ex = oh * ow * taps;
    let mut data = vec![0.0f32; x.n * per_ex];
    data.par_chunks_mut(per_ex.max(1))
        .zip(x.data.par_chunks(x.per_example().max(1)))
        .for_each(|(out, img)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = &mut out[(oy * ow + ox) * taps..(oy * ow + ox + 1) * taps];
                    let (y0, x0) = ((oy * s) as isize - p, (ox * s) as isize - p);
                    for c in 0..x.c {
                        let plane = &img[c * x.h * x.w..(c + 1) * x.h * x.w];
                        for ky in 0..k {
                            let iy = y0 + ky as isize;
                            let dst = &mut row[(c * k + ky) * k..(c * k + ky + 1) * k];
                            if iy < 0 || iy >= x.h as isize {
                                continue; // stays zero
                            }
                            let src = &plane[iy as usize * x.w..(iy as usize + 1) * x.w];
                            if x0 >= 0 && x0 as usize + k <= x.w {
                                dst.copy_from_slice(&src[x0 as usize..x0 as usize + k]);
                            } else {
                                for (kx, d) in dst.iter_mut().enumerate() {
                                    let ix = x0 + kx as isize;
                                    if ix >= 0 && ix < x.w as isize {
                                        *d = src[ix as usize];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        });
    Matrix {
        rows: x.n * oh * ow,
        cols: taps,
        data,
    }
}

/// col2im: the adjoint of `im2col`, summing each tap's gradient back onto its input pixel.
pub fn col2im(dcols: &Matrix, g: &ConvGeometry, cache: &ConvCache) -> Nchw {
    let (n, c, h, w) = cache.in_shape;
    let (oh, ow) = cache.out_hw;
    let (k, s, p) = (g.kernel, g.stride, g.pad as isize);
    let taps = g.taps();
    let mut dx = Nchw::zeros(n, c, h, w);
    let per_ex = c * h * w;
    dx.data
        .par_chunks_mut(per_ex.max(1))
        .zip(dcols.data.par_chunks((oh * ow * taps).max(1)))
        .for_each(|(img, cols)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = &cols[(oy * ow + ox) * taps..(oy * ow + ox + 1) * taps];
                    let (y0, x0) = ((oy * s) as isize - p, (ox * s) as isize - p);
                    for ci in 0..c {
                        for ky in 0..k {
                            let iy = y0 + ky as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let src = &row[(ci * k + ky) * k..(ci * k + ky + 1) * k];
                            let base = ci * h * w + iy as usize * w;
                            if x0 >= 0 && x0 as usize + k <= w {
                                let dst = &mut img[base + x0 as usize..base + x0 as usize + k];
                                dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
                            } else {
                                for (kx, v) in src.iter().enumerate() {
                                    let ix = x0 + kx as isize;
                                    if ix >= 0 && ix < w as isize {
                                        img[base + ix as usize] += v;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        });
    dx
}

/// A position-major GEMM result ((N*P) x C, P = oh*ow) to NCHW, adding a per-channel bias.
pub fn positions_to_nchw(
    y: &Matrix,
    n: usize,
    positions: usize,
    bias: Option<&[f32]>,
    oh: usize,
    ow: usize,
) -> Nchw {
    let ch = y.cols;
    let mut out = Nchw::zeros(n, ch, oh, ow);
    out.data
        .par_chunks_mut((ch * positions).max(1))
        .zip(y.data.par_chunks((ch * positions).max(1)))
        .for_each(|(dst, src)| {
            for p in 0..positions {
                let row = &src[p * ch..(p + 1) * ch];
                for (c, &v) in row.iter().enumerate() {
                    dst[c * positions + p] = v + bias.map_or(0.0, |b| b[c]);
                }
            }
        });
    out
}

/// NCHW to position-major rows ((N*H*W) x C): the layout of the GEMMs' dY.
pub fn nchw_to_positions(x: &Nchw) -> Matrix {
    let positions = x.h * x.w;
    let ch = x.c;
    let mut data = vec![0.0f32; x.data.len()];
    data.par_chunks_mut((ch * positions).max(1))
        .zip(x.data.par_chunks((ch * positions).max(1)))
        .for_each(|(dst, src)| {
            for c in 0..ch {
                for p in 0..positions {
                    dst[p * ch + c] = src[c * positions + p];
                }
            }
        });
    Matrix {
        rows: x.n * positions,
        cols: ch,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ArrayShape, EngineKind};
    use crate::format::Format;
    use crate::nn::pool::MaxPool2d;

    fn cpu() -> Offload {
        Offload::new(Format::Fp32, EngineKind::Cpu, ArrayShape::default(), 7, 0).unwrap()
    }

    /// L = sum(r * pool(conv(x))) for fixed random r: its gradients by backward and by
    /// central differences, for weights, bias and input, with stride 2 and padding 1.
    #[test]
    fn conv_and_pool_gradients_match_finite_differences() {
        let mut rng = SplitMix64::new(11);
        let geom = ConvGeometry {
            in_ch: 2,
            out_ch: 3,
            kernel: 3,
            stride: 2,
            pad: 1,
        };
        let mut conv = Conv2d::new("c", geom, &mut rng);
        conv.bias
            .value
            .data
            .iter_mut()
            .for_each(|b| *b = rng.normal() as f32);
        let pool = MaxPool2d::new(2);
        let mut x = Nchw::zeros(2, 2, 9, 9);
        x.data.iter_mut().for_each(|v| *v = rng.normal() as f32);
        // 9x9, k3 s2 p1 -> 5x5 -> pool -> 2x2 (the odd row and column dropped).
        let r: Vec<f32> = (0..2 * 3 * 2 * 2).map(|_| rng.normal() as f32).collect();
        let loss = |conv: &Conv2d, x: &Nchw| -> f64 {
            let (y, _) = conv.forward(&mut cpu(), x).unwrap();
            let (p, _) = pool.forward(&y);
            p.data
                .iter()
                .zip(&r)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum()
        };
        let mut ctx = cpu();
        let (y, cache) = conv.forward(&mut ctx, &x).unwrap();
        assert_eq!((y.h, y.w), (5, 5));
        let (p, pc) = pool.forward(&y);
        let dp = Nchw {
            data: r.clone(),
            ..p
        };
        let dy = pool.backward(&pc, &dp);
        let dx = conv.backward(&mut ctx, &cache, &dy, true).unwrap().unwrap();
        let h = 1e-2f32;
        let close = |fd: f64, g: f64, what: &str| {
            assert!(
                (fd - g).abs() <= 1e-3 + 1e-2 * fd.abs().max(g.abs()),
                "{what}: {g} vs fd {fd}"
            );
        };
        for i in 0..conv.weight.len() {
            let mut c = Conv2d {
                geom,
                weight: conv.weight.clone(),
                bias: conv.bias.clone(),
            };
            c.weight.value.data[i] += h;
            let up = loss(&c, &x);
            c.weight.value.data[i] -= 2.0 * h;
            let down = loss(&c, &x);
            close(
                (up - down) / (2.0 * h as f64),
                conv.weight.grad.data[i] as f64,
                &format!("dW[{i}]"),
            );
        }
        for i in 0..3 {
            let mut c = Conv2d {
                geom,
                weight: conv.weight.clone(),
                bias: conv.bias.clone(),
            };
            c.bias.value.data[i] += h;
            let up = loss(&c, &x);
            c.bias.value.data[i] -= 2.0 * h;
            let down = loss(&c, &x);
            close(
                (up - down) / (2.0 * h as f64),
                conv.bias.grad.data[i] as f64,
                &format!("db[{i}]"),
            );
        }
        for i in (0..x.data.len()).step_by(3) {
            let mut xp = x.clone();
            xp.data[i] += h;
            let up = loss(&conv, &xp);
            xp.data[i] -= 2.0 * h;
            let down = loss(&conv, &xp);
            close(
                (up - down) / (2.0 * h as f64),
                dx.data[i] as f64,
                &format!("dx[{i}]"),
            );
        }
    }

    #[test]
    fn im2col_of_a_known_image() {
        // 1 channel 3x3, kernel 2, stride 1, padding 0: four windows.
        let x = Nchw {
            n: 1,
            c: 1,
            h: 3,
            w: 3,
            data: (1..=9).map(|v| v as f32).collect(),
        };
        let g = ConvGeometry {
            in_ch: 1,
            out_ch: 1,
            kernel: 2,
            stride: 1,
            pad: 0,
        };
        let cols = im2col(&x, &g, 2, 2);
        assert_eq!(
            cols.data,
            vec![1., 2., 4., 5., 2., 3., 5., 6., 4., 5., 7., 8., 5., 6., 8., 9.]
        );
        let cache = ConvCache {
            cols: cols.clone(),
            in_shape: (1, 1, 3, 3),
            out_hw: (2, 2),
        };
        let ones = Matrix {
            rows: 4,
            cols: 4,
            data: vec![1.0; 16],
        };
        // col2im of ones counts how many windows cover each pixel.
        assert_eq!(
            col2im(&ones, &g, &cache).data,
            vec![1., 2., 1., 2., 4., 2., 1., 2., 1.]
        );
        let bad = ConvGeometry { kernel: 5, ..g };
        assert!(bad
            .out_size(3)
            .unwrap_err()
            .to_string()
            .contains("does not fit"));
    }
}
