//! Captions for the training digits: a small word vocabulary, several templates per class, and
//! three attributes read off each image (ink mass, slant, height), so that the text is more than
//! a class id ("a small thick seven slanted right"). Each attribute is relative: its thresholds
//! are the terciles of the caption set's own values (ink mass per class, since a one has less
//! ink than an eight however it is written), and the middle third is left unsaid.

use crate::data::mnist::Mnist;
use crate::rng::SplitMix64;

pub const PAD: usize = 0;
pub const BOS: usize = 1;
pub const UNK: usize = 2;
/// Not 2, so that transformers pools at the first EOS (its legacy rule for id 2 is the argmax
/// of the ids).
pub const EOS: usize = 3;

const SPECIAL: [&str; 4] = ["<pad>", "<bos>", "<unk>", "<eos>"];
pub const DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const WORDS: [&str; 16] = [
    "a",
    "the",
    "photo",
    "of",
    "digit",
    "number",
    "handwritten",
    "written",
    "thin",
    "thick",
    "small",
    "large",
    "upright",
    "slanted",
    "left",
    "right",
];

/// Tokens per caption: BOS, at most seven words, EOS, padding.
pub const CONTEXT: usize = 10;

/// The vocabulary, id order: the special tokens, the digits, the other words.
pub fn vocabulary() -> Vec<&'static str> {
    SPECIAL
        .iter()
        .chain(&DIGITS)
        .chain(&WORDS)
        .copied()
        .collect()
}

/// `[BOS] words [EOS] [PAD]...` padded to `CONTEXT` (unknown words become `<unk>`).
pub fn tokenize(text: &str) -> Vec<usize> {
    let vocab = vocabulary();
    let mut ids = vec![BOS];
    ids.extend(
        text.split_whitespace()
            .map(|w| vocab.iter().position(|v| *v == w).unwrap_or(UNK)),
    );
    ids.truncate(CONTEXT - 1);
    ids.push(EOS);
    ids.resize(CONTEXT, PAD);
    ids
}

/// An image's raw attribute values: ink mass, slant (dx/dy of the ink's principal axis,
/// positive when the top leans right) and height of the inked rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measures {
    pub ink: f64,
    pub slant: f64,
    pub height: f64,
}

pub fn measure(pixels: &[f32], rows: usize, cols: usize) -> Measures {
    let (mut m, mut sx, mut sy) = (0.0f64, 0.0f64, 0.0f64);
    let (mut top, mut bottom) = (rows, 0usize);
    for r in 0..rows {
        for c in 0..cols {
            let v = f64::from(pixels[r * cols + c]);
            m += v;
            sx += v * c as f64;
            sy += v * r as f64;
            if v > 0.2 {
                top = top.min(r);
                bottom = bottom.max(r);
            }
        }
    }
    if m == 0.0 {
        return Measures {
            ink: 0.0,
            slant: 0.0,
            height: 0.0,
        };
    }
    let (mx, my) = (sx / m, sy / m);
    let (mut cxy, mut cyy) = (0.0f64, 0.0f64);
    for r in 0..rows {
        for c in 0..cols {
            let v = f64::from(pixels[r * cols + c]);
            cxy += v * (c as f64 - mx) * (r as f64 - my);
            cyy += v * (r as f64 - my) * (r as f64 - my);
        }
    }
    Measures {
        ink: m,
        // y grows downwards: a right lean has x falling as y grows.
        slant: if cyy > 0.0 { -cxy / cyy } else { 0.0 },
        height: if bottom >= top {
            (bottom - top + 1) as f64
        } else {
            0.0
        },
    }
}

/// Lower and upper terciles.
fn terciles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(1.0 / 3.0), at(2.0 / 3.0))
}

/// The attribute thresholds of a caption set.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Thresholds {
    /// Per class.
    pub ink: Vec<(f64, f64)>,
    pub slant: (f64, f64),
    pub height: (f64, f64),
}

/// Attribute words of one image (`None`: the middle third, left unsaid).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attributes {
    pub thickness: Option<&'static str>,
    pub slant: &'static str,
    pub size: Option<&'static str>,
}

pub struct Captioner {
    pub thresholds: Thresholds,
    /// Attributes of every image of the set it was built on.
    pub attributes: Vec<Attributes>,
}

fn third(v: f64, (lo, hi): (f64, f64)) -> i8 {
    if v < lo {
        -1
    } else if v > hi {
        1
    } else {
        0
    }
}

