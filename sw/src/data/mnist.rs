//! The MNIST test set shipped in `data/mnist/` (IDX format, gzip), loaded into memory.

use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

pub struct Mnist {
    /// n x 784 pixels scaled to [0, 1].
    pub images: Vec<[f32; 784]>,
    pub labels: Vec<u8>,
}

/// The repository's `data/mnist` directory.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join("mnist")
}

fn read_gz(path: &Path) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::file(path, format!("not a valid gzip file ({e})")))?;
    Ok(bytes)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Load `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` from `dir`.
pub fn load_test_set(dir: &Path) -> Result<Mnist> {
    let img_path = dir.join("t10k-images-idx3-ubyte.gz");
    let lbl_path = dir.join("t10k-labels-idx1-ubyte.gz");
    let img = read_gz(&img_path)?;
    let lbl = read_gz(&lbl_path)?;
    if img.len() < 16 || be_u32(&img, 0) != 0x0803 {
        return Err(Error::file(
            &img_path,
            "not an IDX3 image file (bad magic number)",
        ));
    }
    if lbl.len() < 8 || be_u32(&lbl, 0) != 0x0801 {
        return Err(Error::file(
            &lbl_path,
            "not an IDX1 label file (bad magic number)",
        ));
    }
    let (n, rows, cols) = (
        be_u32(&img, 4) as usize,
        be_u32(&img, 8) as usize,
        be_u32(&img, 12) as usize,
    );
    if rows * cols != 784 || img.len() != 16 + n * 784 {
        return Err(Error::file(
            &img_path,
            format!("expected n x 28 x 28 images, header says {n} x {rows} x {cols}"),
        ));
    }
    if be_u32(&lbl, 4) as usize != n || lbl.len() != 8 + n {
        return Err(Error::file(
            &lbl_path,
            format!("label count does not match the {n} images"),
        ));
    }
    let images = img[16..]
        .chunks(784)
        .map(|px| {
            let mut out = [0.0f32; 784];
            out.iter_mut()
                .zip(px)
                .for_each(|(o, &p)| *o = p as f32 / 255.0);
            out
        })
        .collect();
    let labels = lbl[8..].to_vec();
    if let Some(bad) = labels.iter().find(|&&l| l > 9) {
        return Err(Error::file(
            &lbl_path,
            format!("label {bad} is not a digit"),
        ));
    }
    Ok(Mnist { images, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_test_set_loads() {
        let m = load_test_set(&default_dir()).unwrap();
        assert_eq!(m.images.len(), 10_000);
        assert_eq!(m.labels.len(), 10_000);
        assert_eq!(m.labels[0], 7); // the well-known first test digit
        let mut counts = [0usize; 10];
        m.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts.iter().sum::<usize>(), 10_000);
        assert!(counts.iter().all(|&c| c > 800));
    }
}
