//! rust-hdl simulations of small accelerator tops: whole GEMMs through the command stream,
//! back-pressure, interlocks, STATUS; and the timing model held against them cycle for cycle.

use super::commands::*;
use super::fp16_top::Fp16Accel;
use super::model;
use super::top::SqAccel;
use super::AccelGeometry;
use crate::pe::PeParams;
use crate::testutil::Rng;
use crate::{ArrayConfig, Datapath};
use rust_hdl::prelude::*;

/// One cycle at the top's ports: inputs, and the outputs before the clock edge.
#[derive(Clone, Debug)]
pub(crate) struct CycleIo {
    pub reset: bool,
    pub cmd_valid: bool,
    pub cmd: Vec<u32>,
    pub rsp_ready: bool,
    pub cmd_ready: bool,
    pub rsp_valid: bool,
    pub rsp: Vec<u32>,
}

/// What a simulated command stream did.
pub(crate) struct SimRun {
    pub accept: Vec<u64>,
    pub responses: Vec<(u64, Vec<u32>)>,
    pub array_busy: u64,
    pub trace: Vec<CycleIo>,
}

impl SimRun {
    pub fn response_beats(&self) -> Vec<Vec<u32>> {
        self.responses.iter().map(|r| r.1.clone()).collect()
    }
    pub fn response_cycles(&self) -> Vec<u64> {
        self.responses.iter().map(|r| r.0).collect()
    }
}

pub(crate) fn sq(rows: usize, cols: usize, bits: u32, window: u32, acc: u32) -> ArrayConfig {
    ArrayConfig::new(rows, cols, Datapath::Sq { bits })
        .and_then(|c| c.with_acc_bits(acc))
        .and_then(|c| c.with_window(window))
        .expect("valid config")
}

/// The SQ tops the tests build (W = 16, rows <= 256 for the L1-norm unit).
pub(crate) type Sq4 = crate::sq_accel!(4, 8, 32, 16, 10);
pub(crate) type Sq6 = crate::sq_accel!(6, 12, 32, 16, 10);
pub(crate) type Sq8Wide = crate::sq_accel!(8, 16, 48, 16, 10);

/// An SQ top type the harness can build.
pub(crate) trait SqTop: AccelPorts + Sized {
    fn make(geom: &AccelGeometry, params: PeParams) -> Self;
}

impl<
        const B: usize,
        const P: usize,
        const ACC: usize,
        const W: usize,
        const A: usize,
        const NB: usize,
        const RB: usize,
        const SB: usize,
        const QB: usize,
        const N2B: usize,
        const DW: usize,
        const DH: usize,
        const EW: usize,
        const RP: usize,
        const CB: usize,
        const EB: usize,
        const NW: usize,
        const K: usize,
        const K1: usize,
        const PW: usize,
        const IB: usize,
    > SqTop
    for SqAccel<B, P, ACC, W, A, NB, RB, SB, QB, N2B, DW, DH, EW, RP, CB, EB, NW, K, K1, PW, IB>
{
    fn make(geom: &AccelGeometry, params: PeParams) -> Self {
        SqAccel::new(geom, params)
    }
}

pub(crate) fn build<T: SqTop>(config: &ArrayConfig, k_max: usize) -> (T, AccelGeometry) {
    build_with(config, AccelGeometry::new(config, k_max).expect("geometry"))
}

/// The top of `config` with geometry `geom` (e.g. with another L1-norm configuration).
pub(crate) fn build_with<T: SqTop>(
    config: &ArrayConfig,
    geom: AccelGeometry,
) -> (T, AccelGeometry) {
    let params = PeParams {
        acc_bits: config.acc_bits as usize,
        max_shift: 2 * config.window,
    };
    let mut uut = T::make(&geom, params);
    uut.connect_all();
    check_all(&uut).expect("the accelerator top is fully connected");
    (uut, geom)
}

pub(crate) fn settle<T: Block>(uut: &mut T) {
    assert!(simulate(uut, 400), "the design settles");
}

/// The ports of an accelerator top, for the simulation harness.
pub(crate) trait AccelPorts: Block {
    fn cmd_words(&self) -> usize;
    fn drive(&mut self, reset: bool, valid: bool, cmd: &[u32], rsp_ready: bool);
    /// `cmd_ready`, `rsp_valid`, `rsp_data` (settled, before the clock edge).
    fn sample(&self) -> (bool, bool, Vec<u32>);
    fn set_clock(&mut self, high: bool);
    /// The array's `valid` input this cycle.
    fn array_valid(&self) -> bool;
    fn debug(&self) -> String;
}

