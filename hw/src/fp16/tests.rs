//! Golden checks of the FP16 datapath in rust-hdl's simulator against [`super::model`], and the
//! Verilator lint of the generated PE.

use super::add::{AlignAdd, NormRound};
use super::array::Fp16Array;
use super::model::{dot, f16_to_f32, flush, product, same_result};
use super::mul::{Fp16Mul, SigMul11};
use super::norm::LzNorm;
use super::pe::{Fp16Ctl, Fp16Pe, FP16_LATENCY, FP16_SLOTS};
use crate::testutil::Rng;
use rust_hdl::prelude::*;
use std::collections::VecDeque;

fn settle<T: Block>(uut: &mut T) {
    assert!(simulate(uut, 200), "settles");
}

/// One clock cycle: settle the inputs, rising edge, falling edge.
fn tick<T: Block>(uut: &mut T, clock: impl Fn(&mut T, bool)) {
    settle(uut);
    clock(uut, true);
    settle(uut);
    clock(uut, false);
    settle(uut);
}

// ---- operand generators -------------------------------------------------------------------

/// Classes of binary16 operands; all finite.
fn f16_of_class(rng: &mut Rng, class: u64) -> u16 {
    let sign = (rng.next_u64() as u16 & 1) << 15;
    let frac = rng.next_u64() as u16 & 0x3ff;
    let exp = match class {
        0 => rng.range(0, 30) as u16,  // any finite
        1 => 0,                        // subnormal (or zero)
        2 => rng.range(0, 4) as u16,   // tiny
        3 => rng.range(26, 30) as u16, // huge
        4 => rng.range(12, 18) as u16, // around 1
        _ => return sign,              // signed zero
    };
    sign | exp << 10 | frac
}

fn random_f16(rng: &mut Rng) -> u16 {
    let class = rng.range(0, 9) as u64;
    f16_of_class(rng, class.min(5))
}

/// A random finite binary16 dot product of length `1..=max_len`, drawn from one of several
/// shapes: arbitrary operands, mixed magnitudes, and sequences built to cancel.
fn random_sequence(rng: &mut Rng, max_len: i64) -> Vec<(u16, u16)> {
    let len = rng.range(1, max_len) as usize;
    let shape = rng.range(0, 4);
    let mut v: Vec<(u16, u16)> = Vec::with_capacity(len);
    for k in 0..len {
        let pair = match shape {
            // Cancellation: every other pair undoes (or nearly undoes) the previous product.
            1 if k % 2 == 1 => {
                let (a, b) = v[k - 1];
                let nudge = if rng.range(0, 2) == 0 {
                    0
                } else {
                    rng.range(0, 3) as u16
                };
                (
                    a ^ 0x8000,
                    (b & 0x8000) | ((b & 0x7fff).wrapping_add(nudge) & 0x7fff),
                )
            }
            // One class for the whole sequence.
            2 => {
                let c = (len as u64) % 5;
                (f16_of_class(rng, c), f16_of_class(rng, c))
            }
            // A big product, then small ones (sticky and round bits), then its negation.
            3 if k == len - 1 && len > 1 => (v[0].0 ^ 0x8000, v[0].1),
            _ => (random_f16(rng), random_f16(rng)),
        };
        // Keep the operands finite (the nudge above may not, in principle).
        let fin = |h: u16| {
            if (h >> 10) & 0x1f == 0x1f {
                h & 0xfbff
            } else {
                h
            }
        };
        v.push((fin(pair.0), fin(pair.1)));
    }
    v
}

// ---- stage 1 ------------------------------------------------------------------------------

