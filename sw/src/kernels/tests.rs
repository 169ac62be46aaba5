//! Exactness tests: every available ISA variant against naive references written independently
//! of the kernels (triple loops, i64 / sequential f32).

use super::*;
use proptest::prelude::*;

const SIZES: [usize; 16] = [0, 1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 129];

/// splitmix64: small, seedable, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [-bound, bound].
    fn sym(&mut self, bound: i64) -> i64 {
        (self.next() % (2 * bound as u64 + 1)) as i64 - bound
    }
}

/// How i16 test operands are drawn.
#[derive(Clone, Copy, Debug)]
enum Dist {
    /// Uniform in [-max, max].
    Uniform(i32),
    /// ShiftQuant-like: q * 2^e, |q| <= qmax.
    Shifted(i32, u32),
    /// Every entry is +max or -max.
    Extreme(i32),
    /// Every entry equals the value (e.g. all -32768).
    Const(i16),
}

impl Dist {
    fn bound(self) -> i32 {
        match self {
            Dist::Uniform(v) | Dist::Extreme(v) => v,
            Dist::Shifted(q, e) => q << e,
            Dist::Const(v) => i32::from(v).abs(),
        }
    }
    fn fill(self, rng: &mut Rng, len: usize) -> Vec<i16> {
        (0..len)
            .map(|_| match self {
                Dist::Uniform(v) => rng.sym(v.into()) as i16,
                Dist::Shifted(q, e) => (rng.sym(q.into()) << e) as i16,
                Dist::Extreme(v) => {
                    if rng.next() & 1 == 0 {
                        v as i16
                    } else {
                        (-v) as i16
                    }
                }
                Dist::Const(v) => v,
            })
            .collect()
    }
}

fn naive_i64<T: Copy + Into<i64>>(m: usize, n: usize, k: usize, a: &[T], b: &[T], c: &mut [i64]) {
    for i in 0..m {
        for j in 0..n {
            let mut s = c[i * n + j];
            for kk in 0..k {
                s = s.wrapping_add(a[i * k + kk].into().wrapping_mul(b[kk * n + j].into()));
            }
            c[i * n + j] = s;
        }
    }
}

fn check_i16(rng: &mut Rng, m: usize, n: usize, k: usize, da: Dist, db: Dist) {
    let a = da.fill(rng, m * k);
    let b = db.fill(rng, k * n);
    let c0: Vec<i64> = (0..m * n).map(|_| rng.next() as i64 >> 8).collect();
    let mut want = c0.clone();
    naive_i64(m, n, k, &a, &b, &mut want);
    for isa in Isa::available() {
        let mut got = c0.clone();
        gemm_i16_isa(isa, m, n, k, &a, &b, da.bound(), db.bound(), &mut got);
        assert!(got == want, "gemm_i16 {isa:?} {m}x{n}x{k} {da:?} {db:?}");
    }
}

#[test]
fn i16_all_small_shapes() {
    let mut rng = Rng(1);
    for &m in &SIZES {
        for &n in &SIZES {
            for &k in &SIZES {
                check_i16(&mut rng, m, n, k, Dist::Uniform(3968), Dist::Uniform(3968));
            }
        }
    }
}

#[test]
fn i16_value_ranges() {
    let mut rng = Rng(2);
    let dists = [
        Dist::Uniform(7),
        Dist::Uniform(896),
        Dist::Uniform(16256),
        Dist::Uniform(32767),
        Dist::Shifted(7, 7),
        Dist::Shifted(31, 7),
        Dist::Shifted(127, 7),
        Dist::Shifted(127, 8),
        Dist::Extreme(3968),
        Dist::Extreme(16256),
        Dist::Extreme(32767),
        Dist::Const(-32768),
        Dist::Const(32767),
        Dist::Const(0),
    ];
    let shapes = [
        (1, 1, 1),
        (7, 17, 33),
        (13, 33, 64),
        (6, 16, 257),
        (31, 65, 129),
        (12, 32, 300),
    ];
    for &da in &dists {
        for &db in &dists {
            for &(m, n, k) in &shapes {
                check_i16(&mut rng, m, n, k, da, db);
            }
        }
    }
}

