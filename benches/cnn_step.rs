//! One training step of the data-diet CNN (conv5x5-16, pool, conv5x5-32, pool, fc-128, fc-10)
//! at batch 128 on real MNIST images: forward, backward (im2col / col2im on the host, every
//! GEMM through `Offload`), Nesterov SGD.
//!
//! - `cnn_step/fp32-cpu`: fp32 on the host (`matrixmultiply`, both cores);
//! - `cnn_step/{sq6,sq4}-golden`: every GEMM on the `golden` engine.
//!
//! Issue 12 target: sq6-golden at most 1.5x fp32-cpu.

use criterion::{criterion_group, criterion_main, Criterion};
use shiftkit::data::mnist::shipped_test_set;
use shiftkit::engine::{ArrayShape, EngineKind};
use shiftkit::nn::Offload;
use shiftkit::workloads::data_diet::cnn::{batch_of, Cnn};
use shiftkit::workloads::data_diet::train::{train_step, Hyper};
use shiftkit::Format;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let data = shipped_test_set().expect("shipped MNIST");
    let ids: Vec<usize> = (0..128).collect();
    let x = batch_of(&data, &ids);
    let labels: Vec<usize> = ids.iter().map(|&i| data.labels[i] as usize).collect();
    let mut group = c.benchmark_group("cnn_step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for format in [Format::Fp32, Format::Sq6, Format::Sq4] {
        let engine = EngineKind::default_for(format);
        let mut ctx = Offload::new(
            format,
            engine,
            ArrayShape::default(),
            shiftkit_hw::config::DEFAULT_WINDOW,
            0,
        )
        .expect("offload");
        let mut model = Cnn::new(0);
        let hyper = Hyper::default();
        let mut opt = hyper.optimizer();
        group.bench_function(format!("{}-{}", format.name(), engine.name()), |b| {
            b.iter(|| {
                train_step(&mut model, &mut ctx, &x, &labels, &mut opt, hyper.lr).expect("step")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
