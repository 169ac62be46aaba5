//! The Vision Transformer's input: patch embedding (a convolution whose stride equals its kernel,
//! i.e. a reshape of the image into patches plus one GEMM), a class token in front of each
//! image's patches, and learned position embeddings added to every token.

use super::linear::Linear;
use super::{Offload, Param};
use crate::error::{Error, Result};
use crate::matrix::Matrix;

/// Images as N x C x H x W f32 (C order), as `pixel_values`.
pub struct Images<'a> {
    pub data: &'a [f32],
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

pub struct PatchEmbedding {
    /// (C * p * p) x d: the convolution's d x C x p x p kernel, flattened and transposed.
    pub proj: Linear,
    pub patch: usize,
}

impl PatchEmbedding {
    /// The patches of every image as rows, `(N * patches) x (C * p * p)`: row
    /// `i * patches + py * (W / p) + px`, column `c * p * p + ky * p + kx` (the order of the
    /// convolution's flattened kernel and of its flattened output).
    pub fn patches(&self, img: &Images) -> Result<Matrix> {
        let p = self.patch;
        if !img.height.is_multiple_of(p) || !img.width.is_multiple_of(p) {
            return Err(Error::Shape(format!(
                "images of {}x{} pixels do not split into {p}x{p} patches",
                img.height, img.width
            )));
        }
        let (gh, gw) = (img.height / p, img.width / p);
        let cols = img.channels * p * p;
        let mut out = Matrix::zeros(img.n * gh * gw, cols);
        let plane = img.height * img.width;
        for i in 0..img.n {
            for py in 0..gh {
                for px in 0..gw {
                    let row = &mut out.data[((i * gh + py) * gw + px) * cols..][..cols];
                    for c in 0..img.channels {
                        let base = (i * img.channels + c) * plane;
                        for ky in 0..p {
                            let src = base + (py * p + ky) * img.width + px * p;
                            row[(c * p + ky) * p..(c * p + ky + 1) * p]
                                .copy_from_slice(&img.data[src..src + p]);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Patch embeddings `(N * patches) x d` and the patch rows (for `backward`).
    pub fn forward(&self, ctx: &mut Offload, img: &Images) -> Result<(Matrix, Matrix)> {
        let patches = self.patches(img)?;
        if patches.cols != self.proj.weight.value.rows {
            return Err(Error::Shape(format!(
                "patches of {} values (channels {} x {}x{}) against a patch kernel of {}",
                patches.cols, img.channels, self.patch, self.patch, self.proj.weight.value.rows
            )));
        }
        Ok((self.proj.forward(ctx, &patches)?, patches))
    }

    /// Accumulates the kernel's gradient (the pixels need none).
    pub fn backward(&mut self, ctx: &mut Offload, patches: &Matrix, dy: &Matrix) -> Result<()> {
        self.proj.backward(ctx, patches, dy, false)?;
        Ok(())
    }
}

/// The class token and the position embeddings.
pub struct TokenEmbeddings {
    /// 1 x d.
    pub class: Param,
    /// (1 + patches) x d.
    pub position: Param,
}

impl TokenEmbeddings {
    pub fn tokens(&self) -> usize {
        self.position.value.rows
    }

    /// `(N * patches) x d` patch embeddings -> `(N * T) x d` tokens, T = 1 + patches: per image
    /// the class token, then its patches, each plus its position embedding.
    pub fn forward(&self, patches: &Matrix) -> Result<Matrix> {
        let (t, d) = (self.tokens(), self.position.value.cols);
        if t < 2 || patches.cols != d || !patches.rows.is_multiple_of(t - 1) {
            return Err(Error::Shape(format!(
                "{} patch embeddings of width {} against {} position embeddings of width {d}",
                patches.rows, patches.cols, t
            )));
        }
        let n = patches.rows / (t - 1);
        let pos = &self.position.value;
        let mut x = Matrix::zeros(n * t, d);
        for i in 0..n {
            for j in 0..t {
                let src = if j == 0 {
                    self.class.value.row(0)
                } else {
                    patches.row(i * (t - 1) + j - 1)
                };
                let dst = &mut x.data[(i * t + j) * d..(i * t + j + 1) * d];
                for ((o, s), p) in dst.iter_mut().zip(src).zip(pos.row(j)) {
                    *o = s + p;
                }
            }
        }
        Ok(x)
    }

    /// Accumulates the class and position gradients; returns dL/d(patch embeddings).
    pub fn backward(&mut self, dx: &Matrix) -> Matrix {
        let (t, d) = (self.tokens(), self.position.value.cols);
        let n = dx.rows / t;
        let mut dpatch = Matrix::zeros(n * (t - 1), d);
        for i in 0..n {
            for j in 0..t {
                let g = dx.row(i * t + j);
                let dp = &mut self.position.grad.data[j * d..(j + 1) * d];
                dp.iter_mut().zip(g).for_each(|(a, b)| *a += b);
                if j == 0 {
                    let dc = &mut self.class.grad.data;
                    dc.iter_mut().zip(g).for_each(|(a, b)| *a += b);
                } else {
                    dpatch.data[(i * (t - 1) + j - 1) * d..][..d].copy_from_slice(g);
                }
            }
        }
        dpatch
    }
}