#[test]
fn sig_mul11_random_and_corners() {
    let mut uut = SigMul11::default();
    uut.connect_all();
    check_all(&uut).expect("connected");
    let mut rng = Rng::new(0xf16_0001);
    let corners = [0u64, 1, 2, 0x3ff, 0x400, 0x401, 0x555, 0x7fe, 0x7ff];
    let mut pairs: Vec<(u64, u64)> = corners
        .iter()
        .flat_map(|&a| corners.iter().map(move |&b| (a, b)))
        .collect();
    pairs.extend((0..20_000).map(|_| (rng.next_u64() & 0x7ff, rng.next_u64() & 0x7ff)));
    for (a, b) in pairs {
        uut.a.next = bits(a);
        uut.b.next = bits(b);
        settle(&mut uut);
        assert_eq!(uut.p.val().to_u64(), a * b, "{a} * {b}");
    }
}

#[test]
fn lz_norm_counts_and_shifts() {
    let mut uut = LzNorm::<28>::default();
    uut.connect_all();
    let mut rng = Rng::new(0xf16_0002);
    let mut xs: Vec<u64> = (0..28).map(|i| 1u64 << i).collect();
    xs.extend((0..28).map(|i| (1u64 << i) | (rng.next_u64() & ((1 << i) - 1))));
    xs.extend((0..3000).map(|_| rng.next_u64() & ((1 << 28) - 1) >> rng.range(0, 27)));
    for x in xs.into_iter().filter(|&x| x != 0) {
        uut.x.next = bits(x);
        settle(&mut uut);
        let lz = u64::from((x << 36).leading_zeros());
        assert_eq!(uut.lz.val().to_u64(), lz, "lz of {x:#x}");
        assert_eq!(uut.y.val().to_u64(), x << lz, "shift of {x:#x}");
    }
}

#[test]
fn fp16_mul_is_the_exact_product() {
    let mut uut = Fp16Mul::default();
    uut.connect_all();
    check_all(&uut).expect("connected");
    let mut rng = Rng::new(0xf16_0003);
    let specials = [
        0x0000u16, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x7c00,
        0xfc00, 0x7e00, 0x7c01,
    ];
    let mut pairs: Vec<(u16, u16)> = specials
        .iter()
        .flat_map(|&a| specials.iter().map(move |&b| (a, b)))
        .collect();
    // Random bit patterns, inf and NaN included, and the operand classes of the PE tests.
    pairs.extend((0..15_000).map(|_| (rng.next_u64() as u16, rng.next_u64() as u16)));
    pairs.extend((0..15_000).map(|_| (random_f16(&mut rng), random_f16(&mut rng))));
    for &(a, b) in &pairs {
        for valid in [true, false] {
            uut.a.next = bits(u64::from(a));
            uut.b.next = bits(u64::from(b));
            uut.valid.next = valid;
            settle(&mut uut);
            let got = uut.p.val().to_u64() as u32;
            if valid {
                assert!(
                    same_result(got, product(a, b)),
                    "{a:#06x} * {b:#06x}: rtl {got:#010x}, model {:?}",
                    product(a, b)
                );
                if product(a, b).is_nan() {
                    assert_eq!(got, super::F32_QNAN);
                }
            } else {
                assert_eq!(got, super::F32_NEG_ZERO, "a bubble is -0");
            }
        }
    }
}

// ---- stages 2 and 3 -----------------------------------------------------------------------

/// Stages 2 and 3 back to back, without the pipeline register: one binary32 addition.
#[derive(LogicBlock, Default)]
struct AddChain {
    x: Signal<In, Bits<32>>,
    y: Signal<In, Bits<32>>,
    r: Signal<Out, Bits<32>>,
    add: AlignAdd,
    round: NormRound,
}

impl Logic for AddChain {
    #[hdl_gen]
    fn update(&mut self) {
        self.add.x.next = self.x.val();
        self.add.y.next = self.y.val();
        self.round.sign.next = self.add.sign.val();
        self.round.zsign.next = self.add.zsign.val();
        self.round.exp.next = self.add.exp.val();
        self.round.sum.next = self.add.sum.val();
        self.round.nan.next = self.add.nan.val();
        self.round.inf.next = self.add.inf.val();
        self.r.next = self.round.r.val();
    }
}

