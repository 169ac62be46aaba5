//! The generated L1-norm unit (`shiftkit_hw::l1norm`) under Verilator against the bit-exact
//! golden model, at a scale the rust-hdl tests in `hw/src/l1norm/tests.rs` cannot reach (those
//! check a few dozen rows per configuration, and the timing on small units): here thousands of
//! random rows per unit, of every length up to `n_max`, of many kinds (uniform, narrow around
//! an offset, constant, +-1, extremes, one outlier), streamed back to back with random input
//! gaps; every code must equal `golden`, and the latency of rows into an idle unit must equal
//! `timing`.

mod common;

use common::{opts, Rng};
use shiftkit_hw::l1norm::{generate_l1norm, golden, golden_row, timing, L1NormConfig};
use shiftkit_sim::{Model, PortId, SourceFile};

/// The unit's ports (`L1NormManifest::protocol`): one element in per cycle while
/// `in_valid & in_ready`, `in_last` ends a row; one code out per cycle while `out_valid`,
/// `out_last` on a row's last code; no back-pressure, no reset (registers start at 0).
struct Unit {
    model: Model,
    clock: PortId,
    in_valid: PortId,
    in_data: PortId,
    in_last: PortId,
    in_ready: PortId,
    out_valid: PortId,
    out_code: PortId,
    out_last: PortId,
    cfg: L1NormConfig,
}

/// What a stream of rows did: the codes of each row, and per row the cycle its last element
/// went in and the cycle its first code came out.
#[derive(Default)]
struct Outcome {
    codes: Vec<Vec<i8>>,
    last_in: Vec<u64>,
    first_out: Vec<u64>,
}

impl Unit {
    fn build(cfg: L1NormConfig) -> Unit {
        let design = generate_l1norm(&cfg).unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
        let source = SourceFile {
            name: format!("{}.v", design.top),
            text: design.verilog,
        };
        let model = Model::build_sources(&[source], &design.top, &opts())
            .unwrap_or_else(|e| panic!("{}: {e}", design.top));
        let port = |n: &str| model.port(n).expect("port");
        Unit {
            clock: port("clock"),
            in_valid: port("in_valid"),
            in_data: port("in_data"),
            in_last: port("in_last"),
            in_ready: port("in_ready"),
            out_valid: port("out_valid"),
            out_code: port("out_code"),
            out_last: port("out_last"),
            model,
            cfg,
        }
    }

    /// Stream `rows`; in each cycle the next element is offered unless `idle(cycle)`, and with
    /// `one_at_a_time` a row is offered only once every code of the previous one is out (so
    /// each row meets an idle unit).
    fn run(
        &mut self,
        rows: &[Vec<i64>],
        mut idle: impl FnMut(u64) -> bool,
        one_at_a_time: bool,
    ) -> Outcome {
        let m = &mut self.model;
        let total: usize = rows.iter().map(Vec::len).sum();
        let limit = 64 * total as u64 + 2_000 * rows.len() as u64 + 10_000;
        let mut out = Outcome::default();
        let (mut r, mut i, mut got) = (0usize, 0usize, 0usize);
        let mut cur: Vec<i8> = Vec::new();
        let start = m.cycles();
        while got < total {
            let t = m.cycles() - start;
            assert!(
                t < limit,
                "no progress after {t} cycles ({got} of {total} codes)"
            );
            let waiting = one_at_a_time && out.codes.len() < r;
            let offer = r < rows.len() && !waiting && !idle(t);
            let (data, last) = if offer {
                (rows[r][i], i + 1 == rows[r].len())
            } else {
                (0, false)
            };
            m.set_u64(self.in_valid, u64::from(offer))
                .expect("in_valid");
            m.set_i64(self.in_data, data).expect("in_data");
            m.set_u64(self.in_last, u64::from(last)).expect("in_last");
            m.clock_low(self.clock).expect("clock");
            let accepted = offer && m.get_u64(self.in_ready).expect("in_ready") != 0;
            if m.get_u64(self.out_valid).expect("out_valid") != 0 {
                if cur.is_empty() {
                    out.first_out.push(t);
                }
                cur.push(m.get_i64(self.out_code).expect("out_code") as i8);
                got += 1;
                if m.get_u64(self.out_last).expect("out_last") != 0 {
                    out.codes.push(std::mem::take(&mut cur));
                }
            }
            m.clock_high(self.clock).expect("clock");
            if accepted {
                i += 1;
                if last {
                    out.last_in.push(t);
                    r += 1;
                    i = 0;
                }
            }
        }
        assert!(cur.is_empty(), "codes after the last out_last: {cur:?}");
        out
    }

    fn check(&self, rows: &[Vec<i64>], out: &Outcome, what: &str) {
        assert_eq!(out.codes.len(), rows.len(), "{what}: one out_last per row");
        for (k, (row, got)) in rows.iter().zip(&out.codes).enumerate() {
            let want = golden(&self.cfg, row).expect("golden");
            assert_eq!(got, &want, "{what}: row {k} (n = {}): {row:?}", row.len());
        }
    }
}

