//! The MNIST-family image sets: the shipped MNIST test set (`data/mnist/`, embedded in the
//! binary so it runs without the source tree), any IDX directory (`--data-dir`), and the one
//! train/test split every workload uses.

use super::idx;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const CLASSES: usize = 10;
const SHIPPED_IMAGES: &[u8] = include_bytes!("../../../data/mnist/t10k-images-idx3-ubyte.gz");
const SHIPPED_LABELS: &[u8] = include_bytes!("../../../data/mnist/t10k-labels-idx1-ubyte.gz");

/// Images with their labels and their positions in the IDX file they came from.
#[derive(Clone, Debug)]
pub struct Mnist {
    pub rows: usize,
    pub cols: usize,
    /// `len() * rows * cols` pixels scaled to [0, 1], image after image.
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    /// Index of each image in its IDX file (kept through splits and subsets).
    pub index: Vec<usize>,
}

impl Mnist {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn pixels_per_image(&self) -> usize {
        self.rows * self.cols
    }

    pub fn image(&self, i: usize) -> &[f32] {
        let p = self.pixels_per_image();
        &self.images[i * p..(i + 1) * p]
    }

    /// The examples at `ids` (positions in this set), in that order.
    pub fn select(&self, ids: &[usize]) -> Mnist {
        let mut images = Vec::with_capacity(ids.len() * self.pixels_per_image());
        ids.iter()
            .for_each(|&i| images.extend_from_slice(self.image(i)));
        Mnist {
            rows: self.rows,
            cols: self.cols,
            images,
            labels: ids.iter().map(|&i| self.labels[i]).collect(),
            index: ids.iter().map(|&i| self.index[i]).collect(),
        }
    }

    fn from_idx(
        img: idx::IdxImages,
        labels: Vec<u8>,
        img_path: &Path,
        lbl_path: &Path,
    ) -> Result<Self> {
        if labels.len() != img.n {
            return Err(Error::file(
                lbl_path,
                format!(
                    "{} labels for the {} images of {}: the files do not belong together",
                    labels.len(),
                    img.n,
                    img_path.display()
                ),
            ));
        }
        Ok(Mnist {
            rows: img.rows,
            cols: img.cols,
            images: img.pixels.iter().map(|&p| p as f32 / 255.0).collect(),
            labels,
            index: (0..img.n).collect(),
        })
    }
}

/// The repository's `data/mnist` directory (tests and docs; the binary uses the embedded copy).
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("mnist")
}

/// The shipped MNIST test set (10,000 images), decoded from the copy inside the binary.
pub fn shipped_test_set() -> Result<Mnist> {
    let (ip, lp) = (
        Path::new("<embedded>/t10k-images-idx3-ubyte.gz"),
        Path::new("<embedded>/t10k-labels-idx1-ubyte.gz"),
    );
    let img = idx::parse_images(&idx::decode(SHIPPED_IMAGES, ip)?, ip)?;
    let lbl = idx::parse_labels(&idx::decode(SHIPPED_LABELS, lp)?, lp, CLASSES)?;
    Mnist::from_idx(img, lbl, ip, lp)
}

/// An image file and its label file.
pub fn load_pair(img_path: &Path, lbl_path: &Path) -> Result<Mnist> {
    let img = idx::parse_images(&idx::read(img_path)?, img_path)?;
    let lbl = idx::parse_labels(&idx::read(lbl_path)?, lbl_path, CLASSES)?;
    Mnist::from_idx(img, lbl, img_path, lbl_path)
}

/// `t10k-images-idx3-ubyte[.gz]` and `t10k-labels-idx1-ubyte[.gz]` from `dir`.
pub fn load_test_set(dir: &Path) -> Result<Mnist> {
    load_prefix(dir, "t10k")
}

/// The `PREFIX-images-idx3-ubyte` / `PREFIX-labels-idx1-ubyte` pair of `dir`, raw or `.gz`.
fn load_prefix(dir: &Path, prefix: &str) -> Result<Mnist> {
    let find = |kind: &str, dims: &str| -> Result<PathBuf> {
        let base = format!("{prefix}-{kind}-{dims}-ubyte");
        for name in [base.clone(), format!("{base}.gz")] {
            let p = dir.join(&name);
            if p.is_file() {
                return Ok(p);
            }
        }
        Err(Error::file(
            dir,
            format!(
                "no {base}[.gz] here: --data-dir needs the IDX files train-images-idx3-ubyte, \
                 train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte \
                 (raw or .gz), as MNIST, Fashion-MNIST and KMNIST ship them"
            ),
        ))
    };
    let (ip, lp) = (find("images", "idx3")?, find("labels", "idx1")?);
    load_pair(&ip, &lp)
}

/// Training and test examples.
pub struct TrainTest {
    pub train: Mnist,
    pub test: Mnist,
}

/// Examples of the shipped set that train (the first 8,000); the rest (2,000, from MNIST's
/// harder writers) test.
pub const SHIPPED_TRAIN: usize = 8_000;