macro_rules! accel_ports {
    ($t:ty) => {
        fn cmd_words(&self) -> usize {
            self.cmd_data.len()
        }
        fn drive(&mut self, reset: bool, valid: bool, cmd: &[u32], rsp_ready: bool) {
            self.reset.next = reset;
            self.cmd_valid.next = valid;
            for (port, &w) in self.cmd_data.iter_mut().zip(cmd) {
                port.next = bits(u64::from(w));
            }
            self.rsp_ready.next = rsp_ready;
        }
        fn sample(&self) -> (bool, bool, Vec<u32>) {
            let rsp = self
                .rsp_data
                .iter()
                .map(|w| w.val().to_u64() as u32)
                .collect();
            (self.cmd_ready.val(), self.rsp_valid.val(), rsp)
        }
        fn set_clock(&mut self, high: bool) {
            self.clock.next = Clock { clk: high };
        }
        fn array_valid(&self) -> bool {
            self.array.ctl_in.val().to_u64() & 1 == 1
        }
        fn debug(&self) -> String {
            let dv: Vec<u8> = self
                .array
                .drain_valid
                .iter()
                .map(|v| u8::from(v.val()))
                .collect();
            let we: Vec<u8> = self
                .control
                .result_path
                .collector
                .write_enable
                .iter()
                .map(|v| u8::from(v.val()))
                .collect();
            let rows: Vec<u64> = self
                .control
                .result_path
                .collector
                .write_row
                .iter()
                .map(|v| v.val().to_u64())
                .collect();
            format!(
                "ctl {:02b} drain_valid {:?} we {:?} rows {:?} ev {} pend {}{}",
                self.array.ctl_in.val().to_u64() & 3,
                dv,
                we,
                rows,
                u8::from(self.control.result_path.collector.flush_event.val()),
                u8::from(self.control.result_path.collector.pending0.val()),
                u8::from(self.control.result_path.collector.pending1.val())
            )
        }
    };
}

impl<
        const B: usize,
        const P: usize,
        const ACC: usize,
        const W: usize,
        const A: usize,
        const NB: usize,
        const RB: usize,
        const SB: usize,
        const QB: usize,
        const N2B: usize,
        const DW: usize,
        const DH: usize,
        const EW: usize,
        const RP: usize,
        const CB: usize,
        const EB: usize,
        const NW: usize,
        const K: usize,
        const K1: usize,
        const PW: usize,
        const IB: usize,
    > AccelPorts
    for SqAccel<B, P, ACC, W, A, NB, RB, SB, QB, N2B, DW, DH, EW, RP, CB, EB, NW, K, K1, PW, IB>
{
    accel_ports!(SqAccel<B, P, ACC, W, A, NB, RB, SB, QB, N2B, DW, DH, EW, RP, CB, EB, NW, K, K1, PW, IB>);
}

impl AccelPorts for super::fp16_top::Fp16Accel {
    accel_ports!(Fp16Accel);
}

/// Drive `beats` (offered in cycle `t` when `cmd_valid(t)`) and take responses (when
/// `rsp_ready(t)`) until `want_rsp` response beats have left. One reset cycle comes first.
pub(crate) fn run_rtl<U: AccelPorts>(
    uut: &mut U,
    beats: &[Vec<u32>],
    mut cmd_valid: impl FnMut(u64) -> bool,
    mut rsp_ready: impl FnMut(u64) -> bool,
    want_rsp: usize,
    max_cycles: u64,
) -> SimRun {
    let zero = vec![0u32; uut.cmd_words()];
    let mut run = SimRun {
        accept: vec![],
        responses: vec![],
        array_busy: 0,
        trace: vec![],
    };
    let mut next = 0usize;
    let mut cycle: i64 = -1;
    loop {
        let reset = cycle < 0;
        let t = cycle.max(0) as u64;
        if !reset && next == beats.len() && run.responses.len() == want_rsp {
            return run;
        }
        assert!(
            t < max_cycles,
            "the stream did not finish in {max_cycles} cycles"
        );
        let valid = !reset && next < beats.len() && cmd_valid(t);
        let cmd = if valid { &beats[next] } else { &zero };
        let ready_in = !reset && rsp_ready(t);
        uut.drive(reset, valid, cmd, ready_in);
        settle(uut);
        let (cmd_ready, rsp_valid, rsp) = uut.sample();
        run.trace.push(CycleIo {
            reset,
            cmd_valid: valid,
            cmd: cmd.clone(),
            rsp_ready: ready_in,
            cmd_ready,
            rsp_valid,
            rsp: rsp.clone(),
        });
        if !reset {
            if valid && cmd_ready {
                run.accept.push(t);
                next += 1;
            }
            if rsp_valid && ready_in {
                run.responses.push((t, rsp));
            }
            run.array_busy += u64::from(uut.array_valid());
            // `SHIFTKIT_DEBUG=1`: print the array control and the collector, cycle by cycle.
            if std::env::var_os("SHIFTKIT_DEBUG").is_some() {
                eprintln!("cycle {t}: {}", uut.debug());
            }
        }
        uut.set_clock(true);
        settle(uut);
        uut.set_clock(false);
        settle(uut);
        cycle += 1;
    }
}

/// Random SQ operands: codes in [-Q, Q], per-K exponents in 0..=E on both sides.
pub(crate) fn random_operands(
    rng: &mut Rng,
    m: usize,
    k: usize,
    n: usize,
    q: i64,
    window: u32,
) -> (Vec<i32>, Vec<u8>, Vec<i32>, Vec<u8>) {
    let codes = |rng: &mut Rng, len| (0..len).map(|_| rng.range(-q, q) as i32).collect();
    let exps = |rng: &mut Rng| (0..k).map(|_| rng.range(0, window as i64) as u8).collect();
    let a = codes(rng, m * k);
    let ea = exps(rng);
    let b = codes(rng, k * n);
    let eb = exps(rng);
    (a, ea, b, eb)
}

/// Run C = A x B through the top, check every accumulator against the i64 reference and the
/// timing against the model; return the simulation.
pub(crate) fn gemm_through_top<T: SqTop>(
    config: &ArrayConfig,
    k_max: usize,
    shape: (usize, usize, usize),
    chunk: usize,
    seed: u64,
    rsp_ready: impl Fn(u64) -> bool + Copy,
) -> (SimRun, model::Timing) {
    let geom = AccelGeometry::new(config, k_max).expect("geometry");
    gemm_through_geometry::<T>(config, geom, shape, chunk, seed, rsp_ready)
}