/// One random row of `n` W-bit integers, of a random kind.
fn random_row(rng: &mut Rng, w: u32, n: usize) -> Vec<i64> {
    let (lo, hi) = (-(1i64 << (w - 1)), (1i64 << (w - 1)) - 1);
    let clamp = |x: i64| x.clamp(lo, hi);
    match rng.range(0, 7) {
        // Uniform over the whole range.
        0 => (0..n).map(|_| rng.range(lo, hi)).collect(),
        // Narrow and bell-shaped around an offset (sum of four uniforms).
        1 => {
            let centre = rng.range(lo, hi);
            let spread = rng.range(1, 1 << (w / 2));
            (0..n)
                .map(|_| {
                    clamp(centre + (0..4).map(|_| rng.range(-spread, spread)).sum::<i64>() / 2)
                })
                .collect()
        }
        // Constant (d = 0: all codes 0), at any value including the extremes.
        2 => {
            let v = [lo, hi, 0, rng.range(lo, hi)][rng.range(0, 3) as usize];
            vec![v; n]
        }
        // Two neighbouring values.
        3 => {
            let v = rng.range(lo, hi - 1);
            (0..n).map(|_| v + rng.range(0, 1)).collect()
        }
        // Only the extremes.
        4 => (0..n)
            .map(|_| if rng.range(0, 1) == 0 { lo } else { hi })
            .collect(),
        // Small values with one outlier.
        5 => {
            let mut v: Vec<i64> = (0..n).map(|_| rng.range(-3, 3)).collect();
            let at = rng.range(0, n as i64 - 1) as usize;
            v[at] = if rng.range(0, 1) == 0 { lo } else { hi };
            v
        }
        // Uniform over a random sub-range.
        _ => {
            let a = rng.range(lo, hi);
            let b = rng.range(a, hi);
            (0..n).map(|_| rng.range(a, b)).collect()
        }
    }
}

/// `count` rows: the first few of length 1, 2, n_max - 1 and n_max, the rest of random length
/// (mostly short, every fourth anywhere up to n_max).
fn random_rows(rng: &mut Rng, cfg: &L1NormConfig, count: usize) -> Vec<Vec<i64>> {
    let n_max = cfg.n_max();
    (0..count)
        .map(|i| {
            let n = match i {
                0 => 1,
                1 => 2,
                2 => n_max - 1,
                3 => n_max,
                _ if i % 4 == 0 => rng.range(1, n_max as i64) as usize,
                _ => rng.range(1, 40.min(n_max) as i64) as usize,
            };
            random_row(rng, cfg.in_bits, n)
        })
        .collect()
}

/// Rows back to back (with and without input gaps) bit-exact, then isolated rows on time.
fn check_unit(cfg: L1NormConfig, seed: u64, rows: usize, timed_rows: usize) {
    let mut unit = Unit::build(cfg);
    let mut rng = Rng(seed);
    let what = format!("{cfg:?}");
    let stream = random_rows(&mut rng, &cfg, rows);
    let out = unit.run(&stream, |_| false, false);
    unit.check(&stream, &out, &what);
    let gaps: Vec<bool> = (0..1024).map(|_| rng.range(0, 3) == 0).collect();
    let stream = random_rows(&mut rng, &cfg, rows / 2);
    let out = unit.run(&stream, |t| gaps[(t % 1024) as usize], false);
    unit.check(&stream, &out, &format!("{what} with gaps"));

    let c = cfg.consts().expect("valid config");
    let isolated = random_rows(&mut rng, &cfg, timed_rows);
    let out = unit.run(&isolated, |_| false, true);
    unit.check(&isolated, &out, &format!("{what} isolated rows"));
    for (k, row) in isolated.iter().enumerate() {
        let t = timing(&c, &golden_row(&c, row).expect("row"));
        assert_eq!(
            out.first_out[k] - out.last_in[k],
            t.latency,
            "{what}: latency of row {k} (n = {})",
            row.len()
        );
    }
}

#[test]
fn w16_n1024_sq6_matches_golden_on_thousands_of_rows() {
    check_unit(L1NormConfig::new(6), 1, 1200, 60);
}

#[test]
fn w8_n64_sq4_and_sq8_other_steps_and_eps_match_golden() {
    // f = 0 with eps = 0 (constant rows must still give zeros), and f = b - 1 with a large eps.
    check_unit(
        L1NormConfig::new(4)
            .with_geometry(8, 6)
            .with_frac_bits(0)
            .with_eps(0.0),
        2,
        3000,
        200,
    );
    check_unit(
        L1NormConfig::new(8)
            .with_geometry(8, 6)
            .with_frac_bits(7)
            .with_eps(20.0),
        3,
        3000,
        200,
    );
}
