//! The golden model against the f64 contract: every code within 1 LSB, and the pre-rounding
//! value within the proven bound, on many kinds of rows.

use super::golden::*;
use crate::testutil::Rng;

/// Row generators shared with the RTL tests.
pub(crate) mod rows {
    use crate::testutil::Rng;

    /// A row of `n` elements of `w`-bit inputs, of a kind picked by `kind`.
    pub(crate) fn row(rng: &mut Rng, w: u32, n: usize, kind: u64) -> Vec<i64> {
        let lo = -(1i64 << (w - 1));
        let hi = (1i64 << (w - 1)) - 1;
        let clamp = |v: i64| v.clamp(lo, hi);
        match kind % 9 {
            // Uniform over the whole range.
            0 => (0..n).map(|_| rng.range(lo, hi)).collect(),
            // Roughly Gaussian (sum of 4 uniforms) at a random scale and offset.
            1 => {
                let scale = 1i64 << rng.range(0, (w - 2) as i64);
                let off = rng.range(lo / 2, hi / 2);
                (0..n)
                    .map(|_| {
                        let s: i64 = (0..4).map(|_| rng.range(-scale, scale)).sum();
                        clamp(off + s / 2)
                    })
                    .collect()
            }
            // Constant row (d = 0).
            2 => vec![rng.range(lo, hi); n],
            // Small values and one huge outlier.
            3 => {
                let mut v: Vec<i64> = (0..n).map(|_| rng.range(-3, 3)).collect();
                let i = rng.range(0, n as i64 - 1) as usize;
                v[i] = if rng.range(0, 1) == 0 { hi } else { lo };
                v
            }
            // Constant but one element off by +-1 (the smallest nonzero d).
            4 => {
                let c = rng.range(lo + 1, hi - 1);
                let mut v = vec![c; n];
                let i = rng.range(0, n as i64 - 1) as usize;
                v[i] += if rng.range(0, 1) == 0 { 1 } else { -1 };
                v
            }
            // Two values.
            5 => {
                let (a, b) = (rng.range(lo, hi), rng.range(lo, hi));
                (0..n)
                    .map(|_| if rng.range(0, 1) == 0 { a } else { b })
                    .collect()
            }
            // Extremes only (the largest d).
            6 => (0..n)
                .map(|_| if rng.range(0, 1) == 0 { lo } else { hi })
                .collect(),
            // Tiny range around a random offset.
            7 => {
                let c = rng.range(lo + 2, hi - 2);
                (0..n).map(|_| c + rng.range(-2, 2)).collect()
            }
            // Ramp.
            _ => {
                let step = rng.range(1, 1 + (1 << (w / 2)));
                let start = rng.range(lo, 0);
                (0..n).map(|i| clamp(start + step * i as i64)).collect()
            }
        }
    }

    /// A row length: corner cases first, then random.
    pub(crate) fn length(rng: &mut Rng, i: usize, n_max: usize) -> usize {
        let corners = [1, 2, 3, 5, 7, n_max - 1, n_max];
        if i < corners.len() {
            corners[i].clamp(1, n_max)
        } else if i.is_multiple_of(5) {
            rng.range(n_max as i64 / 2, n_max as i64) as usize
        } else {
            rng.range(1, 40.min(n_max) as i64) as usize
        }
    }
}

#[derive(Default, Debug)]
struct Stats {
    elems: usize,
    exact: usize,
    max_err: f64,
}

fn check_row(cfg: &L1NormConfig, row: &[i64], stats: &mut Stats) {
    let c = cfg.consts().expect("valid");
    let r = golden_row(&c, row).expect("row");
    let vref = reference_values(cfg, row);
    let cref = reference_codes(cfg, row);
    let bound = c.error_bound();
    let scale = (-(c.t as f64)).exp2();
    for (i, &x) in row.iter().enumerate() {
        let e = golden_elem(&c, &r, x);
        let v_hw = e.prod as f64 * scale;
        assert!(
            (e.code as i64 - cref[i] as i64).abs() <= 1,
            "code {} vs reference {} (v = {}) at {i}, cfg {cfg:?}, row {row:?}, {r:?}",
            e.code,
            cref[i],
            vref[i]
        );
        if vref[i].abs() <= (c.q + 1) as f64 {
            let err = (v_hw - vref[i]).abs();
            assert!(
                err <= bound,
                "|v_hw - v| = {err} > {bound} at {i} (v = {}, v_hw = {v_hw}), cfg {cfg:?}, {r:?}",
                vref[i]
            );
            stats.max_err = stats.max_err.max(err);
        }
        stats.elems += 1;
        stats.exact += (e.code == cref[i]) as usize;
    }
}

