//! Co-simulation speed of the accelerator top, single-threaded:
//! `cargo bench -p shiftkit-sim --bench sim`.
//!
//! - `sim/accel_sq6_8x8/gemm256`: C = A x B, 256 x 256 x 256, sq6, through `plan_gemm` and
//!   `AccelSim::run` on the 8x8 top with `K_MAX` = 256 (the `rtl` engine's path, minus the
//!   host-side quantization); throughput in simulated cycles.
//! - `sim/accel_sq6_8x8/gemm64`: the same at 64^3 (a GEMM of training-step size).
//!
//! Before timing, each GEMM runs once and is checked: results equal `reference_acc`, cycles
//! and busy cycles equal `model::run` (and the closed form). The report (cycles, utilization
//! `M*K*N / (R*C*cycles)`, simulated cycles per second as the median of three timed runs, the
//! load average) is printed and written to `$SHIFTKIT_SIM_BENCH_JSON`, else
//! `<target>/criterion/sim/accel.json`. Targets: utilization >= 90 % at 256^3,
//! >= 300k cycles/s.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shiftkit_hw::accel::commands::{plan_gemm, reference_acc, GemmPlan, Operand};
use shiftkit_hw::accel::model;
use shiftkit_hw::{ArrayConfig, Datapath};
use shiftkit_sim::accel_driver::AccelSim;
use shiftkit_sim::BuildOptions;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const ROWS: usize = 8;
const K_MAX: usize = 256;
const SIZES: [usize; 2] = [256, 64];

/// SplitMix64: seeded operands without a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        lo + ((z ^ (z >> 31)) % (hi - lo + 1) as u64) as i64
    }
}

/// One GEMM: its operands, its command stream, and what the checked run measured.
struct Case {
    n: usize,
    plan: GemmPlan,
    cycles: u64,
    closed_form: Option<u64>,
    busy: u64,
    seconds: f64,
    /// CPU time of the simulating thread (Linux), which a busy machine does not inflate.
    cpu_seconds: Option<f64>,
}

impl Case {
    fn utilization(&self) -> f64 {
        (self.n * self.n * self.n) as f64 / ((ROWS * ROWS) as u64 * self.cycles) as f64
    }
    fn cycles_per_second(&self) -> f64 {
        self.cycles as f64 / self.seconds
    }
    fn cycles_per_cpu_second(&self) -> Option<f64> {
        self.cpu_seconds.map(|s| self.cycles as f64 / s)
    }
}

