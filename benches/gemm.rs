//! GEMM throughput of every format at 256, 512 and 1024 (ids `gemm/{format}/{size}`).
//! fp32 is `matrixmultiply` on both cores; the others are the `golden` engine's full call
//! (quantize or round both operands, compute, scale back to f32), which is what training pays.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shiftkit::engine::{self, ArrayShape, EngineKind, GemmOp};
use shiftkit::rng::SplitMix64;
use shiftkit::{Format, Matrix};
use std::time::Duration;

fn operands(n: usize) -> (Matrix, Matrix) {
    let mut g = SplitMix64::new(n as u64);
    let a = Matrix::from_fn(n, n, |_, _| g.normal() as f32);
    let b = Matrix::from_fn(n, n, |_, _| g.normal() as f32);
    (a, b)
}

fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    for n in [256usize, 512, 1024] {
        let (a, b) = operands(n);
        group.throughput(Throughput::Elements((n * n * n) as u64)); // MACs
        for format in [Format::Fp32, Format::Fp16, Format::Sq4, Format::Sq6, Format::Sq8] {
            let kind = if format == Format::Fp32 { EngineKind::Cpu } else { EngineKind::Golden };
            let mut engine = engine::create(kind, ArrayShape::default()).expect("valid shape");
            let op = GemmOp::new(format);
            group.bench_with_input(BenchmarkId::new(format.name(), n), &n, |bench, _| {
                bench.iter(|| engine.gemm(&a, &b, &op).expect("finite inputs"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, gemm);
criterion_main!(benches);
