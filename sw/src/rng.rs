//! The project's seeded generators. Stochastic rounding is part of the numeric contract, so its
//! random stream is defined here, by hand, and never changes with a crate upgrade.
//!
//! `uniform_at(seed, i)` is counter-based: the i-th draw depends only on (seed, i), so a tensor can
//! be rounded by any number of threads in any order and still give the same bits.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective 64-bit mixer with good avalanche.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in [0, 1), a multiple of 2^-52: draw number `i` of the stream named by `seed`.
///   bits = mix64(seed ^ mix64((i + 1) * 0x9E3779B97F4A7C15))   (wrapping u64 arithmetic)
///   u    = f64 with exponent 0 and mantissa bits >> 12, minus 1.0  (exact)
#[inline(always)]
pub fn uniform_at(seed: u64, i: u64) -> f64 {
    let bits = mix64(seed ^ mix64(i.wrapping_add(1).wrapping_mul(GOLDEN)));
    f64::from_bits(0x3FF0_0000_0000_0000 | (bits >> 12)) - 1.0
}

/// A small sequential generator (SplitMix64) for data, initialization and test inputs.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_is_in_range_and_reproducible() {
        let draws: Vec<f64> = (0..10_000).map(|i| uniform_at(42, i)).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        assert_eq!(draws[1234], uniform_at(42, 1234));
        assert_ne!(uniform_at(42, 7), uniform_at(43, 7));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn normal_has_unit_variance() {
        let mut g = SplitMix64::new(1);
        let xs: Vec<f64> = (0..20_000).map(|_| g.normal()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "mean {mean} var {var}"
        );
    }
}
