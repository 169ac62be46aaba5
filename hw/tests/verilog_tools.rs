//! Generated Verilog against the real tools: `verilator --lint-only -Wall` (only the waivers in
//! `tools::LINT_WAIVERS`) and yosys `read_verilog; hierarchy -check -top TOP; proc`.
//! The tools are required: a missing one fails these tests with the install hint.

use shiftkit_hw::generate::{generate, generate_multiplier, generate_pe, write_design};
use shiftkit_hw::tools::{verilator_lint, yosys_check};
use shiftkit_hw::{ArrayConfig, Datapath};

fn check(config: ArrayConfig) {
    let dir = tempfile::tempdir().expect("tempdir");
    let design = generate(&config).unwrap_or_else(|e| panic!("{config}: {e}"));
    let manifest = write_design(&design, dir.path()).unwrap_or_else(|e| panic!("{config}: {e}"));
    let file = dir.path().join(&manifest.files[0]);
    if let Err(e) = verilator_lint(&file, &manifest.top) {
        panic!("{config}: {e}");
    }
    if let Err(e) = yosys_check(&file, &manifest.top) {
        panic!("{config}: {e}");
    }
}

fn sq(rows: usize, cols: usize, bits: u32) -> ArrayConfig {
    ArrayConfig::new(rows, cols, Datapath::Sq { bits }).expect("valid config")
}

#[test]
fn sq4_arrays_lint_clean_and_elaborate() {
    for (r, c) in [(1, 1), (2, 3), (4, 4), (8, 8)] {
        check(sq(r, c, 4));
    }
}

#[test]
fn other_widths_windows_and_accumulators_lint_clean() {
    check(sq(2, 3, 6));
    check(
        sq(3, 2, 8)
            .with_acc_bits(48)
            .and_then(|c| c.with_window(15))
            .expect("valid"),
    );
    check(sq(4, 4, 6).with_acc_bits(25).expect("valid"));
    check(
        sq(2, 2, 4)
            .with_window(0)
            .and_then(|c| c.with_acc_bits(7))
            .expect("valid"),
    );
}

#[test]
fn building_blocks_lint_clean() {
    for bits in [4, 6, 8] {
        let dir = tempfile::tempdir().expect("tempdir");
        for m in [
            generate_multiplier(bits).expect("mul"),
            generate_pe(&sq(1, 1, bits)).expect("pe"),
        ] {
            let file = dir.path().join(format!("{}.v", m.top));
            std::fs::write(&file, &m.verilog).expect("write");
            verilator_lint(&file, &m.top).unwrap_or_else(|e| panic!("{}: {e}", m.top));
            yosys_check(&file, &m.top).unwrap_or_else(|e| panic!("{}: {e}", m.top));
        }
    }
}
