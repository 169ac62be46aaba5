//! L1NORM through the SQ tops (rust-hdl simulation): codes bit-exact with `crate::l1norm::golden`,
//! accepted and response cycles equal to `model::run`, errors, ordering with DRAIN / STATUS,
//! L1NORM inside a GEMM stream, back-pressure, reset, and the generated Verilog in Verilator.

use super::commands::*;
use super::model;
use super::tests::{
    build, build_with, gemm_through_top, random_operands, run_rtl, sq, verilator_check, SimRun,
    Sq4, Sq6, Sq8Wide, SqTop,
};
use super::AccelGeometry;
use crate::l1norm::golden_tests::rows;
use crate::l1norm::{golden, L1NormConfig};
use crate::testutil::Rng;
use crate::ArrayConfig;

/// `count` seeded rows of the unit's inputs: lengths 1, 2, n_max first, then mostly short ones
/// and every 5th up to `n_max`, of every kind of `rows::row` (constant rows included).
fn random_rows(geom: &AccelGeometry, seed: u64, count: usize) -> Vec<Vec<i64>> {
    let c = geom.l1norm.expect("a top with the unit");
    let n_max = c.n_max();
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let n = match i {
                0 => 1,
                1 => 2,
                2 => n_max,
                _ if i % 5 == 0 => rng.range(n_max as i64 / 2, n_max as i64) as usize,
                _ => rng.range(3, 40) as usize,
            };
            rows::row(&mut rng, c.in_bits, n, seed + i as u64)
        })
        .collect()
}

/// The response beats of each command, in order.
fn split_responses(
    commands: &[Command],
    geom: &AccelGeometry,
    beats: &[Vec<u32>],
) -> Vec<Vec<Vec<u32>>> {
    let mut at = 0;
    let out = commands
        .iter()
        .map(|c| {
            let n = c.response_beats(geom);
            at += n;
            beats[at - n..at].to_vec()
        })
        .collect();
    assert_eq!(at, beats.len(), "every response beat belongs to a command");
    out
}

/// Run `commands` through `uut` and the model; check every L1NORM's codes against the golden
/// model and the cycles against the model. Returns the simulation.
fn run_and_check<T: SqTop>(
    uut: &mut T,
    geom: &AccelGeometry,
    commands: &[Command],
    cmd_valid: impl Fn(u64) -> bool + Copy,
    rsp_ready: impl Fn(u64) -> bool + Copy,
) -> SimRun {
    let beats = encode_all(commands, geom).expect("encode");
    let want: usize = commands.iter().map(|c| c.response_beats(geom)).sum();
    let limit = 50_000;
    let sim = run_rtl(uut, &beats, cmd_valid, rsp_ready, want, limit);
    let per_command = split_responses(commands, geom, &sim.response_beats());
    let cfg: L1NormConfig = geom.l1norm.expect("a top with the unit");
    let mut rows_checked = 0;
    for (k, (cmd, rsp)) in commands.iter().zip(&per_command).enumerate() {
        if let Command::L1Norm { row, .. } = cmd {
            let got = decode_l1norm(rsp, row.len(), geom).expect("decode");
            let want = golden(&cfg, row).expect("golden");
            assert_eq!(got, want, "command {k}: L1NORM of {} elements", row.len());
            rows_checked += 1;
        }
    }
    let timing = model::run(geom, commands, cmd_valid, rsp_ready, limit);
    assert_eq!(
        sim.accept, timing.accept,
        "beats accepted as the model says"
    );
    assert_eq!(
        sim.response_cycles(),
        timing.responses,
        "responses leave as the model says"
    );
    assert_eq!(sim.array_busy, timing.array_busy);
    eprintln!(
        "{} commands ({rows_checked} L1NORM), {} beats, {} responses, {} cycles",
        commands.len(),
        beats.len(),
        sim.responses.len(),
        timing.cycles
    );
    sim
}

fn l1_commands(geom: &AccelGeometry, rows: &[Vec<i64>]) -> Vec<Command> {
    rows.iter()
        .map(|r| Command::l1norm(geom, r.clone()))
        .collect()
}