fn sweep(cfg: L1NormConfig, rows: usize, seed: u64) -> Stats {
    let mut rng = Rng::new(seed);
    let mut stats = Stats::default();
    let n_max = cfg.n_max();
    for i in 0..rows {
        let n = rows::length(&mut rng, i % 40, n_max);
        let row = rows::row(&mut rng, cfg.in_bits, n, i as u64);
        check_row(&cfg, &row, &mut stats);
    }
    stats
}

#[test]
fn constants_are_consistent() {
    for b in [4, 6, 8] {
        let c = L1NormConfig::new(b).consts().expect("default config");
        assert_eq!(c.k, b + 6);
        assert_eq!(c.p, b + 6);
        assert!(c.dw <= 64 && c.c_m >> (c.cb - 1) == 1, "{c:?}");
        assert!(c.e_m >> (c.eb - 1) == 1, "{c:?}");
        let rel = (c.eps_hw() - DEFAULT_EPS).abs() / DEFAULT_EPS;
        assert!(rel <= (-(c.eb as f64)).exp2(), "{rel}");
        assert!(c.error_bound() < 1.0 / 16.0, "{}", c.error_bound());
    }
    let bad = |cfg: L1NormConfig| cfg.consts().expect_err("invalid");
    assert!(bad(L1NormConfig::new(5)).0.contains("4, 6 or 8"));
    assert!(bad(L1NormConfig::new(4).with_frac_bits(4))
        .0
        .contains("0..=3"));
    assert!(bad(L1NormConfig::new(4).with_eps(-1.0)).0.contains("eps"));
    assert!(bad(L1NormConfig::new(4).with_eps(f64::NAN))
        .0
        .contains("eps"));
    assert!(bad(L1NormConfig::new(4).with_geometry(16, 14))
        .0
        .contains("W + A"));
    let c = L1NormConfig::new(4).consts().expect("ok");
    assert!(golden_row(&c, &[]).is_err());
    assert!(golden_row(&c, &[40000]).is_err());
    assert!(golden_row(&c, &vec![0; 1025]).is_err());
}

#[test]
fn golden_is_within_one_lsb_of_f64_default_configs() {
    for (b, seed) in [(4u32, 1u64), (6, 2), (8, 3)] {
        let cfg = L1NormConfig::new(b);
        let s = sweep(cfg, 1500, seed);
        eprintln!(
            "b={b}: {} elements, {:.3}% exact, max |v_hw - v| = {:.4} (bound {:.4})",
            s.elems,
            100.0 * s.exact as f64 / s.elems as f64,
            s.max_err,
            cfg.consts().expect("ok").error_bound()
        );
    }
}

#[test]
fn golden_other_steps_eps_and_widths() {
    let mut seed = 100;
    for b in [4u32, 6, 8] {
        for f in 0..b {
            for eps in [0.0, 1e-5, 0.37, 3.0, 100.0] {
                for (w, a) in [(16, 10), (8, 6), (12, 4), (20, 9)] {
                    let cfg = L1NormConfig::new(b)
                        .with_frac_bits(f)
                        .with_eps(eps)
                        .with_geometry(w, a);
                    seed += 1;
                    sweep(cfg, 60, seed);
                }
            }
        }
    }
    // eps at its upper limit, and a subnormal eps.
    for eps in [32768.0, 5e-324, 1e-300] {
        sweep(L1NormConfig::new(8).with_eps(eps), 200, 7);
    }
}

#[test]
fn special_rows() {
    let cfg = L1NormConfig::new(8);
    // n = 1 and constant rows give 0 even with eps = 0.
    for eps in [0.0, DEFAULT_EPS] {
        let cfg = cfg.with_eps(eps);
        assert_eq!(golden(&cfg, &[5]).unwrap(), vec![0]);
        assert_eq!(golden(&cfg, &[-7; 9]).unwrap(), vec![0; 9]);
        assert_eq!(golden(&cfg, &vec![32767; 1024]).unwrap(), vec![0; 1024]);
    }
    // Two elements: +-1 sigma-ish values, exactly as the reference.
    let g = golden(&cfg, &[-100, 100]).unwrap();
    assert_eq!(g, reference_codes(&cfg, &[-100, 100]));
    // One outlier saturates, the rest stay small.
    let mut row = vec![0i64; 1000];
    row[17] = 32767;
    let g = golden(&cfg, &row).unwrap();
    assert_eq!(g[17], 127);
    assert_eq!(g, reference_codes(&cfg, &row));
}
