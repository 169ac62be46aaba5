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
    // Two K steps per beat, each L = 4 lanes of 4 bits + the 4-bit exponent: 40 bits; 4 lanes
    // of 32 bits out.
    assert_eq!((a.k_per_beat, a.step_bits, a.exp_lsb), (2, 20, 16));
    assert_eq!((a.cmd_bits, a.rsp_bits, a.k_max), (40, 128, 256));
    let widths: Vec<(&str, usize)> = m.ports.iter().map(|p| (p.name.as_str(), p.width)).collect();
    assert_eq!(
        widths,
        vec![
            ("clock", 1),
            ("reset", 1),
            ("cmd_data", 40),
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
    // Two K steps of 8 x 4 + 4 bits.
    assert_eq!(m.accel.expect("accel").cmd_bits, 72);
}

/// One and four K steps per beat (the layouts `docs/accelerator.md` compares), and a K step
/// that crosses a word boundary of the beat.
#[test]
fn every_k_per_beat_lints_clean() {
    use shiftkit_hw::accel::AccelGeometry;
    use shiftkit_hw::generate::generate_accel_for;
    for (config, p, cmd_bits) in [
        (sq(4, 4, 4), 1, 32),
        (sq(4, 4, 4), 4, 80),
        (sq(3, 5, 6), 2, 72),
        (sq(2, 3, 8), 1, 32),
    ] {
        let geom = AccelGeometry::new(&config, 16)
            .and_then(|g| g.with_k_per_beat(p))
            .expect("geometry");
        assert_eq!(geom.cmd_bits(), cmd_bits, "{config} P = {p}");
        let d = generate_accel_for(&config, &geom).expect("generates");
        let dir = tempfile::tempdir().expect("tempdir");
        let m = write_design(&d, dir.path()).expect("writes");
        assert_eq!(m.accel.expect("accel").k_per_beat, p);
        let file = dir.path().join(&m.files[0]);
        verilator_lint(&file, &m.top).unwrap_or_else(|e| panic!("{config} P = {p}: {e}"));
        yosys_check(&file, &m.top).unwrap_or_else(|e| panic!("{config} P = {p}: {e}"));
    }
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

/// The L1-norm unit in the manifest, and an SQ top generated without it (opcode 6 unknown).
#[test]
fn accel_l1norm_option_lints_clean_and_is_in_the_manifest() {
    use shiftkit_hw::accel::default_l1norm;
    use shiftkit_hw::generate::generate_accel_with_l1norm;
    let m = check(sq(4, 4, 6), 256);
    let l1 = m
        .accel
        .expect("accel")
        .l1norm
        .expect("SQ tops have the unit");
    assert_eq!(
        (l1.in_bits, l1.in_lanes, l1.n_max, l1.bits, l1.frac_bits),
        (16, 3, 1024, 6, 3)
    );
    assert_eq!((l1.codes_per_beat, l1.config), (16, default_l1norm(6)));
    let dir = tempfile::tempdir().expect("tempdir");
    let d = generate_accel_with_l1norm(&sq(2, 2, 4), 16, None).expect("generates");
    let m = write_design(&d, dir.path()).expect("writes");
    let file = dir.path().join(&m.files[0]);
    verilator_lint(&file, &m.top).expect("lint");
    yosys_check(&file, &m.top).expect("yosys");
    assert_eq!(m.accel.expect("accel").l1norm, None);
    let fp16 = ArrayConfig::new(2, 2, Datapath::Fp16).expect("valid");
    let e = generate_accel_with_l1norm(&fp16, 16, Some(default_l1norm(4))).expect_err("no unit");
    assert!(e.to_string().contains("normalize on the host"), "{e}");
}