/// [`gemm_through_top`] on the top of `geom` (e.g. another `k_per_beat`).
pub(crate) fn gemm_through_geometry<T: SqTop>(
    config: &ArrayConfig,
    geom: AccelGeometry,
    (m, k, n): (usize, usize, usize),
    chunk: usize,
    seed: u64,
    rsp_ready: impl Fn(u64) -> bool + Copy,
) -> (SimRun, model::Timing) {
    let k_max = geom.k_max;
    let (mut uut, geom) = build_with::<T>(config, geom);
    let mut rng = Rng::new(seed);
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
    let plan = plan_gemm(&geom, &opa, &opb, chunk).expect("plan");
    let beats = plan.beats(&geom).expect("encode");
    let want = plan.response_beats(&geom);
    let limit = 20 * beats.len() as u64 + 10_000;
    let sim = run_rtl(&mut uut, &beats, |_| true, rsp_ready, want, limit);
    let got = plan
        .assemble(&geom, &sim.response_beats())
        .expect("assemble");
    assert_eq!(
        got,
        reference_acc(&opa, &opb),
        "{config} K_MAX={k_max} {m}x{k}x{n} chunk {chunk}"
    );
    let timing = model::run(&geom, &plan.commands, |_| true, rsp_ready, limit);
    assert_eq!(
        sim.accept, timing.accept,
        "command beats accepted as the model says"
    );
    assert_eq!(
        sim.response_cycles(),
        timing.responses,
        "response beats leave as the model says"
    );
    assert_eq!(sim.array_busy, timing.array_busy);
    eprintln!(
        "{config} K_MAX={k_max} {m}x{k}x{n}: {} commands, {} beats, {} responses, {} cycles, array busy {}",
        plan.commands.len(),
        beats.len(),
        sim.responses.len(),
        timing.cycles,
        timing.array_busy
    );
    (sim, timing)
}

#[test]
fn gemm_sq4_2x2_several_chunks() {
    // M, N not multiples of the tile; K = 37 in chunks of 16, 16, 5 (short tiles get padded).
    gemm_through_top::<Sq4>(&sq(2, 2, 4, 7, 32), 16, (5, 37, 3), 16, 1, |_| true);
    // Chunks of 1..3 k-steps: every COMPUTE is shorter than the flush spacing.
    gemm_through_top::<Sq4>(&sq(2, 2, 4, 7, 32), 3, (3, 7, 4), 3, 2, |_| true);
}

/// One, two or four K steps per LOAD beat and buffer entry: odd K_MAX and chunks (a LOAD's
/// last beat half full), a short last chunk, back-to-back tiles; results bit-exact, timing as
/// the model says. Two steps halve a LOAD's beats.
#[test]
fn every_k_per_beat_is_bit_exact_and_timed_by_the_model() {
    let config = sq(3, 2, 4, 7, 32);
    let mut beats = vec![];
    for p in [1, 2, 4] {
        let geom = AccelGeometry::new(&config, 7)
            .and_then(|g| g.with_k_per_beat(p))
            .expect("geometry");
        let (sim, _) =
            gemm_through_geometry::<Sq4>(&config, geom, (5, 19, 5), 7, 10 + p as u64, |_| true);
        beats.push(sim.accept.len());
    }
    // 2 row blocks x 3 chunks (7, 7, 5) x (LOAD_A + 3 tiles x (LOAD_B, COMPUTE, DRAIN)).
    let want = |p: usize| {
        let load = |kc: usize| 1 + kc.div_ceil(p);
        2 * [7, 7, 5]
            .iter()
            .map(|&kc| 4 * load(kc) + 3 * 2)
            .sum::<usize>()
    };
    assert_eq!(beats, vec![want(1), want(2), want(4)]);
    let config = sq(2, 2, 6, 7, 32);
    let geom = AccelGeometry::new(&config, 5)
        .and_then(|g| g.with_k_per_beat(2))
        .expect("geometry");
    gemm_through_geometry::<Sq6>(&config, geom, (4, 13, 3), 5, 21, |t| t % 3 != 1);
}

#[test]
fn gemm_sq6_3x2() {
    gemm_through_top::<Sq6>(&sq(3, 2, 6, 7, 32), 8, (7, 20, 5), 8, 3, |_| true);
}

#[test]
fn gemm_sq8_2x3_wide_accumulators() {
    // E = 15 on both sides needs 45 bits: 64-bit response lanes. K chunk 8 fits 48 bits.
    gemm_through_top::<Sq8Wide>(&sq(2, 3, 8, 15, 48), 8, (3, 19, 4), 8, 4, |_| true);
}

#[test]
fn drain_under_back_pressure() {
    let mut rng = Rng::new(99);
    let pattern: Vec<bool> = (0..4096).map(|_| rng.range(0, 2) != 0).collect();
    let ready = |t: u64| pattern[(t % 4096) as usize];
    gemm_through_top::<Sq4>(&sq(3, 2, 4, 7, 32), 8, (7, 11, 5), 8, 5, &ready);
    // A host that takes a beat only every 7th cycle: COMPUTE into a bank being drained waits.
    let slow = |t: u64| t.is_multiple_of(7);
    gemm_through_top::<Sq4>(&sq(2, 2, 4, 7, 32), 4, (4, 4, 6), 4, 6, slow);
}