/// A random binary32 operand of the kind the adder sees: normal, zero, inf or NaN, never subnormal.
fn random_f32(rng: &mut Rng, near: Option<u32>) -> u32 {
    let sign = (rng.next_u64() as u32 & 1) << 31;
    let frac = rng.next_u64() as u32 & 0x7f_ffff;
    if let Some(x) = near {
        // Close to another operand: same or adjacent exponent, cancelling or not.
        let e = ((x >> 23) & 0xff) as i64 + rng.range(-1, 1);
        let e = e.clamp(1, 254) as u32;
        let f = if rng.range(0, 1) == 0 {
            (x & 0x7f_ffff).wrapping_add(rng.range(-4, 4) as u32) & 0x7f_ffff
        } else {
            frac
        };
        return sign | e << 23 | f;
    }
    match rng.range(0, 15) {
        0 => sign,
        1 => sign | 0x7f80_0000,
        2 => 0x7fc0_0000 | frac,
        3 => sign | (rng.range(1, 4) as u32) << 23 | frac, // near the flush threshold
        4 => sign | (rng.range(250, 254) as u32) << 23 | frac, // near overflow
        5 => sign | 0x7f7f_ffff,
        _ => sign | (rng.range(1, 254) as u32) << 23 | frac,
    }
}

#[test]
fn binary32_add_rounds_and_flushes_like_ieee() {
    let mut uut = AddChain::default();
    uut.connect_all();
    check_all(&uut).expect("connected");
    let mut rng = Rng::new(0xf16_0004);
    let mut cases: Vec<(u32, u32)> = vec![
        (0x0000_0000, 0x8000_0000), // +0 + -0 = +0
        (0x8000_0000, 0x8000_0000), // -0 + -0 = -0
        (0x3f80_0000, 0xbf80_0000), // 1 + -1 = +0
        (0x0080_0001, 0x8080_0000), // 2^-126(1 + 2^-23) - 2^-126: subnormal -> +0
        (0x8080_0001, 0x0080_0000), // ... and -0
        (0x0100_0000, 0x8080_0001), // 2^-125 - (2^-126 + ulp): below 2^-126 -> +0
        (0x7f7f_ffff, 0x7f7f_ffff), // overflow -> inf
        (0x7f7f_ffff, 0x7380_0000), // max + half an ulp: ties to even -> inf
        (0x7f80_0000, 0xff80_0000), // inf - inf = NaN
        (0x3f80_0000, 0x3380_0000), // 1 + 2^-24: tie, stays 1
        (0x3f80_0001, 0x3380_0000), // tie, rounds up to even
        (0x4b80_0000, 0xbf80_0000), // 2^24 - 1: needs the guard bit after normalization
    ];
    for _ in 0..60_000 {
        let x = random_f32(&mut rng, None);
        let y = if rng.range(0, 2) == 0 {
            random_f32(&mut rng, Some(x))
        } else {
            random_f32(&mut rng, None)
        };
        cases.push((x, y));
    }
    // Every exponent difference, with random significands.
    for d in 0..40u32 {
        for _ in 0..200 {
            let ex = rng.range(d as i64 + 1, 254) as u32;
            let x = (rng.next_u64() as u32 & 0x8000_0000)
                | ex << 23
                | (rng.next_u64() as u32 & 0x7f_ffff);
            let y = (rng.next_u64() as u32 & 0x8000_0000)
                | (ex - d) << 23
                | (rng.next_u64() as u32 & 0x7f_ffff);
            cases.push((x, y));
        }
    }
    for &(x, y) in &cases {
        for (p, q) in [(x, y), (y, x)] {
            uut.x.next = bits(u64::from(p));
            uut.y.next = bits(u64::from(q));
            settle(&mut uut);
            let got = uut.r.val().to_u64() as u32;
            let want = flush(f32::from_bits(p) + f32::from_bits(q));
            assert!(
                same_result(got, want),
                "{p:#010x} + {q:#010x}: rtl {got:#010x}, model {:#010x}",
                want.to_bits()
            );
        }
    }
}