fn prepare(sim: &mut AccelSim, config: &ArrayConfig, n: usize) -> Case {
    let geom = *sim.geometry();
    let mut rng = Rng(n as u64);
    let q = config.q_max();
    let e = i64::from(config.window);
    let mut codes =
        |len: usize| -> Vec<i32> { (0..len).map(|_| rng.range(-q, q) as i32).collect() };
    let (a, b) = (codes(n * n), codes(n * n));
    let mut rng = Rng(n as u64 + 1);
    let mut exps = || -> Vec<u8> { (0..n).map(|_| rng.range(0, e) as u8).collect() };
    let (ea, eb) = (exps(), exps());
    let opa = Operand {
        rows: n,
        cols: n,
        codes: &a,
        k_exps: Some(&ea),
    };
    let opb = Operand {
        rows: n,
        cols: n,
        codes: &b,
        k_exps: Some(&eb),
    };
    let plan = plan_gemm(&geom, &opa, &opb, K_MAX).expect("plan");
    let run = sim.run(&plan.commands).expect("the GEMM runs");
    assert_eq!(
        plan.assemble(&geom, &run.responses).expect("assemble"),
        reference_acc(&opa, &opb),
        "{n}^3: results"
    );
    let timing = model::run(&geom, &plan.commands, |_| true, |_| true, 100_000_000);
    assert_eq!(run.cycles, timing.cycles, "{n}^3: cycles as the model says");
    assert_eq!(run.busy_cycles, timing.array_busy, "{n}^3: busy cycles");
    // Median of three timed runs (wall and CPU time).
    let mut secs: Vec<(f64, Option<f64>)> = (0..3)
        .map(|_| {
            let (t, cpu) = (Instant::now(), thread_cpu_ns());
            let r = sim.run(&plan.commands).expect("the GEMM runs");
            let s = t.elapsed().as_secs_f64();
            let cpu = cpu.zip(thread_cpu_ns()).map(|(a, b)| (b - a) as f64 * 1e-9);
            assert_eq!(r.cycles, run.cycles);
            (s, cpu)
        })
        .collect();
    secs.sort_by(|a, b| a.0.total_cmp(&b.0));
    Case {
        n,
        closed_form: model::streamed_gemm_cycles(&geom, n, n, n, K_MAX),
        cycles: run.cycles,
        busy: run.busy_cycles,
        seconds: secs[1].0,
        cpu_seconds: secs[1].1,
        plan,
    }
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`; Linux only).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `<target>/criterion/sim/accel.json` from the bench binary's place (`<target>/<profile>/deps`).
fn report_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SHIFTKIT_SIM_BENCH_JSON") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?.parent()?;
    Some(target.join("criterion/sim/accel.json"))
}

fn write_report(top: &str, cases: &[Case]) {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "null".into());
    let mut json = String::from("{\n");
    let _ = writeln!(json, "  \"bench\": \"sim\",\n  \"design\": \"{top}\",");
    let _ = writeln!(
        json,
        "  \"k_max\": {K_MAX},\n  \"threads\": 1,\n  \"load_average_1min\": {load},"
    );
    json.push_str("  \"gemms\": [\n");
    for (i, c) in cases.iter().enumerate() {
        let closed = c.closed_form.map_or("null".into(), |x| x.to_string());
        let cpu = c.cpu_seconds.map_or("null".into(), |x| format!("{x:.6}"));
        let per_cpu = c
            .cycles_per_cpu_second()
            .map_or("null".into(), |x| format!("{x:.0}"));
        let _ = writeln!(
            json,
            "    {{\"m\": {n}, \"k\": {n}, \"n\": {n}, \"cycles\": {}, \"closed_form_cycles\": {closed}, \
             \"busy_cycles\": {}, \"utilization\": {:.6}, \"seconds\": {:.6}, \"cycles_per_second\": {:.0}, \"cpu_seconds\": {cpu}, \
             \"cycles_per_cpu_second\": {per_cpu}}}{}",
            c.cycles,
            c.busy,
            c.utilization(),
            c.seconds,
            c.cycles_per_second(),
            if i + 1 < cases.len() { "," } else { "" },
            n = c.n,
        );
    }
    json.push_str("  ]\n}\n");
    let Some(path) = report_path() else {
        eprintln!("sim bench: no place for the JSON report (set SHIFTKIT_SIM_BENCH_JSON)");
        return;
    };
    let tmp = path.with_extension("json.tmp");
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&tmp, &json))
        .and_then(|()| std::fs::rename(&tmp, &path));
    match written {
        Ok(()) => eprintln!("sim bench: report in {}", path.display()),
        Err(e) => eprintln!("sim bench: cannot write {}: {e}", path.display()),
    }
}

fn accel(c: &mut Criterion) {
    let config = ArrayConfig::sized(ROWS, ROWS, Datapath::Sq { bits: 6 }, 7, None).expect("valid");
    let t = Instant::now();
    let mut sim =
        AccelSim::build(&config, K_MAX, &BuildOptions::default()).expect("the top builds");
    eprintln!("{}: model ready in {:.1?}", sim.top(), t.elapsed());
    let cases: Vec<Case> = SIZES
        .iter()
        .map(|&n| prepare(&mut sim, &config, n))
        .collect();
    for c in &cases {
        eprintln!(
            "{}^3 on {ROWS}x{ROWS} sq6, K_MAX {K_MAX}: {} cycles (closed form {:?}), array busy {}, \
             utilization {:.2} % (target >= 90 % at 256^3), {:.0} cycles/s (target >= 300k), \
             {:.0} cycles per CPU second",
            c.n,
            c.cycles,
            c.closed_form,
            c.busy,
            100.0 * c.utilization(),
            c.cycles_per_second(),
            c.cycles_per_cpu_second().unwrap_or(f64::NAN)
        );
    }
    write_report(sim.top(), &cases);

    let mut group = c.benchmark_group("sim");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    for case in &cases {
        group.throughput(Throughput::Elements(case.cycles));
        let id = BenchmarkId::new("accel_sq6_8x8", format!("gemm{}", case.n));
        group.bench_function(id, |bench| {
            bench.iter(|| sim.run(&case.plan.commands).expect("the GEMM runs"))
        });
    }
    group.finish();
}

criterion_group!(benches, accel);
criterion_main!(benches);
