//! rust-hdl simulations of the unit against the golden model, code by code.

use super::golden::*;
use super::golden_tests::rows;
use super::{l1norm_unit, L1Norm};
use crate::mul::{from_twos, to_twos};
use crate::testutil::Rng;
use rust_hdl::prelude::*;

/// Port access for the simulation driver, for every instantiation of [`L1Norm`].
pub(crate) trait UnitIo: Block {
    fn set_clock(&mut self, v: bool);
    fn set_in(&mut self, valid: bool, data: u64, last: bool);
    fn in_ready(&self) -> bool;
    /// `(valid, code bits, last)`.
    fn out(&self) -> (bool, u64, bool);
}

impl<
        const W: usize,
        const A: usize,
        const NB: usize,
        const RB: usize,
        const SB: usize,
        const QB: usize,
        const N2B: usize,
        const DW: usize,
        const DH: usize,
        const EW: usize,
        const P: usize,
        const CB: usize,
        const EB: usize,
        const NW: usize,
        const K: usize,
        const K1: usize,
        const PW: usize,
        const B: usize,
        const IB: usize,
    > UnitIo for L1Norm<W, A, NB, RB, SB, QB, N2B, DW, DH, EW, P, CB, EB, NW, K, K1, PW, B, IB>
{
    fn set_clock(&mut self, v: bool) {
        self.clock.next = Clock { clk: v };
    }
    fn set_in(&mut self, valid: bool, data: u64, last: bool) {
        self.in_valid.next = valid;
        self.in_data.next = bits(data);
        self.in_last.next = last;
    }
    fn in_ready(&self) -> bool {
        self.in_ready.val()
    }
    fn out(&self) -> (bool, u64, bool) {
        (
            self.out_valid.val(),
            self.out_code.val().to_u64(),
            self.out_last.val(),
        )
    }
}

/// What the driver saw.
#[derive(Debug, Default)]
pub(crate) struct RunResult {
    /// Codes per row (split at `out_last`).
    pub codes: Vec<Vec<i8>>,
    /// Per row: cycle its last element was accepted, cycle its first / last code was valid.
    pub last_in: Vec<u64>,
    pub first_out: Vec<u64>,
    pub last_out: Vec<u64>,
    pub cycles: u64,
}

/// Drive `rows` through the unit back to back (`gap` = chance in 1/4 units of an idle input
/// cycle), until every code is out.
pub(crate) fn run<U: UnitIo>(
    uut: &mut U,
    w: u32,
    b: u32,
    rows: &[Vec<i64>],
    gap: u64,
    seed: u64,
) -> RunResult {
    let mut rng = Rng::new(seed);
    let mut res = RunResult::default();
    let total: usize = rows.iter().map(|r| r.len()).sum();
    let (mut r, mut i) = (0usize, 0usize);
    let mut got = 0usize;
    let mut cur: Vec<i8> = vec![];
    let mut cycle = 0u64;
    let limit = 40 * total as u64 + 400 * rows.len() as u64 + 1000;
    while got < total {
        assert!(
            cycle < limit,
            "no progress after {cycle} cycles ({got} of {total} codes)"
        );
        let offer = r < rows.len() && (gap == 0 || rng.range(0, 3) >= gap as i64);
        if offer {
            let last = i + 1 == rows[r].len();
            uut.set_in(true, to_twos(rows[r][i], w as usize), last);
        } else {
            uut.set_in(false, 0, false);
        }
        assert!(simulate(uut, 400), "settles before the edge");
        let accepted = offer && uut.in_ready();
        let (ov, code, olast) = uut.out();
        if ov {
            if cur.is_empty() {
                res.first_out.push(cycle);
            }
            cur.push(from_twos(code, b as usize) as i8);
            got += 1;
            if olast {
                res.last_out.push(cycle);
                res.codes.push(std::mem::take(&mut cur));
            }
        }
        uut.set_clock(true);
        assert!(simulate(uut, 400), "settles after the rising edge");
        uut.set_clock(false);
        assert!(simulate(uut, 400), "settles after the falling edge");
        if accepted {
            i += 1;
            if i == rows[r].len() {
                res.last_in.push(cycle);
                r += 1;
                i = 0;
            }
        }
        cycle += 1;
    }
    assert!(cur.is_empty(), "codes after the last out_last: {cur:?}");
    res.cycles = cycle;
    res
}