#[test]
fn i16_extreme_sums_large() {
    // Worst-case accumulation: all products have the same sign and maximal size, over a deep k,
    // for each bound class (several widen runs per depth block, several depth blocks).
    let mut rng = Rng(3);
    for v in [896i16, 3968, 16256, 32767, -32768] {
        check_i16(&mut rng, 20, 40, 1031, Dist::Const(v), Dist::Const(v));
        check_i16(
            &mut rng,
            20,
            40,
            1031,
            Dist::Const(v),
            Dist::Const(v.saturating_neg()),
        );
    }
}

#[test]
fn i16_larger_shapes() {
    let mut rng = Rng(4);
    check_i16(
        &mut rng,
        300,
        257,
        515,
        Dist::Uniform(3968),
        Dist::Uniform(3968),
    );
    check_i16(
        &mut rng,
        300,
        257,
        515,
        Dist::Uniform(16256),
        Dist::Shifted(127, 7),
    );
    check_i16(
        &mut rng,
        129,
        300,
        700,
        Dist::Extreme(896),
        Dist::Uniform(896),
    );
    check_i16(
        &mut rng,
        200,
        190,
        301,
        Dist::Shifted(31, 3),
        Dist::Shifted(7, 11),
    );
}

#[test]
fn i16_thread_splits_and_in_place_edges() {
    // Big enough to use both threads: few B panels (row-band tasks) and many (column-band
    // tasks); odd k with m a multiple of every MR (3, 6, 12), so the last row is read in place
    // except for its last k-pair; a scaled-A case (packed A panels).
    let mut rng = Rng(10);
    check_i16(
        &mut rng,
        700,
        17,
        1001,
        Dist::Uniform(3968),
        Dist::Uniform(3968),
    );
    check_i16(
        &mut rng,
        96,
        700,
        201,
        Dist::Uniform(896),
        Dist::Shifted(31, 7),
    );
    check_i16(
        &mut rng,
        36,
        64,
        129,
        Dist::Uniform(16256),
        Dist::Uniform(16256),
    );
    check_i16(
        &mut rng,
        24,
        40,
        7,
        Dist::Extreme(32767),
        Dist::Uniform(32767),
    );
    check_i16(
        &mut rng,
        120,
        130,
        601,
        Dist::Shifted(127, 8),
        Dist::Uniform(32767),
    );
}

fn check_i32(rng: &mut Rng, m: usize, n: usize, k: usize, bound: i64) {
    let a: Vec<i32> = (0..m * k).map(|_| rng.sym(bound) as i32).collect();
    let b: Vec<i32> = (0..k * n).map(|_| rng.sym(bound) as i32).collect();
    let c0: Vec<i64> = (0..m * n).map(|_| rng.next() as i64).collect();
    let mut want = c0.clone();
    naive_i64(m, n, k, &a, &b, &mut want);
    for isa in Isa::available() {
        let mut got = c0.clone();
        gemm_i32_isa(isa, m, n, k, &a, &b, &mut got);
        assert!(got == want, "gemm_i32 {isa:?} {m}x{n}x{k} bound {bound}");
    }
}

#[test]
fn i32_shapes_and_ranges() {
    let mut rng = Rng(5);
    for &m in &SIZES {
        for &n in &[0usize, 1, 5, 17, 64, 129] {
            for &k in &[0usize, 1, 3, 16, 33, 129] {
                check_i32(&mut rng, m, n, k, 100_000);
            }
        }
    }
    // Full i32 range: sums exceed i64, both sides wrap modulo 2^64 identically.
    check_i32(&mut rng, 33, 70, 300, i64::from(i32::MAX));
    check_i32(&mut rng, 300, 257, 515, 1 << 20);
}