/// The split every workload uses: without `data_dir`, the shipped test set's first 8,000
/// images train and its last 2,000 test; with it, the directory's `train-*` files train and
/// its `t10k-*` files test. Each example keeps its index in its IDX file.
pub fn standard_split(data_dir: Option<&Path>) -> Result<TrainTest> {
    match data_dir {
        None => {
            let all = shipped_test_set()?;
            let n = all.len();
            Ok(TrainTest {
                train: all.select(&(0..SHIPPED_TRAIN).collect::<Vec<_>>()),
                test: all.select(&(SHIPPED_TRAIN..n).collect::<Vec<_>>()),
            })
        }
        Some(dir) => {
            if !dir.is_dir() {
                return Err(Error::file(
                    dir,
                    "no such directory: --data-dir needs a directory of train-*/t10k-* IDX files",
                ));
            }
            let train = load_prefix(dir, "train")?;
            let test = load_prefix(dir, "t10k")?;
            if (train.rows, train.cols) != (test.rows, test.cols) {
                return Err(Error::file(
                    dir,
                    format!(
                        "train images are {}x{} but t10k images are {}x{}: the files come from different data sets",
                        train.rows, train.cols, test.rows, test.cols
                    ),
                ));
            }
            Ok(TrainTest { train, test })
        }
    }
}

/// The images at positions `ids` of `set` as a 1-channel NCHW batch.
pub fn batch_of(set: &Mnist, ids: &[usize]) -> crate::nn::nchw::Nchw {
    let mut x = crate::nn::nchw::Nchw::zeros(ids.len(), 1, set.rows, set.cols);
    let p = set.pixels_per_image();
    for (dst, &i) in x.data.chunks_mut(p).zip(ids) {
        dst.copy_from_slice(set.image(i));
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_test_set_loads() {
        let m = load_test_set(&default_dir()).unwrap();
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.labels[0], 7); // the well-known first test digit
        let mut counts = [0usize; 10];
        m.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts.iter().sum::<usize>(), 10_000);
        assert!(counts.iter().all(|&c| c > 800));
        // The embedded copy is the same data.
        let e = shipped_test_set().unwrap();
        assert_eq!(
            (e.labels.clone(), e.images.len()),
            (m.labels, m.images.len())
        );
        assert_eq!(e.images, m.images);
    }

    #[test]
    fn standard_split_keeps_idx_positions() {
        let s = standard_split(None).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (8_000, 2_000));
        assert_eq!(s.train.index[0], 0);
        assert_eq!(s.test.index[0], 8_000);
        assert_eq!(*s.test.index.last().unwrap(), 9_999);
        assert_eq!(s.train.labels[0], 7);
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) {
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    fn images(n: u32, r: u32, c: u32, have: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 8, 3];
        for x in [n, r, c] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        v.extend(std::iter::repeat_n(7u8, have));
        v
    }

    fn labels(n: u32, have: usize) -> Vec<u8> {
        let mut v = vec![0, 0, 8, 1];
        v.extend_from_slice(&n.to_be_bytes());
        v.extend(std::iter::repeat_n(3u8, have));
        v
    }

    #[test]
    fn data_dir_reads_raw_idx_and_names_every_defect_in_one_line() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "train-images-idx3-ubyte", &images(3, 2, 2, 12));
        write(d, "train-labels-idx1-ubyte", &labels(3, 3));
        write(d, "t10k-images-idx3-ubyte", &images(2, 2, 2, 8));
        write(d, "t10k-labels-idx1-ubyte", &labels(2, 2));
        let s = standard_split(Some(d)).unwrap();
        assert_eq!((s.train.len(), s.test.len(), s.train.rows), (3, 2, 2));
        assert!((s.train.images[0] - 7.0 / 255.0).abs() < 1e-7);
        let err = |d: &Path| {
            let e = standard_split(Some(d)).err().expect("an error").to_string();
            assert_eq!(e.lines().count(), 1, "{e}");
            e
        };
        // Truncated images.
        write(d, "t10k-images-idx3-ubyte", &images(2, 2, 2, 5));
        assert!(err(d).contains("truncated"));
        // Label count differs from the image count.
        write(d, "t10k-images-idx3-ubyte", &images(2, 2, 2, 8));
        write(d, "t10k-labels-idx1-ubyte", &labels(3, 3));
        assert!(err(d).contains("3 labels for the 2 images"));
        // Wrong magic.
        write(d, "t10k-labels-idx1-ubyte", &images(2, 2, 2, 8));
        assert!(err(d).contains("wrong magic"));
        // Missing file.
        std::fs::remove_file(d.join("t10k-labels-idx1-ubyte")).unwrap();
        assert!(err(d).contains("no t10k-labels-idx1-ubyte[.gz] here"));
        assert!(err(&d.join("nope")).contains("no such directory"));
    }
}
