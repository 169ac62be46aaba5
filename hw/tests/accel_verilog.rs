//! Generated accelerator tops against the real tools: `verilator --lint-only -Wall` (only the
//! waivers in `tools::LINT_WAIVERS`), yosys `hierarchy -check; proc`, and the manifest.

use shiftkit_hw::generate::{generate_design, write_design, DesignKind, Manifest, MANIFEST_FILE};
use shiftkit_hw::tools::{verilator_lint, yosys_check};
use shiftkit_hw::{ArrayConfig, Datapath};

fn sq(rows: usize, cols: usize, bits: u32) -> ArrayConfig {
    ArrayConfig::new(rows, cols, Datapath::Sq { bits }).expect("valid config")
}

fn check(config: ArrayConfig, k_max: usize) -> Manifest {
    let dir = tempfile::tempdir().expect("tempdir");
    let design = generate_design(DesignKind::Accel { k_max }, &config)
        .unwrap_or_else(|e| panic!("{config}: {e}"));
    let m = write_design(&design, dir.path()).unwrap_or_else(|e| panic!("{config}: {e}"));
    let file = dir.path().join(&m.files[0]);
    if let Some(out) = std::env::var_os("SHIFTKIT_ACCEL_DUMP") {
        let _ = std::fs::create_dir_all(&out);
        let _ = std::fs::copy(&file, std::path::Path::new(&out).join(&m.files[0]));
    }
    verilator_lint(&file, &m.top).unwrap_or_else(|e| panic!("{config}: {e}"));
    yosys_check(&file, &m.top).unwrap_or_else(|e| panic!("{config}: {e}"));
    let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).expect("manifest");
    let back: Manifest = serde_json::from_str(&text).expect("manifest parses");
    assert_eq!(back, m);
    m
}

#[test]
fn accel_tops_lint_clean_and_elaborate() {
    let m = check(sq(4, 4, 4), 256);
    assert_eq!(m.top, "shiftkit_accel_sq4_4x4");
    let a = m.accel.expect("accel parameters");
    // L = 4 lanes of 8 bits + the exponent byte: 40 bits -> 64; 4 lanes of 32 bits out.
    assert_eq!(
        (a.cmd_bits, a.rsp_bits, a.k_max, a.exp_lsb),
        (64, 128, 256, 32)
    );
    let widths: Vec<(&str, usize)> = m.ports.iter().map(|p| (p.name.as_str(), p.width)).collect();
    assert_eq!(
        widths,
        vec![
            ("clock", 1),
            ("reset", 1),
            ("cmd_data", 64),
            ("cmd_valid", 1),
            ("cmd_ready", 1),
            ("rsp_data", 128),
            ("rsp_valid", 1),
            ("rsp_ready", 1)
        ]
    );
    check(sq(2, 3, 6), 16);
    check(
        sq(3, 2, 8)
            .with_acc_bits(48)
            .and_then(|c| c.with_window(15))
            .expect("valid"),
        100,
    );
    check(sq(1, 1, 4), 1);
}

#[test]
fn accel_8x8_lints_clean() {
    let m = check(sq(8, 8, 4), 256);
    assert_eq!(m.accel.expect("accel").cmd_bits, 96);
}

#[test]
fn fp16_tops_lint_clean_and_bad_depths_are_clear_errors() {
    let fp = ArrayConfig::new(2, 3, Datapath::Fp16).expect("valid");
    let m = check(fp, 32);
    assert_eq!(m.top, "shiftkit_accel_fp16_2x3");
    let a = m.accel.expect("accel parameters");
    // L = max(2R, C) = 4 lanes of 16 bits + the (unused) exponent byte: 72 bits -> 96.
    assert_eq!(
        (a.lanes, a.lane_bits, a.cmd_bits, a.rsp_bits, a.has_exp),
        (4, 16, 96, 96, false)
    );
    check(ArrayConfig::new(4, 4, Datapath::Fp16).expect("valid"), 256);
    let bad = generate_design(DesignKind::Accel { k_max: 0 }, &sq(2, 2, 4)).expect_err("depth 0");
    assert!(bad.to_string().contains("K_MAX"), "{bad}");
}
