//! A dense row-major f32 matrix: the host-side tensor every engine takes and returns.

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::Shape(format!(
                "{rows}x{cols} matrix needs {} values, got {}",
                rows * cols,
                data.len()
            )));
        }
        Ok(Matrix { rows, cols, data })
    }

    pub fn zeros(rows: usize, cols: usize) -> Self {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f32) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                data.push(f(r, c));
            }
        }
        Matrix { rows, cols, data }
    }

    #[inline]
    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Rows `from..from + n`, copied.
    pub fn row_block(&self, from: usize, n: usize) -> Matrix {
        Matrix {
            rows: n,
            cols: self.cols,
            data: self.data[from * self.cols..(from + n) * self.cols].to_vec(),
        }
    }

    /// The transpose, copied in 32 x 32 blocks so both sides stay in cache; bands of output rows
    /// run on all threads when the matrix is large (training transposes activations of every
    /// layer for its weight gradient).
    pub fn transpose(&self) -> Matrix {
        use rayon::prelude::*;
        const B: usize = 32;
        let (rows, cols) = (self.rows, self.cols);
        let mut out = vec![0.0f32; rows * cols];
        if rows == 0 || cols == 0 {
            return Matrix {
                rows: cols,
                cols: rows,
                data: out,
            };
        }
        let src = &self.data;
        // One band = output rows c0..c0+B (input columns), all input rows in blocks of B.
        let band = |(bi, dst): (usize, &mut [f32])| {
            let c0 = bi * B;
            let width = dst.len() / rows;
            for r0 in (0..rows).step_by(B) {
                let h = B.min(rows - r0);
                transpose_kernel::block(src, cols, r0, c0, h, width, dst, rows);
            }
        };
        if rows * cols >= 1 << 16 {
            out.par_chunks_mut(B * rows).enumerate().for_each(band);
        } else {
            out.chunks_mut(B * rows).enumerate().for_each(band);
        }
        Matrix {
            rows: cols,
            cols: rows,
            data: out,
        }
    }

    /// The first NaN or infinity, reported as an error naming the tensor and the position.
    pub fn check_finite(&self, name: &str) -> Result<()> {
        if all_finite(&self.data) {
            return Ok(());
        }
        match self.data.iter().position(|v| !v.is_finite()) {
            None => Ok(()),
            Some(i) => Err(Error::NonFinite {
                tensor: name.to_string(),
                row: i / self.cols,
                col: i % self.cols,
                value: self.data[i],
            }),
        }
    }

    pub fn check_nonempty(&self, name: &str) -> Result<()> {
        if self.rows == 0 || self.cols == 0 {
            return Err(Error::Empty(format!(
                "{name} ({}x{})",
                self.rows, self.cols
            )));
        }
        Ok(())
    }
}

/// Whether every value is finite. A value is finite when its exponent bits are not all ones,
/// i.e. `bits & 0x7fff_ffff < 0x7f80_0000`; a max over blocks vectorizes, where an early-exit
/// `position` does not (the scan was 5 % of a CNN training step on the cpu engine).
pub fn all_finite(data: &[f32]) -> bool {
    data.chunks(4096).all(|block| {
        block
            .iter()
            .map(|v| v.to_bits() & 0x7fff_ffff)
            .max()
            .unwrap_or(0)
            < 0x7f80_0000
    })
}

/// A and B of C = A x B must agree on K and be non-empty.
pub fn check_gemm_shapes(a: &Matrix, b: &Matrix) -> Result<()> {
    a.check_nonempty("A")?;
    b.check_nonempty("B")?;
    if a.cols != b.rows {
        return Err(Error::Shape(format!(
            "A is {}x{} and B is {}x{}: A's columns must equal B's rows",
            a.rows, a.cols, b.rows, b.cols
        )));
    }
    Ok(())
}