/// A random binary16-representable value: q * 2^e with |q| < 2^11, e in [-24, 4], which covers
/// subnormal halves, normal halves and magnitudes up to 32752 (no overflow in the tests' sums).
fn half_value(rng: &mut Rng) -> f32 {
    let q = rng.sym(2047) as f32;
    let e = (rng.next() % 29) as i32 - 24;
    q * 2f32.powi(e)
}

fn naive_f16(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
    let mut c = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for kk in 0..k {
                let p = a[i * k + kk] * b[kk * n + j];
                acc += p;
            }
            if acc.is_subnormal() {
                acc = 0.0f32.copysign(acc);
            }
            if acc.is_nan() {
                acc = f32::NAN;
            }
            c[i * n + j] = acc;
        }
    }
    c
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

fn check_f16(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], what: &str) {
    let want = bits(&naive_f16(m, n, k, a, b));
    for isa in Isa::available() {
        // Garbage in c: the function must overwrite, not accumulate.
        let mut got = vec![f32::NAN; m * n];
        gemm_f16_seq_isa(isa, m, n, k, a, b, &mut got);
        assert!(
            bits(&got) == want,
            "gemm_f16_seq {isa:?} {m}x{n}x{k} {what}"
        );
    }
}

fn random_f16_case(rng: &mut Rng, m: usize, n: usize, k: usize) {
    let a: Vec<f32> = (0..m * k).map(|_| half_value(rng)).collect();
    let b: Vec<f32> = (0..k * n).map(|_| half_value(rng)).collect();
    check_f16(m, n, k, &a, &b, "random");
}

#[test]
fn f16_all_small_shapes() {
    let mut rng = Rng(6);
    for &m in &SIZES {
        for &n in &SIZES {
            for &k in &SIZES {
                random_f16_case(&mut rng, m, n, k);
            }
        }
    }
}

#[test]
fn f16_larger_and_deep() {
    let mut rng = Rng(7);
    random_f16_case(&mut rng, 300, 257, 515);
    random_f16_case(&mut rng, 13, 40, 5000);
    random_f16_case(&mut rng, 3, 70, 20_011);
}

#[test]
fn f16_thread_splits() {
    let mut rng = Rng(11);
    random_f16_case(&mut rng, 700, 17, 1001);
    random_f16_case(&mut rng, 36, 700, 401);
}

#[test]
fn f16_order_sensitive_cancellation() {
    // Rows alternate huge and tiny magnitudes so that the f32 sum depends on the order; the test
    // first checks that it really does, then that every kernel reproduces ascending order.
    let mut rng = Rng(8);
    let (m, n, k) = (14, 35, 600);
    let a: Vec<f32> = (0..m * k)
        .map(|i| {
            let big = if i % 3 == 0 { 32752.0 } else { 0.0 };
            let s = if rng.next() & 1 == 0 { 1.0 } else { -1.0 };
            s * big + half_value(&mut rng) * 2f32.powi(-6)
        })
        .map(half_round)
        .collect();
    let b: Vec<f32> = (0..k * n).map(|_| half_value(&mut rng)).collect();
    let fwd = naive_f16(m, n, k, &a, &b);
    let mut differs = false;
    for i in 0..m {
        for j in 0..n {
            let rev = (0..k)
                .rev()
                .fold(0f32, |acc, kk| acc + a[i * k + kk] * b[kk * n + j]);
            differs |= rev.to_bits() != fwd[i * n + j].to_bits();
        }
    }
    assert!(differs, "test data is not order sensitive");
    check_f16(m, n, k, &a, &b, "cancellation");
    // Exact cancellation: each row is x, -x, y, -y, ... -> +0.0 everywhere.
    let a2: Vec<f32> = (0..m * k)
        .map(|i| if i % 2 == 0 { 1024.0 } else { -1024.0 })
        .collect();
    let b2: Vec<f32> = (0..k * n)
        .map(|i| {
            let row = i / n;
            let col = i % n;
            ((row / 2 * 7 + col) % 97) as f32
        })
        .collect();
    check_f16(m, n, k, &a2, &b2, "exact cancellation");
}

