//! The accelerator tops under Verilator (`AccelSim`): random GEMMs through `plan_gemm` must give
//! the i64 reference (sq) or the FP16 model (bit for bit), and every header's acceptance cycle,
//! every response beat's cycle, the total and the array's busy cycles must equal
//! `shiftkit_hw::accel::model::run`. Plus STATUS decoding, the watchdog and tracing.
//!
//! Four designs are built (each a Verilator build, cached by hash): sq4 2x3 (E = 7), sq6 4x4
//! (E = 3), sq8 2x3 (E = 15, 48-bit accumulators, 64-bit response lanes) and fp16 2x3, all with
//! small `K_MAX` so that K is split into chunks.

mod common;

use common::{opts, Rng};
use shiftkit_hw::accel::commands::{
    decode_drain, decode_l1norm, plan_gemm, reference_acc, Command, DataVector, Operand, Status,
    FLAG_COMPUTE, FLAG_ERROR, FLAG_RESULTS_PENDING, OPCODE_LSB, OP_LOAD_A,
};
use shiftkit_hw::accel::{model, AccelGeometry};
use shiftkit_hw::fp16::model::{dot, same_result};
use shiftkit_hw::{ArrayConfig, Datapath};
use shiftkit_sim::accel_driver::{AccelRun, AccelSim, DEFAULT_WATCHDOG};
use shiftkit_sim::{SimError, TraceFormat};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// One model per design for the whole test binary: tests of the same design share it (built
/// once, used one test at a time) instead of compiling it twice in parallel.
type SharedSim = Arc<Mutex<Option<AccelSim>>>;

fn shared(config: &ArrayConfig, k_max: usize) -> SharedSim {
    static SIMS: OnceLock<Mutex<HashMap<String, SharedSim>>> = OnceLock::new();
    let key = format!("{config:?} {k_max}");
    let mut sims = SIMS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    sims.entry(key).or_default().clone()
}

/// Lock the shared model of `config` (building it on first use) and run `f` on it.
fn with_sim<T>(config: &ArrayConfig, k_max: usize, f: impl FnOnce(&mut AccelSim) -> T) -> T {
    let cell = shared(config, k_max);
    let mut guard: MutexGuard<Option<AccelSim>> = cell.lock().unwrap_or_else(|e| e.into_inner());
    let sim = guard.get_or_insert_with(|| {
        AccelSim::build(config, k_max, &opts()).unwrap_or_else(|e| panic!("{config}: {e}"))
    });
    // A test that failed half-way may have left a small watchdog behind.
    sim.set_watchdog(DEFAULT_WATCHDOG);
    f(sim)
}

fn sq(rows: usize, cols: usize, bits: u32, window: u32, acc_bits: Option<u32>) -> ArrayConfig {
    ArrayConfig::sized(rows, cols, Datapath::Sq { bits }, window, acc_bits).expect("valid config")
}

fn sq4_2x3() -> ArrayConfig {
    sq(2, 3, 4, 7, None)
}

/// Header `i`'s beat index in the flattened stream.
fn header_cycles(commands: &[Command], timing: &model::Timing, geom: &AccelGeometry) -> Vec<u64> {
    let mut beat = 0;
    commands
        .iter()
        .map(|c| {
            let t = timing.accept[beat];
            beat += c.beats(geom);
            t
        })
        .collect()
}

/// Run `commands` on the model and on the RTL; every cycle count must agree.
fn run_and_check_timing(sim: &mut AccelSim, commands: &[Command], what: &str) -> AccelRun {
    let geom = *sim.geometry();
    let run = sim.run(commands).unwrap_or_else(|e| panic!("{what}: {e}"));
    let timing = model::run(&geom, commands, |_| true, |_| true, 10_000_000);
    assert_eq!(
        run.accepted,
        header_cycles(commands, &timing, &geom),
        "{what}: headers accepted as the model says"
    );
    assert_eq!(
        sim.response_cycles(),
        &timing.responses[..],
        "{what}: response beats leave as the model says"
    );
    assert_eq!(run.cycles, timing.cycles, "{what}: total cycles");
    assert_eq!(
        run.busy_cycles, timing.array_busy,
        "{what}: array busy cycles"
    );
    run
}

