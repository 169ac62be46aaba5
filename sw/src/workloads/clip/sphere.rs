//! The detector's features on the unit sphere, seen in a plane (for `sphere-<arm>.png`): the
//! head's fake-minus-real direction against the first principal axis orthogonal to it (or a
//! plain PCA), and how far apart the reals' and the fakes' centroids lie in that plane.

use crate::matrix::Matrix;

/// Rows of `x` projected on two axes (centred): `first` (normalized) if given, else the first
/// principal axis; then the principal axis orthogonal to the first. Power iteration with
/// deflation on the d x d covariance, from a fixed start, so the same features give the same
/// bits.
pub fn project(x: &Matrix, first: Option<&[f64]>) -> Vec<(f32, f32)> {
    let (n, d) = (x.rows, x.cols);
    if n == 0 || d == 0 {
        return Vec::new();
    }
    let mut mean = vec![0.0f64; d];
    for r in 0..n {
        x.row(r)
            .iter()
            .zip(&mut mean)
            .for_each(|(&v, m)| *m += f64::from(v));
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut cov = vec![0.0f64; d * d];
    for r in 0..n {
        let c: Vec<f64> = x
            .row(r)
            .iter()
            .zip(&mean)
            .map(|(&v, m)| f64::from(v) - m)
            .collect();
        for i in 0..d {
            for j in 0..d {
                cov[i * d + j] += c[i] * c[j];
            }
        }
    }
    let mut axes: Vec<Vec<f64>> = Vec::new();
    if let Some(f) = first.filter(|f| f.len() == d) {
        let norm = f.iter().map(|p| p * p).sum::<f64>().sqrt();
        if norm > 0.0 {
            axes.push(f.iter().map(|p| p / norm).collect());
        }
    }
    for a in axes.len()..2.min(d) {
        let mut v: Vec<f64> = (0..d).map(|i| 1.0 + ((i * 7 + a * 3) % 5) as f64).collect();
        for _ in 0..300 {
            let mut w: Vec<f64> = (0..d)
                .map(|i| (0..d).map(|j| cov[i * d + j] * v[j]).sum())
                .collect();
            for u in &axes {
                let dot: f64 = w.iter().zip(u).map(|(p, q)| p * q).sum();
                w.iter_mut().zip(u).for_each(|(p, q)| *p -= dot * q);
            }
            let norm = w.iter().map(|p| p * p).sum::<f64>().sqrt();
            if norm < 1e-300 {
                break;
            }
            v = w.iter().map(|p| p / norm).collect();
        }
        axes.push(v);
    }
    (0..n)
        .map(|r| {
            let p = |k: usize| -> f32 {
                axes.get(k).map_or(0.0, |u| {
                    x.row(r)
                        .iter()
                        .zip(&mean)
                        .zip(u)
                        .map(|((&v, m), q)| (f64::from(v) - m) * q)
                        .sum::<f64>() as f32
                })
            };
            (p(0), p(1))
        })
        .collect()
}

/// Distance between the centroid of the label-0 points and that of the others.
pub fn separation(points: &[(f32, f32)], labels: &[usize]) -> f64 {
    let centroid = |fake: bool| {
        let (mut sx, mut sy, mut n) = (0.0f64, 0.0f64, 0usize);
        for (p, &l) in points.iter().zip(labels) {
            if (l != 0) == fake {
                sx += f64::from(p.0);
                sy += f64::from(p.1);
                n += 1;
            }
        }
        let n = n.max(1) as f64;
        (sx / n, sy / n)
    };
    let (a, b) = (centroid(false), centroid(true));
    ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_axis_is_the_direction_of_largest_spread() {
        // Points along (3, 4, 0)/5 with a small spread in z: PC 1 recovers the line's
        // coordinate (up to sign), PC 2 the z spread.
        let mut data = Vec::new();
        for i in 0..20 {
            let t = i as f32 - 9.5;
            // Signs + - - + per block of four: uncorrelated with t, mean 0.
            let z = if i % 4 == 0 || i % 4 == 3 { 0.1 } else { -0.1 };
            data.extend([0.6 * t, 0.8 * t, z]);
        }
        let x = Matrix::new(20, 3, data).unwrap();
        let p = project(&x, None);
        for (i, q) in p.iter().enumerate() {
            let t = i as f32 - 9.5;
            assert!((q.0.abs() - t.abs()).abs() < 1e-4, "{i}: {q:?}");
            assert!((q.1.abs() - 0.1).abs() < 1e-4, "{i}: {q:?}");
        }
        let labels: Vec<usize> = (0..20).map(|i| usize::from(i >= 10)).collect();
        assert!((separation(&p, &labels) - 10.0).abs() < 1e-3);
        // A given first axis (z, unnormalized) comes first; the second is the line.
        let q = project(&x, Some(&[0.0, 0.0, 2.0]));
        for (i, q) in q.iter().enumerate() {
            let t = i as f32 - 9.5;
            assert!((q.0.abs() - 0.1).abs() < 1e-4, "{i}: {q:?}");
            assert!((q.1.abs() - t.abs()).abs() < 1e-4, "{i}: {q:?}");
        }
    }
}
