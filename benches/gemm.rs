//! GEMM throughput of every format at 256, 512 and 1024.
//!
//! - `gemm/{fp32,fp16,sq4,sq6,sq8}/{n}`: the GEMM itself. fp32 is `matrixmultiply` on both cores;
//!   fp16 and sq* are the golden models of the arrays (SPEC §3, §4) on operands already in the
//!   array's format (binary16; SQ-b codes and exponents), C scaled back to f32 included.
//! - `engine/{format}/{n}`: the `golden` engine's whole call from f32 operands (quantization or
//!   rounding to binary16 included), which is what one training GEMM costs.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shiftkit::engine::{self, ArrayShape, EngineKind, GemmOp};
use shiftkit::format::Axis;
use shiftkit::fp16::{fp16_gemm, to_half};
use shiftkit::rng::SplitMix64;
use shiftkit::sq::{quantize, Rounding, SqParams};
use shiftkit::sq_gemm::sq_gemm;
use shiftkit::{Format, Matrix};
use std::time::Duration;

const SIZES: [usize; 3] = [256, 512, 1024];

fn operands(n: usize) -> (Matrix, Matrix) {
    let mut g = SplitMix64::new(n as u64);
    let a = Matrix::from_fn(n, n, |_, _| g.normal() as f32);
    let b = Matrix::from_fn(n, n, |_, _| g.normal() as f32);
    (a, b)
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
        group.bench_with_input(BenchmarkId::new("fp32", n), &n, |bench, _| {
            bench.iter(|| shiftkit::engine::cpu::sgemm(&a, &b))
        });
        let (ha, hb) = (
            to_half(&a, "A").expect("finite"),
            to_half(&b, "B").expect("finite"),
        );
        group.bench_with_input(BenchmarkId::new("fp16", n), &n, |bench, _| {
            bench.iter(|| fp16_gemm(&ha, &hb).expect("shapes agree"))
        });
        for (format, bits) in [(Format::Sq4, 4), (Format::Sq6, 6), (Format::Sq8, 8)] {
            let p = SqParams::new(bits, 7).expect("valid");
            // The SPEC §7 default axes: A per-K (shift in the PE), B per-N (on drain).
            let qa = quantize(&a, "A", p, Axis::Cols, Rounding::NearestEven).expect("finite");
            let qb = quantize(&b, "B", p, Axis::Cols, Rounding::NearestEven).expect("finite");
            group.bench_with_input(BenchmarkId::new(format.name(), n), &n, |bench, _| {
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
            group.bench_with_input(BenchmarkId::new(format.name(), n), &n, |bench, _| {
                bench.iter(|| engine.gemm(&a, &b, &op).expect("finite inputs"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, gemm, engine_calls);
criterion_main!(benches);
