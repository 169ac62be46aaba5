//! Property tests of the golden numerics (SPEC §2–§5) against simple f64 oracles written here
//! from the spec's text, independently of the library's code.

mod common;

use common::{f64_gemm, sample};
use proptest::prelude::*;
use shiftkit::format::Axis;
use shiftkit::fp16::{fp16_gemm, to_half};
use shiftkit::l1norm;
use shiftkit::sq::{quantize, Rounding, SqMatrix, SqParams};
use shiftkit::sq_gemm::{accumulate, k_chunk, sq_gemm};
use shiftkit::{ArrayConfig, Datapath, Matrix};

/// SPEC §2, read literally, in f64.
fn oracle_quantize(x: &Matrix, bits: u32, window: u32, per_row: bool) -> (f64, Vec<u32>, Vec<i64>) {
    let q = ((1i64 << (bits - 1)) - 1) as f64;
    let channels = if per_row { x.rows } else { x.cols };
    let chan = |r: usize, c: usize| if per_row { r } else { c };
    let mut r_c = vec![0.0f64; channels];
    for r in 0..x.rows {
        for c in 0..x.cols {
            let ch = chan(r, c);
            r_c[ch] = r_c[ch].max((x.at(r, c) as f64).abs());
        }
    }
    let big_r = r_c.iter().cloned().fold(0.0, f64::max);
    if big_r == 0.0 {
        return (1.0, vec![0; channels], vec![0; x.rows * x.cols]);
    }
    let s = big_r / (q * 2f64.powi(window as i32));
    let qs = q * s;
    let exps: Vec<u32> = r_c
        .iter()
        .map(|&rc| {
            (0..=window)
                .find(|&e| rc <= qs * 2f64.powi(e as i32))
                .unwrap_or(window)
        })
        .collect();
    let mut codes = Vec::new();
    for r in 0..x.rows {
        for c in 0..x.cols {
            let v = x.at(r, c) as f64 / (s * 2f64.powi(exps[chan(r, c)] as i32));
            codes.push(v.round_ties_even().clamp(-q, q) as i64);
        }
    }
    (s, exps, codes)
}

fn deq(q: &SqMatrix) -> Vec<f64> {
    (0..q.rows * q.cols)
        .map(|i| {
            let (r, c) = (i / q.cols, i % q.cols);
            q.codes[i] as f64 * q.scale * 2f64.powi(q.exp_at(r, c) as i32)
        })
        .collect()
}

fn bits_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![Just(4u32), Just(6), Just(8)]
}