/// Which operands carry per-K exponents (the channel axis is K); the others have their
/// exponents on M / N, applied by the host after the accelerator, so the array sees none.
#[derive(Clone, Copy, Debug)]
struct Axes {
    a_per_k: bool,
    b_per_k: bool,
}

/// A random SQ GEMM of shape `(m, k, n)`: codes in `[-Q, Q]` (or all at `+-Q` and exponents at
/// E when `extreme`), through the top, against `reference_acc` and the timing model.
fn check_sq_gemm(
    sim: &mut AccelSim,
    config: &ArrayConfig,
    (m, k, n): (usize, usize, usize),
    chunk: usize,
    axes: Axes,
    extreme: bool,
    rng: &mut Rng,
) {
    let q = config.q_max();
    let e = i64::from(config.window);
    let code = |rng: &mut Rng| {
        if extreme {
            if rng.next().is_multiple_of(2) {
                q as i32
            } else {
                -q as i32
            }
        } else {
            rng.range(-q, q) as i32
        }
    };
    let a: Vec<i32> = (0..m * k).map(|_| code(rng)).collect();
    let b: Vec<i32> = (0..k * n).map(|_| code(rng)).collect();
    let exps = |on: bool, rng: &mut Rng| -> Option<Vec<u8>> {
        on.then(|| {
            (0..k)
                .map(|_| if extreme { e } else { rng.range(0, e) } as u8)
                .collect()
        })
    };
    let (ea, eb) = (exps(axes.a_per_k, rng), exps(axes.b_per_k, rng));
    let opa = Operand {
        rows: m,
        cols: k,
        codes: &a,
        k_exps: ea.as_deref(),
    };
    let opb = Operand {
        rows: k,
        cols: n,
        codes: &b,
        k_exps: eb.as_deref(),
    };
    let geom = *sim.geometry();
    let plan = plan_gemm(&geom, &opa, &opb, chunk).expect("plan");
    let what = format!(
        "{config} K_MAX={} {m}x{k}x{n} chunk {chunk} {axes:?}",
        geom.k_max
    );
    let run = run_and_check_timing(sim, &plan.commands, &what);
    assert_eq!(
        plan.assemble(&geom, &run.responses).expect("assemble"),
        reference_acc(&opa, &opb),
        "{what}: results"
    );
}

/// Shapes around the tile and chunk sizes: M, N below, at and above multiples of the tile,
/// K in one short chunk up to several chunks with a short last one.
fn random_sq_gemms(config: ArrayConfig, k_max: usize, seed: u64, cases: usize) {
    let (r, c) = (config.rows, config.cols);
    with_sim(&config, k_max, |sim| {
        let mut rng = Rng(seed);
        for case in 0..cases {
            let m = rng.range(1, 3 * r as i64 + 1) as usize;
            let n = rng.range(1, 3 * c as i64 + 1) as usize;
            let k = rng.range(1, 3 * k_max as i64 + 3) as usize;
            // Mostly full-depth chunks (the stream the engine sends), sometimes short ones.
            let chunk = if case % 3 == 2 {
                rng.range(1, k_max as i64) as usize
            } else {
                k_max
            };
            let axes = Axes {
                a_per_k: case % 4 < 2,
                b_per_k: case % 2 == 0,
            };
            check_sq_gemm(sim, &config, (m, k, n), chunk, axes, false, &mut rng);
        }
        // Largest codes and exponents: the widest accumulators a chunk can need.
        let both = Axes {
            a_per_k: true,
            b_per_k: true,
        };
        check_sq_gemm(
            sim,
            &config,
            (2 * r + 1, 2 * k_max + 1, c + 1),
            k_max,
            both,
            true,
            &mut rng,
        );
    });
}