/// The trace as testbench vectors: the recorded inputs, and `cmd_ready`, `rsp_valid` and (when
/// valid) `rsp_data` compared every cycle before the rising edge.
fn testbench(
    design: &crate::generate::GeneratedDesign,
    trace: &[CycleIo],
) -> crate::vector_tb::VectorTb {
    use crate::vector_tb::{Check, Port, VectorTb};
    let a = design.accel.as_ref().expect("an accelerator top");
    let inputs = vec![
        Port::new("reset", 1),
        Port::new("cmd_valid", 1),
        Port::new("rsp_ready", 1),
        Port::new("cmd_data", a.cmd_bits),
    ];
    let outputs = vec![
        Port::new("cmd_ready", 1),
        Port::new("rsp_valid", 1),
        Port::new("rsp_data", a.rsp_bits),
    ];
    let mut tb = VectorTb::new(&design.top, inputs, outputs, Check::BeforeEdge);
    let bit = |b: bool| vec![u32::from(b)];
    for c in trace {
        tb.cycle(
            vec![
                bit(c.reset),
                bit(c.cmd_valid),
                bit(c.rsp_ready),
                c.cmd.clone(),
            ],
            vec![
                Some(bit(c.cmd_ready)),
                Some(bit(c.rsp_valid)),
                c.rsp_valid.then(|| c.rsp.clone()),
            ],
        );
    }
    tb
}

/// The generated Verilog, simulated by Verilator, reproduces the rust-hdl simulation of a GEMM
/// (with back-pressure) at the ports, bit for bit and cycle for cycle.
fn verilator_replays<T: SqTop>(
    config: ArrayConfig,
    k_max: usize,
    (m, k, n): (usize, usize, usize),
    seed: u64,
) {
    let ready = |t: u64| t % 5 != 3;
    let (sim, _) = gemm_through_top::<T>(&config, k_max, (m, k, n), k_max, seed, ready);
    verilator_check(&config, k_max, &sim);
}

/// Replay `sim` on the generated top of `config` in Verilator; every port must match.
pub(crate) fn verilator_check(config: &ArrayConfig, k_max: usize, sim: &SimRun) {
    let design = crate::generate::generate_accel(config, k_max).expect("generates");
    let dir = tempfile::tempdir().expect("tempdir");
    let man = crate::generate::write_design(&design, dir.path()).expect("writes");
    let files = [dir.path().join(&man.files[0])];
    let text = testbench(&design, &sim.trace).run_in_verilator(&files, dir.path());
    assert!(
        text.contains("TB PASS"),
        "{config}:\n{}",
        &text[..text.len().min(4000)]
    );
}

#[test]
fn generated_verilog_matches_in_verilator() {
    verilator_replays::<Sq4>(sq(2, 2, 4, 7, 32), 8, (3, 13, 5), 41);
    verilator_replays::<Sq8Wide>(sq(3, 2, 8, 15, 48), 6, (4, 9, 3), 42);
    let ready = |t: u64| t % 5 != 3;
    let (sim, _) = fp16_gemm_through_top((2, 2), 8, (5, 13, 3), 8, 43, ready);
    let fp = ArrayConfig::new(2, 2, Datapath::Fp16).expect("valid");
    verilator_check(&fp, 8, &sim);
}

/// A random R x k A block and k x C B block as LOAD commands, with their reference tile.
fn random_tile(
    rng: &mut Rng,
    geom: &AccelGeometry,
    config: &ArrayConfig,
    k: usize,
    banks: (u8, u8),
) -> (Command, Command, Vec<Vec<i64>>) {
    let (r, c) = (geom.rows, geom.cols);
    let (a, ea, b, eb) = random_operands(rng, r, k, c, config.q_max(), config.window);
    let opa = Operand {
        rows: r,
        cols: k,
        codes: &a,
        k_exps: Some(&ea),
    };
    let opb = Operand {
        rows: k,
        cols: c,
        codes: &b,
        k_exps: Some(&eb),
    };
    let acc = reference_acc(&opa, &opb);
    let load_a = Command::LoadA {
        bank: banks.0,
        vectors: (0..k)
            .map(|kk| DataVector {
                lanes: (0..r).map(|i| a[i * k + kk]).collect(),
                exp: ea[kk],
            })
            .collect(),
    };
    let load_b = Command::LoadB {
        bank: banks.1,
        vectors: (0..k)
            .map(|kk| DataVector {
                lanes: b[kk * c..(kk + 1) * c].to_vec(),
                exp: eb[kk],
            })
            .collect(),
    };
    (
        load_a,
        load_b,
        acc.chunks(c).map(|row| row.to_vec()).collect(),
    )
}

/// Index of the header beat of command `i`.
fn header_beat(cmds: &[Command], i: usize, geom: &AccelGeometry) -> usize {
    cmds[..i].iter().map(|c| c.beats(geom)).sum()
}

fn add(x: &[Vec<i64>], y: &[Vec<i64>]) -> Vec<Vec<i64>> {
    x.iter()
        .zip(y)
        .map(|(a, b)| a.iter().zip(b).map(|(p, q)| p + q).collect())
        .collect()
}

