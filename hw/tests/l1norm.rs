//! The generated L1-norm unit against the real tools: `verilator --lint-only -Wall`, yosys
//! `hierarchy -check; proc`, a Verilator simulation of the generated Verilog compared code by
//! code with the golden model, and (ignored by default, slow) the synthesis numbers.
//!
//!     CARGO_TARGET_DIR=... cargo test -p shiftkit-hw --test l1norm -- --include-ignored --nocapture

use shiftkit_hw::l1norm::{
    generate_l1norm, golden, write_l1norm, GeneratedL1Norm, L1NormConfig, GEOMETRIES,
};
use shiftkit_hw::tools::{synth_stats, verilator_lint, yosys_check, SynthTarget};
use shiftkit_hw::HwError;
use std::path::{Path, PathBuf};
use std::process::Command;

fn write(design: &GeneratedL1Norm, dir: &Path) -> PathBuf {
    let file = dir.join(format!("{}.v", design.top));
    std::fs::write(&file, &design.verilog).expect("write Verilog");
    // `L1NORM_KEEP=DIR` keeps a copy of every generated design for inspection.
    if let Some(keep) = std::env::var_os("L1NORM_KEEP") {
        let _ = std::fs::create_dir_all(&keep);
        let _ = std::fs::copy(
            &file,
            Path::new(&keep).join(file.file_name().expect("name")),
        );
    }
    file
}

#[test]
fn l1norm_lints_clean_and_elaborates() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (w, a) in GEOMETRIES {
        for b in [4, 6, 8] {
            for (f, eps) in [(b - 3, 1e-5), (0, 0.0), (b - 1, 1000.0)] {
                if w == 8 && eps > 128.0 {
                    continue;
                }
                let cfg = L1NormConfig::new(b)
                    .with_geometry(w, a)
                    .with_frac_bits(f)
                    .with_eps(eps);
                let d = generate_l1norm(&cfg).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
                assert!(!d.verilog.contains('$'), "every `$` name was rewritten");
                assert!(!d.verilog.contains(" * "), "no multiply operator");
                let file = write(&d, dir.path());
                verilator_lint(&file, &d.top).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
                yosys_check(&file, &d.top).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
            }
        }
    }
}

#[test]
fn l1norm_ports_and_errors() {
    let d = generate_l1norm(&L1NormConfig::new(6)).expect("default sq6");
    assert_eq!(d.top, "shiftkit_l1norm_sq6_w16_n1024");
    let ports: Vec<(String, usize)> = d.ports.iter().map(|p| (p.name.clone(), p.width)).collect();
    let want: Vec<(String, usize)> = [
        ("clock", 1),
        ("reset", 1),
        ("in_valid", 1),
        ("in_data", 16),
        ("in_last", 1),
        ("in_ready", 1),
        ("out_valid", 1),
        ("out_code", 6),
        ("out_last", 1),
        ("out_hold", 1),
    ]
    .iter()
    .map(|(n, w)| (n.to_string(), *w))
    .collect();
    assert_eq!(ports, want);
    assert_eq!(d.params.n_max, 1024);
    assert_eq!(d.params.frac_bits, 3);
    let t = d.params.timing_n_max;
    assert!(t.stage2 > 1024 + 40 && t.stage2 < 1024 + 80, "{t:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let m = write_l1norm(&d, dir.path()).expect("writes");
    assert_eq!(m.files, vec![format!("{}.v", d.top)]);
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(json["parameters"]["bits"], 6);
    assert_eq!(json["ports"][3]["name"], "in_data");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for bad in [
        L1NormConfig::new(5),
        L1NormConfig::new(4).with_frac_bits(4),
        L1NormConfig::new(4).with_eps(f64::INFINITY),
        L1NormConfig::new(4).with_geometry(12, 10),
    ] {
        let e = generate_l1norm(&bad).expect_err("rejected");
        assert!(matches!(e, HwError::Unsupported { .. }), "{e}");
    }
}

/// SplitMix64 (no `rand` dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

const TESTBENCH: &str = r#"
#include "Vtop.h"
#include "verilated.h"
#include <cstdio>
#include <cstdlib>
#include <vector>

// argv: rows.txt codes.txt in_bits code_bits. rows.txt: count, then per row n and n values.
int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    FILE* fin = fopen(argv[1], "r");
    FILE* fout = fopen(argv[2], "w");
    int w = atoi(argv[3]), b = atoi(argv[4]);
    int count = 0;
    if (!fin || !fout || fscanf(fin, "%d", &count) != 1) return 2;
    std::vector<std::vector<long>> rows(count);
    long total = 0;
    for (auto& r : rows) {
        int n = 0;
        if (fscanf(fin, "%d", &n) != 1) return 2;
        r.resize(n);
        for (auto& x : r) if (fscanf(fin, "%ld", &x) != 1) return 2;
        total += n;
    }
    Vtop* t = new Vtop;
    t->clock = 0; t->reset = 0; t->out_hold = 0; t->in_valid = 0; t->in_data = 0; t->in_last = 0;
    t->eval();
    size_t r = 0, i = 0;
    long got = 0, cycle = 0, limit = 40 * total + 400 * (long)count + 1000;
    while (got < total && cycle < limit) {
        bool offer = r < rows.size();
        t->in_valid = offer;
        t->in_data = offer ? (unsigned long)rows[r][i] & ((1ul << w) - 1) : 0;
        t->in_last = offer && i + 1 == rows[r].size();
        t->eval();
        bool accepted = offer && t->in_ready;
        if (t->out_valid) {
            long c = t->out_code;
            if (c >> (b - 1)) c -= 1l << b;
            fprintf(fout, "%ld%s", c, t->out_last ? "\n" : " ");
            got++;
        }
        t->clock = 1; t->eval();
        t->clock = 0; t->eval();
        if (accepted && ++i == rows[r].size()) { r++; i = 0; }
        cycle++;
    }
    fclose(fout);
    printf("%ld\n", cycle);
    delete t;
    return got == total ? 0 : 1;
}
"#;