/// Inputs that mix ordinary values, an outlier channel of any magnitude, and all-zero tensors.
fn matrix_strategy(max_rows: usize, max_cols: usize) -> impl Strategy<Value = Matrix> {
    (
        1..=max_rows,
        1..=max_cols,
        any::<u64>(),
        prop_oneof![Just(0.0f32), Just(1.0), 1.0f32..1e4],
    )
        .prop_map(|(r, c, seed, outlier)| {
            let m = sample(r, c, seed, outlier.max(1.0));
            if outlier == 0.0 {
                Matrix::zeros(r, c)
            } else {
                m
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn quantizer_matches_the_spec_oracle(x in matrix_strategy(12, 40), bits in bits_strategy(), window in 0u32..=15, per_row in any::<bool>()) {
        let axis = if per_row { Axis::Rows } else { Axis::Cols };
        let q = quantize(&x, "X", SqParams::new(bits, window).unwrap(), axis, Rounding::NearestEven).unwrap();
        let (s, exps, codes) = oracle_quantize(&x, bits, window, per_row);
        prop_assert_eq!(q.scale.to_bits(), s.to_bits());
        prop_assert_eq!(q.exps.iter().map(|&e| e as u32).collect::<Vec<_>>(), exps);
        prop_assert_eq!(q.codes.iter().map(|&c| c as i64).collect::<Vec<_>>(), codes);
        // Round to nearest: within half a step of the input, wherever the channel is not clamped.
        let values = deq(&q);
        for (i, v) in values.iter().enumerate() {
            let (r, c) = (i / x.cols, i % x.cols);
            let step = q.scale * 2f64.powi(q.exp_at(r, c) as i32);
            prop_assert!((x.data[i] as f64 - v).abs() <= 0.5 * step * (1.0 + 1e-12) + 1e-300,
                "x {} deq {} step {}", x.data[i], v, step);
        }
    }

    #[test]
    fn stochastic_rounding_lands_on_a_neighbouring_code(x in matrix_strategy(8, 30), bits in bits_strategy(), window in 0u32..=15, seed in any::<u64>()) {
        let p = SqParams::new(bits, window).unwrap();
        let near = quantize(&x, "G", p, Axis::Rows, Rounding::NearestEven).unwrap();
        let sto = quantize(&x, "G", p, Axis::Rows, Rounding::Stochastic { seed }).unwrap();
        prop_assert_eq!(&sto.exps, &near.exps);
        for (i, &c) in sto.codes.iter().enumerate() {
            let (r, col) = (i / x.cols, i % x.cols);
            let t = x.data[i] as f64 / (sto.scale * 2f64.powi(sto.exp_at(r, col) as i32));
            prop_assert!(c as f64 == t.floor() || c as f64 == t.ceil() || (c as i32).abs() == p.q(), "t {} code {}", t, c);
        }
        prop_assert_eq!(&sto, &quantize(&x, "G", p, Axis::Rows, Rounding::Stochastic { seed }).unwrap());
    }

    #[test]
    fn sq_gemm_is_exact_and_matches_f64(m in 1usize..12, k in 1usize..300, n in 1usize..12, seed in any::<u64>(),
                                        bits in bits_strategy(), window in 0u32..=15, a_k in any::<bool>(), b_k in any::<bool>(),
                                        outlier in 1.0f32..1e4) {
        let a = sample(m, k, seed, outlier);
        let b = sample(k, n, seed ^ 0xABCD, 1.0);
        let p = SqParams::new(bits, window).unwrap();
        let qa = quantize(&a, "A", p, if a_k { Axis::Cols } else { Axis::Rows }, Rounding::NearestEven).unwrap();
        let qb = quantize(&b, "B", p, if b_k { Axis::Rows } else { Axis::Cols }, Rounding::NearestEven).unwrap();
        // Exact integer accumulator, in i128 straight from SPEC §3.
        let acc = accumulate(&qa, &qb).unwrap();
        for i in 0..m {
            for j in 0..n {
                let mut want: i128 = 0;
                for kk in 0..k {
                    let sh = if a_k { qa.exps[kk] } else { 0 } as u32 + if b_k { qb.exps[kk] } else { 0 } as u32;
                    want += (qa.codes[i * k + kk] as i128 * qb.codes[kk * n + j] as i128) << sh;
                }
                prop_assert_eq!(acc[i * n + j] as i128, want);
            }
        }
        // C against the f64 product of the dequantized operands.
        let c = sq_gemm(&qa, &qb).unwrap();
        let (da, db) = (deq(&qa), deq(&qb));
        let want = f64_gemm(&da, &db, m, k, n);
        let mag = f64_gemm(&da.iter().map(|v| v.abs()).collect::<Vec<_>>(), &db.iter().map(|v| v.abs()).collect::<Vec<_>>(), m, k, n);
        for i in 0..m * n {
            let tol = want[i].abs() * 2f64.powi(-23) + mag[i] * 1e-12;
            prop_assert!((c.data[i] as f64 - want[i]).abs() <= tol, "C {} want {}", c.data[i], want[i]);
        }
    }

    #[test]
    fn fp16_gemm_is_sequential_binary32_over_binary16(m in 1usize..10, k in 1usize..200, n in 1usize..10, seed in any::<u64>(), scale in prop_oneof![Just(1e-6f32), Just(1.0), Just(100.0)]) {
        let a = Matrix::from_fn(m, k, |r, c| sample(m, k, seed, 1.0).at(r, c) * scale);
        let b = sample(k, n, seed ^ 77, 1.0);
        let (ha, hb) = (to_half(&a, "A").unwrap(), to_half(&b, "B").unwrap());
        let c = fp16_gemm(&ha, &hb).unwrap();
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f32;
                let mut exact = 0.0f64;
                for kk in 0..k {
                    let (x, y) = (ha.data[i * k + kk].to_f32(), hb.data[kk * n + j].to_f32());
                    acc += x * y; // exact product (22 significant bits), one RNE addition
                    if acc != 0.0 && acc.abs() < f32::MIN_POSITIVE { acc = 0.0f32.copysign(acc); }
                    exact += x as f64 * y as f64;
                }
                prop_assert_eq!(c.data[i * n + j].to_bits(), acc.to_bits());
                prop_assert!((acc as f64 - exact).abs() <= 1e-5 * (1.0 + exact.abs()) * k as f64);
            }
        }
    }

    #[test]
    fn l1norm_backward_matches_finite_differences(rows in 1usize..4, n in 3usize..24, seed in any::<u64>()) {
        let x = sample(rows, n, seed, 3.0);
        let gamma: Vec<f32> = sample(1, n, seed ^ 1, 1.0).data;
        let beta: Vec<f32> = sample(1, n, seed ^ 2, 1.0).data;
        let w = sample(rows, n, seed ^ 3, 1.0);
        // f64 oracle of the forward pass, SPEC §5.
        let loss = |xs: &[f64], g: &[f64]| -> f64 {
            let mut total = 0.0;
            for r in 0..rows {
                let row = &xs[r * n..(r + 1) * n];
                let mu = row.iter().sum::<f64>() / n as f64;
                let d = row.iter().map(|v| (v - mu).abs()).sum::<f64>() / n as f64;
                let sigma = (std::f64::consts::PI / 2.0).sqrt() * d + 1e-5;
                for i in 0..n {
                    total += w.data[r * n + i] as f64 * (g[i] * (row[i] - mu) / sigma + beta[i] as f64);
                }
            }
            total
        };
        let x64: Vec<f64> = x.data.iter().map(|&v| v as f64).collect();
        let g64: Vec<f64> = gamma.iter().map(|&v| v as f64).collect();
        // Stay away from the kink of |t| at t = 0, where the derivative is one-sided.
        for r in 0..rows {
            let row = &x64[r * n..(r + 1) * n];
            let mu = row.iter().sum::<f64>() / n as f64;
            prop_assume!(row.iter().all(|v| (v - mu).abs() > 1e-3));
        }
        let (y, cache) = l1norm::forward(&x, &gamma, &beta, l1norm::DEFAULT_EPS).unwrap();
        let grads = l1norm::backward(&w, &gamma, &cache).unwrap();
        let h = 1e-6;
        for i in 0..rows * n {
            let (mut up, mut down) = (x64.clone(), x64.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (loss(&up, &g64) - loss(&down, &g64)) / (2.0 * h);
            prop_assert!((grads.dx.data[i] as f64 - fd).abs() <= 2e-3 * (1.0 + fd.abs()), "dx[{}] {} fd {}", i, grads.dx.data[i], fd);
        }
        for i in 0..n {
            let (mut up, mut down) = (g64.clone(), g64.clone());
            up[i] += h;
            down[i] -= h;
            let fd = (loss(&x64, &up) - loss(&x64, &down)) / (2.0 * h);
            prop_assert!((grads.dgamma[i] as f64 - fd).abs() <= 2e-3 * (1.0 + fd.abs()));
            let want_dbeta: f64 = (0..rows).map(|r| w.data[r * n + i] as f64).sum();
            prop_assert!((grads.dbeta[i] as f64 - want_dbeta).abs() <= 1e-4 * (1.0 + want_dbeta.abs()));
        }
        // And the forward pass itself agrees with the oracle's outputs.
        prop_assert!(y.data.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn window_zero_gemm_is_per_tensor_and_exact() {
    let a = sample(5, 33, 1, 50.0);
    let b = sample(33, 4, 2, 1.0);
    let p = SqParams::new(6, 0).unwrap();
    let qa = quantize(&a, "A", p, Axis::Cols, Rounding::NearestEven).unwrap();
    let qb = quantize(&b, "B", p, Axis::Rows, Rounding::NearestEven).unwrap();
    assert!(qa.exps.iter().chain(&qb.exps).all(|&e| e == 0));
    let acc = accumulate(&qa, &qb).unwrap();
    let want: i64 = (0..33)
        .map(|k| qa.codes[k] as i64 * qb.codes[k * 4] as i64)
        .sum();
    assert_eq!(acc[0], want);
}

#[test]
fn k_longer_than_a_chunk_and_not_a_multiple_of_it() {
    // sq8, E = 7, 32-bit accumulator: 127^2 * 2^14 per k, so chunks of 8. K = 1001 = 125 chunks + 1.
    let cfg = ArrayConfig::new(4, 4, Datapath::Sq { bits: 8 }).unwrap();
    assert_eq!(k_chunk(&cfg, true, true).unwrap(), 8);
    let a = Matrix::from_fn(3, 1001, |_, _| 1.0); // every code +127, every exponent 7
    let b = Matrix::from_fn(1001, 2, |_, _| -1.0);
    let p = SqParams::new(8, 7).unwrap();
    let qa = quantize(&a, "A", p, Axis::Cols, Rounding::NearestEven).unwrap();
    let qb = quantize(&b, "B", p, Axis::Rows, Rounding::NearestEven).unwrap();
    let acc = accumulate(&qa, &qb).unwrap();
    assert!(acc.iter().all(|&v| v == -1001 * 127 * 127 * (1 << 14)));
    // The sum is far beyond i32 and still exact; C is -1001 * 1 * 1.
    let c = sq_gemm(&qa, &qb).unwrap();
    assert!(c.data.iter().all(|&v| v == -1001.0), "{:?}", c.data);
}

#[test]
fn wide_windows_take_the_i32_path_and_stay_exact() {
    // sq8 with E = 15: folded operands reach 127 << 15, beyond i16.
    let a = sample(7, 65, 5, 1e4);
    let b = sample(65, 9, 6, 1e3);
    let p = SqParams::new(8, 15).unwrap();
    let qa = quantize(&a, "A", p, Axis::Cols, Rounding::NearestEven).unwrap();
    let qb = quantize(&b, "B", p, Axis::Rows, Rounding::NearestEven).unwrap();
    assert!(qa.exps.iter().any(|&e| e >= 9));
    let acc = accumulate(&qa, &qb).unwrap();
    for i in 0..7 {
        for j in 0..9 {
            let want: i128 = (0..65)
                .map(|k| {
                    (qa.codes[i * 65 + k] as i128 * qb.codes[k * 9 + j] as i128)
                        << (qa.exps[k] + qb.exps[k])
                })
                .sum();
            assert_eq!(acc[i * 9 + j] as i128, want);
        }
    }
}
