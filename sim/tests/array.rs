//! The generated ShiftQuant array, Verilated and driven through `ArrayDriver`, matches an i64
//! reference `acc[m][n] = sum_k qa[m][k] * qb[k][n] << shift_k` on random tiles.

mod common;

use common::{opts, Rng};
use shiftkit_hw::{ArrayConfig, Datapath};
use shiftkit_sim::array_driver::{ArrayDriver, Ctl};
use shiftkit_sim::SimError;

struct Tile {
    qa: Vec<Vec<i64>>,
    qb: Vec<Vec<i64>>,
    shift: Vec<u32>,
}

impl Tile {
    fn random(rng: &mut Rng, cfg: &ArrayConfig, k: usize) -> Tile {
        let q = cfg.q_max();
        Tile {
            qa: (0..cfg.rows)
                .map(|_| (0..k).map(|_| rng.range(-q, q)).collect())
                .collect(),
            qb: (0..k)
                .map(|_| (0..cfg.cols).map(|_| rng.range(-q, q)).collect())
                .collect(),
            shift: (0..k)
                .map(|_| rng.range(0, 2 * cfg.window as i64) as u32)
                .collect(),
        }
    }

    fn reference(&self) -> Vec<Vec<i64>> {
        let cols = self.qb[0].len();
        self.qa
            .iter()
            .map(|row| {
                (0..cols)
                    .map(|n| {
                        (0..self.shift.len())
                            .map(|k| (row[k] * self.qb[k][n]) << self.shift[k])
                            .sum()
                    })
                    .collect()
            })
            .collect()
    }
}

/// Tiles of several lengths (1 needs padding before the next flush), then one round of
/// extreme codes with the largest shift.
fn check_random_gemm(cfg: ArrayConfig, seed: u64) {
    let mut drv = ArrayDriver::build(&cfg, &opts()).expect("array model builds");
    let mut rng = Rng(seed);
    let mut tiles: Vec<Tile> = [1, 2, 2 * cfg.rows + 5, 3, 7]
        .iter()
        .map(|&k| Tile::random(&mut rng, &cfg, k))
        .collect();
    let mut extreme = Tile::random(&mut rng, &cfg, 6);
    let q = cfg.q_max();
    extreme
        .qa
        .iter_mut()
        .flatten()
        .for_each(|x| *x = if *x < 0 { -q } else { q });
    extreme.shift.iter_mut().for_each(|s| *s = 2 * cfg.window);
    tiles.push(extreme);
    for t in &tiles {
        drv.feed_tile(&t.qa, &t.qb, &t.shift).expect("feeds");
    }
    let got = drv.finish().expect("drains");
    assert_eq!(got.len(), tiles.len());
    for (n, (g, t)) in got.iter().zip(&tiles).enumerate() {
        assert_eq!(g, &t.reference(), "{cfg}: tile {n}");
    }
    // The driver can be reused after finish().
    let t = Tile::random(&mut rng, &cfg, 4);
    drv.feed_tile(&t.qa, &t.qb, &t.shift).unwrap();
    assert_eq!(drv.finish().unwrap(), vec![t.reference()]);
}

#[test]
fn sq4_2x2_matches_the_reference() {
    let cfg = ArrayConfig::new(2, 2, Datapath::Sq { bits: 4 }).unwrap();
    check_random_gemm(cfg, 1);
}

#[test]
fn sq8_3x2_with_a_48_bit_accumulator_matches_the_reference() {
    let cfg = ArrayConfig::new(3, 2, Datapath::Sq { bits: 8 })
        .and_then(|c| c.with_acc_bits(40))
        .and_then(|c| c.with_window(9))
        .unwrap();
    check_random_gemm(cfg, 2);
}

#[test]
fn protocol_violations_are_errors() {
    let cfg = ArrayConfig::new(2, 2, Datapath::Sq { bits: 4 }).unwrap();
    let mut drv = ArrayDriver::build(&cfg, &opts()).unwrap();
    let flush = Ctl {
        valid: true,
        flush: true,
        shift: 0,
    };
    drv.step(&[1, 1], &[1, 1], flush).unwrap();
    // 2R - 1 = 3 cycles must separate flushes.
    let e = drv.step(&[1, 1], &[1, 1], flush).unwrap_err();
    assert!(matches!(e, SimError::Driver(_)), "{e}");
    assert!(
        drv.step(&[8, 0], &[0, 0], Ctl::idle()).is_err(),
        "8 is not an sq4 code"
    );
    assert!(
        drv.step(&[0], &[0, 0], Ctl::idle()).is_err(),
        "one A code per row"
    );
    let big = Ctl {
        valid: true,
        flush: false,
        shift: 15,
    };
    assert!(drv.step(&[0, 0], &[0, 0], big).is_err(), "shift above 2E");
    assert!(drv.feed_tile(&[vec![], vec![]], &[], &[]).is_err(), "K = 0");
}
