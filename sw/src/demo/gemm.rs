//! Segment: every number format on the same sample GEMM, with its error against an f64
//! reference, its speed on this host and its modelled accelerator cost.

use super::page::Table;
use super::{Lane, Segment, SegmentReport, Tour};
use crate::engine::{self, ArrayShape, EngineKind, GemmOp};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::matrix::Matrix;
use crate::rng::SplitMix64;
use serde::Serialize;
use std::time::{Duration, Instant};

pub struct GemmFormats;

#[derive(Serialize)]
struct Row {
    format: Format,
    engine: EngineKind,
    rel_error: f64,
    gmacs_per_s: f64,
    cycles: u64,
    bytes_to_device: u64,
    bytes_from_device: u64,
    utilization: f64,
}

/// Activations-like A (a few outlier channels, as in transformer activations) and weights-like B.
pub fn sample_operands(n: usize, seed: u64) -> (Matrix, Matrix) {
    let mut g = SplitMix64::new(seed);
    let a = Matrix::from_fn(n, n, |_, c| {
        let scale = if c % 61 == 7 { 20.0 } else { 1.0 };
        (scale * g.normal()) as f32
    });
    let b = Matrix::from_fn(n, n, |_, _| (g.normal() / (n as f64).sqrt()) as f32);
    (a, b)
}

fn f64_reference(a: &Matrix, b: &Matrix) -> Vec<f64> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for kk in 0..k {
            let av = a.at(i, kk) as f64;
            for (cj, &bv) in c[i * n..(i + 1) * n].iter_mut().zip(b.row(kk)) {
                *cj += av * bv as f64;
            }
        }
    }
    c
}

impl Segment for GemmFormats {
    fn name(&self) -> &'static str {
        "gemm-formats"
    }

    fn shows(&self, tour: &Tour) -> String {
        format!(
            "C = A x B ({0}x{0}x{0}, A with outlier channels) in every format: error against \
             f64, host speed, modelled 8x8-array cycles and traffic",
            tour.gemm_size
        )
    }

    fn lane(&self) -> Lane {
        Lane::Host
    }

    fn estimate(&self, _tour: &Tour) -> Duration {
        Duration::from_secs(5)
    }

    fn run(&self, tour: &Tour) -> Result<SegmentReport> {
        let size = tour.gemm_size;
        if size == 0 {
            return Err(Error::Usage("--size must be at least 1".into()));
        }
        let (a, b) = sample_operands(size, tour.seed);
        let exact = f64_reference(&a, &b);
        let norm = exact.iter().map(|v| v * v).sum::<f64>().sqrt();
        let shape = ArrayShape::default();
        let mut table = Table::new(
            format!(
                "C = A x B, {size}^3, {}x{} array model",
                shape.rows, shape.cols
            ),
            &[
                "format",
                "engine",
                "rel. error",
                "GMAC/s (host)",
                "cycles",
                "utilization",
            ],
        );
        let mut rows = Vec::new();
        for format in Format::ALL {
            let kind = EngineKind::default_for(format);
            let mut engine = engine::create(kind, shape)?;
            let op = GemmOp::new(format);
            let start = Instant::now();
            let c = engine.gemm(&a, &b, &op)?;
            let secs = start.elapsed().as_secs_f64();
            let err = c
                .data
                .iter()
                .zip(&exact)
                .map(|(&x, &y)| (x as f64 - y).powi(2))
                .sum::<f64>()
                .sqrt();
            let counters = *engine.counters();
            let row = Row {
                format,
                engine: kind,
                rel_error: err / norm,
                gmacs_per_s: counters.macs as f64 / secs / 1e9,
                cycles: counters.cycles,
                bytes_to_device: counters.bytes_to_device,
                bytes_from_device: counters.bytes_from_device,
                utilization: counters.utilization(shape.rows * shape.cols),
            };
            table.row(vec![
                format.name().to_string(),
                kind.name().to_string(),
                format!("{:.2e}", row.rel_error),
                format!("{:.2}", row.gmacs_per_s),
                row.cycles.to_string(),
                format!("{:.1}%", 100.0 * row.utilization),
            ]);
            rows.push(row);
        }
        Ok(SegmentReport {
            tables: vec![table],
            images: Vec::new(),
            notes: vec![
                "cycles are the accelerator's timing model (0 for fp32, which runs on the host)"
                    .into(),
            ],
            results: serde_json::json!({
                "size": size, "seed": tour.seed, "array": shape, "rows": rows,
            }),
        })
    }
}