/// Back-to-back rows (the unit holds up to three at once), one beat per cycle, host always
/// ready: 2 elements per data beat and 8 codes per response beat.
#[test]
fn l1norm_rows_match_golden_and_model_sq4() {
    let config = sq(2, 2, 4, 7, 32);
    let (mut uut, geom) = build::<Sq4>(&config, 8);
    assert_eq!((geom.l1_in_lanes(), geom.l1_codes_per_beat()), (2, 8));
    let cmds = l1_commands(&geom, &random_rows(&geom, 1, 12));
    run_and_check(&mut uut, &geom, &cmds, |_| true, |_| true);
}

/// Other lane counts (12 and 24 codes per beat, 64-bit result lanes), other `f` and `eps`, a
/// host that pauses and stalls the responses.
#[test]
fn l1norm_rows_sq6_sq8_other_steps_and_back_pressure() {
    let mut rng = Rng::new(5);
    let pattern: Vec<bool> = (0..4096).map(|_| rng.range(0, 3) != 0).collect();
    let ready = |t: u64| pattern[(t % 4096) as usize];
    let gaps = |t: u64| pattern[((t * 7 + 3) % 4096) as usize];

    let config = sq(3, 3, 6, 7, 32);
    let cfg = L1NormConfig::new(6)
        .with_geometry(16, 10)
        .with_frac_bits(5)
        .with_eps(3.0);
    let geom = AccelGeometry::with_l1norm(&config, 8, Some(cfg)).expect("geometry");
    let (mut uut, geom) = build_with::<Sq6>(&config, geom);
    assert_eq!((geom.l1_in_lanes(), geom.l1_codes_per_beat()), (3, 12));
    let cmds = l1_commands(&geom, &random_rows(&geom, 2, 8));
    run_and_check(&mut uut, &geom, &cmds, gaps, ready);

    let config = sq(2, 3, 8, 15, 48);
    let cfg = L1NormConfig::new(8)
        .with_geometry(16, 10)
        .with_frac_bits(0)
        .with_eps(0.0);
    let geom = AccelGeometry::with_l1norm(&config, 8, Some(cfg)).expect("geometry");
    let (mut uut, geom) = build_with::<Sq8Wide>(&config, geom);
    assert_eq!((geom.l1_in_lanes(), geom.l1_codes_per_beat()), (2, 24));
    let cmds = l1_commands(&geom, &random_rows(&geom, 3, 8));
    run_and_check(&mut uut, &geom, &cmds, |_| true, ready);
}

/// L1NORMs inside a GEMM stream (between LOADs, behind a DRAIN that waits for its COMPUTE,
/// before a STATUS): both results are right and every cycle is as the model says.
#[test]
fn l1norm_interleaved_with_a_gemm() {
    let config = sq(2, 2, 4, 7, 32);
    let (mut uut, geom) = build::<Sq4>(&config, 8);
    let mut rng = Rng::new(21);
    let (m, k, n) = (3, 11, 5);
    let (a, ea, b, eb) = random_operands(&mut rng, m, k, n, config.q_max(), config.window);
    let opa = Operand {
        rows: m,
        cols: k,
        codes: &a,
        k_exps: Some(&ea),
    };
    let opb = Operand {
        rows: k,
        cols: n,
        codes: &b,
        k_exps: Some(&eb),
    };
    let plan = plan_gemm(&geom, &opa, &opb, 8).expect("plan");
    let rows = random_rows(&geom, 22, 9);
    // An L1NORM after every third GEMM command (and at the end), then a STATUS.
    let mut cmds = vec![];
    let mut l1 = rows.iter();
    for (i, c) in plan.commands.iter().enumerate() {
        cmds.push(c.clone());
        if i % 3 == 2 {
            if let Some(r) = l1.next() {
                cmds.push(Command::l1norm(&geom, r.clone()));
            }
        }
    }
    cmds.extend(l1.map(|r| Command::l1norm(&geom, r.clone())));
    cmds.push(Command::Status);
    let l1_count = cmds
        .iter()
        .filter(|c| matches!(c, Command::L1Norm { .. }))
        .count();
    assert_eq!(l1_count, rows.len());
    let mut rng = Rng::new(23);
    let pattern: Vec<bool> = (0..4096).map(|_| rng.range(0, 4) != 0).collect();
    let ready = |t: u64| pattern[(t % 4096) as usize];
    let sim = run_and_check(&mut uut, &geom, &cmds, |_| true, ready);
    // The GEMM's DRAINs, in order, assemble C.
    let per_command = split_responses(&cmds, &geom, &sim.response_beats());
    let drains: Vec<Vec<u32>> = cmds
        .iter()
        .zip(&per_command)
        .filter(|(c, _)| matches!(c, Command::Drain { .. }))
        .flat_map(|(_, r)| r.clone())
        .collect();
    assert_eq!(
        plan.assemble(&geom, &drains).expect("assemble"),
        reference_acc(&opa, &opb)
    );
    let status = Status::decode(&per_command.last().expect("status")[0], &geom);
    assert_eq!(
        status.flags,
        Some(0),
        "no error, nothing computing or pending"
    );
}

