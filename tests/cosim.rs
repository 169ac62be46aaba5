//! Co-simulation: the `rtl` engine (the generated accelerator top under Verilator) against the
//! `golden` engine, through the `Engine` trait and through the binary. Randomized GEMMs over
//! every datapath (sq4, sq6, sq8, fp16), both channel axes of each operand, nearest-even and
//! stochastic rounding, two windows, small arrays, shapes that are not multiples of the array
//! and K over several chunks (accumulator-bound chunks and `K_MAX`): the bits of C and every
//! counter (cycles, MACs, bytes) must be identical.
//!
//! Each test builds one model (cached in the target directory, shared with the sim crate's
//! tests); the arrays are small so that a cold build stays short.

use shiftkit::engine::golden::GoldenEngine;
use shiftkit::engine::rtl::RtlEngine;
use shiftkit::engine::{ArrayShape, Engine, GemmOp};
use shiftkit::format::{AAxis, BAxis, Format};
use shiftkit::npy::{read_matrix, write_matrix};
use shiftkit::rng::SplitMix64;
use shiftkit::sq::Rounding;
use shiftkit::Matrix;
use shiftkit_sim::BuildOptions;
use std::path::PathBuf;
use std::process::{Command, Output};

fn cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shiftkit-sim-cache")
}

fn rtl_engine(shape: ArrayShape) -> RtlEngine {
    let opts = BuildOptions {
        cache_dir: Some(cache()),
        ..BuildOptions::default()
    };
    let mut e = RtlEngine::new(shape, opts).expect("verilator is installed");
    e.set_progress(false);
    e
}

/// One accelerator design and the random GEMMs run on it.
struct Design {
    format: Format,
    shape: ArrayShape,
    window: u32,
    /// Largest M, K, N drawn.
    max: (usize, usize, usize),
}

/// An operand with Gaussian values, some channels scaled up (so the exponents spread over the
/// window), some exact zeros.
fn operand(rows: usize, cols: usize, rng: &mut SplitMix64) -> Matrix {
    let outlier_col = rng.below(cols as u64) as usize;
    let outlier_row = rng.below(rows as u64) as usize;
    let scale = [1.0, 40.0, 1e-3][rng.below(3) as usize];
    Matrix::from_fn(rows, cols, |r, c| {
        let v = rng.normal() * scale;
        match (r == outlier_row, c == outlier_col) {
            _ if rng.below(16) == 0 => 0.0,
            (true, _) => (v * 9.0) as f32,
            (_, true) => (v * 30.0) as f32,
            _ => v as f32,
        }
    })
}

fn random_op(d: &Design, rng: &mut SplitMix64) -> GemmOp {
    let mut op = GemmOp::new(d.format);
    op.window = d.window;
    op.a_axis = if rng.below(2) == 0 {
        AAxis::K
    } else {
        AAxis::M
    };
    op.b_axis = if rng.below(2) == 0 {
        BAxis::K
    } else {
        BAxis::N
    };
    let rounding = |rng: &mut SplitMix64| {
        if rng.below(2) == 0 {
            Rounding::NearestEven
        } else {
            Rounding::Stochastic {
                seed: rng.next_u64(),
            }
        }
    };
    op.a_rounding = rounding(rng);
    op.b_rounding = rounding(rng);
    op
}