#[test]
fn sq4_2x3_random_gemms_match_the_reference_and_the_timing_model() {
    random_sq_gemms(sq4_2x3(), 16, 1, 24);
}

#[test]
fn sq6_4x4_random_gemms_match_the_reference_and_the_timing_model() {
    random_sq_gemms(sq(4, 4, 6, 3, None), 16, 2, 24);
}

#[test]
fn sq8_2x3_wide_accumulators_match_the_reference_and_the_timing_model() {
    // E = 15: a product needs 44 bits, so the top has 48-bit accumulators and 64-bit response
    // lanes; K_MAX = 8 keeps a chunk of extreme products inside 48 bits, chunks add up in i64.
    let config = sq(2, 3, 8, 15, Some(48));
    assert_eq!(
        AccelGeometry::new(&config, 8)
            .expect("geometry")
            .result_lane_bits,
        64
    );
    random_sq_gemms(config, 8, 3, 24);
}

/// A random binary16 value: mostly normal numbers of moderate magnitude, some zeros of both
/// signs, subnormals, and now and then an infinity or a NaN.
fn random_f16(rng: &mut Rng) -> i32 {
    let sign = (rng.range(0, 1) as i32) << 15;
    let frac = rng.range(0, 0x3ff) as i32;
    let exp = match rng.range(0, 63) {
        0..=3 => return sign,
        4..=7 => 0,
        8 => 31,
        _ => rng.range(8, 22) as i32,
    };
    sign | exp << 10 | frac
}

#[test]
fn fp16_2x3_random_gemms_are_bit_exact_and_match_the_timing_model() {
    let config = ArrayConfig::new(2, 3, Datapath::Fp16).expect("valid config");
    let k_max = 8;
    with_sim(&config, k_max, |sim| {
        let geom = *sim.geometry();
        let mut rng = Rng(4);
        for case in 0..16 {
            // Tiles are 2R = 4 rows; K beyond K_MAX chains chunks in the array (hold).
            let m = rng.range(1, 9) as usize;
            let n = rng.range(1, 7) as usize;
            let k = rng.range(1, 3 * k_max as i64) as usize;
            let chunk = if case % 4 == 3 {
                rng.range(1, k_max as i64) as usize
            } else {
                k_max
            };
            let a: Vec<i32> = (0..m * k).map(|_| random_f16(&mut rng)).collect();
            let b: Vec<i32> = (0..k * n).map(|_| random_f16(&mut rng)).collect();
            let opa = Operand {
                rows: m,
                cols: k,
                codes: &a,
                k_exps: None,
            };
            let opb = Operand {
                rows: k,
                cols: n,
                codes: &b,
                k_exps: None,
            };
            let plan = plan_gemm(&geom, &opa, &opb, chunk).expect("plan");
            let what = format!("fp16 2x3 {m}x{k}x{n} chunk {chunk}");
            let run = run_and_check_timing(sim, &plan.commands, &what);
            let got = plan.assemble_f32(&geom, &run.responses).expect("assemble");
            for mm in 0..m {
                for nn in 0..n {
                    let pairs: Vec<(u16, u16)> = (0..k)
                        .map(|kk| (a[mm * k + kk] as u16, b[kk * n + nn] as u16))
                        .collect();
                    let want = dot(&pairs);
                    let bits = got[mm * n + nn].to_bits();
                    assert!(
                        same_result(bits, want),
                        "{what}: C[{mm}][{nn}] = {bits:#x}, the model says {:#x}",
                        want.to_bits()
                    );
                }
            }
        }
    });
}

/// A random tile's LOAD_A (bank `a`) and LOAD_B (bank `b`) of `k` steps.
fn loads(geom: &AccelGeometry, rng: &mut Rng, k: usize, (a, b): (u8, u8)) -> [Command; 2] {
    let mut vectors = |lanes: usize| -> Vec<DataVector> {
        (0..k)
            .map(|_| DataVector {
                lanes: (0..lanes).map(|_| rng.range(-7, 7) as i32).collect(),
                exp: rng.range(0, 7) as u8,
            })
            .collect()
    };
    [
        Command::LoadA {
            bank: a,
            vectors: vectors(geom.tile_rows()),
        },
        Command::LoadB {
            bank: b,
            vectors: vectors(geom.cols),
        },
    ]
}