// ---- the PE -------------------------------------------------------------------------------

/// Run `seqs` through one PE, two slots interleaved (sequence i in slot i % 2, each slot taking
/// its sequences back to back), and check every drained result against the golden model.
/// Returns the number of results checked.
fn run_pe(seqs: &[Vec<(u16, u16)>], bubbles: bool, seed: u64) -> usize {
    let mut uut = Fp16Pe::new();
    uut.drain_in.next = bits(0);
    uut.drain_valid_in.next = false;
    uut.connect_all();
    check_all(&uut).expect("connected");
    let mut rng = Rng::new(seed);
    // Per slot: the queue of (a, b, last) it still has to issue.
    let mut work: Vec<VecDeque<(u16, u16, bool)>> = vec![VecDeque::new(); FP16_SLOTS];
    for (i, s) in seqs.iter().enumerate() {
        for (k, &(a, b)) in s.iter().enumerate() {
            work[i % FP16_SLOTS].push_back((a, b, k + 1 == s.len()));
        }
    }
    // Expected results in the order they leave the drain register: flush order.
    let mut expected: VecDeque<(usize, f32)> = VecDeque::new();
    let mut next_seq = [0usize, 1];
    let mut acc = [0.0f32; FP16_SLOTS];
    let mut checked = 0;
    let mut cycle = 0usize;
    let mut idle = 0;
    while idle < FP16_LATENCY + 2 {
        let slot = cycle % FP16_SLOTS;
        let bubble = bubbles && rng.range(0, 3) == 0;
        let issue = if bubble { None } else { work[slot].pop_front() };
        match issue {
            Some((a, b, last)) => {
                acc[slot] = super::model::mac(acc[slot], a, b);
                uut.a_in.next = bits(u64::from(a));
                uut.b_in.next = bits(u64::from(b));
                uut.ctl_in.next = Fp16Ctl::new(true, last).to_bits();
                if last {
                    expected.push_back((next_seq[slot], acc[slot]));
                    next_seq[slot] += FP16_SLOTS;
                    acc[slot] = 0.0;
                }
            }
            None => {
                // A bubble: garbage operands, valid = 0, must not disturb the slot.
                uut.a_in.next = bits(rng.next_u64() & 0xffff);
                uut.b_in.next = bits(rng.next_u64() & 0xffff);
                uut.ctl_in.next = Fp16Ctl::idle().to_bits();
            }
        }
        tick(&mut uut, |u: &mut Fp16Pe, v| {
            u.clock.next = Clock { clk: v }
        });
        if uut.drain_valid_out.val() {
            let (i, want) = expected.pop_front().expect("a drained result was expected");
            let got = uut.drain_out.val().to_u64() as u32;
            assert!(
                same_result(got, want),
                "sequence {i} {:?}: rtl {got:#010x}, model {:#010x}",
                seqs[i],
                want.to_bits()
            );
            checked += 1;
        }
        if work.iter().all(|w| w.is_empty()) {
            idle += 1;
        }
        cycle += 1;
    }
    assert!(
        expected.is_empty(),
        "{} results never drained",
        expected.len()
    );
    checked
}

#[test]
fn pe_matches_the_golden_model_on_random_sequences() {
    let mut rng = Rng::new(0xf16_0005);
    let seqs: Vec<Vec<(u16, u16)>> = (0..3000).map(|_| random_sequence(&mut rng, 16)).collect();
    assert_eq!(run_pe(&seqs, false, 1), seqs.len());
    // The same sequences with random bubbles (valid = 0) between the pairs.
    assert_eq!(run_pe(&seqs[..600], true, 2), 600);
}