impl Captioner {
    pub fn new(set: &Mnist) -> Self {
        let ms: Vec<Measures> = (0..set.len())
            .map(|i| measure(set.image(i), set.rows, set.cols))
            .collect();
        let ink = (0..10)
            .map(|c| {
                let mut v: Vec<f64> = ms
                    .iter()
                    .zip(&set.labels)
                    .filter(|(_, &l)| usize::from(l) == c)
                    .map(|(m, _)| m.ink)
                    .collect();
                if v.is_empty() {
                    (0.0, 0.0)
                } else {
                    terciles(&mut v)
                }
            })
            .collect();
        let thresholds = Thresholds {
            ink,
            slant: terciles(&mut ms.iter().map(|m| m.slant).collect::<Vec<_>>()),
            height: terciles(&mut ms.iter().map(|m| m.height).collect::<Vec<_>>()),
        };
        let attributes = ms
            .iter()
            .zip(&set.labels)
            .map(|(m, &l)| Attributes {
                thickness: match third(m.ink, thresholds.ink[usize::from(l)]) {
                    -1 => Some("thin"),
                    1 => Some("thick"),
                    _ => None,
                },
                slant: match third(m.slant, thresholds.slant) {
                    -1 => "slanted left",
                    1 => "slanted right",
                    _ => "upright",
                },
                size: match third(m.height, thresholds.height) {
                    -1 => Some("small"),
                    1 => Some("large"),
                    _ => None,
                },
            })
            .collect();
        Captioner {
            thresholds,
            attributes,
        }
    }

    /// A caption of image `i` (class `label`) from one of `TEMPLATES` templates drawn by `rng`.
    pub fn caption(&self, i: usize, label: usize, rng: &mut SplitMix64) -> String {
        caption(
            label,
            &self.attributes[i],
            rng.below(TEMPLATES as u64) as usize,
        )
    }
}

/// How many caption templates there are.
pub const TEMPLATES: usize = 6;

/// Caption template `t` for a digit of class `label` with attributes `a`.
pub fn caption(label: usize, a: &Attributes, t: usize) -> String {
    let d = DIGITS[label];
    let opt = |w: Option<&str>| w.map(|w| format!("{w} ")).unwrap_or_default();
    match t % TEMPLATES {
        0 => format!("a photo of the digit {d}"),
        1 => format!("a {}handwritten {d}", opt(a.thickness)),
        2 => format!("the number {d} written {}", a.slant),
        3 => format!("a {}{}{d}", opt(a.size), opt(a.thickness)),
        4 => format!("a {}{d} {}", opt(a.size), a.slant),
        _ => format!("{}digit {d}", opt(a.thickness)),
    }
}

/// The zero-shot prompts of a class (their normalized embeddings are averaged, CLIP's prompt
/// ensembling); none names an attribute.
pub fn class_prompts(label: usize) -> Vec<String> {
    let d = DIGITS[label];
    vec![
        format!("a photo of the digit {d}"),
        format!("a handwritten {d}"),
        format!("the number {d}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_tokenize_within_the_vocabulary_and_context() {
        let a = Attributes {
            thickness: Some("thick"),
            slant: "slanted right",
            size: Some("small"),
        };
        for label in 0..10 {
            for t in 0..TEMPLATES {
                let text = caption(label, &a, t);
                let ids = tokenize(&text);
                assert_eq!(ids.len(), CONTEXT);
                assert!(!ids.contains(&UNK), "{text}");
                assert_eq!(ids.iter().filter(|&&i| i == EOS).count(), 1, "{text}");
                assert!(ids.contains(&(SPECIAL.len() + label)), "{text}");
            }
        }
        assert_eq!(tokenize("a seven")[..4], [BOS, 14, 11, EOS]);
    }

    #[test]
    fn attributes_follow_the_image() {
        // A vertical bar leaning right (top right, bottom left), and an upright one.
        let (rows, cols) = (28, 28);
        let bar = |lean: i32, width: i32| {
            let mut p = vec![0.0f32; rows * cols];
            for r in 4..24i32 {
                let c0 = 14 + lean * (14 - r) / 10;
                for c in c0..c0 + width {
                    p[r as usize * cols + c as usize] = 1.0;
                }
            }
            p
        };
        let right = measure(&bar(3, 2), rows, cols);
        let upright = measure(&bar(0, 2), rows, cols);
        let thick = measure(&bar(0, 4), rows, cols);
        assert!(right.slant > 0.2 && upright.slant.abs() < 1e-9, "{right:?}");
        assert!(thick.ink > 1.9 * upright.ink);
        assert_eq!(upright.height, 20.0);
    }
}
