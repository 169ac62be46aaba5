//! What one GEMM costs on the accelerator top, taken from the command stream the `rtl` engine
//! sends: `commands::plan_gemm` (here its data-free twin `plan_gemm_shape`, the same commands
//! with empty data vectors) timed by the cycle-exact model `hw::accel::model::run` with the host
//! streaming one beat per cycle and always ready for responses. The Verilator run of the same
//! stream takes exactly as many cycles (`tests/cosim.rs` holds `golden` against `rtl`), so the
//! `golden` engine's `cycles` equal the `rtl` engine's for every GEMM.
//!
//! - `cycles`: `model::streamed_gemm_cycles` where that closed form holds (all K chunks of one
//!   length of at least `C + 3R + D - 5` on an integer top with one K step per beat, `C + 3R + D`
//!   with more; D = `array::DRAIN_DELAY`; the tests below hold it against `model::run`), else
//!   `model::run` on the stream itself.
//! - `bytes_to_device`: command beats sent (headers and data beats) times `W_IN / 8`;
//!   `bytes_from_device`: response beats (R per DRAIN, 2R on fp16) times `W_OUT / 8`. These are
//!   the bytes that cross the command and response ports, unused lanes included (a UART link
//!   moves `ceil(W / 8)` bytes per beat, the same number: `W_IN` and `W_OUT` are whole bytes).
//! - `macs`: M * K * N useful multiply-accumulates.
//!
//! Training prices thousands of GEMMs of a handful of shapes, so results are cached per
//! (geometry, M, K, N, chunk) for the life of the process.

use super::Counters;
use crate::error::{Error, Result};
use shiftkit_hw::accel::commands::{plan_gemm_shape, Command};
use shiftkit_hw::accel::{model, AccelGeometry};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The cost of one GEMM stream, independent of the data.
pub fn gemm_cost(
    geom: &AccelGeometry,
    (m, k, n): (usize, usize, usize),
    chunk: usize,
) -> Result<Counters> {
    // Chunks above K_MAX or K plan the same stream as K_MAX or K: one cache entry for both.
    let chunk = chunk.clamp(1, geom.k_max).min(k.max(1));
    let key = CostKey {
        rows: geom.rows,
        cols: geom.cols,
        k_max: geom.k_max,
        slots: geom.slots,
        k_per_beat: geom.k_per_beat,
        cmd_bits: geom.cmd_bits(),
        rsp_bits: geom.rsp_bits(),
        m,
        k,
        n,
        chunk,
    };
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = lock(cache).get(&key) {
        return Ok(*c);
    }
    let cost = stream_cost(geom, (m, k, n), chunk)?;
    let mut map = lock(cache);
    if map.len() >= CACHE_ENTRIES {
        map.clear(); // a run with this many shapes gains little from keeping old ones
    }
    map.insert(key, cost);
    Ok(cost)
}

const CACHE_ENTRIES: usize = 4096;
static CACHE: OnceLock<Mutex<HashMap<CostKey, Counters>>> = OnceLock::new();

/// Everything `stream_cost` depends on.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct CostKey {
    rows: usize,
    cols: usize,
    k_max: usize,
    slots: usize,
    k_per_beat: usize,
    cmd_bits: usize,
    rsp_bits: usize,
    m: usize,
    k: usize,
    n: usize,
    chunk: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map is only ever inserted into whole: a panic elsewhere cannot leave it inconsistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn stream_cost(
    geom: &AccelGeometry,
    (m, k, n): (usize, usize, usize),
    chunk: usize,
) -> Result<Counters> {
    let closed_form = model::streamed_gemm_cycles(geom, m, k, n, chunk);
    let (cmd_beats, rsp_beats, cycles) = match closed_form {
        // The closed form's streams: count beats without materializing the stream.
        Some(cycles) => {
            let (cmd, rsp) = streamed_beats(geom, (m, k, n), chunk);
            (cmd, rsp, cycles)
        }
        None => {
            let plan = plan_gemm_shape(geom, (m, k, n), chunk)
                .map_err(|e| Error::Shape(format!("cannot plan the accelerator stream: {e}")))?;
            let bound = cycle_bound(geom, &plan.commands);
            let timing = model::run(geom, &plan.commands, |_| true, |_| true, bound);
            let cmd: usize = plan.commands.iter().map(|c| c.beats(geom)).sum();
            (cmd as u64, plan.response_beats(geom) as u64, timing.cycles)
        }
    };
    Ok(Counters {
        gemms: 1,
        macs: (m * k * n) as u64,
        bytes_to_device: cmd_beats * geom.cmd_bits() as u64 / 8,
        bytes_from_device: rsp_beats * geom.rsp_bits() as u64 / 8,
        cycles,
    })
}