#[test]
fn pe_long_dot_products_round_at_every_step() {
    // Long sums make the accumulator large and every later product round.
    let mut rng = Rng::new(0xf16_0006);
    let seqs: Vec<Vec<(u16, u16)>> = (0..40).map(|_| random_sequence(&mut rng, 300)).collect();
    assert_eq!(run_pe(&seqs, false, 3), seqs.len());
}

#[test]
fn pe_signed_zeros_and_exact_cancellation() {
    let (one, two, half) = (0x3c00u16, 0x4000u16, 0x3800u16);
    let neg = |h: u16| h ^ 0x8000;
    let seqs = vec![
        vec![(0x0000, 0x0000)],
        vec![(0x8000, 0x3c00)],                   // +0 + -0 = +0
        vec![(one, two), (neg(one), two)],        // x + (-x) = +0
        vec![(0x0001, 0x0001), (0x8001, 0x0001)], // 2^-48 - 2^-48 = +0
        vec![(0x0001, 0x0001)],                   // the smallest product, 2^-48
        vec![(0x7bff, 0x7bff), (0x7bff, 0x7bff), (neg(0x7bff), 0x7bff)],
        vec![(two, half), (0x1400, 0x0001), (neg(one), one)], // 1 + 2^-29 - 1
    ];
    assert_eq!(run_pe(&seqs, false, 4), seqs.len());
    assert_eq!(dot(&seqs[1]).to_bits(), 0);
    assert_eq!(dot(&seqs[2]).to_bits(), 0);
    assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
}

#[test]
fn pe_propagates_inf_and_nan_like_ieee() {
    let (inf, ninf, nan, one, zero) = (0x7c00u16, 0xfc00u16, 0x7e00u16, 0x3c00u16, 0x0000u16);
    let seqs = vec![
        vec![(inf, one), (one, one)],
        vec![(inf, one), (ninf, one)], // inf - inf
        vec![(inf, zero)],             // inf x 0
        vec![(nan, one), (one, one)],
        vec![(0x7bff, 0x7bff), (inf, 0xbc00)],
    ];
    assert_eq!(run_pe(&seqs, false, 5), seqs.len());
}

// ---- the array ---------------------------------------------------------------------------

/// One output tile of the array: `a` is 2R x K, `b` is K x C (binary16 bits).
struct Tile {
    a: Vec<Vec<u16>>,
    b: Vec<Vec<u16>>,
}

impl Tile {
    fn random(rng: &mut Rng, rows: usize, cols: usize, k: usize) -> Tile {
        Tile {
            a: (0..2 * rows)
                .map(|_| (0..k).map(|_| random_f16(rng)).collect())
                .collect(),
            b: (0..k)
                .map(|_| (0..cols).map(|_| random_f16(rng)).collect())
                .collect(),
        }
    }

    /// The golden model of output (m, n): sequential in ascending k.
    fn reference(&self, m: usize, n: usize) -> f32 {
        let pairs: Vec<(u16, u16)> = (0..self.b.len())
            .map(|k| (self.a[m][k], self.b[k][n]))
            .collect();
        dot(&pairs)
    }
}