/// A bad length sets the error flag; its data beats are consumed and dropped (the stream stays
/// in step); a top without the unit (and the encoder) treat opcode 6 as unknown.
#[test]
fn l1norm_bad_lengths_set_the_error_flag_and_keep_the_stream_in_step() {
    let config = sq(3, 3, 4, 7, 32);
    let (mut uut, geom) = build::<Sq4>(&config, 8);
    let n_max = geom.l1norm.expect("unit").n_max();
    let mut rng = Rng::new(31);
    let good = rows::row(&mut rng, 16, 7, 1);
    let long = rows::row(&mut rng, 16, n_max + 1, 0);
    let per_beat = geom.l1_in_lanes();
    let too_long = Command::L1Norm {
        row: long,
        per_beat,
    };
    let empty = Command::L1Norm {
        row: vec![],
        per_beat,
    };
    assert_eq!(
        too_long.encode(&geom),
        Err(CommandError::RowLen {
            n: n_max + 1,
            n_max
        })
    );
    assert!(matches!(
        empty.encode(&geom),
        Err(CommandError::RowLen { .. })
    ));
    let cmds = vec![
        Command::Status,
        too_long,
        Command::Status,
        empty,
        Command::l1norm(&geom, good.clone()),
        Command::Status,
    ];
    // Encode the bad ones unchecked: header and data beats as the hardware would see them.
    let mut beats = vec![];
    for c in &cmds {
        let mut h = vec![0u32; geom.cmd_words()];
        h[0] = c.header();
        beats.push(h);
        if let Command::L1Norm { row, per_beat } = c {
            beats.extend(encode_row(row, *per_beat, &geom));
        }
    }
    let want: usize = cmds.iter().map(|c| c.response_beats(&geom)).sum();
    let sim = run_rtl(&mut uut, &beats, |_| true, |_| true, want, 10_000);
    let rsp = split_responses(&cmds, &geom, &sim.response_beats());
    assert_eq!(Status::decode(&rsp[0][0], &geom).flags, Some(0));
    let st = Status::decode(&rsp[2][0], &geom);
    assert_eq!(st.flags, Some(FLAG_ERROR), "a row of n_max + 1 elements");
    assert_eq!(st.accepted, Some(2), "STATUS, L1NORM");
    let cfg = geom.l1norm.expect("unit");
    assert_eq!(
        decode_l1norm(&rsp[4], good.len(), &geom).expect("decode"),
        golden(&cfg, &good).expect("golden")
    );
    assert_eq!(Status::decode(&rsp[5][0], &geom).accepted, Some(5));
    let timing = model::run(&geom, &cmds, |_| true, |_| true, 10_000);
    assert_eq!(sim.accept, timing.accept);
    assert_eq!(sim.response_cycles(), timing.responses);

    // Without the unit opcode 6 is an unknown one-beat command.
    let bare = AccelGeometry::with_l1norm(&config, 8, None).expect("geometry");
    assert_eq!(
        Command::l1norm(&bare, good.clone()).encode(&bare),
        Err(CommandError::NoL1Norm)
    );
    let (mut uut, bare) = build_with::<Sq4>(&config, bare);
    let mut h = vec![0u32; bare.cmd_words()];
    h[0] = OP_L1NORM << OPCODE_LSB | 7;
    let mut s = vec![0u32; bare.cmd_words()];
    s[0] = Command::Status.header();
    let sim = run_rtl(&mut uut, &[h, s], |_| true, |_| true, 1, 1000);
    let st = Status::decode(&sim.response_beats()[0], &bare);
    assert_eq!((st.flags, st.accepted), (Some(FLAG_ERROR), Some(1)));
}

