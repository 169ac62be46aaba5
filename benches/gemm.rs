//! GEMM throughput of every format, square and at the shapes training runs.
//!
//! - `gemm/{fp32,fp16,sq4,sq6,sq8}/{n}x{n}x{n}` (n = 256, 512, 1024): the GEMM itself. fp32 is
//!   `matrixmultiply` on both cores; fp16 and sq* are the golden models of the arrays (SPEC §3,
//!   §4) on operands already in the array's format (binary16; SQ-b codes and exponents), C scaled
//!   back to f32 included.
//! - `engine/{fp16,sq4,sq6,sq8}/{m}x{k}x{n}`: the `golden` engine's whole call from f32 operands
//!   (quantization or rounding to binary16 included), which is what one training GEMM costs, at
//!   the square sizes and at the GEMM shapes of the workloads (next to `gemm/fp32/{m}x{k}x{n}`):
//!   the grokking MLP's three roles (batch 1,795), the data-diet CNN's im2col GEMMs at batch 128
//!   (`Cnn::gemm_shapes`),
//!   a ViT-B/32 block at batch 8 (400 tokens), each with the quantization axes and rounding of
//!   its role (`nn::offload`); weight gradients through `gemm_at` (A = X^T given as X), as
//!   training calls them.
//!
//! After the runs, a table of GOPS (2 ops per MAC), the ratio to fp32 of the same shape and the
//! fraction of the machine's int16 multiply-add peak is printed and written to
//! `target/criterion/gemm-summary.json`; the peaks are measured first (`peak` below). A run
//! filtered to some benchmarks lists the others from their last run, if any.

use criterion::{BenchmarkId, Criterion, Throughput};
use shiftkit::engine::{self, ArrayShape, Engine, EngineKind, GemmOp};
use shiftkit::format::{AAxis, Axis, BAxis};
use shiftkit::fp16::{fp16_gemm, to_half};
use shiftkit::rng::SplitMix64;
use shiftkit::sq::{quantize, Rounding, SqParams};
use shiftkit::sq_gemm::sq_gemm;
use shiftkit::{Format, Matrix};
use std::time::Duration;

const SIZES: [usize; 3] = [256, 512, 1024];

fn random(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut g = SplitMix64::new(seed);
    Matrix::from_fn(rows, cols, |_, _| g.normal() as f32)
}

fn operands(n: usize) -> (Matrix, Matrix) {
    (random(n, n, n as u64), random(n, n, n as u64 + 1))
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group
}

fn gemm(c: &mut Criterion) {
    let mut group = configure(c, "gemm");
    for n in SIZES {
        let (a, b) = operands(n);
        group.throughput(Throughput::Elements((n * n * n) as u64)); // MACs
        let id = format!("{n}x{n}x{n}");
        group.bench_with_input(BenchmarkId::new("fp32", &id), &n, |bench, _| {
            bench.iter(|| shiftkit::engine::cpu::sgemm(&a, &b))
        });
        let (ha, hb) = (
            to_half(&a, "A").expect("finite"),
            to_half(&b, "B").expect("finite"),
        );
        group.bench_with_input(BenchmarkId::new("fp16", &id), &n, |bench, _| {
            bench.iter(|| fp16_gemm(&ha, &hb).expect("shapes agree"))
        });
        for (format, bits) in [(Format::Sq4, 4), (Format::Sq6, 6), (Format::Sq8, 8)] {
            let p = SqParams::new(bits, 7).expect("valid");
            // The SPEC §7 default axes: A per-K (shift in the PE), B per-N (on drain).
            let qa = quantize(&a, "A", p, Axis::Cols, Rounding::NearestEven).expect("finite");
            let qb = quantize(&b, "B", p, Axis::Cols, Rounding::NearestEven).expect("finite");
            group.bench_with_input(BenchmarkId::new(format.name(), &id), &n, |bench, _| {
                bench.iter(|| sq_gemm(&qa, &qb).expect("shapes agree"))
            });
        }
    }
    group.finish();
}

fn engine_calls(c: &mut Criterion) {
    let mut group = configure(c, "engine");
    for n in SIZES {
        let (a, b) = operands(n);
        group.throughput(Throughput::Elements((n * n * n) as u64));
        for format in [Format::Fp16, Format::Sq4, Format::Sq6, Format::Sq8] {
            let mut engine =
                engine::create(EngineKind::Golden, ArrayShape::default()).expect("valid shape");
            let op = GemmOp::new(format);
            let id = format!("{n}x{n}x{n}");
            group.bench_with_input(BenchmarkId::new(format.name(), id), &n, |bench, _| {
                bench.iter(|| engine.gemm(&a, &b, &op).expect("finite inputs"))
            });
        }
    }
    group.finish();
}

