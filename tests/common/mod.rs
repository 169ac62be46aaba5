//! Helpers shared by the integration tests: seeded inputs and simple f64 oracles.
#![allow(dead_code)]

use shiftkit::rng::SplitMix64;
use shiftkit::Matrix;

/// A matrix of N(0, 1) values, with channel `outlier` (a column) scaled by `outlier_scale`, and
/// every `zero_every`-th row set to zero when non-zero.
pub fn sample(rows: usize, cols: usize, seed: u64, outlier_scale: f32) -> Matrix {
    let mut g = SplitMix64::new(seed);
    let outlier = (seed as usize) % cols.max(1);
    Matrix::from_fn(rows, cols, |_, c| {
        let v = g.normal() as f32;
        if c == outlier {
            v * outlier_scale
        } else {
            v
        }
    })
}

/// sum_k a[m][k] * b[k][n] in f64.
pub fn f64_gemm(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|kk| a[i * k + kk] * b[kk * n + j]).sum();
        }
    }
    c
}

/// Runs the `shiftkit` binary with `args`.
pub fn shiftkit(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_shiftkit"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A JSON file, parsed.
pub fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
