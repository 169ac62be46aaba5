//! `shiftkit gemm` end to end through the binary: results, and the bad-input rules of SPEC §7
//! (one clear line, non-zero exit, no output file left behind).

mod common;

use common::shiftkit;

use common::sample;
use npyz::WriterBuilder;
use shiftkit::engine::{self, ArrayShape, EngineKind, GemmOp};
use shiftkit::npy::{read_matrix, write_matrix};
use shiftkit::{Format, Matrix};
use std::path::{Path, PathBuf};
use std::process::Output;

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Case {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn s(&self, name: &str) -> String {
        self.path(name).to_string_lossy().into_owned()
    }
    fn write(&self, name: &str, m: &Matrix) -> String {
        write_matrix(&self.path(name), m).expect("write npy");
        self.s(name)
    }
    /// Only the inputs are in the directory: no output, no temporary file.
    fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// Exit non-zero, one line on stderr containing `needle`, nothing on stdout.
fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "stderr must be one line: {stderr:?}"
    );
    assert!(
        stderr.contains(needle),
        "stderr {stderr:?} should mention {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn gemm_writes_what_the_engine_computes_for_every_format() {
    let case = Case::new();
    let a = sample(17, 40, 3, 30.0);
    let b = sample(40, 9, 4, 1.0);
    let (pa, pb) = (case.write("a.npy", &a), case.write("b.npy", &b));
    for format in Format::ALL {
        let out = case.s(&format!("c_{format}.npy"));
        let json = case.s(&format!("c_{format}.json"));
        let res = shiftkit(&[
            "gemm",
            "--a",
            &pa,
            "--b",
            &pb,
            "--format",
            format.name(),
            "--out",
            &out,
            "--json",
            &json,
        ]);
        assert!(
            res.status.success(),
            "{format}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let got = read_matrix(Path::new(&out)).unwrap();
        let kind = if format == Format::Fp32 {
            EngineKind::Cpu
        } else {
            EngineKind::Golden
        };
        let want = engine::create(kind, ArrayShape::default())
            .unwrap()
            .gemm(&a, &b, &GemmOp::new(format))
            .unwrap();
        assert_eq!(got, want, "{format}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(report["counters"]["macs"], 17 * 40 * 9);
        if format != Format::Fp32 {
            assert!(report["counters"]["cycles"].as_u64().unwrap() > 0);
        }
    }
}

#[test]
fn axes_and_window_flags_reach_the_quantizer() {
    let case = Case::new();
    let a = sample(6, 20, 1, 100.0);
    let b = sample(20, 5, 2, 1.0);
    let (pa, pb) = (case.write("a.npy", &a), case.write("b.npy", &b));
    let out = case.s("c.npy");
    let res = shiftkit(&[
        "gemm", "--a", &pa, "--b", &pb, "--format", "sq4", "--a-axis", "m", "--b-axis", "k",
        "--window", "3", "--out", &out,
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let mut op = GemmOp::new(Format::Sq4);
    op.a_axis = shiftkit::format::AAxis::M;
    op.b_axis = shiftkit::format::BAxis::K;
    op.window = 3;
    let want = engine::create(EngineKind::Golden, ArrayShape::default())
        .unwrap()
        .gemm(&a, &b, &op)
        .unwrap();
    assert_eq!(read_matrix(Path::new(&out)).unwrap(), want);
}

#[test]
fn shape_mismatch_is_one_line_and_leaves_no_output() {
    let case = Case::new();
    let pa = case.write("a.npy", &sample(3, 4, 1, 1.0));
    let pb = case.write("b.npy", &sample(5, 2, 1, 1.0));
    let out = shiftkit(&[
        "gemm",
        "--a",
        &pa,
        "--b",
        &pb,
        "--format",
        "sq6",
        "--out",
        &case.s("c.npy"),
    ]);
    assert_one_line_error(&out, "A is 3x4 and B is 5x2");
    assert_eq!(case.files(), ["a.npy", "b.npy"]);
}

#[test]
fn nan_and_inf_are_named_with_their_position() {
    let case = Case::new();
    let pb = case.write("b.npy", &sample(4, 2, 1, 1.0));
    for (bad, word) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let mut a = sample(3, 4, 1, 1.0);
        a.data[6] = bad;
        let pa = case.write("a.npy", &a);
        for format in ["fp32", "fp16", "sq4"] {
            let out = shiftkit(&[
                "gemm",
                "--a",
                &pa,
                "--b",
                &pb,
                "--format",
                format,
                "--out",
                &case.s("c.npy"),
            ]);
            assert_one_line_error(
                &out,
                &format!("A has a non-finite value ({word}) at row 1, col 2"),
            );
        }
    }
    assert_eq!(case.files(), ["a.npy", "b.npy"]);
}

#[test]
fn fp16_overflow_is_an_error_not_infinity() {
    let case = Case::new();
    let mut a = sample(2, 3, 1, 1.0);
    a.data[1] = 1e6;
    let (pa, pb) = (
        case.write("a.npy", &a),
        case.write("b.npy", &sample(3, 2, 1, 1.0)),
    );
    let out = shiftkit(&[
        "gemm",
        "--a",
        &pa,
        "--b",
        &pb,
        "--format",
        "fp16",
        "--out",
        &case.s("c.npy"),
    ]);
    assert_one_line_error(&out, "overflows binary16");
}

#[test]
fn corrupt_truncated_and_wrong_dtype_files_are_explained() {
    let case = Case::new();
    let pb = case.write("b.npy", &sample(4, 2, 1, 1.0));
    std::fs::write(case.path("garbage.npy"), b"this is not an npy file at all").unwrap();
    let full = std::fs::read(case.path("b.npy")).unwrap();
    std::fs::write(case.path("short.npy"), &full[..full.len() - 5]).unwrap();
    {
        let mut f = std::fs::File::create(case.path("f64.npy")).unwrap();
        let mut w = npyz::WriteOptions::<f64>::new()
            .default_dtype()
            .shape(&[3, 4])
            .writer(&mut f)
            .begin_nd()
            .unwrap();
        w.extend((0..12).map(|i| i as f64)).unwrap();
        w.finish().unwrap();
    }
    {
        let mut f = std::fs::File::create(case.path("3d.npy")).unwrap();
        let mut w = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&[2, 2, 1])
            .writer(&mut f)
            .begin_nd()
            .unwrap();
        w.extend((0..4).map(|i| i as f32)).unwrap();
        w.finish().unwrap();
    }
    let cases = [
        ("garbage.npy", "not a valid NPY file"),
        ("short.npy", "truncated"),
        (
            "f64.npy",
            "dtype <f8 is not supported: save the array as float32",
        ),
        ("3d.npy", "must be 2-D"),
        ("missing.npy", "cannot open"),
    ];
    for (name, needle) in cases {
        let out = shiftkit(&[
            "gemm",
            "--a",
            &case.s(name),
            "--b",
            &pb,
            "--format",
            "sq6",
            "--out",
            &case.s("c.npy"),
        ]);
        assert_one_line_error(&out, needle);
        assert!(!case.path("c.npy").exists());
    }
}

#[test]
fn unknown_format_engine_and_out_of_range_flags_are_one_line() {
    let case = Case::new();
    let (pa, pb) = (
        case.write("a.npy", &sample(2, 3, 1, 1.0)),
        case.write("b.npy", &sample(3, 2, 1, 1.0)),
    );
    let c = case.s("c.npy");
    let base = [
        "gemm",
        "--a",
        pa.as_str(),
        "--b",
        pb.as_str(),
        "--out",
        c.as_str(),
    ];
    let run = |extra: &[&str]| shiftkit(&[&base[..], extra].concat());
    assert_one_line_error(
        &run(&["--format", "sq5"]),
        "invalid value 'sq5' for '--format",
    );
    assert_one_line_error(
        &run(&["--format", "int8"]),
        "possible values: fp32, fp16, sq4, sq6, sq8",
    );
    assert_one_line_error(
        &run(&["--format", "sq6", "--window", "16"]),
        "use --window 0..=15",
    );
    assert_one_line_error(
        &run(&["--format", "sq6", "--engine", "cpu"]),
        "the cpu engine computes fp32 only",
    );
    assert_one_line_error(
        &run(&["--format", "fp32", "--engine", "golden"]),
        "use --engine cpu",
    );
    assert_one_line_error(
        &run(&["--format", "sq6", "--rows", "0"]),
        "rows and cols must be 1..=64",
    );
    assert_one_line_error(
        &run(&["--format", "sq8", "--acc-bits", "20"]),
        "--acc-bits 29..=48",
    );
    assert_one_line_error(
        &run(&["--format", "sq6", "--a-axis", "n"]),
        "invalid value 'n' for '--a-axis",
    );
    assert_eq!(case.files(), ["a.npy", "b.npy"]);
}

#[test]
fn zero_sized_input_is_rejected() {
    let case = Case::new();
    let pa = case.write("a.npy", &Matrix::zeros(0, 3));
    let pb = case.write("b.npy", &sample(3, 2, 1, 1.0));
    let out = shiftkit(&[
        "gemm",
        "--a",
        &pa,
        "--b",
        &pb,
        "--format",
        "sq4",
        "--out",
        &case.s("c.npy"),
    ]);
    assert_one_line_error(&out, "A (0x3) is empty");
}

#[test]
fn sq8_with_the_widest_window_picks_a_wide_enough_accumulator() {
    let case = Case::new();
    let (pa, pb) = (
        case.write("a.npy", &sample(3, 50, 1, 1e3)),
        case.write("b.npy", &sample(50, 2, 1, 1.0)),
    );
    let out = shiftkit(&[
        "gemm",
        "--a",
        &pa,
        "--b",
        &pb,
        "--format",
        "sq8",
        "--window",
        "15",
        "--out",
        &case.s("c.npy"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn link_model_reports_bytes_time_and_bound_and_refuses_bad_links() {
    let case = Case::new();
    let (pa, pb) = (
        case.write("a.npy", &sample(32, 300, 1, 1.0)),
        case.write("b.npy", &sample(300, 24, 2, 1.0)),
    );
    let (c, json) = (case.s("c.npy"), case.s("c.json"));
    let base = [
        "gemm",
        "--a",
        pa.as_str(),
        "--b",
        pb.as_str(),
        "--out",
        c.as_str(),
    ];
    let run = |extra: &[&str]| shiftkit(&[&base[..], extra].concat());
    let mut bounds = vec![];
    for link in ["uart:3M", "pcie:4G"] {
        let res = run(&["--format", "sq4", "--link", link, "--json", &json]);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let l = &r["link"];
        assert_eq!(l["spec"], link);
        assert_eq!(l["bytes_to_device"], r["counters"]["bytes_to_device"]);
        assert_eq!(l["bytes_from_device"], r["counters"]["bytes_from_device"]);
        assert_eq!(l["compute_cycles"], r["counters"]["cycles"]);
        let f = |k: &str| l[k].as_f64().unwrap();
        assert!(f("time_s") >= f("compute_s").max(f("transfer_s")) * (1.0 - 1e-9));
        bounds.push(l["bound"].as_str().unwrap().to_string());
        assert!(String::from_utf8_lossy(&res.stdout).contains("-bound)"));
    }
    assert_eq!(bounds, ["link", "compute"]);
    std::fs::remove_file(&json).unwrap();
    std::fs::remove_file(&c).unwrap();
    assert_one_line_error(
        &run(&["--format", "sq4", "--link", "usb:1G"]),
        "use uart:BAUD (uart:3M), axi:BITS@HZ (axi:64@100M) or pcie:BYTES_PER_S (pcie:4G)",
    );
    assert_one_line_error(
        &run(&["--format", "sq4", "--link", "uart:3M", "--clock", "fast"]),
        "is not a positive frequency",
    );
    assert_one_line_error(
        &run(&["--format", "fp32", "--link", "uart:3M"]),
        "moves nothing over a link",
    );
    assert_eq!(case.files(), ["a.npy", "b.npy"]);
}