/// The quantization of a GEMM role (`nn::offload`'s table): forward X W, input gradient
/// dY W^T (dY stochastic), weight gradient X^T dY (per-M A, per-K B, dY stochastic).
#[derive(Clone, Copy)]
enum Role {
    Forward,
    InputGrad,
    WeightGrad,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Forward => "forward",
            Role::InputGrad => "input-grad",
            Role::WeightGrad => "weight-grad",
        }
    }

    fn op(self, format: Format) -> GemmOp {
        let mut op = GemmOp::new(format);
        let st = Rounding::Stochastic { seed: 7 };
        match self {
            Role::Forward => (op.a_axis, op.b_axis) = (AAxis::K, BAxis::N),
            Role::InputGrad => {
                (op.a_axis, op.b_axis) = (AAxis::K, BAxis::N);
                op.a_rounding = st;
            }
            Role::WeightGrad => {
                (op.a_axis, op.b_axis) = (AAxis::M, BAxis::K);
                op.b_rounding = st;
            }
        }
        op
    }
}

/// (label, role, m, k, n) of the workloads' GEMMs.
fn workload_shapes() -> Vec<(&'static str, Role, usize, usize, usize)> {
    use Role::*;
    vec![
        // The grokking MLP (p = 67, 40 % of p^2 = 1,795 examples, embedding 500, d_model 48):
        // inproj forward, its input gradient and its weight gradient.
        ("grok-inproj", Forward, 1795, 500, 48),
        ("grok-inproj", InputGrad, 1795, 48, 500),
        ("grok-inproj", WeightGrad, 500, 1795, 48),
        // The data-diet CNN at batch 128 (`workloads::data_diet::cnn`: conv5x5-16 on 28x28,
        // pool, conv5x5-32, pool, fc 512-128, fc 128-10): conv1's forward and weight gradient,
        // conv2's three im2col GEMMs, fc1's forward.
        ("cnn-conv1", Forward, 128 * 576, 25, 16),
        ("cnn-conv1", WeightGrad, 25, 128 * 576, 16),
        ("cnn-conv2", Forward, 128 * 64, 400, 32),
        ("cnn-conv2", InputGrad, 128 * 64, 32, 400),
        ("cnn-conv2", WeightGrad, 400, 128 * 64, 32),
        ("cnn-fc1", Forward, 128, 512, 128),
        // A ViT-B/32 block at batch 8 (50 tokens each): QKV, the MLP's two products, one head's
        // attention scores.
        ("vit-qkv", Forward, 400, 768, 2304),
        ("vit-mlp-up", Forward, 400, 768, 3072),
        ("vit-mlp-down", Forward, 400, 3072, 768),
        ("vit-mlp-up", WeightGrad, 768, 400, 3072),
        ("vit-scores", Forward, 50, 64, 50),
    ]
}

fn shapes(c: &mut Criterion) {
    let shapes = workload_shapes();
    let operands: Vec<(Matrix, Matrix)> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(_, _, m, k, n))| (random(m, k, 100 + i as u64), random(k, n, 200 + i as u64)))
        .collect();
    let mut group = configure(c, "gemm");
    for (&(_, _, m, k, n), (a, b)) in shapes.iter().zip(&operands) {
        group.throughput(Throughput::Elements((m * k * n) as u64));
        let id = format!("{m}x{k}x{n}");
        group.bench_with_input(BenchmarkId::new("fp32", &id), &id, |bench, _| {
            bench.iter(|| shiftkit::engine::cpu::sgemm(a, b))
        });
    }
    group.finish();
    let mut group = configure(c, "engine");
    for (&(_, role, m, k, n), (a, b)) in shapes.iter().zip(&operands) {
        group.throughput(Throughput::Elements((m * k * n) as u64));
        let id = format!("{m}x{k}x{n}");
        // Training hands a weight gradient its input untransposed (`Offload::gemm_at`).
        let a_t = matches!(role, Role::WeightGrad).then(|| a.transpose());
        for format in [Format::Fp16, Format::Sq4, Format::Sq6] {
            let mut engine: Box<dyn Engine> =
                engine::create(EngineKind::Golden, ArrayShape::default()).expect("valid shape");
            let op = role.op(format);
            group.bench_with_input(BenchmarkId::new(format.name(), &id), &id, |bench, _| {
                bench.iter(|| match &a_t {
                    Some(a_t) => engine.gemm_at(a_t, b, &op).expect("finite inputs"),
                    None => engine.gemm(a, b, &op).expect("finite inputs"),
                })
            });
        }
    }
    group.finish();
}

