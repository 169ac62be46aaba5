//! One full-batch training epoch of the grokking-tickets paper MLP ((x + y) mod 67, 40 % train
//! split, embedding 500, d_model 48; forward, backward, AdamW), without evaluation:
//!
//! - `train_step/fp32-cpu`: fp32 on the host (`matrixmultiply`, both cores);
//! - `train_step/{sq6,sq4,fp16}-golden`: every GEMM on the `golden` engine (quantization,
//!   bit-exact integer GEMM, scaling), both cores.
//!
//! Time per iteration x 1000 = seconds per 1,000 epochs (issue 5 target: sq6 golden <= 10 s,
//! fp32 cpu <= 15 s; the paper's own loop takes 61 s on one thread, 39 s on two).

use criterion::{criterion_group, criterion_main, Criterion};
use shiftkit::nn::optim::AdamW;
use shiftkit::nn::Offload;
use shiftkit::workloads::grokking::data::modular_addition;
use shiftkit::workloads::grokking::model::GrokMlp;
use shiftkit::workloads::grokking::train::{train_step, LossKind};
use shiftkit::Format;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let data = modular_addition(67, 0.4, 0).expect("dataset");
    let mut group = c.benchmark_group("train_step");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for format in [Format::Fp32, Format::Sq6, Format::Sq4, Format::Fp16] {
        let mut ctx = Offload::for_format(format).expect("offload");
        let engine = ctx.engine_kind();
        let mut model = GrokMlp::new(67, 500, 48, 1);
        let mut opt = AdamW::new(1e-3, (0.9, 0.98), 1.0);
        group.bench_function(format!("{}-{}", format.name(), engine.name()), |b| {
            b.iter(|| {
                train_step(
                    &mut model,
                    &mut ctx,
                    &data.train,
                    LossKind::CrossEntropy,
                    &mut opt,
                )
                .expect("step")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