fn check_rows(cfg: &L1NormConfig, rows: &[Vec<i64>], res: &RunResult) {
    assert_eq!(res.codes.len(), rows.len(), "one out_last per row");
    for (k, (row, got)) in rows.iter().zip(&res.codes).enumerate() {
        let want = golden(cfg, row).expect("golden");
        if *got != want {
            let c = cfg.consts().expect("valid");
            let rt = golden_row(&c, row).expect("row");
            panic!(
                "row {k} (n = {}): RTL {got:?}\n golden {want:?}\n {rt:?}",
                row.len()
            );
        }
    }
}

macro_rules! sim_rows {
    ($w:literal, $a:literal, $b:literal, $cfg:expr, $rows:expr, $gap:expr, $seed:expr) => {{
        let cfg: L1NormConfig = $cfg;
        let c = cfg.consts().expect("valid config");
        let mut uut = <l1norm_unit!($w, $a, $b)>::new(&c);
        uut.connect_all();
        check_all(&uut).expect("connected");
        let rows: Vec<Vec<i64>> = $rows;
        let res = run(&mut uut, $w, $b, &rows, $gap, $seed);
        check_rows(&cfg, &rows, &res);
        res
    }};
}

fn random_rows(seed: u64, count: usize, w: u32, n_max: usize, long_every: usize) -> Vec<Vec<i64>> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let n = if i < 7 {
                rows::length(&mut rng, i, n_max)
            } else if long_every > 0 && i % long_every == 0 {
                rng.range(n_max as i64 / 2, n_max as i64) as usize
            } else {
                rng.range(1, 24.min(n_max) as i64) as usize
            };
            rows::row(&mut rng, w, n, i as u64 * 7 + seed)
        })
        .collect()
}

#[test]
fn small_unit_matches_golden_sq4() {
    let cfg = L1NormConfig::new(4).with_geometry(8, 6);
    let res = sim_rows!(8, 6, 4, cfg, random_rows(11, 60, 8, 64, 6), 0, 1);
    eprintln!("sq4 W=8 A=6: 60 rows in {} cycles", res.cycles);
}

#[test]
fn small_unit_matches_golden_sq6_sq8_with_gaps() {
    let cfg = L1NormConfig::new(6).with_geometry(8, 6);
    sim_rows!(8, 6, 6, cfg, random_rows(12, 50, 8, 64, 5), 1, 2);
    let cfg = L1NormConfig::new(8).with_geometry(8, 6);
    sim_rows!(8, 6, 8, cfg, random_rows(13, 50, 8, 64, 5), 2, 3);
}

#[test]
fn small_unit_other_steps_and_eps() {
    for (k, (f, eps)) in [(0u32, 0.0), (3, 1e-5), (1, 0.75), (2, 20.0), (3, 128.0)]
        .into_iter()
        .enumerate()
    {
        let cfg = L1NormConfig::new(4)
            .with_geometry(8, 6)
            .with_frac_bits(f)
            .with_eps(eps);
        sim_rows!(
            8,
            6,
            4,
            cfg,
            random_rows(20 + k as u64, 25, 8, 64, 4),
            0,
            k as u64
        );
    }
    let cfg = L1NormConfig::new(8)
        .with_geometry(8, 6)
        .with_frac_bits(0)
        .with_eps(0.0);
    sim_rows!(8, 6, 8, cfg, random_rows(30, 25, 8, 64, 4), 0, 9);
}

fn long_rows(seed: u64, w: u32, n_max: usize) -> Vec<Vec<i64>> {
    let mut rng = Rng::new(seed);
    let mut v = random_rows(seed, 24, w, n_max, 4);
    // Max-length rows of several kinds (uniform, Gaussian, constant, outlier, +-1, extremes).
    for kind in [0u64, 1, 2, 3, 4, 6] {
        v.push(rows::row(&mut rng, w, n_max, kind));
    }
    v
}