mod peak {
    //! The machine's multiply-add peaks, measured: a register-only loop of 12 independent
    //! accumulators per core (so latency never limits), on every core at once.
    //! peak = cores x instructions per second x multiply-adds per instruction; the clock comes
    //! from a dependent chain of 1-cycle integer adds, so per-cycle rates can be stated too.

    use std::time::Instant;

    const ITERS: u64 = 40_000_000;

    #[cfg(target_arch = "x86_64")]
    macro_rules! twelve {
        ($name:ident, $features:literal, $($ins:literal),*) => {
            /// Seconds for ITERS iterations of 12 instructions.
            #[target_feature(enable = $features)]
            unsafe fn $name() -> f64 {
                let t = Instant::now();
                // SAFETY: register-only arithmetic on clobbered registers, no memory access.
                unsafe {
                    std::arch::asm!(
                        "2:",
                        $($ins,)*
                        "dec {n}",
                        "jnz 2b",
                        n = inout(reg) ITERS => _,
                        out("rax") _, out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
                        out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _,
                        out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
                        out("ymm14") _, out("ymm15") _,
                        options(nomem, nostack),
                    );
                }
                t.elapsed().as_secs_f64()
            }
        };
    }

    #[cfg(target_arch = "x86_64")]
    twelve!(
        add_chain,
        "avx2",
        "add rax, 1",
        "add rax, 1",
        "add rax, 1",
        "add rax, 1",
        "add rax, 1",
        "add rax, 1",
        "add rax, 1",
        "add rax, 1",
        "add rax, 1",
        "add rax, 1",
        "add rax, 1",
        "add rax, 1"
    );
    #[cfg(target_arch = "x86_64")]
    twelve!(
        fma_ps,
        "avx2,fma",
        "vfmadd231ps ymm0, ymm14, ymm15",
        "vfmadd231ps ymm1, ymm14, ymm15",
        "vfmadd231ps ymm2, ymm14, ymm15",
        "vfmadd231ps ymm3, ymm14, ymm15",
        "vfmadd231ps ymm4, ymm14, ymm15",
        "vfmadd231ps ymm5, ymm14, ymm15",
        "vfmadd231ps ymm6, ymm14, ymm15",
        "vfmadd231ps ymm7, ymm14, ymm15",
        "vfmadd231ps ymm8, ymm14, ymm15",
        "vfmadd231ps ymm9, ymm14, ymm15",
        "vfmadd231ps ymm10, ymm14, ymm15",
        "vfmadd231ps ymm11, ymm14, ymm15"
    );
    #[cfg(target_arch = "x86_64")]
    twelve!(
        madd_epi16,
        "avx2",
        "vpmaddwd ymm0, ymm14, ymm15",
        "vpmaddwd ymm1, ymm14, ymm15",
        "vpmaddwd ymm2, ymm14, ymm15",
        "vpmaddwd ymm3, ymm14, ymm15",
        "vpmaddwd ymm4, ymm14, ymm15",
        "vpmaddwd ymm5, ymm14, ymm15",
        "vpmaddwd ymm6, ymm14, ymm15",
        "vpmaddwd ymm7, ymm14, ymm15",
        "vpmaddwd ymm8, ymm14, ymm15",
        "vpmaddwd ymm9, ymm14, ymm15",
        "vpmaddwd ymm10, ymm14, ymm15",
        "vpmaddwd ymm11, ymm14, ymm15"
    );
    #[cfg(target_arch = "x86_64")]
    twelve!(
        maddubs,
        "avx2",
        "vpmaddubsw ymm0, ymm14, ymm15",
        "vpmaddubsw ymm1, ymm14, ymm15",
        "vpmaddubsw ymm2, ymm14, ymm15",
        "vpmaddubsw ymm3, ymm14, ymm15",
        "vpmaddubsw ymm4, ymm14, ymm15",
        "vpmaddubsw ymm5, ymm14, ymm15",
        "vpmaddubsw ymm6, ymm14, ymm15",
        "vpmaddubsw ymm7, ymm14, ymm15",
        "vpmaddubsw ymm8, ymm14, ymm15",
        "vpmaddubsw ymm9, ymm14, ymm15",
        "vpmaddubsw ymm10, ymm14, ymm15",
        "vpmaddubsw ymm11, ymm14, ymm15"
    );
    #[cfg(target_arch = "x86_64")]
    twelve!(
        dpbusd,
        "avx512f,avx512vl,avx512vnni",
        "vpdpbusd ymm0, ymm14, ymm15",
        "vpdpbusd ymm1, ymm14, ymm15",
        "vpdpbusd ymm2, ymm14, ymm15",
        "vpdpbusd ymm3, ymm14, ymm15",
        "vpdpbusd ymm4, ymm14, ymm15",
        "vpdpbusd ymm5, ymm14, ymm15",
        "vpdpbusd ymm6, ymm14, ymm15",
        "vpdpbusd ymm7, ymm14, ymm15",
        "vpdpbusd ymm8, ymm14, ymm15",
        "vpdpbusd ymm9, ymm14, ymm15",
        "vpdpbusd ymm10, ymm14, ymm15",
        "vpdpbusd ymm11, ymm14, ymm15"
    );