/// One block of `Matrix::transpose`: `dst[dc * ldd + r0 + dr] = src[(r0 + dr) * lds + c0 + dc]`
/// for dr < h, dc < w. Full 8 x 8 sub-blocks go through AVX registers (8 loads, 24 shuffles,
/// 8 stores); the rest element by element.
mod transpose_kernel {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn block(
        src: &[f32],
        lds: usize,
        r0: usize,
        c0: usize,
        h: usize,
        w: usize,
        dst: &mut [f32],
        ldd: usize,
    ) {
        assert!(h == 0 || w == 0 || ((r0 + h - 1) * lds + c0 + w <= src.len()));
        assert!(h == 0 || w == 0 || ((w - 1) * ldd + r0 + h <= dst.len()));
        let (h8, w8) = (h / 8 * 8, w / 8 * 8);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            for dr in (0..h8).step_by(8) {
                for dc in (0..w8).step_by(8) {
                    // SAFETY: AVX detected; rows r0+dr..+8 and columns c0+dc..+8 of src, and
                    // rows dc..+8, columns r0+dr..+8 of dst, lie inside the asserted bounds.
                    unsafe {
                        x86::t8x8(
                            src.as_ptr().add((r0 + dr) * lds + c0 + dc),
                            lds,
                            dst.as_mut_ptr().add(dc * ldd + r0 + dr),
                            ldd,
                        )
                    };
                }
            }
        } else {
            scalar(src, lds, r0, c0, 0..h8, 0..w8, dst, ldd);
        }
        #[cfg(not(target_arch = "x86_64"))]
        scalar(src, lds, r0, c0, 0..h8, 0..w8, dst, ldd);
        // The right strip (all rows) and the bottom strip (the 8-aligned columns).
        scalar(src, lds, r0, c0, 0..h, w8..w, dst, ldd);
        scalar(src, lds, r0, c0, h8..h, 0..w8, dst, ldd);
    }

    #[allow(clippy::too_many_arguments)]
    fn scalar(
        src: &[f32],
        lds: usize,
        r0: usize,
        c0: usize,
        drs: std::ops::Range<usize>,
        dcs: std::ops::Range<usize>,
        dst: &mut [f32],
        ldd: usize,
    ) {
        for dc in dcs {
            for dr in drs.clone() {
                dst[dc * ldd + r0 + dr] = src[(r0 + dr) * lds + c0 + dc];
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use std::arch::x86_64::*;

        /// # Safety
        /// AVX present; 8 rows of 8 floats at `s` (stride `lds`) readable, at `d` (stride `ldd`)
        /// writable.
        #[target_feature(enable = "avx")]
        pub(super) unsafe fn t8x8(s: *const f32, lds: usize, d: *mut f32, ldd: usize) {
            // SAFETY: the caller guarantees the 8 x 8 blocks.
            unsafe {
                let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(s.add(i * lds)));
                let t0 = _mm256_unpacklo_ps(r[0], r[1]);
                let t1 = _mm256_unpackhi_ps(r[0], r[1]);
                let t2 = _mm256_unpacklo_ps(r[2], r[3]);
                let t3 = _mm256_unpackhi_ps(r[2], r[3]);
                let t4 = _mm256_unpacklo_ps(r[4], r[5]);
                let t5 = _mm256_unpackhi_ps(r[4], r[5]);
                let t6 = _mm256_unpacklo_ps(r[6], r[7]);
                let t7 = _mm256_unpackhi_ps(r[6], r[7]);
                let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
                let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
                let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
                let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
                let o = [
                    _mm256_permute2f128_ps::<0x20>(u0, u4),
                    _mm256_permute2f128_ps::<0x20>(u1, u5),
                    _mm256_permute2f128_ps::<0x20>(u2, u6),
                    _mm256_permute2f128_ps::<0x20>(u3, u7),
                    _mm256_permute2f128_ps::<0x31>(u0, u4),
                    _mm256_permute2f128_ps::<0x31>(u1, u5),
                    _mm256_permute2f128_ps::<0x31>(u2, u6),
                    _mm256_permute2f128_ps::<0x31>(u3, u7),
                ];
                for (i, v) in o.into_iter().enumerate() {
                    _mm256_storeu_ps(d.add(i * ldd), v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_the_definition_at_every_edge() {
        for (rows, cols) in [
            (0, 3),
            (1, 1),
            (7, 9),
            (8, 8),
            (17, 33),
            (40, 65),
            (300, 260),
        ] {
            let x = Matrix::from_fn(rows, cols, |r, c| (r * 1000 + c) as f32);
            let t = x.transpose();
            assert_eq!((t.rows, t.cols), (cols, rows));
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(t.at(c, r), x.at(r, c), "{rows}x{cols} at ({r}, {c})");
                }
            }
        }
    }
}
