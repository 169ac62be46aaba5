//! Resource estimates on every supported FPGA family through yosys, in one shape
//! (`lut, ff, carry, dsp, bram`) so designs and families can be compared side by side.

use crate::error::HwError;
use crate::tools::{yosys_cells, yosys_version};
use crate::verilog::write_atomically;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// A synthesis target as the CLI names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// `synth_ice40`: LUT4 logic only.
    Ice40,
    /// `synth_ice40 -dsp`: multipliers may use SB_MAC16.
    Ice40Dsp,
    /// `synth_xilinx -family xc7`: LUT6, CARRY4, DSP48E1 allowed.
    Xc7,
    /// `synth_xilinx -family xc7 -nodsp`.
    Xc7Nodsp,
    /// `synth_ecp5`: LUT4, CCU2C, MULT18X18D allowed.
    Ecp5,
    /// `synth_ecp5 -nodsp`.
    Ecp5Nodsp,
}

impl Target {
    pub const ALL: [Target; 6] = [
        Target::Ice40,
        Target::Ice40Dsp,
        Target::Xc7,
        Target::Xc7Nodsp,
        Target::Ecp5,
        Target::Ecp5Nodsp,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Ice40 => "ice40",
            Target::Ice40Dsp => "ice40-dsp",
            Target::Xc7 => "xc7",
            Target::Xc7Nodsp => "xc7-nodsp",
            Target::Ecp5 => "ecp5",
            Target::Ecp5Nodsp => "ecp5-nodsp",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The yosys synthesis command (flattened, so counts are of the whole design).
    pub fn command(self, top: &str) -> String {
        match self {
            Target::Ice40 => format!("synth_ice40 -top {top}"),
            Target::Ice40Dsp => format!("synth_ice40 -dsp -top {top}"),
            Target::Xc7 => format!("synth_xilinx -family xc7 -flatten -noiopad -top {top}"),
            Target::Xc7Nodsp => {
                format!("synth_xilinx -family xc7 -nodsp -flatten -noiopad -top {top}")
            }
            Target::Ecp5 => format!("synth_ecp5 -top {top}"),
            Target::Ecp5Nodsp => format!("synth_ecp5 -nodsp -top {top}"),
        }
    }

    fn family(self) -> Family {
        match self {
            Target::Ice40 | Target::Ice40Dsp => Family::Ice40,
            Target::Xc7 | Target::Xc7Nodsp => Family::Xc7,
            Target::Ecp5 | Target::Ecp5Nodsp => Family::Ecp5,
        }
    }
}

enum Family {
    Ice40,
    Xc7,
    Ecp5,
}

/// The five numbers every report shows. `bram` counts block-RAM primitives (iCE40 SB_RAM40_4K,
/// xc7 RAMB18 halves (a RAMB36 counts 2), ECP5 DP16KD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cells {
    pub lut: usize,
    pub ff: usize,
    pub carry: usize,
    pub dsp: usize,
    pub bram: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cells: Cells,
    pub cells_by_type: BTreeMap<String, usize>,
}

/// Synthesize `files` (top module `top`) for `target` and count resources.
pub fn synthesize(files: &[&Path], top: &str, target: Target) -> Result<Resources, HwError> {
    let by_type = yosys_cells(files, top, &target.command(top))?;
    Ok(Resources {
        cells: classify(&by_type, target),
        cells_by_type: by_type,
    })
}

/// [`synthesize`], reusing a result stored in `cache_dir` by an earlier run with the same sources,
/// command and yosys version. A 16x16 FP16 array takes many minutes per target, so an interrupted
/// `shiftkit report` resumes where it stopped and sizes can be added to a report later. A missing,
/// stale or unreadable entry is simply synthesized again.
pub fn synthesize_cached(
    files: &[&Path],
    top: &str,
    target: Target,
    cache_dir: &Path,
) -> Result<Resources, HwError> {
    let key = cache_key(files, top, target)?;
    let path = cache_dir.join(format!("synth-{}.json", target.name()));
    let cached = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<CacheEntry>(&b).ok())
        .filter(|e| e.key == key);
    if let Some(e) = cached {
        return Ok(e.resources);
    }
    let resources = synthesize(files, top, target)?;
    let entry = CacheEntry { key, resources };
    let json = serde_json::to_vec_pretty(&entry).map_err(|e| HwError::Parse {
        what: "synthesis cache entry".into(),
        detail: e.to_string(),
    })?;
    write_atomically(&path, &json)?;
    Ok(entry.resources)
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    key: String,
    resources: Resources,
}

/// SHA-256 over the yosys version, the command and every source (names and lengths included).
fn cache_key(files: &[&Path], top: &str, target: Target) -> Result<String, HwError> {
    let mut h = Sha256::new();
    let mut field = |s: &[u8]| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s);
    };
    field(yosys_version()?.as_bytes());
    field(target.command(top).as_bytes());
    for f in files {
        let text = std::fs::read(f).map_err(HwError::io("cannot read", *f))?;
        field(f.to_string_lossy().as_bytes());
        field(&text);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn classify(by_type: &BTreeMap<String, usize>, target: Target) -> Cells {
    let sum = |f: &dyn Fn(&str) -> bool| -> usize {
        by_type.iter().filter(|(k, _)| f(k)).map(|(_, n)| n).sum()
    };
    match target.family() {
        Family::Ice40 => Cells {
            lut: sum(&|k| k == "SB_LUT4"),
            ff: sum(&|k| k.starts_with("SB_DFF")),
            carry: sum(&|k| k == "SB_CARRY"),
            dsp: sum(&|k| k == "SB_MAC16"),
            bram: sum(&|k| k == "SB_RAM40_4K" || k == "SB_SPRAM256KA"),
        },
        Family::Xc7 => Cells {
            lut: sum(&|k| k.len() == 4 && k.starts_with("LUT")),
            ff: sum(&|k| k.starts_with("FD")),
            carry: sum(&|k| k == "CARRY4"),
            dsp: sum(&|k| k.starts_with("DSP48")),
            bram: sum(&|k| k.starts_with("RAMB18")) + 2 * sum(&|k| k.starts_with("RAMB36")),
        },
        Family::Ecp5 => Cells {
            lut: sum(&|k| k == "LUT4"),
            ff: sum(&|k| k == "TRELLIS_FF"),
            carry: sum(&|k| k == "CCU2C"),
            dsp: sum(&|k| k.starts_with("MULT18X18") || k.starts_with("ALU54")),
            bram: sum(&|k| k == "DP16KD"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_counts_classify() {
        for t in Target::ALL {
            assert_eq!(Target::parse(t.name()), Some(t));
        }
        let mut by = BTreeMap::new();
        by.insert("LUT6".to_string(), 10);
        by.insert("LUT2".to_string(), 5);
        by.insert("RAMB36E1".to_string(), 1);
        by.insert("FDRE".to_string(), 7);
        by.insert("DSP48E1".to_string(), 2);
        let c = classify(&by, Target::Xc7);
        assert_eq!(
            c,
            Cells {
                lut: 15,
                ff: 7,
                carry: 0,
                dsp: 2,
                bram: 2
            }
        );
    }
}