/// Run `tiles` back to back through the array (the schedule of `array.rs`: slot 0 takes rows
/// `0..R` of A, slot 1 rows `R..2R`; slot-0 flushes at least 2R cycles apart) and check every
/// drained output against the golden model, in the documented drain order.
fn run_array(rows: usize, cols: usize, tiles: &[Tile], seed: u64) {
    let mut uut = Fp16Array::new(rows, cols);
    uut.connect_all();
    check_all(&uut).expect("array is fully connected");
    let mut rng = Rng::new(seed);
    // (ctl, a lanes, b lanes) per cycle.
    let mut cycles: Vec<(Fp16Ctl, Vec<u16>, Vec<u16>)> = vec![];
    let garbage =
        |rng: &mut Rng, n: usize| (0..n).map(|_| rng.next_u64() as u16).collect::<Vec<u16>>();
    for (n, t) in tiles.iter().enumerate() {
        let k_len = t.b.len();
        if n > 0 {
            for _ in 2 * k_len..2 * rows {
                cycles.push((
                    Fp16Ctl::idle(),
                    garbage(&mut rng, rows),
                    garbage(&mut rng, cols),
                ));
            }
        }
        for k in 0..k_len {
            for slot in 0..FP16_SLOTS {
                let a = (0..rows).map(|i| t.a[slot * rows + i][k]).collect();
                cycles.push((Fp16Ctl::new(true, k + 1 == k_len), a, t.b[k].clone()));
            }
        }
    }
    for _ in 0..2 * rows + cols + FP16_LATENCY + 4 {
        cycles.push((
            Fp16Ctl::idle(),
            garbage(&mut rng, rows),
            garbage(&mut rng, cols),
        ));
    }
    let mut drained: Vec<Vec<u32>> = vec![vec![]; cols];
    for (ctl, a, b) in cycles {
        uut.ctl_in.next = ctl.to_bits();
        for (port, &x) in uut.a_in.iter_mut().zip(&a) {
            port.next = bits(u64::from(x));
        }
        for (port, &x) in uut.b_in.iter_mut().zip(&b) {
            port.next = bits(u64::from(x));
        }
        tick(&mut uut, |u: &mut Fp16Array, v| {
            u.clock.next = Clock { clk: v }
        });
        for (j, col) in drained.iter_mut().enumerate() {
            if uut.drain_valid[j].val() {
                col.push(uut.drain_out[j].val().to_u64() as u32);
            }
        }
    }
    for (j, col) in drained.iter().enumerate() {
        assert_eq!(
            col.len(),
            tiles.len() * 2 * rows,
            "column {j} drained {} values",
            col.len()
        );
        for (t, tile) in tiles.iter().enumerate() {
            for i in 0..rows {
                for slot in 0..FP16_SLOTS {
                    let got = col[t * 2 * rows + 2 * i + slot];
                    let m = slot * rows + i;
                    let want = tile.reference(m, j);
                    assert!(
                        same_result(got, want),
                        "{rows}x{cols} tile {t} C[{m}][{j}]: rtl {got:#010x}, model {:#010x}",
                        want.to_bits()
                    );
                }
            }
        }
    }
}

#[test]
fn array_matches_the_golden_model() {
    let mut rng = Rng::new(0xf16_0007);
    for (rows, cols) in [(1, 1), (2, 3), (3, 2), (4, 4)] {
        // A short tile (padded to the spacing rule), the shortest unpadded one, a long one.
        let tiles: Vec<Tile> = [1, rows, 3 * rows + 5]
            .iter()
            .map(|&k| Tile::random(&mut rng, rows, cols, k))
            .collect();
        run_array(rows, cols, &tiles, rng.next_u64());
    }
}

// ---- Verilog ------------------------------------------------------------------------------