#[test]
fn loads_wait_for_the_bank_they_overwrite() {
    let config = sq(2, 2, 4, 7, 32);
    let (mut uut, geom) = build::<Sq4>(&config, 8);
    let mut rng = Rng::new(7);
    let (la0, lb0, t0) = random_tile(&mut rng, &geom, &config, 8, (0, 0));
    let (la0b, lb1, t1) = random_tile(&mut rng, &geom, &config, 2, (0, 1));
    let cmds = vec![
        la0,
        lb0,
        Command::compute(0, 0, 0, 8), // 2
        lb1,                          // 3: the other B bank: proceeds at once
        la0b,                         // 4: A bank 0 is being read: waits
        Command::compute(0, 1, 1, 2), // 5
        Command::Drain { c_bank: 0 }, // 6: tile 0, computed from the first A bank 0
        Command::Drain { c_bank: 1 }, // 7
    ];
    let beats = encode_all(&cmds, &geom).expect("encode");
    let want: usize = cmds.iter().map(|c| c.response_beats(&geom)).sum();
    let slow = |t: u64| t.is_multiple_of(3);
    let sim = run_rtl(&mut uut, &beats, |_| true, slow, want, 10_000);
    let timing = model::run(&geom, &cmds, |_| true, slow, 10_000);
    assert_eq!(sim.accept, timing.accept);
    assert_eq!(sim.response_cycles(), timing.responses);
    let at = |i: usize| sim.accept[header_beat(&cmds, i, &geom)];
    assert_eq!(at(3), at(2) + 1, "LOAD_B 1 is accepted right after COMPUTE");
    // COMPUTE accepted in cycle a issues its last read (k = 7) in cycle a + 8.
    assert_eq!(
        at(4),
        at(2) + 8,
        "LOAD_A 0 waits for the COMPUTE's last read of bank 0"
    );
    assert!(
        at(4) > sim.accept[header_beat(&cmds, 4, &geom) - 1] + 1,
        "and it did wait"
    );
    assert!(
        sim.trace.iter().any(|c| c.cmd_valid && !c.cmd_ready),
        "cmd_ready went low"
    );
    let got = sim.response_beats();
    assert_eq!(decode_drain(&got[..2], &geom).expect("drain 0"), t0);
    assert_eq!(decode_drain(&got[2..], &geom).expect("drain 1"), t1);
}

#[test]
fn compute_waits_for_the_drain_of_its_c_bank_and_hold_chains_computes() {
    let config = sq(2, 3, 6, 7, 32);
    let (mut uut, geom) = build::<Sq6>(&config, 8);
    let mut rng = Rng::new(8);
    let (la0, lb0, t0) = random_tile(&mut rng, &geom, &config, 5, (0, 0));
    let (la1, lb1, t1) = random_tile(&mut rng, &geom, &config, 3, (1, 1));
    let cmds = vec![
        la0,
        lb0,
        Command::compute(0, 0, 0, 5),
        Command::Drain { c_bank: 0 }, // 3
        la1,
        lb1,
        // 6: C bank 0 is still being drained (the host takes a beat every 9th cycle), but a held
        // COMPUTE does not flush into it.
        Command::Compute {
            a_bank: 0,
            b_bank: 0,
            c_bank: 0,
            k_len: 5,
            hold: true,
        },
        Command::compute(1, 1, 0, 3), // 7: continues the held accumulators; waits for DRAIN 0
        Command::Drain { c_bank: 0 },
        Command::Status,
    ];
    let beats = encode_all(&cmds, &geom).expect("encode");
    let want: usize = cmds.iter().map(|c| c.response_beats(&geom)).sum();
    let slow = |t: u64| t.is_multiple_of(9);
    let sim = run_rtl(&mut uut, &beats, |_| true, slow, want, 10_000);
    let timing = model::run(&geom, &cmds, |_| true, slow, 10_000);
    assert_eq!(sim.accept, timing.accept);
    assert_eq!(sim.response_cycles(), timing.responses);
    let got = sim.response_beats();
    assert_eq!(decode_drain(&got[..2], &geom).expect("drain"), t0);
    assert_eq!(
        decode_drain(&got[2..4], &geom).expect("drain"),
        add(&t0, &t1)
    );
    // The held COMPUTE writes no C bank and starts at once; the one that flushes into C bank 0
    // was accepted only after the first DRAIN's last beat left.
    let held = sim.accept[header_beat(&cmds, 6, &geom)];
    let flushing = sim.accept[header_beat(&cmds, 7, &geom)];
    assert!(held < sim.responses[1].0, "the held COMPUTE did not wait");
    assert!(
        flushing > sim.responses[1].0,
        "COMPUTE into C bank 0 waited for DRAIN 0"
    );
    let st = Status::decode(&got[4], &geom);
    assert_eq!(st.accepted, Some(9));
    assert_eq!(
        st.flags,
        Some(0),
        "nothing computing, nothing pending, no error"
    );
    assert_eq!(u64::from(st.cycles), sim.accept[beats.len() - 1]);
}