/// `cases` random GEMMs on `d`: identical bits and identical counters on both engines.
fn rtl_equals_golden(d: Design, cases: usize, seed: u64) {
    let mut rtl = rtl_engine(d.shape);
    let mut golden = GoldenEngine::new(d.shape);
    let mut rng = SplitMix64::new(seed);
    let mut nonzero = 0;
    for case in 0..cases {
        // The first case is as large as allowed (K over several chunks); the others random.
        let pick = |hi: usize, rng: &mut SplitMix64| {
            if case == 0 {
                hi
            } else {
                1 + rng.below(hi as u64) as usize
            }
        };
        let (m, k, n) = (
            pick(d.max.0, &mut rng),
            pick(d.max.1, &mut rng),
            pick(d.max.2, &mut rng),
        );
        let (a, b) = (operand(m, k, &mut rng), operand(k, n, &mut rng));
        let op = random_op(&d, &mut rng);
        rtl.reset_counters();
        golden.reset_counters();
        let want = golden.gemm(&a, &b, &op).expect("golden runs");
        let got = rtl.gemm(&a, &b, &op).expect("rtl runs");
        let what = format!(
            "{} {}x{} E={} case {case}: {m}x{k}x{n} {op:?}",
            d.format, d.shape.rows, d.shape.cols, d.window
        );
        assert_eq!((got.rows, got.cols), (m, n), "{what}");
        for (i, (g, w)) in got.data.iter().zip(&want.data).enumerate() {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{what}: C[{}][{}] rtl {g:e} golden {w:e}",
                i / n,
                i % n
            );
        }
        assert_eq!(rtl.counters(), golden.counters(), "{what}");
        assert!(rtl.busy_cycles() > 0 && rtl.counters().cycles > rtl.busy_cycles());
        nonzero += want.data.iter().filter(|v| **v != 0.0).count();
    }
    assert!(
        nonzero > 0,
        "every result was zero: the comparison proved nothing"
    );
}

#[test]
fn sq4_2x3_window7_k_over_k_max() {
    // K up to 300 > K_MAX = 256: two chunks even where the accumulator bound allows more.
    let shape = ArrayShape {
        rows: 2,
        cols: 3,
        acc_bits: None,
    };
    let d = Design {
        format: Format::Sq4,
        shape,
        window: 7,
        max: (7, 300, 8),
    };
    rtl_equals_golden(d, 16, 41);
}

#[test]
fn sq6_3x2_window3_narrow_accumulator() {
    // acc_bits 17 = the narrowest that holds one shifted product: K chunks of 1 (both operands
    // per-K), 8 (one per-K) or 68 (none), so even short GEMMs stream many chunks.
    let shape = ArrayShape {
        rows: 3,
        cols: 2,
        acc_bits: Some(17),
    };
    let d = Design {
        format: Format::Sq6,
        shape,
        window: 3,
        max: (8, 90, 7),
    };
    rtl_equals_golden(d, 20, 42);
}

#[test]
fn sq8_4x4_window7() {
    // 32-bit accumulators: chunks of 8 when both operands are per-K, 1040 -> K_MAX otherwise.
    let shape = ArrayShape {
        rows: 4,
        cols: 4,
        acc_bits: None,
    };
    let d = Design {
        format: Format::Sq8,
        shape,
        window: 7,
        max: (11, 70, 10),
    };
    rtl_equals_golden(d, 16, 43);
}

#[test]
fn fp16_2x3_chains_k_chunks_in_the_array() {
    // Tiles are 4 x 3; K up to 300 streams as COMPUTE-with-hold chunks of K_MAX.
    let shape = ArrayShape {
        rows: 2,
        cols: 3,
        acc_bits: None,
    };
    let d = Design {
        format: Format::Fp16,
        shape,
        window: 7,
        max: (9, 300, 7),
    };
    rtl_equals_golden(d, 16, 44);
}

/// Many more random GEMMs on the same four designs (minutes): `cargo test --test cosim -- --ignored`.
#[test]
#[ignore]
fn many_random_gemms_on_every_design() {
    let shape = |rows, cols, acc_bits| ArrayShape {
        rows,
        cols,
        acc_bits,
    };
    let designs = [
        (Format::Sq4, shape(2, 3, None), 7, (7, 300, 8)),
        (Format::Sq6, shape(3, 2, Some(17)), 3, (8, 90, 7)),
        (Format::Sq8, shape(4, 4, None), 7, (11, 70, 10)),
        (Format::Fp16, shape(2, 3, None), 7, (9, 300, 7)),
    ];
    for (i, (format, shape, window, max)) in designs.into_iter().enumerate() {
        let d = Design {
            format,
            shape,
            window,
            max,
        };
        rtl_equals_golden(d, 250, 1000 + i as u64);
    }
}

// ---- the binary -------------------------------------------------------------------------

fn shiftkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shiftkit"))
        .args(args)
        .env("SHIFTKIT_SIM_CACHE", cache())
        .output()
        .expect("the binary runs")
}

