//! Yosys resource counts of accelerator tops (slow: run with `--ignored --nocapture`).
//! `SHIFTKIT_ACCEL_SYNTH_JSON=path` also writes the numbers as JSON.

use shiftkit_hw::generate::{generate_design, DesignKind};
use shiftkit_hw::tools::{synth_stats, SynthTarget};
use shiftkit_hw::{ArrayConfig, Datapath};

#[test]
#[ignore]
fn accel_4x4_resources() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut json = vec![];
    println!(
        "{:<28} {:>10} {:>6} {:>6} {:>6} | {:>9} {:>6} {:>6} {:>8} {:>7}",
        "top", "ice40 LUT4", "CARRY", "FF", "BRAM", "xc7 LUT", "CARRY4", "FF", "RAMB18", "LUTRAM"
    );
    let sq = |bits| ArrayConfig::new(4, 4, Datapath::Sq { bits }).expect("valid");
    let fp16 = ArrayConfig::new(4, 4, Datapath::Fp16).expect("valid");
    for config in [sq(4), sq(6), fp16] {
        let d = generate_design(DesignKind::accel(), &config).expect("generates");
        let file = dir.path().join(format!("{}.v", d.top));
        std::fs::write(&file, &d.verilog).expect("write");
        let i = synth_stats(&file, &d.top, SynthTarget::Ice40).expect("ice40");
        let x = synth_stats(&file, &d.top, SynthTarget::Xc7).expect("xc7");
        let n = |s: &shiftkit_hw::tools::SynthStats, f: &dyn Fn(&str) -> bool| -> usize {
            s.cells_by_type
                .iter()
                .filter(|(k, _)| f(k))
                .map(|(_, v)| v)
                .sum()
        };
        let bram = n(&i, &|k| k.starts_with("SB_RAM40"));
        let ramb = n(&x, &|k| k.starts_with("RAMB"));
        let lutram = n(&x, &|k| k.starts_with("RAM") && !k.starts_with("RAMB"));
        println!(
            "{:<28} {:>10} {:>6} {:>6} {:>6} | {:>9} {:>6} {:>6} {:>8} {:>7}",
            config.to_string(),
            i.luts,
            i.carries,
            i.ffs,
            bram,
            x.luts,
            x.carries,
            x.ffs,
            ramb,
            lutram
        );
        assert!(bram > 0, "the buffers map onto SB_RAM40_4K");
        json.push(
            serde_json::json!({"top": d.top, "config": config.to_string(), "ice40": i, "xc7": x}),
        );
    }
    if let Some(p) = std::env::var_os("SHIFTKIT_ACCEL_SYNTH_JSON") {
        std::fs::write(p, serde_json::to_string_pretty(&json).expect("json")).expect("write json");
    }
}

/// The SQ tops with and without the L1-norm unit (`generate_accel_with_l1norm(.., None)`):
/// what opcode 6 costs.
#[test]
#[ignore]
fn accel_4x4_l1norm_resources() {
    use shiftkit_hw::accel::default_l1norm;
    use shiftkit_hw::generate::generate_accel_with_l1norm;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut json = vec![];
    for bits in [4u32, 6] {
        let config = ArrayConfig::new(4, 4, Datapath::Sq { bits }).expect("valid");
        for l1 in [None, Some(default_l1norm(bits))] {
            let d = generate_accel_with_l1norm(&config, 256, l1).expect("generates");
            let file = dir.path().join(format!("{}.v", d.top));
            std::fs::write(&file, &d.verilog).expect("write");
            let i = synth_stats(&file, &d.top, SynthTarget::Ice40).expect("ice40");
            let x = synth_stats(&file, &d.top, SynthTarget::Xc7).expect("xc7");
            let n = |s: &shiftkit_hw::tools::SynthStats, f: &dyn Fn(&str) -> bool| -> usize {
                s.cells_by_type
                    .iter()
                    .filter(|(k, _)| f(k))
                    .map(|(_, v)| v)
                    .sum()
            };
            let bram = n(&i, &|k| k.starts_with("SB_RAM40"));
            let ramb = n(&x, &|k| k.starts_with("RAMB"));
            let lutram = n(&x, &|k| k.starts_with("RAM") && !k.starts_with("RAMB"));
            let label = format!("{config} {}", if l1.is_some() { "+L1" } else { "no L1" });
            println!(
                "{label:<32} ice40 {} LUT4 {} CARRY {} FF {} BRAM | xc7 {} LUT {} CARRY4 {} FF {} RAMB18 {} LUTRAM",
                i.luts, i.carries, i.ffs, bram, x.luts, x.carries, x.ffs, ramb, lutram
            );
            json.push(serde_json::json!({"top": d.top, "config": label, "ice40": i, "xc7": x}));
        }
    }
    if let Some(p) = std::env::var_os("SHIFTKIT_ACCEL_SYNTH_JSON") {
        std::fs::write(p, serde_json::to_string_pretty(&json).expect("json")).expect("write json");
    }
}
