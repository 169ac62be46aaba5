//! IDX files (the MNIST family's format: MNIST, Fashion-MNIST, KMNIST), raw or gzipped.
//! Every defect is one line naming the file and what is wrong with it.

use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// Images as bytes: `n` images of `rows x cols` pixels, row-major.
pub struct IdxImages {
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The file's bytes, gunzipped when they start with the gzip magic.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    decode(&raw, path)
}

/// `raw` gunzipped when it starts with the gzip magic (`path` names it in errors).
pub fn decode(raw: &[u8], path: &Path) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut bytes = Vec::new();
        GzDecoder::new(raw).read_to_end(&mut bytes).map_err(|e| {
            Error::file(
                path,
                format!("not a complete gzip file ({e}): download it again"),
            )
        })?;
        Ok(bytes)
    } else {
        Ok(raw.to_vec())
    }
}

/// An IDX3 image file (magic 0x00000803, unsigned bytes).
pub fn parse_images(bytes: &[u8], path: &Path) -> Result<IdxImages> {
    if bytes.len() < 16 || be_u32(bytes, 0) != 0x0803 {
        return Err(Error::file(
            path,
            "not an IDX3 image file (wrong magic number; expected 0x00000803)",
        ));
    }
    let (n, rows, cols) = (
        be_u32(bytes, 4) as usize,
        be_u32(bytes, 8) as usize,
        be_u32(bytes, 12) as usize,
    );
    let want = 16 + n * rows * cols;
    if bytes.len() != want {
        return Err(Error::file(
            path,
            format!(
                "{} file: the header says {n} images of {rows}x{cols} ({want} bytes), the file has {}",
                if bytes.len() < want { "truncated" } else { "oversized" },
                bytes.len()
            ),
        ));
    }
    Ok(IdxImages {
        n,
        rows,
        cols,
        pixels: bytes[16..].to_vec(),
    })
}

/// An IDX1 label file (magic 0x00000801); labels must be below `classes`.
pub fn parse_labels(bytes: &[u8], path: &Path, classes: usize) -> Result<Vec<u8>> {
    if bytes.len() < 8 || be_u32(bytes, 0) != 0x0801 {
        return Err(Error::file(
            path,
            "not an IDX1 label file (wrong magic number; expected 0x00000801)",
        ));
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() != 8 + n {
        return Err(Error::file(
            path,
            format!(
                "{} file: the header says {n} labels, the file has {} bytes of labels",
                if bytes.len() < 8 + n {
                    "truncated"
                } else {
                    "oversized"
                },
                bytes.len() - 8
            ),
        ));
    }
    let labels = bytes[8..].to_vec();
    if let Some(bad) = labels.iter().find(|&&l| l as usize >= classes) {
        return Err(Error::file(
            path,
            format!("label {bad} is not one of the {classes} classes"),
        ));
    }
    Ok(labels)
}