fn assert_one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.contains(needle),
        "{stderr:?} should mention {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn files(dir: &tempfile::TempDir) -> usize {
    std::fs::read_dir(dir.path()).expect("dir").count()
}

#[test]
fn sim_cli_reports_a_bit_exact_run() {
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("sim.json");
    let trace = dir.path().join("wave.fst");
    // The sq8 4x4 design of `sq8_4x4_window7` (one model build for both tests).
    let out = shiftkit(&[
        "sim",
        "--design",
        "accel-sq8",
        "--rows",
        "4",
        "--cols",
        "4",
        "--m",
        "9",
        "--k",
        "40",
        "--n",
        "7",
        "--seed",
        "5",
        "--trace",
        trace.to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("bit-exact"), "{stdout}");
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid json");
    for field in [
        "design",
        "rows",
        "cols",
        "m",
        "k",
        "n",
        "cycles",
        "model_cycles",
        "macs",
        "utilization",
        "bit_exact",
        "sim_cycles_per_s",
        "wall_s",
    ] {
        assert!(r.get(field).is_some(), "missing {field}: {r}");
    }
    assert_eq!(r["design"], "accel-sq8");
    assert_eq!(r["bit_exact"], true);
    assert_eq!(r["macs"], 9 * 40 * 7);
    assert_eq!(r["cycles"], r["model_cycles"]);
    let cycles = r["cycles"].as_u64().expect("cycles");
    let util = r["utilization"].as_f64().expect("utilization");
    assert!((util - (9 * 40 * 7) as f64 / (16 * cycles) as f64).abs() < 1e-12);
    assert!(std::fs::metadata(&trace).expect("trace written").len() > 0);
}

#[test]
fn sim_cli_rejects_bad_input_in_one_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("sim.json");
    let j = json.to_str().expect("utf-8");
    // `sim --design sq6 --rows 2 --cols 2 --json PATH`, with `extra` flags replacing those.
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["sim".to_string()];
        for (flag, value) in [("--design", "sq6"), ("--rows", "2"), ("--cols", "2")] {
            if !extra.contains(&flag) {
                v.extend([flag.to_string(), value.to_string()]);
            }
        }
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(["--json".to_string(), j.to_string()]);
        v
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        shiftkit(&refs)
    };
    let cases: [(&[&str], &str); 6] = [
        (&["--m", "0"], "--m must be at least 1"),
        (&["--window", "16"], "window"),
        (&["--acc-bits", "8"], "acc"),
        (&["--rows", "0"], "rows and cols must be 1..=64"),
        (&["--trace", "wave.txt"], ".fst or .vcd"),
        (&["--design", "fp32"], "not an accelerator design"),
    ];
    for (extra, needle) in cases {
        assert_one_line_error(&run(base(extra)), needle);
    }
    assert_eq!(files(&dir), 0, "no output file after bad input");
    // No Verilator: the install hint, in one line.
    let out = Command::new(env!("CARGO_BIN_EXE_shiftkit"))
        .args(base(&[]))
        .env("SHIFTKIT_VERILATOR", dir.path().join("no-such-verilator"))
        .output()
        .expect("the binary runs");
    assert_one_line_error(&out, "apt-get install verilator");
    assert_eq!(files(&dir), 0);
}

#[test]
fn gemm_cli_rtl_writes_the_same_file_as_golden() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut rng = SplitMix64::new(9);
    let (a, b) = (operand(10, 37, &mut rng), operand(37, 6, &mut rng));
    let (pa, pb) = (dir.path().join("a.npy"), dir.path().join("b.npy"));
    write_matrix(&pa, &a).expect("write");
    write_matrix(&pb, &b).expect("write");
    let s = |p: &std::path::Path| p.to_str().expect("utf-8").to_string();
    let mut outputs = vec![];
    // The sq8 4x4 and fp16 2x3 designs of the engine tests.
    for (format, rows, cols) in [("sq8", "4", "4"), ("fp16", "2", "3")] {
        for engine in ["golden", "rtl"] {
            let out = dir.path().join(format!("c_{format}_{engine}.npy"));
            let res = shiftkit(&[
                "gemm",
                "--a",
                &s(&pa),
                "--b",
                &s(&pb),
                "--format",
                format,
                "--engine",
                engine,
                "--rows",
                rows,
                "--cols",
                cols,
                "--a-axis",
                "m",
                "--out",
                &s(&out),
            ]);
            assert!(
                res.status.success(),
                "{format} {engine}: {}",
                String::from_utf8_lossy(&res.stderr)
            );
            outputs.push(out);
        }
    }
    for pair in outputs.chunks(2) {
        let (golden, rtl) = (
            std::fs::read(&pair[0]).expect("golden"),
            std::fs::read(&pair[1]).expect("rtl"),
        );
        assert_eq!(golden, rtl, "{:?} differs from {:?}", pair[1], pair[0]);
        let c = read_matrix(&pair[1]).expect("npy");
        assert_eq!((c.rows, c.cols), (10, 6));
    }
}