#[test]
fn status_reports_cycle_flags_and_headers_accepted() {
    with_sim(&sq4_2x3(), 16, |sim| {
        let geom = *sim.geometry();
        let mut rng = Rng(5);
        let [la, lb] = loads(&geom, &mut rng, 16, (0, 1));
        let commands = vec![
            Command::Status,
            la,
            lb,
            Command::compute(0, 1, 1, 16),
            Command::Status, // the COMPUTE is streaming, its results pending
            Command::Drain { c_bank: 1 },
            Command::Status, // waits for the DRAIN: everything done
            Command::Nop,
            Command::Status,
        ];
        let run = run_and_check_timing(sim, &commands, "status stream");
        let statuses: Vec<(usize, Status)> = [
            (0, 0),
            (4, 1),
            (6, 2 + geom.tile_rows()),
            (8, 3 + geom.tile_rows()),
        ]
        .iter()
        .map(|&(cmd, rsp)| (cmd, Status::decode(&run.responses[rsp], &geom)))
        .collect();
        for (cmd, st) in &statuses {
            assert_eq!(
                u64::from(st.cycles),
                run.accepted[*cmd],
                "STATUS {cmd}: its own cycle"
            );
            assert_eq!(
                st.accepted,
                Some(*cmd as u32),
                "STATUS {cmd}: headers before it"
            );
        }
        assert_eq!(statuses[0].1.flags, Some(0));
        assert_eq!(
            statuses[1].1.flags,
            Some(FLAG_COMPUTE | FLAG_RESULTS_PENDING)
        );
        assert_eq!(statuses[2].1.flags, Some(0));
        assert_eq!(statuses[3].1.flags, Some(0));

        // Bad commands (raw beats: the encoder refuses them) set the sticky error flag and
        // keep the stream in step: a LOAD of K_MAX + 1 beats still takes them all.
        let words = geom.cmd_words();
        let raw = |h: u32| {
            let mut v = vec![0u32; words];
            v[0] = h;
            v
        };
        let status = || raw(Command::Status.header());
        let mut beats = vec![raw(9 << OPCODE_LSB), status()];
        beats.push(raw(OP_LOAD_A << OPCODE_LSB | (geom.k_max as u32 + 1)));
        // Data that looks like headers.
        beats.extend((0..geom.load_beats(geom.k_max + 1)).map(|_| status()));
        beats.push(status());
        let run = sim
            .run_beats(&beats, 2)
            .expect("bad commands do not stop the top");
        let first = Status::decode(&run.responses[0], &geom);
        let last = Status::decode(&run.responses[1], &geom);
        assert_eq!(first.flags, Some(FLAG_ERROR));
        assert_eq!(first.accepted, Some(1));
        assert_eq!(last.flags, Some(FLAG_ERROR));
        assert_eq!(last.accepted, Some(3), "opcode 9, STATUS, the bad LOAD_A");
        assert_eq!(u64::from(last.cycles), run.accepted[3]);
        assert_eq!(run.accepted.len(), 4);
    });
}