#[test]
fn status_reports_errors_and_bad_loads_keep_the_stream_in_step() {
    let config = sq(2, 3, 4, 7, 32);
    let (mut uut, geom) = build::<Sq4>(&config, 4);
    let mut rng = Rng::new(9);
    let (la, lb, t) = random_tile(&mut rng, &geom, &config, 4, (0, 1));
    let words = geom.cmd_words();
    let raw = |h: u32| {
        let mut v = vec![0u32; words];
        v[0] = h;
        v
    };
    let mut beats = vec![raw(Command::Status.header())];
    // An unknown opcode, a COMPUTE of k_len 0, and a LOAD of K_MAX + 1 data beats (stored
    // nowhere): all set the error flag; the stream stays in step.
    beats.push(raw(7 << OPCODE_LSB));
    beats.push(raw(OP_COMPUTE << OPCODE_LSB));
    beats.push(raw(OP_LOAD_A << OPCODE_LSB | 5));
    for _ in 0..geom.load_beats(5) {
        beats.push(raw(Command::Status.header())); // data beats that look like headers
    }
    beats.push(raw(Command::Nop.header()));
    beats.extend(la.encode(&geom).expect("encode"));
    beats.extend(lb.encode(&geom).expect("encode"));
    beats.extend(Command::compute(0, 1, 1, 4).encode(&geom).expect("encode"));
    beats.extend(Command::Drain { c_bank: 1 }.encode(&geom).expect("encode"));
    beats.push(raw(Command::Status.header()));
    let sim = run_rtl(&mut uut, &beats, |_| true, |_| true, 1 + 2 + 1, 10_000);
    let got = sim.response_beats();
    assert_eq!(
        Status::decode(&got[0], &geom),
        Status {
            cycles: 0,
            flags: Some(0),
            accepted: Some(0)
        }
    );
    assert_eq!(decode_drain(&got[1..3], &geom).expect("drain"), t);
    let st = Status::decode(&got[3], &geom);
    assert_eq!(st.flags, Some(FLAG_ERROR));
    assert_eq!(
        st.accepted,
        Some(9),
        "STATUS, 7, COMPUTE 0, LOAD_A, NOP, LOAD_A, LOAD_B, COMPUTE, DRAIN"
    );
}

#[test]
fn reset_in_the_middle_of_a_compute_leaves_a_clean_top() {
    let config = sq(3, 2, 4, 7, 32);
    let (mut uut, geom) = build::<Sq4>(&config, 16);
    let mut rng = Rng::new(10);
    let (la, lb, _) = random_tile(&mut rng, &geom, &config, 16, (0, 0));
    let mut cut = vec![la, lb, Command::compute(0, 0, 0, 16)];
    cut.extend((0..10).map(|_| Command::Nop));
    let beats = encode_all(&cut, &geom).expect("encode");
    // Returns 10 cycles after the COMPUTE is accepted: the array is mid-tile.
    run_rtl(&mut uut, &beats, |_| true, |_| true, 0, 1000);
    let (a, ea, b, eb) = random_operands(&mut rng, 4, 6, 3, config.q_max(), config.window);
    let opa = Operand {
        rows: 4,
        cols: 6,
        codes: &a,
        k_exps: Some(&ea),
    };
    let opb = Operand {
        rows: 6,
        cols: 3,
        codes: &b,
        k_exps: Some(&eb),
    };
    let plan = plan_gemm(&geom, &opa, &opb, 16).expect("plan");
    let beats = plan.beats(&geom).expect("encode");
    let sim = run_rtl(
        &mut uut,
        &beats,
        |_| true,
        |_| true,
        plan.response_beats(&geom),
        10_000,
    );
    assert_eq!(
        plan.assemble(&geom, &sim.response_beats())
            .expect("assemble"),
        reference_acc(&opa, &opb)
    );
    let timing = model::run(&geom, &plan.commands, |_| true, |_| true, 10_000);
    assert_eq!(
        sim.accept, timing.accept,
        "after reset the top times like a fresh one"
    );
    assert_eq!(sim.response_cycles(), timing.responses);
}

/// Utilization of C = A x B (M x K x N) on the timing model, the host streaming one beat per
/// cycle and always ready for responses.
fn model_utilization(
    config: &ArrayConfig,
    k_max: usize,
    (m, k, n): (usize, usize, usize),
) -> (model::Timing, f64) {
    let geom = AccelGeometry::new(config, k_max).expect("geometry");
    let a = vec![1i32; m * k];
    let b = vec![1i32; k * n];
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
    let plan = plan_gemm(&geom, &opa, &opb, k_max).expect("plan");
    let t = model::run(&geom, &plan.commands, |_| true, |_| true, 100_000_000);
    let u = t.utilization(&geom, (m * k * n) as u64);
    (t, u)
}

#[test]
fn gemm_256_cubed_on_8x8_keeps_the_array_over_90_percent_busy() {
    let (t, u) = model_utilization(&sq(8, 8, 4, 7, 32), 256, (256, 256, 256));
    eprintln!(
        "256x256x256 on 8x8, K_MAX 256: {} cycles, array busy {}, utilization {:.4}",
        t.cycles, t.array_busy, u
    );
    assert!(u >= 0.90, "utilization {u}");
    // For comparison: shorter K chunks (e.g. a narrower accumulator), and the FP16 top.
    let geom = AccelGeometry::new(&sq(8, 8, 4, 7, 32), 256).expect("geometry");
    let a = vec![0i32; 256 * 256];
    let op = Operand {
        rows: 256,
        cols: 256,
        codes: &a,
        k_exps: None,
    };
    for chunk in [64, 16] {
        let plan = plan_gemm(&geom, &op, &op, chunk).expect("plan");
        let t = model::run(&geom, &plan.commands, |_| true, |_| true, 100_000_000);
        let u = t.utilization(&geom, 1 << 24);
        eprintln!(
            "  K chunks of {chunk}: {} cycles, utilization {u:.4}",
            t.cycles
        );
    }
    let fp16 = ArrayConfig::new(8, 8, Datapath::Fp16).expect("valid");
    let fp = AccelGeometry::new(&fp16, 256).expect("geometry");
    let plan = plan_gemm(&fp, &op, &op, 256).expect("plan");
    let t = model::run(&fp, &plan.commands, |_| true, |_| true, 100_000_000);
    let u = t.utilization(&fp, 1 << 24);
    eprintln!("  fp16 8x8: {} cycles, utilization {u:.4}", t.cycles);
}

