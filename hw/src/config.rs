//! The one parameter set of an array design. The CLI, the golden model, the generator and the
//! simulator all take this type, so a design is described the same way everywhere.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The datapath a design computes in. Fixed at generation time: a design holds exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datapath {
    /// ShiftQuant integer MACs with `bits`-bit signed operands (4, 6 or 8).
    Sq { bits: u32 },
    /// FP16 operands, FP32 accumulation (the reference design).
    Fp16,
}

impl Datapath {
    pub fn name(&self) -> String {
        match self {
            Datapath::Sq { bits } => format!("sq{bits}"),
            Datapath::Fp16 => "fp16".to_string(),
        }
    }
}

/// How operands move through the array. Chosen when the design is generated, never at run time
/// (a run-time choice would instantiate both datapaths).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dataflow {
    /// Each PE owns one output and accumulates it over K; A flows right, B flows down.
    OutputStationary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArrayConfig {
    /// PE rows (the M extent of one output tile), 1..=64.
    pub rows: usize,
    /// PE columns (the N extent of one output tile), 1..=64.
    pub cols: usize,
    pub datapath: Datapath,
    /// ShiftQuant exponent window E (exponents 0..=E), 0..=15. Unused by FP16.
    pub window: u32,
    /// Declared accumulator width in bits for the integer datapath. Unused by FP16.
    pub acc_bits: u32,
    pub dataflow: Dataflow,
}

pub const MAX_DIM: usize = 64;
pub const MAX_WINDOW: u32 = 15;
pub const SQ_BITS: [u32; 3] = [4, 6, 8];
pub const DEFAULT_WINDOW: u32 = 7;
pub const DEFAULT_ACC_BITS: u32 = 32;
/// The widest accumulator a design may declare; chunk sums are added in i64 on the host.
pub const MAX_ACC_BITS: u32 = 48;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("array size {rows}x{cols} is out of range: rows and cols must be 1..={MAX_DIM}")]
    Size { rows: usize, cols: usize },
    #[error("sq{0} is not a supported bit-width: use one of sq4, sq6, sq8")]
    Bits(u32),
    #[error("window {0} is out of range: use --window 0..={MAX_WINDOW}")]
    Window(u32),
    #[error("accumulator width {acc_bits} is out of range: use --acc-bits {min}..={MAX_ACC_BITS} for {datapath}")]
    AccBits {
        acc_bits: u32,
        min: u32,
        datapath: String,
    },
}

impl ArrayConfig {
    /// A validated configuration with default window and accumulator width.
    pub fn new(rows: usize, cols: usize, datapath: Datapath) -> Result<Self, ConfigError> {
        ArrayConfig {
            rows,
            cols,
            datapath,
            window: DEFAULT_WINDOW,
            acc_bits: DEFAULT_ACC_BITS,
            dataflow: Dataflow::OutputStationary,
        }
        .validated()
    }

    /// A validated configuration with `window` and the accumulator asked for; without one, 32
    /// bits or the narrowest width that holds one shifted product when 32 cannot.
    pub fn sized(
        rows: usize,
        cols: usize,
        datapath: Datapath,
        window: u32,
        acc_bits: Option<u32>,
    ) -> Result<Self, ConfigError> {
        let base = ArrayConfig::new(rows, cols, datapath)?
            .with_acc_bits(MAX_ACC_BITS)?
            .with_window(window)?;
        base.with_acc_bits(acc_bits.unwrap_or(DEFAULT_ACC_BITS.max(base.product_bits() + 1)))
    }

    pub fn with_window(self, window: u32) -> Result<Self, ConfigError> {
        ArrayConfig { window, ..self }.validated()
    }

    pub fn with_acc_bits(self, acc_bits: u32) -> Result<Self, ConfigError> {
        ArrayConfig { acc_bits, ..self }.validated()
    }

    /// Check every parameter; the error says which one is wrong and what is allowed.
    pub fn validated(self) -> Result<Self, ConfigError> {
        if !(1..=MAX_DIM).contains(&self.rows) || !(1..=MAX_DIM).contains(&self.cols) {
            return Err(ConfigError::Size {
                rows: self.rows,
                cols: self.cols,
            });
        }
        if let Datapath::Sq { bits } = self.datapath {
            if !SQ_BITS.contains(&bits) {
                return Err(ConfigError::Bits(bits));
            }
            if self.window > MAX_WINDOW {
                return Err(ConfigError::Window(self.window));
            }
            // One product with the largest per-K shift must fit, sign included.
            let min = self.product_bits() + 1;
            if self.acc_bits < min || self.acc_bits > MAX_ACC_BITS {
                return Err(ConfigError::AccBits {
                    acc_bits: self.acc_bits,
                    min,
                    datapath: self.datapath.name(),
                });
            }
        }
        Ok(self)
    }

    /// Largest code magnitude Q = 2^(b-1) - 1 (integer datapath only).
    pub fn q_max(&self) -> i64 {
        match self.datapath {
            Datapath::Sq { bits } => (1i64 << (bits - 1)) - 1,
            Datapath::Fp16 => 0,
        }
    }

    /// Bits of magnitude of one shifted product |qa * qb| * 2^(2E).
    pub fn product_bits(&self) -> u32 {
        match self.datapath {
            Datapath::Sq { bits } => 2 * (bits - 1) + 2 * self.window,
            Datapath::Fp16 => 0,
        }
    }
}

impl fmt::Display for ArrayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}x{}", self.datapath.name(), self.rows, self.cols)?;
        if let Datapath::Sq { .. } = self.datapath {
            write!(f, " E={} acc={}b", self.window, self.acc_bits)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_range_parameters() {
        assert!(matches!(
            ArrayConfig::new(0, 4, Datapath::Fp16),
            Err(ConfigError::Size { .. })
        ));
        assert!(matches!(
            ArrayConfig::new(4, 65, Datapath::Fp16),
            Err(ConfigError::Size { .. })
        ));
        assert_eq!(
            ArrayConfig::new(4, 4, Datapath::Sq { bits: 5 }),
            Err(ConfigError::Bits(5))
        );
        let c = ArrayConfig::new(4, 4, Datapath::Sq { bits: 6 }).unwrap();
        assert_eq!(c.with_window(16), Err(ConfigError::Window(16)));
        // sq8 with E = 15 needs 2*7 + 30 + 1 = 45 bits at least.
        let c8 = ArrayConfig::new(4, 4, Datapath::Sq { bits: 8 }).unwrap();
        assert!(c8.with_window(15).is_err());
        assert!(c8.with_acc_bits(48).unwrap().with_window(15).is_ok());
    }

    #[test]
    fn q_max_matches_the_spec() {
        for (bits, q) in [(4, 7), (6, 31), (8, 127)] {
            assert_eq!(
                ArrayConfig::new(1, 1, Datapath::Sq { bits })
                    .unwrap()
                    .q_max(),
                q
            );
        }
    }
}