#[test]
fn the_watchdog_names_the_command_a_stuck_stream_waits_on() {
    with_sim(&sq4_2x3(), 16, |sim| {
        let geom = *sim.geometry();
        let mut rng = Rng(6);
        let [la, lb] = loads(&geom, &mut rng, 16, (0, 0));
        let commands = vec![
            la,
            lb,
            Command::compute(0, 0, 1, 16),
            Command::Drain { c_bank: 1 },
        ];
        let timing = model::run(&geom, &commands, |_| true, |_| true, 10_000);
        // A DRAIN waits for its tile much longer than 8 cycles: with that watchdog it is stuck.
        sim.set_watchdog(8);
        let err = sim
            .run(&commands)
            .expect_err("the watchdog fires")
            .to_string();
        let quiet_from = timing.accept.last().expect("beats") + 1;
        assert!(
            err.contains("command 3 (DRAIN c_bank 1) has not sent response beat 0 of its 2")
                && err.contains(&format!("at cycle {}", quiet_from + 8)),
            "{err}"
        );
        // With the default watchdog the same stream completes: run() starts from reset.
        sim.set_watchdog(DEFAULT_WATCHDOG);
        let run = sim.run(&commands).expect("completes");
        assert_eq!(run.responses.len(), geom.tile_rows());

        // A LOAD_A whose data beats never all come: the decoder swallows the DRAIN header as
        // data and waits for the rest; the expected response never comes.
        sim.set_watchdog(50);
        let words = geom.cmd_words();
        let mut beats = Command::Nop.encode(&geom).expect("encode");
        let mut short = loads(&geom, &mut rng, 8, (1, 1))[0]
            .encode(&geom)
            .expect("encode");
        // Two of its four data beats (sq4: two K steps each).
        assert_eq!(short.len(), 1 + 4);
        short.truncate(3);
        beats.extend(short);
        beats.extend(Command::Drain { c_bank: 0 }.encode(&geom).expect("encode"));
        assert!(beats.iter().all(|b| b.len() == words));
        let err = sim
            .run_beats(&beats, geom.tile_rows())
            .expect_err("stuck")
            .to_string();
        assert!(
            err.contains("command 1 (LOAD_A bank 1 k_len 8) takes 4 data beats")
                && err.contains("at cycle 55"),
            "{err}"
        );

        // A header that waits on the port forever is named too: with a watchdog of 1, the
        // COMPUTE into the C bank still being drained waits.
        let [la, lb] = loads(&geom, &mut rng, 16, (0, 0));
        let commands = vec![
            la,
            lb,
            Command::compute(0, 0, 0, 16),
            Command::Drain { c_bank: 0 },
            Command::compute(0, 0, 0, 16),
            Command::Drain { c_bank: 0 },
        ];
        let timing = model::run(&geom, &commands, |_| true, |_| true, 10_000);
        let heads = header_cycles(&commands, &timing, &geom);
        assert!(heads[4] > heads[3] + 1, "the second COMPUTE waits");
        sim.set_watchdog(1);
        let err = sim
            .run(&commands)
            .expect_err("the watchdog fires")
            .to_string();
        assert!(
            err.contains(&format!(
                "at cycle {}: command 4 (COMPUTE a_bank 0 b_bank 0 c_bank 0 k_len 16) is not accepted",
                heads[3] + 2
            )),
            "{err}"
        );
    });
}

#[test]
fn bad_input_is_one_clear_error_not_a_panic() {
    with_sim(&sq4_2x3(), 16, |sim| {
        let geom = *sim.geometry();
        let err = sim
            .run(&[Command::Nop, Command::compute(0, 0, 0, 17)])
            .expect_err("k_len above K_MAX");
        assert!(
            err.to_string().contains(
                "command 1 (COMPUTE a_bank 0 b_bank 0 c_bank 0 k_len 17): k_len 17 is out of range"
            ),
            "{err}"
        );
        let err = sim
            .run_beats(&[vec![0; geom.cmd_words() + 1]], 0)
            .expect_err("wide beat");
        assert!(matches!(err, SimError::Accel(_)), "{err}");
        // The sim is still usable.
        let run = sim.run(&[Command::Status]).expect("runs");
        assert_eq!(run.responses.len(), 1);
    });
}

