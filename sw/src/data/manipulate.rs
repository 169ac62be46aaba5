//! Local manipulations of 28x28 grey digits, for detection benchmarks: each changes one small
//! square region (side 8 to 12 pixels) centred on an inked pixel, so that it touches the
//! stroke. Every manipulation is a function of the image, a donor image (for the kinds that
//! take content from another digit) and a seed: the same inputs give the same bits.

use crate::error::{Error, Result};
use crate::rng::SplitMix64;

/// The kinds of local manipulation.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The region replaced by the same region of another digit.
    Splice,
    /// The region blurred (3 passes of a 3x3 box filter).
    Blur,
    /// The region warped by a smooth random displacement (up to 3 pixels, zero at its edge).
    Warp,
    /// The region alpha-blended (alpha 0.5) with the same region of another digit.
    Blend,
    /// The region erased and refilled by interpolating its border (bilinear in the edge values).
    Erase,
    /// The region's contrast changed: deviations from its mean scaled by 0.4 or 2.2.
    Contrast,
}

pub const ALL: [Kind; 6] = [
    Kind::Splice,
    Kind::Blur,
    Kind::Warp,
    Kind::Blend,
    Kind::Erase,
    Kind::Contrast,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Splice => "splice",
            Kind::Blur => "blur",
            Kind::Warp => "warp",
            Kind::Blend => "blend",
            Kind::Erase => "erase",
            Kind::Contrast => "contrast",
        }
    }

    /// Whether the kind takes content from a donor image.
    pub fn uses_donor(self) -> bool {
        matches!(self, Kind::Splice | Kind::Blend)
    }
}

/// A square region: top-left corner and side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub top: usize,
    pub left: usize,
    pub side: usize,
}

/// A region of side 8..=12 inside the image, centred on a pixel of ink > 0.3 (the image's
/// centre when it has none), drawn by `rng`.
pub fn region(img: &[f32], rows: usize, cols: usize, rng: &mut SplitMix64) -> Region {
    let side = (8 + rng.below(5) as usize).min(rows).min(cols);
    let inked: Vec<usize> = (0..rows * cols).filter(|&i| img[i] > 0.3).collect();
    let centre = if inked.is_empty() {
        (rows / 2) * cols + cols / 2
    } else {
        inked[rng.below(inked.len() as u64) as usize]
    };
    let (cy, cx) = (centre / cols, centre % cols);
    let clamp = |c: usize, n: usize| c.saturating_sub(side / 2).min(n - side);
    Region {
        top: clamp(cy, rows),
        left: clamp(cx, cols),
        side,
    }
}