/// Reset while rows are inside the unit and the packer drops them; the top then normalizes
/// like a fresh one (same codes, same cycles as the model).
#[test]
fn reset_in_the_middle_of_l1norm_rows_leaves_a_clean_top() {
    let config = sq(2, 2, 4, 7, 32);
    let (mut uut, geom) = build::<Sq4>(&config, 8);
    let rows = random_rows(&geom, 41, 6);
    let cut = l1_commands(&geom, &rows[2..5]);
    let beats = encode_all(&cut, &geom).expect("encode");
    // Stops once every beat is accepted: rows are in the unit, no response has left.
    let sim = run_rtl(&mut uut, &beats, |_| true, |_| false, 0, 10_000);
    assert_eq!(sim.accept.len(), beats.len());
    let cmds = l1_commands(&geom, &rows);
    run_and_check(&mut uut, &geom, &cmds, |_| true, |_| true);
}

/// The generated Verilog in Verilator reproduces the rust-hdl simulation of L1NORMs mixed with
/// a GEMM under back-pressure, port for port and cycle for cycle.
#[test]
fn generated_l1norm_verilog_matches_in_verilator() {
    let config: ArrayConfig = sq(2, 2, 4, 7, 32);
    let (sim, _) = gemm_through_top::<Sq4>(&config, 8, (2, 5, 3), 8, 51, |t| t % 4 != 1);
    assert!(!sim.trace.is_empty());
    let (mut uut, geom) = build::<Sq4>(&config, 8);
    let rows = random_rows(&geom, 52, 6);
    let mut cmds = l1_commands(&geom, &rows);
    cmds.insert(3, Command::Status);
    let sim = run_and_check(&mut uut, &geom, &cmds, |t| t % 5 != 2, |t| t % 3 != 1);
    verilator_check(&config, 8, &sim);
}

/// Encoding and decoding on the host side.
#[test]
fn l1norm_beats_pack_lanes_and_codes() {
    let config = sq(4, 4, 4, 7, 32);
    let geom = AccelGeometry::new(&config, 256).expect("geometry");
    // 4x4 sq4: two K steps of 20 bits per beat, W_IN = 40.
    assert_eq!((geom.cmd_bits(), geom.rsp_bits()), (40, 128));
    assert_eq!((geom.l1_in_lanes(), geom.l1_codes_per_beat()), (2, 16));
    let row: Vec<i64> = vec![1, -1, 32767, -32768, 5];
    let cmd = Command::l1norm(&geom, row.clone());
    assert_eq!(cmd.beats(&geom), 4);
    assert_eq!(cmd.response_beats(&geom), 1);
    let beats = cmd.encode(&geom).expect("encode");
    assert_eq!(beats[0], vec![OP_L1NORM << OPCODE_LSB | 5, 0]);
    assert_eq!(beats[1], vec![0xffff_0001, 0]);
    assert_eq!(beats[2], vec![0x8000_7fff, 0]);
    assert_eq!(beats[3], vec![5, 0]);
    assert_eq!(
        Command::l1norm(&geom, vec![1 << 15]).encode(&geom),
        Err(CommandError::RowValue {
            value: 1 << 15,
            bits: 16
        })
    );
    let rsp = vec![vec![0x0302_ff01, 0x0000_00f9, 0, 0]];
    assert_eq!(
        decode_l1norm(&rsp, 5, &geom).expect("decode"),
        vec![1, -1, 2, 3, -7]
    );
    let fp16 = crate::ArrayConfig::new(2, 2, crate::Datapath::Fp16).expect("valid");
    let g16 = AccelGeometry::new(&fp16, 8).expect("geometry");
    assert_eq!(g16.l1norm, None);
    assert!(AccelGeometry::with_l1norm(&fp16, 8, Some(L1NormConfig::new(4))).is_err());
    assert!(
        AccelGeometry::with_l1norm(&config, 8, Some(L1NormConfig::new(6).with_geometry(16, 10)))
            .is_err(),
        "the unit's codes are the top's"
    );
}