/// Command and response beats of `plan_gemm`'s standard loop with all chunks of length `chunk`
/// (`docs/accelerator.md`, "Whole GEMMs"): per row block and chunk a LOAD_A (`1 + h` beats,
/// `h = ceil(kc / P)`), then per column block a LOAD_B (`1 + h`), a COMPUTE and a DRAIN (one
/// beat each; R response beats).
fn streamed_beats(
    geom: &AccelGeometry,
    (m, k, n): (usize, usize, usize),
    chunk: usize,
) -> (u64, u64) {
    let h = geom.load_beats(chunk) as u64;
    let passes = (m.div_ceil(geom.tile_rows()) * k.div_ceil(chunk)) as u64;
    let tiles_n = n.div_ceil(geom.cols) as u64;
    let cmd = passes * ((1 + h) + tiles_n * (h + 3));
    (cmd, passes * tiles_n * geom.tile_rows() as u64)
}

/// More cycles than any stream of `commands` can take, run one command at a time: a LOAD's
/// beats, a COMPUTE's k-steps (two cycles each on fp16) after the flush spacing, then its
/// results through the array and collector, a DRAIN's beats.
pub fn cycle_bound(geom: &AccelGeometry, commands: &[Command]) -> u64 {
    let (r, c, s) = (geom.rows as u64, geom.cols as u64, geom.slots as u64);
    let per_command = |cmd: &Command| match cmd {
        Command::Compute { k_len, .. } => s * (*k_len as u64 + 2 * r) + c + 2 * r + 16,
        Command::Drain { .. } => geom.tile_rows() as u64 + 2,
        other => other.beats(geom) as u64 + 1,
    };
    commands.iter().map(per_command).sum::<u64>() + 64
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiftkit_hw::accel::commands::{plan_gemm, Operand};
    use shiftkit_hw::{ArrayConfig, Datapath};

    fn geom(rows: usize, cols: usize, datapath: Datapath, k_max: usize) -> AccelGeometry {
        let config = ArrayConfig::sized(rows, cols, datapath, 7, None).unwrap();
        AccelGeometry::new(&config, k_max).unwrap()
    }

    /// The cost straight from `plan_gemm`'s stream with real data: `model::run` for the cycles,
    /// the commands' beats and the DRAINs' responses for the bytes.
    fn reference_cost(
        g: &AccelGeometry,
        (m, k, n): (usize, usize, usize),
        chunk: usize,
    ) -> Counters {
        let a = vec![1i32; m * k];
        let b = vec![1i32; k * n];
        let op = |rows, cols, codes| Operand {
            rows,
            cols,
            codes,
            k_exps: None,
        };
        let plan = plan_gemm(g, &op(m, k, &a), &op(k, n, &b), chunk).unwrap();
        let t = model::run(g, &plan.commands, |_| true, |_| true, 100_000_000);
        let beats: usize = plan.beats(g).unwrap().len();
        Counters {
            gemms: 1,
            macs: (m * k * n) as u64,
            bytes_to_device: (beats * g.cmd_bits() / 8) as u64,
            bytes_from_device: (t.responses.len() * g.rsp_bits() / 8) as u64,
            cycles: t.cycles,
        }
    }

    #[test]
    fn cost_equals_the_model_on_random_shapes() {
        let mut s = 0x5eedu64;
        let mut next = |lo: usize, hi: usize| {
            s = crate::rng::mix64(s.wrapping_add(0x9E37_79B9_7F4A_7C15));
            lo + (s % (hi - lo + 1) as u64) as usize
        };
        let mut closed_form = 0;
        for case in 0..160 {
            let dp = [
                Datapath::Sq { bits: 4 },
                Datapath::Sq { bits: 6 },
                Datapath::Sq { bits: 8 },
                Datapath::Fp16,
            ][case % 4];
            let g = geom(next(1, 6), next(1, 6), dp, [8, 16, 64, 256][next(0, 3)]);
            let (m, n) = (next(1, 40), next(1, 40));
            // Often exactly at or next to the closed form's threshold: C + 3R + D - 5 with one
            // K step per beat, C + 3R + D with more.
            let d = shiftkit_hw::array::DRAIN_DELAY;
            let threshold = g.cols + 3 * g.rows + d - if g.k_per_beat == 1 { 5 } else { 0 };
            let chunk = match next(0, 2) {
                0 => next(1, 100),
                _ => (threshold + next(0, 2)).saturating_sub(1).max(1),
            };
            // Half the cases in K chunks of one length (where the closed form may hold).
            let k = if case % 2 == 0 {
                chunk.min(g.k_max) * next(1, 3)
            } else {
                next(1, 200)
            };
            closed_form += model::streamed_gemm_cycles(&g, m, k, n, chunk).is_some() as usize;
            let cost = gemm_cost(&g, (m, k, n), chunk).unwrap();
            assert_eq!(
                cost,
                reference_cost(&g, (m, k, n), chunk),
                "{g:?} {:?} {chunk}",
                (m, k, n)
            );
        }
        assert!(closed_form >= 30, "only {closed_form} closed-form cases");
    }

    #[test]
    fn shape_plan_is_plan_gemm_without_data() {
        let g = geom(3, 5, Datapath::Sq { bits: 6 }, 16);
        let (m, k, n) = (7, 40, 11);
        let a = vec![2i32; m * k];
        let b = vec![-1i32; k * n];
        let op = |rows, cols, codes| Operand {
            rows,
            cols,
            codes,
            k_exps: None,
        };
        let full = plan_gemm(&g, &op(m, k, &a), &op(k, n, &b), 13).unwrap();
        let bare = plan_gemm_shape(&g, (m, k, n), 13).unwrap();
        let headers = |p: &shiftkit_hw::accel::commands::GemmPlan| {
            p.commands
                .iter()
                .map(|c| (c.header(), c.beats(&g)))
                .collect::<Vec<_>>()
        };
        assert_eq!(headers(&full), headers(&bare));
        assert_eq!(full.tiles, bare.tiles);
    }

    #[test]
    fn bytes_are_the_beats_on_the_ports() {
        // 8x8 sq6, 16 x 100 x 8, one chunk: two K steps of 8 x 6 + 4 bits per beat, W_IN = 104
        // bits (13 bytes); per row block LOAD_A (1 + 50 beats), LOAD_B (1 + 50), COMPUTE (1),
        // one DRAIN (1): 2 * 104 command beats; 2 tiles of 8 response beats of W_OUT = 256 bits.
        let g = geom(8, 8, Datapath::Sq { bits: 6 }, 256);
        assert_eq!((g.k_per_beat, g.step_bits(), g.cmd_bits()), (2, 52, 104));
        let c = gemm_cost(&g, (16, 100, 8), 1000).unwrap();
        assert_eq!(c.bytes_to_device, 2 * 104 * 13);
        assert_eq!(c.bytes_from_device, 2 * 8 * 32);
        assert_eq!(c.macs, 16 * 100 * 8);
    }

    #[test]
    fn the_documented_256_cube_utilization() {
        // One K step per beat (sq8): the command port is the bottleneck.
        let g = geom(8, 8, Datapath::Sq { bits: 8 }, 256);
        let c = gemm_cost(&g, (256, 256, 256), 256).unwrap();
        assert_eq!(c.cycles, 273_729);
        assert!((c.utilization(64) - 0.9577).abs() < 1e-3);
        // Two K steps per beat (sq6, sq4): the array is (docs/accelerator.md, "Whole GEMMs").
        let g = geom(8, 8, Datapath::Sq { bits: 6 }, 256);
        let c = gemm_cost(&g, (256, 256, 256), 256).unwrap();
        assert_eq!(c.cycles, 262_562);
        assert!((c.utilization(64) - 0.9984).abs() < 1e-3);
    }
}