    /// Per-core rate (instructions/s) of `f` with every core running it at once; best of 3.
    fn rate(f: unsafe fn() -> f64, cores: usize) -> f64 {
        (0..3)
            .map(|_| {
                std::thread::scope(|s| {
                    let hs: Vec<_> = (0..cores)
                        // SAFETY: callers pass only functions whose features were detected.
                        .map(|_| s.spawn(|| unsafe { f() }))
                        .collect();
                    hs.into_iter()
                        .map(|h| h.join().expect("peak thread"))
                        .fold(0.0, f64::max)
                })
            })
            .map(|secs| 12.0 * ITERS as f64 / secs)
            .fold(0.0, f64::max)
    }

    #[derive(serde::Serialize)]
    pub struct Peaks {
        pub cores: usize,
        pub clock_ghz: f64,
        /// fp32 FMAs per cycle per core (vfmadd231ps ymm: 8 lanes).
        pub fp32_fma_per_cycle: f64,
        /// int16 multiply-adds per cycle per core (vpmaddwd ymm: 16 products).
        pub int16_mac_per_cycle: f64,
        /// u8 x i8 multiply-adds per cycle per core (vpdpbusd ymm: 32 products), if present.
        pub int8_mac_per_cycle: Option<f64>,
        /// u8 x i8 multiply-adds per cycle per core of AVX2's `vpmaddubsw` ymm (32 products
        /// summed in pairs into i16): the AVX2 form of the fused kernel runs on it.
        pub int8_pairs_mac_per_cycle: f64,
        pub fp32_gflops_peak: f64,
        pub int16_gops_peak: f64,
        pub int8_gops_peak: Option<f64>,
        pub int8_pairs_gops_peak: f64,
    }

    impl Peaks {
        /// The u8 x i8 peak of the instruction the golden engine's fused kernel runs on here.
        pub fn kernel_int8_gops_peak(&self) -> f64 {
            self.int8_gops_peak.unwrap_or(self.int8_pairs_gops_peak)
        }
    }

