//! The Vision Transformer on the accelerator (issue 13), in one criterion run:
//!
//! - `vit_b32_forward/{fp32-cpu,sq6-golden}`: a ViT-B/32-shaped random tower (12 layers, d 768,
//!   12 heads, MLP 3072, 224 x 224, patch 32, projection 512) forward at batch 8; throughput in
//!   images/s;
//! - `gemm_fp32/400x768x3072`: the fp32 GEMM of the tower's first MLP layer at batch 8 on the
//!   same cores (throughput in MACs/s): the tower does 4.41 GMAC per image (`clip embed --json` counts 4,408,811,520), so its images/s x
//!   4.37e9 over this figure is the fraction of GEMM throughput the whole tower reaches;
//! - `norm/{l1,layer}-{fwd,bwd,fwd-bwd}`: forward, backward, and forward + backward of the host
//!   L1 norm and of LayerNorm on the same 400 x 768 rows (the tokens of a batch of 8),
//!   throughput in rows/s. Both run the same sweeps (`kernels::rows`), so they are tuned alike.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shiftkit::engine::cpu::sgemm;
use shiftkit::engine::{ArrayShape, EngineKind};
use shiftkit::matrix::Matrix;
use shiftkit::nn::activation::Activation;
use shiftkit::nn::layer_norm::LayerNorm;
use shiftkit::nn::norm::{L1Norm, NormKind};
use shiftkit::nn::patch::Images;
use shiftkit::nn::vit::{VisionTower, VitConfig};
use shiftkit::nn::Offload;
use shiftkit::rng::SplitMix64;
use shiftkit::Format;
use std::time::Duration;

const BATCH: usize = 8;

fn vit_b32() -> VitConfig {
    VitConfig {
        hidden: 768,
        intermediate: 3072,
        layers: 12,
        heads: 12,
        channels: 3,
        image: 224,
        patch: 32,
        projection: Some(512),
        act: Activation::QuickGelu,
        eps: 1e-5,
    }
}

fn random(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut g = SplitMix64::new(seed);
    Matrix::from_fn(rows, cols, |_, _| g.normal() as f32)
}

fn forward(c: &mut Criterion) {
    let tower = VisionTower::random(vit_b32(), NormKind::Layer, 0, false);
    let px = random(BATCH, 3 * 224 * 224, 1).data;
    let img = Images {
        data: &px,
        n: BATCH,
        channels: 3,
        height: 224,
        width: 224,
    };
    let mut group = c.benchmark_group("vit_b32_forward");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Elements(BATCH as u64));
    for format in [Format::Fp32, Format::Sq6] {
        let engine = EngineKind::default_for(format);
        let mut ctx = Offload::new(format, engine, ArrayShape::default(), 7, 0).expect("offload");
        group.bench_function(format!("{}-{}", format.name(), engine.name()), |b| {
            b.iter(|| tower.forward(&mut ctx, &img).expect("forward"))
        });
    }
    group.finish();

    let (m, k, n) = (BATCH * 50, 768, 3072);
    let (a, w) = (random(m, k, 2), random(k, n, 3));
    let mut group = c.benchmark_group("gemm_fp32");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements((m * k * n) as u64));
    group.bench_function(BenchmarkId::from_parameter(format!("{m}x{k}x{n}")), |b| {
        b.iter(|| sgemm(&a, &w))
    });
    group.finish();
}

/// glibc returns freed buffers of a MB or more to the OS and page-faults them back in on the next
/// allocation, which costs as much as the norms themselves and depends on what ran before in
/// the process. Keep freed memory (as a training loop's warm heap does) so that both norms are
/// measured on the same footing.
fn steady_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: mallopt only changes glibc's allocation policy.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 1 << 30);
            mallopt(M_TRIM_THRESHOLD, 1 << 30);
        }
    }
}

fn norms(c: &mut Criterion) {
    steady_allocator();
    let rows = BATCH * 50;
    let x = random(rows, 768, 4);
    let dy = random(rows, 768, 5);
    let mut group = c.benchmark_group("norm");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(rows as u64));
    let mut l1 = L1Norm::new("l1", 768);
    group.bench_function("l1-fwd-bwd", |b| {
        b.iter(|| {
            let (y, cache) = l1.forward(&x).expect("forward");
            (y, l1.backward(&dy, &cache).expect("backward"))
        })
    });
    group.bench_function("l1-fwd", |b| b.iter(|| l1.forward(&x).expect("forward")));
    let (_, c1) = l1.forward(&x).expect("forward");
    group.bench_function("l1-bwd", |b| {
        b.iter(|| l1.backward(&dy, &c1).expect("backward"))
    });
    let mut ln = LayerNorm::new("ln", 768, 1e-5);
    group.bench_function("layer-fwd", |b| b.iter(|| ln.forward(&x)));
    let (_, c2) = ln.forward(&x);
    group.bench_function("layer-bwd", |b| b.iter(|| ln.backward(&dy, &c2)));
    group.bench_function("layer-fwd-bwd", |b| {
        b.iter(|| {
            let (y, cache) = ln.forward(&x);
            (y, ln.backward(&dy, &cache))
        })
    });
    group.finish();
}

criterion_group!(benches, norms, forward);
criterion_main!(benches);
