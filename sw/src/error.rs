//! One error type for the library. Every message is one line that says what is wrong and, where
//! the user can act, how to fix it.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{tensor} has a non-finite value ({value}) at row {row}, col {col}: remove NaN/inf before offloading")]
    NonFinite {
        tensor: String,
        row: usize,
        col: usize,
        value: f32,
    },

    #[error("{tensor} value {value} at row {row}, col {col} overflows binary16 (max 65504): rescale the tensor or use an sq format")]
    Fp16Overflow {
        tensor: String,
        row: usize,
        col: usize,
        value: f32,
    },

    #[error("shapes do not agree: {0}")]
    Shape(String),

    #[error("{0} is empty (zero-sized): every dimension must be at least 1")]
    Empty(String),

    #[error(transparent)]
    Config(#[from] shiftkit_hw::ConfigError),

    #[error("{0}")]
    Unsupported(String),

    #[error("accumulator bound cannot be met: {0}")]
    Accumulator(String),

    #[error("{path}: {msg}")]
    File { path: PathBuf, msg: String },

    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn file(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