    #[cfg(target_arch = "x86_64")]
    pub fn measure() -> Option<Peaks> {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("avx2") && has!("fma")) {
            return None;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let clock = rate(add_chain, cores); // one dependent add per cycle
        let fma = rate(fma_ps, cores) * 8.0;
        let madd = rate(madd_epi16, cores) * 16.0;
        let pairs = rate(maddubs, cores) * 32.0;
        let vnni = (has!("avx512f") && has!("avx512vl") && has!("avx512vnni"))
            .then(|| rate(dpbusd, cores) * 32.0);
        let total = |per_core: f64| 2.0 * per_core * cores as f64 / 1e9; // 2 ops per MAC
        Some(Peaks {
            cores,
            clock_ghz: clock / 1e9,
            fp32_fma_per_cycle: fma / clock,
            int16_mac_per_cycle: madd / clock,
            int8_mac_per_cycle: vnni.map(|v| v / clock),
            int8_pairs_mac_per_cycle: pairs / clock,
            fp32_gflops_peak: total(fma),
            int16_gops_peak: total(madd),
            int8_gops_peak: vnni.map(total),
            int8_pairs_gops_peak: total(pairs),
        })
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn measure() -> Option<Peaks> {
        None
    }
}

/// Criterion's median estimate (ns) of one benchmark, from its output folder.
fn median_ns(group: &str, id: &str) -> Option<f64> {
    let dir = std::path::Path::new("target/criterion")
        .join(group)
        .join(id);
    let text = std::fs::read_to_string(dir.join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// The table of GOPS, ratios to fp32 and fractions of the int16 and int8 peaks (the int8 one of
/// the fused kernel's instruction here: `vpdpbusd` with VNNI, else `vpmaddubsw`), printed and
/// saved.
fn summary(peaks: Option<&peak::Peaks>) {
    let mut cases: Vec<(String, String, usize)> = SIZES
        .iter()
        .map(|&n| ("square".to_string(), format!("{n}x{n}x{n}"), n * n * n))
        .collect();
    for (label, role, m, k, n) in workload_shapes() {
        cases.push((
            format!("{label} {}", role.name()),
            format!("{m}x{k}x{n}"),
            m * k * n,
        ));
    }
    let mut rows = Vec::new();
    println!();
    println!(
        "| GEMM | m x k x n | bench | median | GOPS | x gemm/fp32 | of int16 peak | of int8 peak |"
    );
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for (what, id, macs) in &cases {
        let fp32 = median_ns("gemm", &format!("fp32/{id}"));
        let benches = [
            ("gemm", "fp32"),
            ("engine", "fp16"),
            ("engine", "sq4"),
            ("engine", "sq6"),
            ("engine", "sq8"),
        ];
        for (group, format) in benches {
            let Some(ns) = median_ns(group, &format!("{format}/{id}")) else {
                continue;
            };
            let gops = 2.0 * *macs as f64 / ns;
            let ratio = fp32.map(|f| f / ns);
            let of_peak = peaks.map(|p| gops / p.int16_gops_peak);
            let of_int8 = peaks.map(|p| gops / p.kernel_int8_gops_peak());
            println!(
                "| {what} | {id} | {group}/{format} | {:.3} ms | {gops:.1} | {} | {} | {} |",
                ns / 1e6,
                ratio.map_or("-".into(), |r| format!("{r:.2}x")),
                of_peak.map_or("-".into(), |f| format!("{:.0}%", 100.0 * f)),
                of_int8.map_or("-".into(), |f| format!("{:.0}%", 100.0 * f)),
            );
            rows.push(serde_json::json!({
                "gemm": what, "shape": id, "bench": format!("{group}/{format}/{id}"),
                "median_ns": ns, "gops": gops, "vs_gemm_fp32": ratio, "of_int16_peak": of_peak,
                "of_int8_peak": of_int8,
            }));
        }
    }
    let json = serde_json::json!({ "peaks": peaks, "results": rows });
    let path = std::path::Path::new("target/criterion/gemm-summary.json");
    if std::fs::write(
        path,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .is_ok()
    {
        println!("\nwrote {}", path.display());
    }
}

fn main() {
    let peaks = peak::measure();
    if let Some(p) = &peaks {
        println!(
            "peaks ({} cores at {:.2} GHz, measured): fp32 FMA {:.1}/cycle/core = {:.0} GFLOPS; \
             int16 multiply-add (vpmaddwd) {:.1}/cycle/core = {:.0} GOPS; u8 x i8 pairs \
             (vpmaddubsw) {:.1}/cycle/core = {:.0} GOPS; u8 x i8 (vpdpbusd) {}",
            p.cores,
            p.clock_ghz,
            p.fp32_fma_per_cycle,
            p.fp32_gflops_peak,
            p.int16_mac_per_cycle,
            p.int16_gops_peak,
            p.int8_pairs_mac_per_cycle,
            p.int8_pairs_gops_peak,
            p.int8_mac_per_cycle
                .zip(p.int8_gops_peak)
                .map_or("absent".into(), |(c, g)| format!(
                    "{c:.1}/cycle/core = {g:.0} GOPS"
                )),
        );
    }
    let mut c = Criterion::default().configure_from_args();
    gemm(&mut c);
    engine_calls(&mut c);
    shapes(&mut c);
    c.final_summary();
    summary(peaks.as_ref());
}
