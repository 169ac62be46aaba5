//! Max pooling over NCHW batches (square window, stride = window, no padding; rows and columns
//! that do not fill a window are dropped, as PyTorch's default `floor` mode).

use super::nchw::Nchw;
use rayon::prelude::*;

pub struct MaxPool2d {
    pub size: usize,
}

/// For each output value, the index (within its example) of the input that won.
pub struct PoolCache {
    argmax: Vec<u32>,
    in_shape: (usize, usize, usize, usize),
}

impl MaxPool2d {
    pub fn new(size: usize) -> Self {
        assert!(size > 0, "pool size 0");
        MaxPool2d { size }
    }

    pub fn forward(&self, x: &Nchw) -> (Nchw, PoolCache) {
        let s = self.size;
        let (oh, ow) = (x.h / s, x.w / s);
        let mut out = Nchw::zeros(x.n, x.c, oh, ow);
        let mut argmax = vec![0u32; out.data.len()];
        let per_out = x.c * oh * ow;
        out.data
            .par_chunks_mut(per_out.max(1))
            .zip(argmax.par_chunks_mut(per_out.max(1)))
            .zip(x.data.par_chunks(x.per_example().max(1)))
            .for_each(|((o, am), img)| {
                for c in 0..x.c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut best = (f32::NEG_INFINITY, 0usize);
                            for dy in 0..s {
                                let base = c * x.h * x.w + (oy * s + dy) * x.w + ox * s;
                                for (dx, &v) in img[base..base + s].iter().enumerate() {
                                    // `>` keeps the first maximum, as PyTorch does.
                                    if v > best.0 {
                                        best = (v, base + dx);
                                    }
                                }
                            }
                            let i = (c * oh + oy) * ow + ox;
                            o[i] = best.0;
                            am[i] = best.1 as u32;
                        }
                    }
                }
            });
        (
            out,
            PoolCache {
                argmax,
                in_shape: (x.n, x.c, x.h, x.w),
            },
        )
    }

    /// dX: each output gradient goes to the input that won its window.
    pub fn backward(&self, cache: &PoolCache, dy: &Nchw) -> Nchw {
        let (n, c, h, w) = cache.in_shape;
        let mut dx = Nchw::zeros(n, c, h, w);
        let per_out = dy.per_example();
        dx.data
            .par_chunks_mut((c * h * w).max(1))
            .zip(dy.data.par_chunks(per_out.max(1)))
            .zip(cache.argmax.par_chunks(per_out.max(1)))
            .for_each(|((d, g), am)| {
                for (&gi, &at) in g.iter().zip(am) {
                    d[at as usize] += gi;
                }
            });
        dx
    }
}
