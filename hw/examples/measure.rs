//! `cargo run -p shiftkit-hw --release --example measure [OUTDIR]`: yosys resource counts of the
//! multipliers, one PE and 4x4 arrays (ice40 LUT4 via `synth_ice40`, xc7 LUT6 via
//! `synth_xilinx -nodsp`), printed as a table and written as JSON to OUTDIR/measure.json.
use shiftkit_hw::generate::{generate, generate_multiplier, generate_pe, GeneratedModule};
use shiftkit_hw::tools::{synth_stats, SynthTarget};
use shiftkit_hw::{ArrayConfig, Datapath, HwError};
use std::path::Path;

fn sq(rows: usize, cols: usize, bits: u32, window: u32, acc: u32) -> Result<ArrayConfig, HwError> {
    Ok(ArrayConfig::new(rows, cols, Datapath::Sq { bits })?
        .with_window(window)?
        .with_acc_bits(acc)?)
}

fn run(out: &Path) -> Result<(), HwError> {
    std::fs::create_dir_all(out).map_err(|e| HwError::Io {
        action: "cannot create",
        path: out.into(),
        source: e,
    })?;
    let mut items: Vec<(String, GeneratedModule)> = vec![];
    for b in [4, 6, 8] {
        items.push((format!("mul{b}"), generate_multiplier(b)?));
    }
    for (b, e, acc) in [(4, 7, 32), (4, 7, 24), (6, 7, 32), (6, 7, 25), (8, 7, 32)] {
        let m = generate_pe(&sq(1, 1, b, e, acc)?)?;
        items.push((format!("pe sq{b} E={e} acc={acc}"), m));
    }
    for (b, acc) in [(4, 32), (6, 32)] {
        let d = generate(&sq(4, 4, b, 7, acc)?)?;
        items.push((
            format!("array 4x4 sq{b} E=7 acc={acc}"),
            GeneratedModule {
                top: d.top,
                verilog: d.verilog,
            },
        ));
    }
    let mut json = vec![];
    println!(
        "{:<28} {:>9} {:>7} {:>7} | {:>9} {:>7} {:>7}",
        "block", "ice40 LUT4", "CARRY", "FF", "xc7 LUT6", "CARRY4", "FF"
    );
    for (name, m) in items {
        let file = out.join(format!("{}.v", m.top));
        std::fs::write(&file, &m.verilog).map_err(|e| HwError::Io {
            action: "cannot write",
            path: file.clone(),
            source: e,
        })?;
        let i = synth_stats(&file, &m.top, SynthTarget::Ice40)?;
        let x = synth_stats(&file, &m.top, SynthTarget::Xc7)?;
        println!(
            "{:<28} {:>9} {:>7} {:>7} | {:>9} {:>7} {:>7}",
            name, i.luts, i.carries, i.ffs, x.luts, x.carries, x.ffs
        );
        json.push(serde_json::json!({"block": name, "top": m.top, "ice40": i, "xc7": x}));
    }
    let path = out.join("measure.json");
    let text = serde_json::to_string_pretty(&json).map_err(|e| HwError::Parse {
        what: "json".into(),
        detail: e.to_string(),
    })?;
    std::fs::write(&path, text).map_err(|e| HwError::Io {
        action: "cannot write",
        path,
        source: e,
    })?;
    Ok(())
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/measure".into());
    if let Err(e) = run(Path::new(&out)) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
