//! A batch of feature maps in NCHW order (example, channel, row, column), row-major: the layout
//! the convolution and pooling layers take and return. `flatten` is free: an NCHW batch is
//! already an `n x (c*h*w)` matrix.

use crate::matrix::Matrix;

#[derive(Clone, Debug, PartialEq)]
pub struct Nchw {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Nchw {
    pub fn zeros(n: usize, c: usize, h: usize, w: usize) -> Self {
        Nchw {
            n,
            c,
            h,
            w,
            data: vec![0.0; n * c * h * w],
        }
    }

    /// Values per example (c * h * w).
    pub fn per_example(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Flatten: the batch as an `n x (c*h*w)` matrix (channel-major per example, as
    /// `torch.flatten(x, 1)`), without copying.
    pub fn flatten(self) -> Matrix {
        let cols = self.per_example();
        Matrix {
            rows: self.n,
            cols,
            data: self.data,
        }
    }

    /// The inverse of `flatten`: `m`'s rows as examples of shape `c x h x w`.
    pub fn unflatten(m: Matrix, c: usize, h: usize, w: usize) -> Self {
        assert_eq!(
            m.cols,
            c * h * w,
            "unflatten: {} columns for {c}x{h}x{w}",
            m.cols
        );
        Nchw {
            n: m.rows,
            c,
            h,
            w,
            data: m.data,
        }
    }
}