#[test]
fn train_cli_rtl_matches_golden_epoch_for_epoch() {
    // The sq6 3x2 E=3 17-bit design of `sq6_3x2_window3_narrow_accumulator`.
    let dir = tempfile::tempdir().expect("tmp");
    let run = |engine: &str| {
        let out = dir.path().join(engine);
        let res = shiftkit(&[
            "train",
            "grokking",
            "--format",
            "sq6",
            "--engine",
            engine,
            "--rows",
            "3",
            "--cols",
            "2",
            "--window",
            "3",
            "--acc-bits",
            "17",
            "--p",
            "7",
            "--epochs",
            "2",
            "--eval-every",
            "1",
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert!(
            res.status.success(),
            "{engine}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        out
    };
    let (golden, rtl) = (run("golden"), run("rtl"));
    // Everything but the wall time: losses, accuracies, MACs and cycles.
    let metrics = |dir: &std::path::Path| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join("metrics.csv")).expect("metrics.csv");
        let header: Vec<&str> = text.lines().next().expect("header").split(',').collect();
        let wall = header.iter().position(|h| *h == "wall_s");
        text.lines()
            .map(|l| {
                l.split(',')
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != wall)
                    .map(|(_, f)| f)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    let (g, r) = (metrics(&golden), metrics(&rtl));
    assert!(g.len() >= 3, "{g:?}");
    assert_eq!(g, r);
    // And the same weights at the end, bit for bit.
    for w in ["embed", "inproj", "outproj", "unembed"] {
        let path = format!("weights/final/{w}.npy");
        assert_eq!(
            std::fs::read(golden.join(&path)).expect("golden weights"),
            std::fs::read(rtl.join(&path)).expect("rtl weights"),
            "{w}"
        );
    }
}

// ---- L1NORM: the L1-norm unit of the SQ tops (`Engine::l1norm`) ----

/// How many edge-case rows `l1norm_rows` starts with.
const EDGE_ROWS: usize = 7;

/// Rows for the unit's `W`-bit inputs (`n_max` elements at most): the edge cases first (one
/// element, `n_max` elements, constant rows, both extremes), then random lengths and scales.
fn l1norm_rows(n_max: usize, w: u32, count: usize, rng: &mut SplitMix64) -> Vec<Vec<i64>> {
    let (lo, hi) = (-(1i64 << (w - 1)), (1i64 << (w - 1)) - 1);
    let mut rows = vec![
        vec![hi],
        vec![lo],
        vec![1234; n_max],
        vec![lo; 7],
        (0..n_max)
            .map(|i| if i % 2 == 0 { lo } else { hi })
            .collect(),
        (0..n_max).map(|i| if i == 3 { hi } else { lo }).collect(),
        (0..5).map(|i| [lo, hi, 0, lo, hi][i]).collect(),
    ];
    while rows.len() < count {
        let n = if rng.below(4) == 0 {
            n_max
        } else {
            1 + rng.below(n_max as u64) as usize
        };
        // Spread from a few LSBs to the full range; a large offset now and then.
        let scale = (1u64 << rng.below(u64::from(w) - 1)) as f64;
        let offset = if rng.below(3) == 0 {
            (rng.normal() * hi as f64 / 2.0) as i64
        } else {
            0
        };
        rows.push(
            (0..n)
                .map(|_| (offset + (rng.normal() * scale) as i64).clamp(lo, hi))
                .collect(),
        );
    }
    rows
}

/// Random batches of rows on `format`'s top: identical codes and identical counters on both
/// engines, and the golden codes are `shiftkit_hw::l1norm::golden`'s.
fn l1norm_rtl_equals_golden(format: Format, shape: ArrayShape, batches: usize, seed: u64) {
    use shiftkit::engine::L1NormOp;
    let op = L1NormOp::new(format);
    let bits = format.sq_bits().expect("an sq format");
    let unit = shiftkit_hw::accel::default_l1norm(bits);
    let mut rtl = rtl_engine(shape);
    let mut golden = GoldenEngine::new(shape);
    let mut rng = SplitMix64::new(seed);
    let (mut nonzero, mut saturated) = (0, 0);
    // A GEMM first: L1NORMs share the top (and its simulation) with the GEMMs of the format.
    let (a, b) = (operand(5, 9, &mut rng), operand(9, 4, &mut rng));
    let gemm = GemmOp::new(format);
    let c_gold = golden.gemm(&a, &b, &gemm).expect("golden gemm");
    assert_eq!(rtl.gemm(&a, &b, &gemm).expect("rtl gemm").data, c_gold.data);
    let after_gemm = *golden.counters();
    for batch in 0..batches {
        let count = if batch == 0 {
            12
        } else {
            1 + rng.below(5) as usize
        };
        // Batch 0: the edge cases and random rows; later batches: random rows only.
        let edge = if batch == 0 { 0 } else { EDGE_ROWS };
        let mut rows =
            l1norm_rows(unit.n_max(), unit.in_bits, edge + count, &mut rng)[edge..].to_vec();
        if batch == 1 {
            // A ViT-B row (768 features), longer than the 256 the unit first took.
            rows.push(
                (0..768)
                    .map(|_| rng.below(1 << 15) as i64 - (1 << 14))
                    .collect(),
            );
        }
        let g = golden.l1norm(&rows, &op).expect("golden");
        let r = rtl.l1norm(&rows, &op).expect("rtl");
        assert_eq!(g.frac_bits, unit.frac_bits);
        for (i, row) in rows.iter().enumerate() {
            let want = shiftkit_hw::l1norm::golden(&unit, row).expect("valid row");
            assert_eq!(
                g.rows[i], want,
                "golden engine vs l1norm::golden, batch {batch} row {i}"
            );
            assert_eq!(
                r.rows[i], want,
                "rtl vs golden, batch {batch} row {i}: {row:?}"
            );
            nonzero += want.iter().filter(|&&q| q != 0).count();
            let q = ((1i16 << (bits - 1)) - 1) as i8;
            saturated += want.iter().filter(|&&c| c.abs() == q).count();
        }
        assert_eq!(
            rtl.counters(),
            golden.counters(),
            "counters after batch {batch}"
        );
    }
    let mut c = *golden.counters();
    assert_eq!(c.gemms, after_gemm.gemms);
    c.cycles -= after_gemm.cycles;
    c.bytes_to_device -= after_gemm.bytes_to_device;
    c.bytes_from_device -= after_gemm.bytes_from_device;
    c.gemms -= after_gemm.gemms;
    c.macs -= after_gemm.macs;
    assert!(c.cycles > 0 && c.bytes_to_device > 0 && c.bytes_from_device > 0);
    assert_eq!((c.gemms, c.macs), (0, 0));
    assert!(nonzero > 0 && saturated > 0, "the rows exercise the codes");
}

#[test]
fn l1norm_sq4_2x3_rtl_equals_golden() {
    let shape = ArrayShape {
        rows: 2,
        cols: 3,
        acc_bits: None,
    };
    l1norm_rtl_equals_golden(Format::Sq4, shape, 8, 51);
}

#[test]
fn l1norm_sq8_4x4_rtl_equals_golden() {
    let shape = ArrayShape {
        rows: 4,
        cols: 4,
        acc_bits: None,
    };
    l1norm_rtl_equals_golden(Format::Sq8, shape, 6, 52);
}

#[test]
fn l1norm_rejects_bad_input_in_one_line() {
    use shiftkit::engine::cpu::CpuEngine;
    use shiftkit::engine::L1NormOp;
    let shape = ArrayShape {
        rows: 2,
        cols: 3,
        acc_bits: None,
    };
    let sq4 = L1NormOp::new(Format::Sq4);
    let cases: Vec<(Vec<Vec<i64>>, L1NormOp, &str)> = vec![
        (vec![], sq4, "no rows"),
        (vec![vec![1, 2], vec![]], sq4, "row 1 has 0 elements"),
        (vec![vec![0; 1025]], sq4, "row 0 has 1025 elements"),
        (vec![vec![0, 32768]], sq4, "element 1: 32768 does not fit"),
        (vec![vec![-32769]], sq4, "element 0: -32769 does not fit"),
        (
            vec![vec![1, 2]],
            L1NormOp::new(Format::Fp16),
            "fp16 accelerator top has no L1-norm unit",
        ),
        (
            vec![vec![1, 2]],
            L1NormOp::new(Format::Fp32),
            "fp32 rows are L1-normalized on the host",
        ),
    ];
    let mut engines: Vec<Box<dyn Engine>> = vec![
        Box::new(GoldenEngine::new(shape)),
        Box::new(rtl_engine(shape)),
    ];
    for e in &mut engines {
        for (rows, op, needle) in &cases {
            let err = e.l1norm(rows, op).expect_err(needle).to_string();
            assert!(
                err.contains(needle),
                "{}: {err:?} lacks {needle:?}",
                e.kind().name()
            );
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        assert_eq!(
            e.counters(),
            &Default::default(),
            "errors leave the counters"
        );
    }
    let err = CpuEngine::default()
        .l1norm(&[vec![1, 2]], &sq4)
        .expect_err("cpu has no unit")
        .to_string();
    assert!(err.contains("cpu engine has no L1-norm unit"), "{err}");
}

#[test]
fn data_diet_cnn_steps_on_rtl_equal_golden_bit_for_bit() {
    // The sq6 3x2 E=3 17-bit design of `sq6_3x2_window3_narrow_accumulator` (cached), two SGD
    // steps of the data-diet CNN at batch 2 on real digits: every conv (im2col) and linear
    // GEMM of the forward, input-gradient and weight-gradient roles goes through the array.
    use shiftkit::data::mnist::shipped_test_set;
    use shiftkit::engine::EngineKind;
    use shiftkit::nn::Offload;
    use shiftkit::workloads::data_diet::cnn::{batch_of, Cnn};
    use shiftkit::workloads::data_diet::train::{train_step, Hyper};
    std::env::set_var("SHIFTKIT_SIM_CACHE", cache());
    let shape = ArrayShape {
        rows: 3,
        cols: 2,
        acc_bits: Some(17),
    };
    let data = shipped_test_set().expect("shipped MNIST");
    let run = |kind: EngineKind| {
        let mut ctx = Offload::new(Format::Sq6, kind, shape, 3, 5).expect("engine");
        let mut model = Cnn::new(5);
        let hyper = Hyper::default();
        let mut opt = hyper.optimizer();
        let mut losses = Vec::new();
        for step in 0..2 {
            let ids = [2 * step, 2 * step + 1];
            let labels: Vec<usize> = ids.iter().map(|&i| data.labels[i] as usize).collect();
            let out = train_step(
                &mut model,
                &mut ctx,
                &batch_of(&data, &ids),
                &labels,
                &mut opt,
                hyper.lr,
            )
            .expect("step");
            losses.push(out.loss.to_bits());
        }
        let weights: Vec<Vec<u32>> = model
            .params()
            .iter()
            .map(|p| p.value.data.iter().map(|v| v.to_bits()).collect())
            .collect();
        (losses, weights, *ctx.counters())
    };
    let (golden, rtl) = (run(EngineKind::Golden), run(EngineKind::Rtl));
    assert_eq!(golden.0, rtl.0, "losses");
    assert!(golden.1 == rtl.1, "weights differ");
    assert_eq!(golden.2, rtl.2, "counters");
    assert_eq!(
        golden.2.gemms,
        2 * 11,
        "11 GEMMs per step (3 per layer, conv1 has no dX)"
    );
}

#[test]
fn distill_student_steps_on_rtl_equal_golden_bit_for_bit() {
    // The design of `data_diet_cnn_steps_on_rtl_equal_golden_bit_for_bit` (cached), two KD++
    // steps (CE + KD + ND through the BN -> dropout -> linear projection) of the tiny student
    // at batch 4 against a small teacher's logits, embeddings and class means: every GEMM of
    // the student and of the projection goes through the array.
    use shiftkit::data::mnist::shipped_test_set;
    use shiftkit::engine::EngineKind;
    use shiftkit::nn::cnn::CnnConfig;
    use shiftkit::nn::loss::softmax_cross_entropy;
    use shiftkit::nn::Offload;
    use shiftkit::workloads::classifier::Hyper;
    use shiftkit::workloads::distill::network;
    use shiftkit::workloads::distill::student::{LossKind, Student, StudentSpec, Weights};
    use shiftkit::workloads::distill::teacher::{class_means, outputs, Teacher};
    std::env::set_var("SHIFTKIT_SIM_CACHE", cache());
    let shape = ArrayShape {
        rows: 3,
        cols: 2,
        acc_bits: Some(17),
    };
    let data = shipped_test_set()
        .expect("shipped MNIST")
        .select(&(0..8).collect::<Vec<_>>());
    let mut host =
        Offload::new(Format::Fp32, EngineKind::Cpu, ArrayShape::default(), 7, 0).expect("cpu");
    let mut tmodel = shiftkit::nn::cnn::Cnn::with_config(
        CnnConfig {
            conv1: 4,
            conv2: 8,
            hidden: 48,
        },
        1,
    );
    let (train_logits, train_features) = outputs(&mut tmodel, &mut host, &data, 8).unwrap();
    let labels: Vec<usize> = data.labels.iter().map(|&l| l as usize).collect();
    let teacher = Teacher {
        centers: class_means(&train_features, &labels),
        test_acc: softmax_cross_entropy(&train_logits, &labels, false).accuracy,
        test_features: train_features.clone(),
        train_logits,
        train_features,
        feature_norm: 0.0,
        cosine_to_class_mean: 0.0,
        reused: false,
        train_wall_s: 0.0,
    };
    let weights = Weights {
        kd: 1.0,
        nd: 1.0,
        temperature: 4.0,
        warmup_epochs: 1,
        dropout: 0.1,
    };
    let subset: Vec<usize> = (0..8).collect();
    let spec = StudentSpec {
        config: network("tiny").unwrap(),
        loss: LossKind::KdNd,
        seed: 5,
        train: &data,
        subset: &subset,
        test: &data,
        epochs: 1,
        eval_every: 1,
        weights,
        hyper: Hyper::default(),
    };
    let run = |kind: EngineKind| {
        let mut ctx = Offload::new(Format::Sq6, kind, shape, 3, 5).expect("engine");
        let mut s = Student::new(&spec, 48);
        assert!(s.projection.is_some(), "32 -> 48 needs the projection");
        let mut losses = Vec::new();
        for step in 0..2 {
            let ids = [4 * step, 4 * step + 1, 4 * step + 2, 4 * step + 3];
            let (loss, _) = s
                .step(
                    &mut ctx,
                    &data,
                    &ids,
                    &teacher,
                    LossKind::KdNd,
                    &weights,
                    1.0,
                    0.05,
                )
                .expect("step");
            losses.push(loss.to_bits());
        }
        let mut weights: Vec<Vec<u32>> = s
            .model
            .params()
            .iter()
            .map(|p| p.value.data.iter().map(|v| v.to_bits()).collect())
            .collect();
        let proj = s.projection.as_mut().unwrap();
        weights.extend(
            proj.params_mut()
                .iter()
                .map(|p| p.value.data.iter().map(|v| v.to_bits()).collect()),
        );
        (losses, weights, *ctx.counters())
    };
    let (golden, rtl) = (run(EngineKind::Golden), run(EngineKind::Rtl));
    assert_eq!(golden.0, rtl.0, "losses");
    assert!(golden.1 == rtl.1, "weights differ");
    assert_eq!(golden.2, rtl.2, "counters");
    assert_eq!(
        golden.2.gemms,
        2 * 14,
        "14 GEMMs per step: 11 of the CNN, 3 of the projection's linear layer"
    );
}
