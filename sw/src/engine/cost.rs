//! The `golden` engine's cost model of an output-stationary R x C array. Deliberately simple; the
//! co-simulation holds it against the RTL's real cycle counts.
//!
//! Work is cut into *passes*: one R x C output tile over one K chunk (K is chunked so partial sums
//! fit the declared accumulator, see `sq_gemm::k_chunk`; FP16 has a single chunk).
//! - A pass streams its `klen` k-steps at one per cycle. Operand buffers and the accumulators are
//!   double-buffered, so the next pass's loads and the previous pass's drain overlap this one;
//!   a pass still lasts at least R cycles, the time to drain R x C results one row per cycle.
//! - The first pass waits R + C - 2 cycles for the skewed wavefront to reach the far PE, and the
//!   last drain (R cycles) is exposed.
//!
//! cycles = sum over passes of max(klen, R) + (R + C - 2) + R
//!
//! Bytes moved: A is sent once per row of tiles (M * K values), B once per output tile
//! (ceil(M/R) * K * N values); operands are packed at their bit-width plus one byte per channel
//! exponent; every pass drains R x C accumulators of ceil(acc_bits / 8) bytes (FP16: 4 bytes).

use super::Counters;
use shiftkit_hw::{ArrayConfig, Datapath};

/// Cost of C (M x N) = A (M x K) x B (K x N) on `config` with K chunks of at most `chunk`.
/// `a_exps` / `b_exps` count the exponents sent with each operand load (0 for FP16).
pub fn gemm_cost(
    config: &ArrayConfig,
    m: usize,
    k: usize,
    n: usize,
    chunk: usize,
    a_exps: usize,
    b_exps: usize,
) -> Counters {
    let (r, c) = (config.rows as u64, config.cols as u64);
    let (m, k, n) = (m as u64, k as u64, n as u64);
    let chunk = (chunk as u64).clamp(1, k.max(1));
    let tiles_m = m.div_ceil(r);
    let tiles_n = n.div_ceil(c);
    let full_chunks = k / chunk;
    let tail = k % chunk;
    // Every tile runs the same chunk sequence.
    let per_tile = full_chunks * chunk.max(r) + if tail > 0 { tail.max(r) } else { 0 };
    let chunks = full_chunks + (tail > 0) as u64;
    let cycles = tiles_m * tiles_n * per_tile + (r + c - 2) + r;

    let (elem_bits, out_bytes) = match config.datapath {
        Datapath::Sq { bits } => (bits as u64, (config.acc_bits as u64).div_ceil(8)),
        Datapath::Fp16 => (16, 4),
    };
    let packed = |elems: u64| (elems * elem_bits).div_ceil(8);
    let bytes_a = packed(m * k) + a_exps as u64;
    let bytes_b = tiles_m * (packed(k * n) + b_exps as u64);
    Counters {
        gemms: 1,
        macs: m * k * n,
        bytes_to_device: bytes_a + bytes_b,
        bytes_from_device: tiles_m * tiles_n * chunks * r * c * out_bytes,
        cycles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pass_per_tile_when_k_fits_a_chunk() {
        let cfg = ArrayConfig::new(8, 8, Datapath::Sq { bits: 6 }).unwrap();
        let c = gemm_cost(&cfg, 16, 100, 8, 1000, 100, 8);
        // 2 tiles x 100 cycles + fill 14 + drain 8
        assert_eq!(c.cycles, 2 * 100 + 14 + 8);
        assert_eq!(c.macs, 16 * 100 * 8);
        assert_eq!(c.bytes_from_device, 2 * 64 * 4);
        assert_eq!(
            c.bytes_to_device,
            (1600 * 6 / 8 + 100) + 2 * (800 * 6 / 8 + 8)
        );
    }

    #[test]
    fn short_chunks_are_drain_bound() {
        let cfg = ArrayConfig::new(8, 8, Datapath::Sq { bits: 8 }).unwrap();
        // K = 20 in chunks of 7: 7, 7, 6 -> each pass lasts R = 8 cycles.
        let c = gemm_cost(&cfg, 8, 20, 8, 7, 0, 0);
        assert_eq!(c.cycles, 3 * 8 + 14 + 8);
    }
}
