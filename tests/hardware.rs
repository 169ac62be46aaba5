//! `shiftkit gen` and `shiftkit synth` through the binary: every design kind generates, lints
//! clean and elaborates; the 4x4 designs synthesize for iCE40 and xc7 with sane JSON.

mod common;

use common::shiftkit;

use std::path::Path;
use std::process::Output;

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Design kinds that `gen` supports today, at a small size.
const DESIGNS: &[&str] = &[
    "sq4",
    "sq6",
    "sq8",
    "fp16",
    "l1norm",
    "accel-sq4",
    "accel-sq6",
    "accel-sq8",
];

#[test]
fn every_design_generates_lints_and_elaborates() {
    let tmp = tempfile::tempdir().unwrap();
    for design in DESIGNS {
        let dir = tmp.path().join(design);
        ok(&shiftkit(&[
            "gen",
            "--design",
            design,
            "--rows",
            "2",
            "--cols",
            "3",
            "--out",
            dir.to_str().unwrap(),
        ]));
        let m = manifest(&dir);
        let top = m["top"].as_str().unwrap();
        let file = dir.join(m["files"][0].as_str().unwrap());
        shiftkit_hw::tools::verilator_lint(&file, top).unwrap();
        shiftkit_hw::tools::yosys_check(&file, top).unwrap();
    }
}

#[test]
fn synth_reports_cells_for_ice40_and_xc7() {
    let tmp = tempfile::tempdir().unwrap();
    for (design, target) in [("sq4", "ice40"), ("sq4", "xc7-nodsp"), ("sq6", "xc7")] {
        let json = tmp.path().join(format!("{design}-{target}.json"));
        ok(&shiftkit(&[
            "synth",
            "--design",
            design,
            "--rows",
            "4",
            "--cols",
            "4",
            "--target",
            target,
            "--json",
            json.to_str().unwrap(),
        ]));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(r["design"], *design);
        assert_eq!(r["target"], *target);
        assert_eq!((r["rows"].as_u64(), r["cols"].as_u64()), (Some(4), Some(4)));
        assert!(r["yosys"].as_str().unwrap().starts_with("Yosys"));
        let lut = r["cells"]["lut"].as_u64().unwrap();
        let ff = r["cells"]["ff"].as_u64().unwrap();
        // 16 PEs with 32-bit accumulators and drain registers: at least 1,000 flip-flops and
        // some hundreds of LUTs, far from the budget of an FP16 array.
        assert!(
            ff >= 1000 && (500..8000).contains(&lut),
            "{design} {target}: {lut} LUT {ff} FF"
        );
        for key in ["carry", "dsp", "bram"] {
            assert!(r["cells"][key].is_u64(), "{key}");
        }
    }
}

#[test]
fn bad_hardware_flags_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    for (args, needle) in [
        (
            vec!["gen", "--design", "sq4", "--rows", "0", "--cols", "4"],
            "rows and cols must be 1..=64",
        ),
        (
            vec!["gen", "--design", "sq5", "--rows", "2", "--cols", "4"],
            "invalid value 'sq5' for '--design",
        ),
        (
            vec![
                "gen", "--design", "sq6", "--rows", "2", "--cols", "4", "--window", "16",
            ],
            "use --window 0..=15",
        ),
    ] {
        let res = shiftkit(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success());
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr} should mention {needle}");
        assert!(!out.exists());
    }
    let res = shiftkit(&[
        "synth",
        "--design",
        "sq4",
        "--rows",
        "2",
        "--cols",
        "2",
        "--target",
        "virtex2",
        "--json",
        out.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&res.stderr).contains("unknown target 'virtex2'"));
}

#[test]
fn report_writes_markdown_json_and_chart_with_fp16_ratios() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("report");
    let report = || -> serde_json::Value {
        ok(&shiftkit(&[
            "report",
            "--sizes",
            "2",
            "--designs",
            "sq4,fp16",
            "--targets",
            "ice40",
            "--no-fmax",
            "--jobs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]));
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
    };
    let sq4_of = |r: &serde_json::Value| -> serde_json::Value {
        let rows = r["resources"].as_array().unwrap();
        rows.iter().find(|e| e["design"] == "sq4").unwrap().clone()
    };
    let r = report();
    assert_eq!(r["resources"].as_array().unwrap().len(), 2);
    let sq4 = sq4_of(&r);
    let ratio = sq4["lut_ratio_vs_fp16"].as_f64().unwrap();
    assert!(ratio > 0.02 && ratio < 0.3, "sq4 / fp16 LUT ratio {ratio}");
    assert!(std::fs::read_to_string(out.join("report.md"))
        .unwrap()
        .contains("| sq4 | 2x2 |"));
    assert!(std::fs::metadata(out.join("report.png")).unwrap().len() > 1000);

    // A rerun reuses the cached synthesis (a planted count shows through) unless its key is stale.
    let real_lut = sq4["cells"]["lut"].as_u64().unwrap();
    let entry_path = out.join("designs/sq4_2x2/synth-ice40.json");
    let entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&entry_path).unwrap()).unwrap();
    let sq4_lut_after = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut e = entry.clone();
        edit(&mut e);
        std::fs::write(&entry_path, serde_json::to_string(&e).unwrap()).unwrap();
        sq4_of(&report())["cells"]["lut"].as_u64().unwrap()
    };
    assert_eq!(
        sq4_lut_after(&|e| e["resources"]["cells"]["lut"] = 1.into()),
        1
    );
    assert_eq!(
        sq4_lut_after(&|e| {
            e["resources"]["cells"]["lut"] = 1.into();
            e["key"] = "stale".into();
        }),
        real_lut
    );
}

#[test]
fn icebreaker_bitstream_builds_with_timing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bs");
    ok(&shiftkit(&[
        "bitstream",
        "--board",
        "icebreaker",
        "--design",
        "accel-sq4",
        "--rows",
        "2",
        "--cols",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]));
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("timing.json")).unwrap()).unwrap();
    assert!(t["fmax_mhz"].as_f64().unwrap() > 1.0, "{t}");
    let bin = t["bitstream"].as_str().unwrap();
    assert!(std::fs::metadata(bin).unwrap().len() > 10_000);
    let res = shiftkit(&[
        "bitstream",
        "--board",
        "zedboard",
        "--design",
        "accel-sq4",
        "--rows",
        "2",
        "--cols",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        !res.status.success()
            && stderr.trim_end().lines().count() == 1
            && stderr.contains("unknown board"),
        "{stderr}"
    );
}