#[test]
fn unit_w16_n1024_matches_golden_sq4() {
    let cfg = L1NormConfig::new(4);
    sim_rows!(16, 10, 4, cfg, long_rows(41, 16, 1024), 0, 4);
}

#[test]
fn unit_w16_n1024_matches_golden_sq6() {
    let cfg = L1NormConfig::new(6);
    sim_rows!(16, 10, 6, cfg, long_rows(42, 16, 1024), 1, 5);
}

#[test]
fn unit_w16_n1024_matches_golden_sq8() {
    let cfg = L1NormConfig::new(8);
    sim_rows!(16, 10, 8, cfg, long_rows(43, 16, 1024), 0, 6);
}

/// The cycle counts of [`timing`] against the simulation: the latency of a row into an idle
/// unit, and the period of a stream of equal rows.
#[test]
fn timing_matches_simulation() {
    let mut rng = Rng::new(77);
    let cfg = L1NormConfig::new(4).with_geometry(8, 6);
    let c = cfg.consts().expect("valid");
    let mut cases: Vec<Vec<i64>> = vec![vec![3], vec![-5, 9], vec![4; 10]];
    for n in [3usize, 17, 40, 64] {
        for kind in [0u64, 1, 4, 6] {
            cases.push(rows::row(&mut rng, 8, n, kind));
        }
    }
    for row in &cases {
        let t = timing(&c, &golden_row(&c, row).expect("row"));
        let single = sim_rows!(8, 6, 4, cfg, vec![row.clone()], 0, 1);
        assert_eq!(
            single.first_out[0] - single.last_in[0],
            t.latency,
            "latency, n = {}",
            row.len()
        );
        let stream = sim_rows!(8, 6, 4, cfg, vec![row.clone(); 6], 0, 1);
        let periods: Vec<u64> = stream.first_out.windows(2).map(|p| p[1] - p[0]).collect();
        assert_eq!(
            periods[periods.len() - 1],
            t.period(),
            "period, n = {}: {t:?}",
            row.len()
        );
    }
}

/// Throughput and latency of the default W = 16, A = 10 units (printed for the report).
#[test]
fn timing_report_w16_n1024() {
    let mut rng = Rng::new(5);
    for b in [4u32, 6, 8] {
        let cfg = L1NormConfig::new(b);
        let c = cfg.consts().expect("valid");
        for n in [16usize, 64, 256, 1024] {
            let row = rows::row(&mut rng, 16, n, 1);
            let t = timing(&c, &golden_row(&c, &row).expect("row"));
            eprintln!(
                "b={b} n={n:4}: stage cycles {}/{}/{}, period {} ({:.3} elem/cycle), latency {}",
                t.stage1,
                t.stage2,
                t.stage3,
                t.period(),
                n as f64 / t.period() as f64,
                t.latency
            );
        }
    }
    // One stream through the sq8 unit confirms the period on long rows.
    let cfg = L1NormConfig::new(8);
    let c = cfg.consts().expect("valid");
    let row = rows::row(&mut rng, 16, 1024, 1);
    let t = timing(&c, &golden_row(&c, &row).expect("row"));
    let res = sim_rows!(16, 10, 8, cfg, vec![row; 4], 0, 1);
    let periods: Vec<u64> = res.first_out.windows(2).map(|p| p[1] - p[0]).collect();
    assert_eq!(*periods.last().expect("periods"), t.period());
    assert_eq!(res.first_out[0] - res.last_in[0], t.latency);
}

/// A row longer than `2^A` without `in_last` is cut after its `2^A`-th element.
#[test]
fn overlong_row_is_split_at_n_max() {
    let cfg = L1NormConfig::new(6).with_geometry(8, 6);
    let c = cfg.consts().expect("valid");
    let mut uut = <l1norm_unit!(8, 6, 6)>::new(&c);
    uut.connect_all();
    let mut rng = Rng::new(3);
    let row = rows::row(&mut rng, 8, 69, 1);
    let res = run(&mut uut, 8, 6, std::slice::from_ref(&row), 0, 1);
    assert_eq!(res.codes.len(), 2);
    assert_eq!(res.codes[0], golden(&cfg, &row[..64]).expect("golden"));
    assert_eq!(res.codes[1], golden(&cfg, &row[64..]).expect("golden"));
}