#[test]
fn traces_in_the_format_the_model_was_built_with() {
    with_sim(&sq4_2x3(), 16, |sim| {
        let dir = tempfile::tempdir().expect("tempdir");
        let format = sim.model().trace_format().expect("built with tracing");
        let (good, bad) = match format {
            TraceFormat::Fst => ("fst", "vcd"),
            _ => ("vcd", "fst"),
        };
        let err = sim
            .trace(&dir.path().join(format!("w.{bad}")))
            .expect_err("wrong format");
        assert!(
            err.to_string().contains(&format!("name the file *.{good}")),
            "{err}"
        );
        assert!(sim.trace(&dir.path().join("w.txt")).is_err());
        let path = dir.path().join(format!("w.{good}"));
        sim.trace(&path).expect("trace opens");
        sim.run(&[Command::Status, Command::Nop]).expect("runs");
        sim.trace_close();
        let len = std::fs::metadata(&path).expect("trace written").len();
        assert!(len > 100, "{} has {len} bytes", path.display());
    });
}

#[test]
fn a_drained_tile_decodes_to_the_loaded_product() {
    // One tile by hand (no plan_gemm): decode_drain of the DRAIN's beats equals the product
    // of what was loaded, shifted by ea_k + eb_k.
    with_sim(&sq4_2x3(), 16, |sim| {
        let geom = *sim.geometry();
        let mut rng = Rng(8);
        let [la, lb] = loads(&geom, &mut rng, 5, (1, 0));
        let (Command::LoadA { vectors: va, .. }, Command::LoadB { vectors: vb, .. }) = (&la, &lb)
        else {
            unreachable!()
        };
        let want: Vec<Vec<i64>> = (0..geom.rows)
            .map(|i| {
                (0..geom.cols)
                    .map(|j| {
                        (0..5)
                            .map(|k| {
                                i64::from(va[k].lanes[i] * vb[k].lanes[j])
                                    << (va[k].exp + vb[k].exp)
                            })
                            .sum()
                    })
                    .collect()
            })
            .collect();
        let commands = vec![
            la.clone(),
            lb.clone(),
            Command::compute(1, 0, 0, 5),
            Command::Drain { c_bank: 0 },
        ];
        let run = run_and_check_timing(sim, &commands, "one tile");
        assert_eq!(decode_drain(&run.responses, &geom).expect("decode"), want);
    });
}

#[test]
fn a_top_with_a_non_default_l1norm_unit_runs_from_its_design() {
    // from_design must take the L1-norm unit the top was generated with (here f = 3 and a large
    // eps), not the default one (f = 1, eps 1e-5): the codes and the timing follow it.
    use shiftkit_hw::generate::generate_accel_with_l1norm;
    use shiftkit_hw::l1norm::{golden::golden, L1NormConfig};
    let config = sq(2, 2, 4, 7, None);
    let unit = L1NormConfig {
        addr_bits: 10,
        ..L1NormConfig::new(4).with_frac_bits(3).with_eps(64.0)
    };
    let design = generate_accel_with_l1norm(&config, 8, Some(unit)).expect("generate");
    let mut sim = AccelSim::from_design(&design, &opts()).expect("build");
    let geom = *sim.geometry();
    assert_eq!(geom.l1norm, Some(unit));
    let mut rng = Rng(12);
    let lim = 1i64 << 9;
    let rows: Vec<Vec<i64>> = (0..24)
        .map(|i| {
            let n = 1 + (i * 37) % 256;
            (0..n).map(|_| rng.range(-lim, lim - 1)).collect()
        })
        .collect();
    let commands: Vec<Command> = rows
        .iter()
        .map(|r| Command::l1norm(&geom, r.clone()))
        .collect();
    let run = run_and_check_timing(&mut sim, &commands, "l1norm rows");
    let mut beats = run.responses.as_slice();
    for (row, c) in rows.iter().zip(&commands) {
        let (mine, rest) = beats.split_at(c.response_beats(&geom));
        beats = rest;
        let got = decode_l1norm(mine, row.len(), &geom).expect("decode");
        assert_eq!(
            got,
            golden(&unit, row).expect("golden"),
            "row of {}",
            row.len()
        );
    }
    assert!(beats.is_empty());
}
