//! Number formats of SPEC §1 and the names users type for them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Fp32,
    Fp16,
    Sq4,
    Sq6,
    Sq8,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Fp32,
        Format::Fp16,
        Format::Sq4,
        Format::Sq6,
        Format::Sq8,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Fp32 => "fp32",
            Format::Fp16 => "fp16",
            Format::Sq4 => "sq4",
            Format::Sq6 => "sq6",
            Format::Sq8 => "sq8",
        }
    }

    /// Operand bit-width of a ShiftQuant format.
    pub fn sq_bits(self) -> Option<u32> {
        match self {
            Format::Sq4 => Some(4),
            Format::Sq6 => Some(6),
            Format::Sq8 => Some(8),
            Format::Fp32 | Format::Fp16 => None,
        }
    }

    /// The accelerator datapath that executes this format (fp32 runs on the host only).
    pub fn datapath(self) -> Option<shiftkit_hw::Datapath> {
        match self {
            Format::Fp32 => None,
            Format::Fp16 => Some(shiftkit_hw::Datapath::Fp16),
            f => f.sq_bits().map(|bits| shiftkit_hw::Datapath::Sq { bits }),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format '{s}': use one of fp32, fp16, sq4, sq6, sq8"))
    }
}

/// The channel axis of a quantized matrix: one exponent per row, or one per column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    Rows,
    Cols,
}

/// Channel axis of A (M x K) in C = A x B: per-K exponents (applied in the PE) or per-M (on drain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AAxis {
    K,
    M,
}

/// Channel axis of B (K x N): per-K exponents (applied in the PE) or per-N (on drain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BAxis {
    K,
    N,
}

impl AAxis {
    pub fn axis(self) -> Axis {
        match self {
            AAxis::K => Axis::Cols,
            AAxis::M => Axis::Rows,
        }
    }
}

impl BAxis {
    pub fn axis(self) -> Axis {
        match self {
            BAxis::K => Axis::Rows,
            BAxis::N => Axis::Cols,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert!("sq5"
            .parse::<Format>()
            .unwrap_err()
            .contains("unknown format 'sq5'"));
    }
}