/// One GEMM on an 8x8 sq4 top in rust-hdl: every accumulator checked, timing equal to the model.
fn gemm_on_8x8(m: usize, k: usize, n: usize) {
    let config = sq(8, 8, 4, 7, 32);
    let start = std::time::Instant::now();
    let (sim, t) = gemm_through_top::<Sq4>(&config, 256, (m, k, n), 256, 11, |_| true);
    let geom = AccelGeometry::new(&config, 256).expect("geometry");
    let u = t.utilization(&geom, (m * k * n) as u64);
    eprintln!(
        "rust-hdl 8x8 sq4 {m}x{k}x{n}: {} cycles ({:.1?}), array busy {}, utilization {u:.4}",
        t.cycles,
        start.elapsed(),
        sim.array_busy
    );
}

#[test]
fn gemm_on_8x8_in_rust_hdl_matches_the_model() {
    gemm_on_8x8(20, 70, 13);
}

/// The full 256 x 256 x 256 case (about 275k cycles, a few minutes):
/// `cargo test -p shiftkit-hw --lib accel::tests::gemm_256 -- --ignored --nocapture`.
#[test]
#[ignore]
fn gemm_256_cubed_on_8x8_in_rust_hdl() {
    gemm_on_8x8(256, 256, 256);
}

#[test]
fn closed_form_cycles_match_the_model() {
    let d = crate::array::DRAIN_DELAY;
    for (config, k_max, shape, chunk) in [
        (sq(8, 8, 4, 7, 32), 256, (256, 256, 256), 256),
        (sq(8, 8, 4, 7, 32), 256, (20, 96, 13), 32),
        (sq(4, 4, 6, 7, 32), 64, (4, 64, 4), 64),
        (sq(2, 3, 4, 7, 32), 16, (9, 45, 7), 15),
        // The shortest chunks the closed form covers: kc = C + 3R + DRAIN_DELAY - 5.
        (sq(2, 3, 4, 7, 32), 16, (9, 6 * (d + 4), 7), d + 4),
        (sq(3, 2, 8, 7, 32), 16, (5, 3 * (d + 6), 9), d + 6),
    ] {
        // The closed form covers one K step per LOAD beat.
        let geom = AccelGeometry::new(&config, k_max)
            .and_then(|g| g.with_k_per_beat(1))
            .expect("geometry");
        let (m, k, n) = shape;
        let a = vec![0i32; m * k];
        let b = vec![0i32; k * n];
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
        let t = model::run(&geom, &plan.commands, |_| true, |_| true, 10_000_000);
        assert_eq!(
            model::streamed_gemm_cycles(&geom, m, k, n, chunk),
            Some(t.cycles),
            "{config} {shape:?}"
        );
    }
    // Two and four K steps per beat: the feeder sets the pace (the sq4 default is two).
    for (config, k_max, p, shape, chunk) in [
        (sq(8, 8, 4, 7, 32), 256, 2, (256, 256, 256), 256),
        (sq(8, 8, 6, 7, 32), 256, 2, (20, 96, 13), 48),
        (sq(2, 3, 4, 7, 32), 64, 2, (9, 45, 7), 15),
        (sq(2, 3, 4, 7, 32), 64, 4, (9, 60, 2), 15),
        (sq(3, 2, 4, 7, 32), 64, 2, (2, 40, 9), 40),
        (sq(3, 2, 4, 7, 32), 64, 2, (7, 32, 1), 16),
        (sq(4, 4, 8, 7, 32), 64, 4, (4, 64, 12), 64),
    ] {
        let geom = AccelGeometry::new(&config, k_max)
            .and_then(|g| g.with_k_per_beat(p))
            .expect("geometry");
        let (m, k, n) = shape;
        let a = vec![0i32; m * k];
        let b = vec![0i32; k * n];
        let op = |rows, cols, codes| Operand {
            rows,
            cols,
            codes,
            k_exps: None,
        };
        let plan = plan_gemm(&geom, &op(m, k, &a), &op(k, n, &b), chunk).expect("plan");
        let t = model::run(&geom, &plan.commands, |_| true, |_| true, 10_000_000);
        assert_eq!(
            model::streamed_gemm_cycles(&geom, m, k, n, chunk),
            Some(t.cycles),
            "{config} P = {p} {shape:?} chunk {chunk}"
        );
    }
    let geom = AccelGeometry::new(&sq(8, 8, 4, 7, 32), 256).expect("geometry");
    assert_eq!(
        model::streamed_gemm_cycles(&geom, 256, 256, 256, 256),
        Some(262_562),
        "docs/accelerator.md"
    );
    // Short chunks: header waits, no closed form.
    let geom = geom.with_k_per_beat(1).expect("geometry");
    assert_eq!(model::streamed_gemm_cycles(&geom, 64, 64, 64, 16), None);
    let geom = AccelGeometry::new(&sq(2, 3, 4, 7, 32), 16)
        .and_then(|g| g.with_k_per_beat(1))
        .expect("geometry");
    assert_eq!(
        model::streamed_gemm_cycles(&geom, 9, 6 * (d + 3), 7, d + 3),
        None
    );
}

