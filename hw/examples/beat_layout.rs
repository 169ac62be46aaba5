//! `cargo run -p shiftkit-hw --release --example beat_layout -- OUTDIR [--quick]`: the two LOAD
//! beat layouts `docs/accelerator.md` ("Data beats") chooses between, measured: one K step per
//! beat on the narrowest whole-byte bus (`P = 1`) against two K steps per beat (`P = 2`), for
//! sq4 and sq6. Per layout: the bus width and bytes per K step; the iCEBreaker board design (UART
//! shell + 4x4 top, yosys + nextpnr: logic cells, block RAMs, Fmax); and the 8x8 accelerator top
//! on xc7 (`synth_xilinx`, yosys: LUTs, flip-flops, block RAMs). Writes OUTDIR/beat-layout.json
//! and prints a markdown table. `--quick`: the xc7 column only.
use serde_json::json;
use shiftkit_hw::accel::{AccelGeometry, DEFAULT_K_MAX};
use shiftkit_hw::board::{Accel, Board, DEFAULT_BAUD};
use shiftkit_hw::flow::build_board;
use shiftkit_hw::generate::{generate_accel_for, write_design};
use shiftkit_hw::synth::{synthesize, Target};
use shiftkit_hw::{ArrayConfig, Datapath};
use std::path::Path;

fn geometry(bits: u32, n: usize, p: usize) -> Result<(ArrayConfig, AccelGeometry), String> {
    let config = ArrayConfig::new(n, n, Datapath::Sq { bits }).map_err(|e| e.to_string())?;
    // Without the L1-norm unit, as the iCE40 boards take the tops.
    let geom = AccelGeometry::with_l1norm(&config, DEFAULT_K_MAX, None)
        .and_then(|g| g.with_k_per_beat(p))
        .map_err(|e| e.to_string())?;
    Ok((config, geom))
}

fn board(bits: u32, p: usize, out: &Path) -> Result<serde_json::Value, String> {
    let (config, geom) = geometry(bits, 4, p)?;
    let d = generate_accel_for(&config, &geom).map_err(|e| e.to_string())?;
    let accel = Accel::Verilog {
        module: d.top.clone(),
        files: vec![(format!("{}.v", d.top), d.verilog)],
        w_in: geom.cmd_bits(),
        w_out: geom.rsp_bits(),
    };
    let dir = out.join(format!("icebreaker-sq{bits}-p{p}"));
    let (_, r) =
        build_board(Board::Icebreaker, &accel, DEFAULT_BAUD, &dir).map_err(|e| e.to_string())?;
    eprintln!("{}", r.summary());
    let used = |k: &str| r.utilization.get(k).map(|u| u.used);
    Ok(json!({
        "lc": used("ICESTORM_LC"),
        "ram": used("ICESTORM_RAM"),
        "fmax_mhz": r.fmax_mhz,
    }))
}

fn xc7(bits: u32, p: usize, out: &Path) -> Result<serde_json::Value, String> {
    let (config, geom) = geometry(bits, 8, p)?;
    let d = generate_accel_for(&config, &geom).map_err(|e| e.to_string())?;
    let dir = out.join(format!("xc7-sq{bits}-p{p}"));
    let m = write_design(&d, &dir).map_err(|e| e.to_string())?;
    let file = dir.join(&m.files[0]);
    let r = synthesize(&[&file], &m.top, Target::Xc7).map_err(|e| e.to_string())?;
    eprintln!("xc7 sq{bits} P={p}: {:?}", r.cells);
    Ok(json!({ "lut": r.cells.lut, "ff": r.cells.ff, "bram": r.cells.bram }))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let Some(out) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: beat_layout OUTDIR [--quick]");
        std::process::exit(2);
    };
    let out = Path::new(out);
    let run = || -> Result<Vec<serde_json::Value>, String> {
        let mut rows = vec![];
        for bits in [4, 6] {
            for p in [1, 2] {
                let (_, g4) = geometry(bits, 4, p)?;
                let (_, g8) = geometry(bits, 8, p)?;
                let per_step = |g: &AccelGeometry| g.cmd_bits() as f64 / 8.0 / p as f64;
                rows.push(json!({
                    "design": format!("sq{bits}"),
                    "k_per_beat": p,
                    "w_in_4x4": g4.cmd_bits(),
                    "bytes_per_k_step_4x4": per_step(&g4),
                    "w_in_8x8": g8.cmd_bits(),
                    "bytes_per_k_step_8x8": per_step(&g8),
                    "icebreaker_4x4": if quick { json!(null) } else { board(bits, p, out)? },
                    "xc7_8x8": xc7(bits, p, out)?,
                }));
            }
        }
        Ok(rows)
    };
    match run() {
        Ok(rows) => {
            let path = out.join("beat-layout.json");
            let text = serde_json::to_string_pretty(&rows).expect("json");
            if let Err(e) = std::fs::write(&path, text) {
                eprintln!("error: cannot write {}: {e}", path.display());
                std::process::exit(1);
            }
            println!("| design | P | W_IN 4x4 / 8x8 | bytes per K step 4x4 / 8x8 | iCEBreaker 4x4 LC | RAM | Fmax MHz | xc7 8x8 LUT | FF | BRAM |");
            println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            for r in &rows {
                let b = &r["icebreaker_4x4"];
                let x = &r["xc7_8x8"];
                println!(
                    "| {} | {} | {} / {} | {} / {} | {} | {} | {} | {} | {} | {} |",
                    r["design"].as_str().unwrap_or(""),
                    r["k_per_beat"],
                    r["w_in_4x4"],
                    r["w_in_8x8"],
                    r["bytes_per_k_step_4x4"],
                    r["bytes_per_k_step_8x8"],
                    b["lc"],
                    b["ram"],
                    b["fmax_mhz"]
                        .as_f64()
                        .map_or("-".into(), |f| format!("{f:.1}")),
                    x["lut"],
                    x["ff"],
                    x["bram"]
                );
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    }
}