/// Rounds an f32 to the nearest binary16 value (inputs here are in the normal binary16 range or
/// tiny), by keeping 11 significant bits; only used to build test data.
fn half_round(v: f32) -> f32 {
    if v == 0.0 {
        return v;
    }
    let e = v.abs().log2().floor().max(-14.0) as i32;
    let ulp = 2f32.powi(e - 10);
    (v / ulp).round() * ulp
}

#[test]
fn f16_signed_zeros() {
    let (m, n, k) = (7, 19, 9);
    // -0 * x products, +0 start: every output must be +0.0, for any mix of zero signs.
    let a: Vec<f32> = (0..m * k)
        .map(|i| if i % 2 == 0 { -0.0 } else { 0.0 })
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| if i % 3 == 0 { 5.0 } else { -3.5 })
        .collect();
    check_f16(m, n, k, &a, &b, "zeros");
    let mut out = vec![1.0f32; m * n];
    gemm_f16_seq(m, n, k, &a, &b, &mut out);
    assert!(
        out.iter().all(|v| v.to_bits() == 0),
        "expected +0.0 everywhere"
    );
    // k = 0: every output is +0.0.
    let mut out = vec![-1.0f32; 6];
    gemm_f16_seq(2, 3, 0, &[], &[], &mut out);
    assert!(out.iter().all(|v| v.to_bits() == 0));
}

#[test]
fn f16_subnormal_flush_for_non_half_inputs() {
    // Outside the binary16 contract but with exact products: 2^-70 * 2^-60 = 2^-130 (subnormal);
    // the flush must give a signed zero on every ISA.
    let (m, n, k) = (9, 37, 3);
    let a: Vec<f32> = (0..m * k)
        .map(|i| if i % k == 0 { 2f32.powi(-70) } else { 0.0 })
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| {
            if i % 2 == 0 {
                -(2f32.powi(-60))
            } else {
                2f32.powi(-60)
            }
        })
        .collect();
    check_f16(m, n, k, &a, &b, "subnormal flush");
    let mut out = vec![0f32; m * n];
    gemm_f16_seq(m, n, k, &a, &b, &mut out);
    assert_eq!(out[0].to_bits(), (-0.0f32).to_bits());
    assert_eq!(out[1].to_bits(), 0);
}

#[test]
fn f16_inf_and_nan_inputs() {
    // binary16 has inf and NaN; NaN results come back canonical on every ISA.
    let mut rng = Rng(9);
    let specials = [
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7fc0_1234),
        f32::from_bits(0xffc0_4321),
        0.0,
        -0.0,
        65504.0,
        -65504.0,
    ];
    let pick = |rng: &mut Rng| {
        if rng.next().is_multiple_of(5) {
            specials[(rng.next() % specials.len() as u64) as usize]
        } else {
            half_value(rng)
        }
    };
    for &(m, n, k) in &[(13, 37, 29), (40, 70, 300), (1, 1, 1)] {
        let a: Vec<f32> = (0..m * k).map(|_| pick(&mut rng)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| pick(&mut rng)).collect();
        check_f16(m, n, k, &a, &b, "inf/nan");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn prop_i16_matches_naive(
        m in 0usize..40, n in 0usize..70, k in 0usize..300,
        ea in 0u32..=8, eb in 0u32..=8, qa in prop::sample::select(vec![7i32, 31, 127]),
        qb in prop::sample::select(vec![7i32, 31, 127]), uniform in any::<bool>(), seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed);
        let (da, db) = if uniform {
            (Dist::Uniform(qa << ea), Dist::Uniform(qb << eb))
        } else {
            (Dist::Shifted(qa, ea), Dist::Shifted(qb, eb))
        };
        check_i16(&mut rng, m, n, k, da, db);
    }

    #[test]
    fn prop_f16_matches_sequential(
        m in 0usize..30, n in 0usize..70, k in 0usize..600, seed in any::<u64>(),
    ) {
        let mut rng = Rng(seed);
        random_f16_case(&mut rng, m, n, k);
    }
}