#[test]
fn pe_verilog_is_lint_clean() {
    let mut uut = Fp16Pe::new();
    uut.connect_all();
    let v = generate_verilog(&uut);
    assert!(v.contains("module top("));
    assert!(
        !v.contains(" * "),
        "no multiply operator: the array multiplier is explicit"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("top.v");
    std::fs::write(&file, v).expect("write Verilog");
    crate::tools::verilator_lint(&file, "top").expect("verilator -Wall is clean");
    crate::tools::yosys_check(&file, "top").expect("yosys elaborates it");
}

#[test]
fn array_verilog_is_lint_clean() {
    let mut uut = Fp16Array::new(2, 3);
    uut.connect_all();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("top.v");
    std::fs::write(&file, generate_verilog(&uut)).expect("write Verilog");
    crate::tools::verilator_lint(&file, "top").expect("verilator -Wall is clean");
    crate::tools::yosys_check(&file, "top").expect("yosys elaborates it");
}

/// Resource and timing measurement of one PE against the HardFloat anchors (FP16 x FP16 -> FP32
/// MAC: 1,089 LUT6 on xc7 without DSPs, 1,445 iCE40 LUT4): no more than the anchor, no less than
/// half of it (less would mean IEEE behaviour was dropped), and >= 20 MHz on an HX8K after place
/// and route. Slow (yosys twice, nextpnr once): `cargo test -p shiftkit-hw fp16 -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn pe_resources_and_fmax_against_hardfloat() {
    use crate::tools::{synth_stats, SynthTarget};
    use std::process::Command;
    let mut uut = Fp16Pe::new();
    uut.connect_all();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("top.v");
    std::fs::write(&file, generate_verilog(&uut)).expect("write Verilog");
    let ice = synth_stats(&file, "top", SynthTarget::Ice40).expect("synth_ice40");
    let xc7 = synth_stats(&file, "top", SynthTarget::Xc7).expect("synth_xilinx");
    println!(
        "fp16 PE  ice40: {} LUT4, {} SB_CARRY, {} FF",
        ice.luts, ice.carries, ice.ffs
    );
    println!(
        "fp16 PE  xc7:   {} LUT6, {} CARRY4, {} FF",
        xc7.luts, xc7.carries, xc7.ffs
    );
    assert!(
        (1445 / 2..=1445).contains(&ice.luts),
        "iCE40 LUT4 {} outside [722, 1445]",
        ice.luts
    );
    assert!(
        (1089 / 2..=1089).contains(&xc7.luts),
        "xc7 LUT6 {} outside [544, 1089]",
        xc7.luts
    );
    // Place and route the PE as its own top (its ports are registered on both sides; 135 I/O
    // fit the HX8K's CT256 package).
    let json = dir.path().join("top.json");
    let script = format!(
        "read_verilog \"{}\"; synth_ice40 -top top -json \"{}\"",
        file.display(),
        json.display()
    );
    let yosys = Command::new("yosys")
        .args(["-q", "-p", &script])
        .output()
        .expect("run yosys");
    assert!(
        yosys.status.success(),
        "{}",
        String::from_utf8_lossy(&yosys.stderr)
    );
    let json_s = json.to_string_lossy();
    let args = [
        "--hx8k",
        "--package",
        "ct256",
        "--json",
        &json_s,
        "--freq",
        "20",
        "--seed",
        "1",
    ];
    let pnr = Command::new("nextpnr-ice40")
        .args(args)
        .output()
        .expect("run nextpnr-ice40");
    let log = String::from_utf8_lossy(&pnr.stderr);
    assert!(pnr.status.success(), "nextpnr-ice40 failed:\n{log}");
    // The last "Max frequency" line is the post-route figure.
    let mhz: f64 = log
        .lines()
        .rfind(|l| l.contains("Max frequency for clock"))
        .and_then(|l| l.split("': ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("nextpnr reports a maximum frequency");
    println!("fp16 PE  HX8K:  {mhz:.2} MHz after place and route");
    assert!(mhz >= 20.0, "{mhz} MHz < 20 MHz");
    // For scale: a 2 x 2 array (4 PEs, input skew, drain chains).
    let mut arr = Fp16Array::new(2, 2);
    arr.connect_all();
    let file = dir.path().join("arr.v");
    std::fs::write(&file, generate_verilog(&arr)).expect("write Verilog");
    let ice = synth_stats(&file, "top", SynthTarget::Ice40).expect("synth_ice40");
    let xc7 = synth_stats(&file, "top", SynthTarget::Xc7).expect("synth_xilinx");
    println!(
        "fp16 2x2 array  ice40: {} LUT4, {} FF; xc7: {} LUT6, {} FF",
        ice.luts, ice.ffs, xc7.luts, xc7.ffs
    );
}