/// Compile the generated Verilog with Verilator and run `rows` through it.
fn verilator_run(d: &GeneratedL1Norm, rows: &[Vec<i64>], dir: &Path) -> (Vec<Vec<i8>>, u64) {
    let vfile = write(d, dir);
    std::fs::write(dir.join("tb.cpp"), TESTBENCH).expect("tb");
    let obj = dir.join("obj");
    let status = Command::new(std::env::var("SHIFTKIT_VERILATOR").unwrap_or("verilator".into()))
        .args([
            "--cc",
            "--exe",
            "--build",
            "-O2",
            "-j",
            "2",
            "--prefix",
            "Vtop",
            "--top-module",
        ])
        .arg(&d.top)
        .arg("-Mdir")
        .arg(&obj)
        .arg(&vfile)
        .arg(dir.join("tb.cpp"))
        .output()
        .expect("verilator runs");
    assert!(
        status.status.success(),
        "verilator build failed:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let mut text = format!("{}\n", rows.len());
    for r in rows {
        text += &format!("{}", r.len());
        for x in r {
            text += &format!(" {x}");
        }
        text += "\n";
    }
    std::fs::write(dir.join("rows.txt"), text).expect("rows");
    let run = Command::new(obj.join("Vtop"))
        .arg(dir.join("rows.txt"))
        .arg(dir.join("codes.txt"))
        .arg(d.params.in_bits.to_string())
        .arg(d.params.bits.to_string())
        .output()
        .expect("model runs");
    assert!(run.status.success(), "model failed: {run:?}");
    let cycles = String::from_utf8_lossy(&run.stdout)
        .trim()
        .parse()
        .expect("cycles");
    let codes = std::fs::read_to_string(dir.join("codes.txt"))
        .expect("codes")
        .lines()
        .map(|l| {
            l.split_whitespace()
                .map(|c| c.parse().expect("code"))
                .collect()
        })
        .collect();
    (codes, cycles)
}

fn stimulus(rng: &mut Rng, w: u32, n_max: usize, count: usize) -> Vec<Vec<i64>> {
    let lim = 1i64 << (w - 1);
    let mut rows: Vec<Vec<i64>> = vec![
        vec![5],
        vec![-3, 3],
        vec![7; 9],
        (0..n_max).map(|_| rng.range(-lim, lim - 1)).collect(),
        (0..n_max)
            .map(|i| if i == 10 { lim - 1 } else { rng.range(-3, 3) })
            .collect(),
    ];
    for k in 0..count {
        let n = if k % 10 == 0 {
            rng.range(n_max as i64 / 2, n_max as i64)
        } else {
            rng.range(1, 64.min(n_max as i64))
        } as usize;
        let scale = 1i64 << rng.range(0, w as i64 - 1);
        let off = rng.range(-lim / 2, lim / 2);
        rows.push(
            (0..n)
                .map(|_| (off + rng.range(-scale, scale)).clamp(-lim, lim - 1))
                .collect(),
        );
    }
    rows
}

#[test]
fn l1norm_verilator_matches_golden() {
    let mut rng = Rng(0x110e_5eed);
    for cfg in [
        L1NormConfig::new(6),
        L1NormConfig::new(8).with_frac_bits(0).with_eps(0.5),
        L1NormConfig::new(4).with_geometry(8, 6).with_eps(0.0),
    ] {
        let d = generate_l1norm(&cfg).expect("generates");
        let rows = stimulus(&mut rng, cfg.in_bits, cfg.n_max(), 120);
        let dir = tempfile::tempdir().expect("tempdir");
        let (codes, cycles) = verilator_run(&d, &rows, dir.path());
        assert_eq!(codes.len(), rows.len(), "{cfg:?}");
        for (k, (row, got)) in rows.iter().zip(&codes).enumerate() {
            assert_eq!(*got, golden(&cfg, row).expect("golden"), "{cfg:?} row {k}");
        }
        let elems: usize = rows.iter().map(|r| r.len()).sum();
        eprintln!(
            "verilator {}: {} rows, {elems} elements in {cycles} cycles, all codes equal to golden",
            d.top,
            rows.len()
        );
    }
}

#[test]
#[ignore = "slow: yosys synth_ice40 and synth_xilinx of three designs"]
fn l1norm_synth_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    for b in [4, 6, 8] {
        let d = generate_l1norm(&L1NormConfig::new(b)).expect("generates");
        let file = write(&d, dir.path());
        for target in [SynthTarget::Ice40, SynthTarget::Xc7] {
            let s = synth_stats(&file, &d.top, target).expect("synth");
            let bram: usize = s
                .cells_by_type
                .iter()
                .filter(|(k, _)| k.starts_with("SB_RAM") || k.starts_with("RAMB"))
                .map(|(_, n)| n)
                .sum();
            let brams: Vec<String> = s
                .cells_by_type
                .iter()
                .filter(|(k, _)| k.starts_with("SB_RAM") || k.starts_with("RAMB"))
                .map(|(k, n)| format!("{n} x {k}"))
                .collect();
            eprintln!(
                "{} {target:?}: LUT {} FF {} carry {} BRAM {bram} ({})",
                d.top,
                s.luts,
                s.ffs,
                s.carries,
                brams.join(", ")
            );
        }
    }
}
