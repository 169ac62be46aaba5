//! Residual connections: y = a + b element-wise. The backward pass is the identity into both
//! branches (dL/da = dL/db = dL/dy), so callers add the branch gradients with `add` as well.

use crate::matrix::Matrix;

pub fn add(a: &Matrix, b: &Matrix) -> Matrix {
    Matrix {
        rows: a.rows,
        cols: a.cols,
        data: a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect(),
    }
}

/// acc += x, element-wise.
pub fn add_into(acc: &mut Matrix, x: &Matrix) {
    acc.data.iter_mut().zip(&x.data).for_each(|(a, b)| *a += b);
}