/// A random binary16 value: mostly normal numbers of moderate magnitude, some zeros (both
/// signs) and subnormals.
fn random_f16(rng: &mut Rng) -> i32 {
    let sign = (rng.range(0, 1) as i32) << 15;
    let frac = rng.range(0, 0x3ff) as i32;
    let exp = match rng.range(0, 15) {
        0 => return sign,
        1 => 0,
        _ => rng.range(8, 22) as i32,
    };
    sign | exp << 10 | frac
}

/// C = A x B on an FP16 top: every binary32 result bit-exact against `fp16::model::dot`, timing
/// equal to the model.
fn fp16_gemm_through_top(
    (rows, cols): (usize, usize),
    k_max: usize,
    (m, k, n): (usize, usize, usize),
    chunk: usize,
    seed: u64,
    rsp_ready: impl Fn(u64) -> bool + Copy,
) -> (SimRun, model::Timing) {
    use crate::fp16::model::{dot, same_result};
    let config = ArrayConfig::new(rows, cols, Datapath::Fp16).expect("valid");
    let geom = AccelGeometry::new(&config, k_max).expect("geometry");
    let mut uut = Fp16Accel::new(&geom);
    uut.connect_all();
    check_all(&uut).expect("the fp16 top is fully connected");
    let mut rng = Rng::new(seed);
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
    let beats = plan.beats(&geom).expect("encode");
    let want = plan.response_beats(&geom);
    let limit = 20 * beats.len() as u64 + 10_000;
    let sim = run_rtl(&mut uut, &beats, |_| true, rsp_ready, want, limit);
    let got = plan
        .assemble_f32(&geom, &sim.response_beats())
        .expect("assemble");
    for mm in 0..m {
        for nn in 0..n {
            let pairs: Vec<(u16, u16)> = (0..k)
                .map(|kk| (a[mm * k + kk] as u16, b[kk * n + nn] as u16))
                .collect();
            let want = dot(&pairs);
            assert!(
                same_result(got[mm * n + nn].to_bits(), want),
                "fp16 {rows}x{cols} C[{mm}][{nn}] = {:#x}, want {:#x}",
                got[mm * n + nn].to_bits(),
                want.to_bits()
            );
        }
    }
    let timing = model::run(&geom, &plan.commands, |_| true, rsp_ready, limit);
    assert_eq!(
        sim.accept, timing.accept,
        "command beats accepted as the model says"
    );
    assert_eq!(
        sim.response_cycles(),
        timing.responses,
        "response beats leave as the model says"
    );
    assert_eq!(sim.array_busy, timing.array_busy);
    eprintln!(
        "fp16 {rows}x{cols} K_MAX={k_max} {m}x{k}x{n}: {} commands, {} cycles, array busy {}",
        plan.commands.len(),
        timing.cycles,
        timing.array_busy
    );
    (sim, timing)
}

#[test]
fn fp16_gemm_2x2_bit_exact() {
    // Tiles of 2R = 4 rows; K = 13 in chunks of 8 and 5, chained in the array with hold.
    fp16_gemm_through_top((2, 2), 8, (5, 13, 3), 8, 21, |_| true);
    // One chunk; short tiles (k < R) padded to the 2R spacing; back-pressure.
    fp16_gemm_through_top((3, 2), 16, (7, 2, 5), 16, 22, |t| t % 4 != 1);
}

#[test]
fn a_host_that_pauses_mid_command_is_fine() {
    // cmd_valid drops at random, also in the middle of LOAD data; rsp_ready toggles too.
    let config = sq(2, 3, 4, 7, 32);
    let (mut uut, geom) = build::<Sq4>(&config, 8);
    let mut rng = Rng::new(77);
    let (a, ea, b, eb) = random_operands(&mut rng, 5, 17, 7, config.q_max(), config.window);
    let opa = Operand {
        rows: 5,
        cols: 17,
        codes: &a,
        k_exps: Some(&ea),
    };
    let opb = Operand {
        rows: 17,
        cols: 7,
        codes: &b,
        k_exps: Some(&eb),
    };
    let plan = plan_gemm(&geom, &opa, &opb, 8).expect("plan");
    let beats = plan.beats(&geom).expect("encode");
    let valid: Vec<bool> = (0..4096).map(|_| rng.range(0, 3) != 0).collect();
    let ready: Vec<bool> = (0..4096).map(|_| rng.range(0, 3) != 0).collect();
    let cmd_valid = |t: u64| valid[(t % 4096) as usize];
    let rsp_ready = |t: u64| ready[(t % 4096) as usize];
    let want = plan.response_beats(&geom);
    let sim = run_rtl(&mut uut, &beats, cmd_valid, rsp_ready, want, 100_000);
    assert_eq!(
        plan.assemble(&geom, &sim.response_beats())
            .expect("assemble"),
        reference_acc(&opa, &opb)
    );
    let timing = model::run(&geom, &plan.commands, cmd_valid, rsp_ready, 100_000);
    assert_eq!(sim.accept, timing.accept);
    assert_eq!(sim.response_cycles(), timing.responses);
}
