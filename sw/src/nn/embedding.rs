//! Token embedding: a row gather on the host (no GEMM), its gradient a scatter-add. Several
//! tokens per example are summed, as in the grokking MLP (E[x] + E[y]).

use super::Param;
use crate::matrix::Matrix;

pub struct Embedding {
    /// vocab x dim.
    pub table: Param,
}

impl Embedding {
    /// One output row per example: the sum of its tokens' embeddings.
    pub fn forward_sum(&self, tokens: &[Vec<usize>]) -> Matrix {
        let dim = self.table.value.cols;
        let mut out = Matrix::zeros(tokens.len(), dim);
        for (row, toks) in out.data.chunks_mut(dim).zip(tokens) {
            for &t in toks {
                row.iter_mut()
                    .zip(self.table.value.row(t))
                    .for_each(|(o, e)| *o += e);
            }
        }
        out
    }

    pub fn backward_sum(&mut self, tokens: &[Vec<usize>], dout: &Matrix) {
        let dim = self.table.value.cols;
        for (drow, toks) in dout.data.chunks(dim).zip(tokens) {
            for &t in toks {
                let g = &mut self.table.grad.data[t * dim..(t + 1) * dim];
                g.iter_mut().zip(drow).for_each(|(gi, d)| *gi += d);
            }
        }
    }
}

impl Embedding {
    /// One output row per token: `tokens.len() x dim`.
    pub fn forward_rows(&self, tokens: &[usize]) -> Matrix {
        let dim = self.table.value.cols;
        let mut out = Matrix::zeros(tokens.len(), dim);
        for (row, &t) in out.data.chunks_mut(dim).zip(tokens) {
            row.copy_from_slice(self.table.value.row(t));
        }
        out
    }

    /// Scatter-adds `dout` (one row per token) into the table's gradient.
    pub fn backward_rows(&mut self, tokens: &[usize], dout: &Matrix) {
        let dim = self.table.value.cols;
        for (drow, &t) in dout.data.chunks(dim).zip(tokens) {
            let g = &mut self.table.grad.data[t * dim..(t + 1) * dim];
            g.iter_mut().zip(drow).for_each(|(gi, d)| *gi += d);
        }
    }
}