/// `img` with one manipulation of `kind` (region and parameters drawn from `seed`); `donor`
/// is read by the kinds that use one.
pub fn apply(
    kind: Kind,
    img: &[f32],
    donor: &[f32],
    (rows, cols): (usize, usize),
    seed: u64,
) -> Result<Vec<f32>> {
    if img.len() != rows * cols || donor.len() != rows * cols {
        return Err(Error::Shape(format!(
            "manipulating {} and {} pixels as {rows}x{cols} images",
            img.len(),
            donor.len()
        )));
    }
    let mut rng = SplitMix64::new(seed);
    let r = region(img, rows, cols, &mut rng);
    let mut out = img.to_vec();
    let cells = || {
        (r.top..r.top + r.side).flat_map(move |y| (r.left..r.left + r.side).map(move |x| (y, x)))
    };
    match kind {
        Kind::Splice => cells().for_each(|(y, x)| out[y * cols + x] = donor[y * cols + x]),
        Kind::Blend => cells().for_each(|(y, x)| {
            let i = y * cols + x;
            out[i] = 0.5 * img[i] + 0.5 * donor[i];
        }),
        Kind::Blur => {
            for _ in 0..3 {
                let src = out.clone();
                for (y, x) in cells() {
                    let (mut s, mut n) = (0.0f32, 0.0f32);
                    for dy in -1i32..=1 {
                        for dx in -1i32..=1 {
                            let (yy, xx) = (y as i32 + dy, x as i32 + dx);
                            if yy >= 0 && xx >= 0 && (yy as usize) < rows && (xx as usize) < cols {
                                s += src[yy as usize * cols + xx as usize];
                                n += 1.0;
                            }
                        }
                    }
                    out[y * cols + x] = s / n;
                }
            }
        }
        Kind::Warp => {
            // A displacement of up to 3 pixels, a random direction, tapered to zero at the
            // region's edge by a sine bump; bilinear resampling of the original.
            let angle = rng.uniform() * std::f64::consts::TAU;
            let amp = 2.0 + rng.uniform();
            let swirl = rng.uniform() < 0.5;
            let s = r.side as f64;
            for (y, x) in cells() {
                let (u, v) = ((y - r.top) as f64 + 0.5, (x - r.left) as f64 + 0.5);
                let bump =
                    (std::f64::consts::PI * u / s).sin() * (std::f64::consts::PI * v / s).sin();
                let (mut dy, mut dx) = (amp * bump * angle.sin(), amp * bump * angle.cos());
                if swirl {
                    // Rotate the displacement with the position: a local twist.
                    let (cu, cv) = (u - s / 2.0, v - s / 2.0);
                    let norm = (cu * cu + cv * cv).sqrt().max(1e-9);
                    (dy, dx) = (amp * bump * cv / norm, -amp * bump * cu / norm);
                }
                out[y * cols + x] = bilinear(img, rows, cols, y as f64 + dy, x as f64 + dx);
            }
        }
        Kind::Erase => {
            // Bilinear in the values just outside the region (its edge when at the border).
            let (t, l, sd) = (r.top, r.left, r.side);
            let at = |y: usize, x: usize| img[y * cols + x];
            let above = t.saturating_sub(1);
            let below = (t + sd).min(rows - 1);
            let leftc = l.saturating_sub(1);
            let rightc = (l + sd).min(cols - 1);
            for (y, x) in cells() {
                let fy = (y - t + 1) as f32 / (sd + 1) as f32;
                let fx = (x - l + 1) as f32 / (sd + 1) as f32;
                let vert = (1.0 - fy) * at(above, x) + fy * at(below, x);
                let horiz = (1.0 - fx) * at(y, leftc) + fx * at(y, rightc);
                out[y * cols + x] = 0.5 * (vert + horiz);
            }
        }
        Kind::Contrast => {
            let factor = if rng.uniform() < 0.5 { 0.4 } else { 2.2 };
            let n = (r.side * r.side) as f32;
            let mean = cells().map(|(y, x)| img[y * cols + x]).sum::<f32>() / n;
            cells().for_each(|(y, x)| {
                let i = y * cols + x;
                out[i] = (mean + factor * (img[i] - mean)).clamp(0.0, 1.0);
            });
        }
    }
    Ok(out)
}

/// `img` at (y, x) by bilinear interpolation, 0 outside.
fn bilinear(img: &[f32], rows: usize, cols: usize, y: f64, x: f64) -> f32 {
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = ((y - y0) as f32, (x - x0) as f32);
    let px = |yy: f64, xx: f64| {
        if yy < 0.0 || xx < 0.0 || yy >= rows as f64 || xx >= cols as f64 {
            0.0
        } else {
            img[yy as usize * cols + xx as usize]
        }
    };
    (1.0 - fy) * ((1.0 - fx) * px(y0, x0) + fx * px(y0, x0 + 1.0))
        + fy * ((1.0 - fx) * px(y0 + 1.0, x0) + fx * px(y0 + 1.0, x0 + 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::mnist::standard_split;

    /// Every kind is deterministic, changes the image, and only inside one square of side
    /// at most 12; seeds differ.
    #[test]
    fn manipulations_are_local_deterministic_and_visible() {
        let test = standard_split(None).unwrap().test;
        for kind in ALL {
            let mut changed = 0;
            for i in 0..20 {
                let (img, donor) = (test.image(i), test.image(i + 20));
                let seed = 1000 + i as u64;
                let a = apply(kind, img, donor, (28, 28), seed).unwrap();
                assert_eq!(a, apply(kind, img, donor, (28, 28), seed).unwrap());
                let diff: Vec<usize> = (0..784).filter(|&p| a[p] != img[p]).collect();
                if diff.is_empty() {
                    continue;
                }
                changed += 1;
                let (ys, xs): (Vec<usize>, Vec<usize>) =
                    diff.iter().map(|p| (p / 28, p % 28)).unzip();
                let span = |v: &[usize]| v.iter().max().unwrap() - v.iter().min().unwrap() + 1;
                assert!(span(&ys) <= 12 && span(&xs) <= 12, "{kind:?} image {i}");
                assert!(a.iter().all(|v| (0.0..=1.0).contains(v)), "{kind:?}");
            }
            assert!(
                changed >= 18,
                "{kind:?} changed only {changed} of 20 images"
            );
            let other = apply(kind, test.image(0), test.image(20), (28, 28), 7).unwrap();
            let again = apply(kind, test.image(0), test.image(20), (28, 28), 8).unwrap();
            assert_ne!(other, again, "{kind:?}: seeds 7 and 8 agree");
        }
        assert!(apply(Kind::Blur, &[0.0; 10], &[0.0; 784], (28, 28), 0).is_err());
    }
}
