//! The host link: how fast command beats reach the accelerator top and response beats come
//! back, and what that does to a GEMM's time (`docs/accelerator.md`, "Link model").
//!
//! A [`Link`] is a bandwidth each way, parsed from `--link`:
//! - `uart:BAUD` (`uart:3M`): 8N1 framing, ten bit times per byte, `BAUD / 10` bytes per second
//!   each way (full duplex, as the board bridge);
//! - `axi:BITS@HZ` (`axi:64@100M`): a `BITS`-wide data bus at `HZ`, `BITS / 8 * HZ` bytes per
//!   second on each of AXI's independent write and read channels;
//! - `pcie:BYTES` (`pcie:4G`): `BYTES` per second each way.
//!
//! Numbers take a decimal `K`, `M` or `G` suffix. The accelerator runs at `--clock` (default
//! 100 MHz).
//!
//! [`link_stream`] times a GEMM's command stream (`plan_gemm_shape`) at command granularity
//! with the top's interlocks and its double buffering (a LOAD into the idle bank proceeds while
//! the COMPUTE on the other streams; a COMPUTE waits for the feeder and its C bank; a DRAIN for
//! the responder and its tile) and a one-beat bridge at each end: the link carries beat `j`
//! while beat `j - 1` waits for `cmd_ready`, and stops until a beat is taken when both are full;
//! a response beat leaves the device when the return link has sent the previous one. With a link
//! at least as fast as one beat per cycle each way it reproduces `model::run` of the host
//! streaming one beat per cycle exactly (tests below), so overlap is modelled, not assumed:
//! the time is at least the larger of compute and transfer, and more where the stream's
//! dependencies keep them from overlapping.

use crate::error::{Error, Result};
use serde::Serialize;
use shiftkit_hw::accel::commands::{plan_gemm_shape, Command};
use shiftkit_hw::accel::AccelGeometry;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// The default accelerator clock of the link model, Hz.
pub const DEFAULT_CLOCK_HZ: f64 = 100e6;

/// A host link: its spelling and bytes per second each way.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Link {
    /// As given to `--link`.
    pub spec: String,
    pub to_device_bytes_per_s: f64,
    pub from_device_bytes_per_s: f64,
}

/// `3M` -> 3e6 (decimal `K`, `M`, `G` suffixes; a plain number is taken as is).
pub fn parse_quantity(text: &str) -> Option<f64> {
    let t = text.trim();
    let (num, mult) = match t.chars().last()? {
        'k' | 'K' => (&t[..t.len() - 1], 1e3),
        'm' | 'M' => (&t[..t.len() - 1], 1e6),
        'g' | 'G' => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v > 0.0).then_some(v * mult)
}

impl std::str::FromStr for Link {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        const FORMS: &str =
            "use uart:BAUD (uart:3M), axi:BITS@HZ (axi:64@100M) or pcie:BYTES_PER_S (pcie:4G)";
        let bad = |what: &str| format!("--link {s:?}: {what}; {FORMS}");
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| bad("no link kind before ':'"))?;
        let each_way = match kind {
            "uart" => {
                parse_quantity(rest).ok_or_else(|| bad("the baud rate is not a positive number"))?
                    / 10.0
            }
            "axi" => {
                let (bits, hz) = rest
                    .split_once('@')
                    .ok_or_else(|| bad("an AXI link needs BITS@HZ"))?;
                let bits: u32 = bits
                    .trim()
                    .parse()
                    .ok()
                    .filter(|b| [8, 16, 32, 64, 128, 256, 512, 1024].contains(b))
                    .ok_or_else(|| bad("the AXI data width must be 8, 16, ..., 1024 bits"))?;
                let hz = parse_quantity(hz)
                    .ok_or_else(|| bad("the AXI clock is not a positive number"))?;
                f64::from(bits) / 8.0 * hz
            }
            "pcie" => parse_quantity(rest)
                .ok_or_else(|| bad("the bandwidth is not a positive number of bytes per second"))?,
            other => return Err(bad(&format!("unknown link kind {other:?}"))),
        };
        Ok(Link {
            spec: s.to_string(),
            to_device_bytes_per_s: each_way,
            from_device_bytes_per_s: each_way,
        })
    }
}

/// `--clock` values: a positive frequency with an optional `K`/`M`/`G` suffix.
pub fn parse_clock(s: &str) -> std::result::Result<f64, String> {
    parse_quantity(s).ok_or_else(|| {
        format!("--clock {s:?} is not a positive frequency: use e.g. 100M or 12000000")
    })
}

/// A link and the accelerator clock it is timed against.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkModel {
    pub link: Link,
    pub clock_hz: f64,
}

/// What one stream (a GEMM) costs over a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LinkCost {
    pub bytes_to_device: u64,
    pub bytes_from_device: u64,
    /// Accelerator cycles of the stream with the host streaming one beat per cycle (the
    /// counters' `cycles`).
    pub compute_cycles: u64,
    /// `compute_cycles / clock`.
    pub compute_s: f64,
    /// The busier direction's bytes over its bandwidth.
    pub transfer_s: f64,
    /// The modelled time of the stream over the link (at least `max(compute_s, transfer_s)`).
    pub time_s: f64,
}

impl LinkCost {
    /// `link` when the transfer takes longer than the compute, else `compute`.
    pub fn bound(&self) -> &'static str {
        if self.transfer_s > self.compute_s {
            "link"
        } else {
            "compute"
        }
    }
}

impl std::ops::AddAssign for LinkCost {
    fn add_assign(&mut self, o: LinkCost) {
        self.bytes_to_device += o.bytes_to_device;
        self.bytes_from_device += o.bytes_from_device;
        self.compute_cycles += o.compute_cycles;
        self.compute_s += o.compute_s;
        self.transfer_s += o.transfer_s;
        self.time_s += o.time_s;
    }
}

/// The JSON block `link` of `gemm --json`, `sim --json` and training summaries: the link, the
/// clock, the totals of every stream and the bound (`docs/accelerator.md`, "Link model").
pub fn link_report(model: &LinkModel, cost: &LinkCost, streams: u64) -> serde_json::Value {
    serde_json::json!({
        "spec": model.link.spec,
        "to_device_bytes_per_s": model.link.to_device_bytes_per_s,
        "from_device_bytes_per_s": model.link.from_device_bytes_per_s,
        "clock_hz": model.clock_hz,
        "streams": streams,
        "bytes_to_device": cost.bytes_to_device,
        "bytes_from_device": cost.bytes_from_device,
        "compute_cycles": cost.compute_cycles,
        "compute_s": cost.compute_s,
        "transfer_s": cost.transfer_s,
        "time_s": cost.time_s,
        "bound": cost.bound(),
    })
}

/// One line for the terminal: bytes each way, compute and link time, the bound.
pub fn link_line(model: &LinkModel, c: &LinkCost) -> String {
    format!(
        "link {} at {:.0} MHz: {} B to the device, {} B back, compute {:.6} s ({} cycles), transfer {:.6} s, modelled {:.6} s ({}-bound)",
        model.link.spec,
        model.clock_hz / 1e6,
        c.bytes_to_device,
        c.bytes_from_device,
        c.compute_s,
        c.compute_cycles,
        c.transfer_s,
        c.time_s,
        c.bound()
    )
}

/// The time of `commands` (a GEMM stream of LOAD_A, LOAD_B, COMPUTE and DRAIN commands) with
/// command beats arriving every `tau_in` cycles and response beats leaving every `tau_out`
/// cycles at best: the cycle after the last beat is accepted or sent back, in cycles (fractional
/// when the link is slower than the clock). With `tau_in, tau_out <= 1` this is `model::run`'s
/// `cycles` for the host streaming one beat per cycle.
pub fn link_stream(geom: &AccelGeometry, commands: &[Command], tau_in: f64, tau_out: f64) -> f64 {
    let (r, c) = (geom.rows as f64, geom.cols as f64);
    let fp16 = geom.slots == 2;
    let tile_rows = geom.tile_rows();
    let spacing = geom.flush_spacing() as f64;
    // From the flushing (slot-0) read to the tile's last value in its C bank.
    let latency = if fp16 {
        c + 2.0 * r + shiftkit_hw::fp16::FP16_LATENCY as f64
    } else {
        c + 2.0 * r + shiftkit_hw::array::DRAIN_DELAY as f64 - 2.0
    };
    let tau_in = tau_in.max(0.0);
    let slot_out = tau_out.max(1.0);
    // Command side: the last two accepted cycles, when the link finished the last beat.
    let (mut acc1, mut acc2) = (-1.0f64, -1.0f64);
    // When the link has delivered the latest beat; beat 0 is ready in cycle ceil(tau_in - 1).
    let mut arrived = -1.0f64;
    let mut accept = |ready: f64, acc1: &mut f64, acc2: &mut f64| -> f64 {
        arrived = arrived.max(*acc2) + tau_in;
        let t = ready.max(arrived.ceil()).max(*acc1 + 1.0);
        *acc2 = *acc1;
        *acc1 = t;
        t
    };
    // Feeder: cycle of the current COMPUTE's last read, of the last flushing read.
    let mut last_read = -1.0f64;
    let mut last_flush = if fp16 { 0.0 } else { -1.0 };
    let mut a_read_done = [-1.0f64; 2];
    let mut b_read_done = [-1.0f64; 2];
    // C banks: last cycle the tile in flight is pending; cycle a DRAIN of it finishes.
    let mut pending_to = [-1.0f64; 2];
    let mut drained = [-1.0f64; 2];
    // Responder: free from this cycle; the last response beat's leave cycle.
    let mut resp_free = 0.0f64;
    let mut last_rsp = -1.0f64;
    let mut end = 0.0f64;
    for cmd in commands {
        match cmd {
            Command::LoadA { bank, vectors } | Command::LoadB { bank, vectors } => {
                let done = if matches!(cmd, Command::LoadA { .. }) {
                    a_read_done[*bank as usize & 1]
                } else {
                    b_read_done[*bank as usize & 1]
                };
                accept(done, &mut acc1, &mut acc2);
                for _ in 0..geom.load_beats(vectors.len()) {
                    accept(0.0, &mut acc1, &mut acc2);
                }
            }
            Command::Compute {
                a_bank,
                b_bank,
                c_bank,
                k_len,
                hold,
            } => {
                let cb = *c_bank as usize & 1;
                let mut ready = last_read;
                if !hold {
                    ready = ready.max(pending_to[cb] + 1.0).max(drained[cb] + 1.0);
                }
                let a = accept(ready, &mut acc1, &mut acc2);
                let k = *k_len as f64;
                let (flush_read, last) = if fp16 {
                    // Pairs start in even cycles after a; the last pair's slot-0 read.
                    let p = (a + 1.0) + (a + 1.0) % 2.0;
                    let mut f0 = p + 2.0 * (k - 1.0);
                    if !hold {
                        f0 = f0.max(last_flush + spacing);
                    }
                    (f0, f0 + 1.0)
                } else {
                    let mut f = a + k;
                    if !hold {
                        f = f.max(last_flush + spacing);
                    }
                    (f, f)
                };
                last_read = last;
                a_read_done[*a_bank as usize & 1] = last;
                b_read_done[*b_bank as usize & 1] = last;
                if !hold {
                    last_flush = flush_read;
                    pending_to[cb] = flush_read + latency;
                }
            }
            Command::Drain { c_bank } => {
                let cb = *c_bank as usize & 1;
                let d = accept(resp_free, &mut acc1, &mut acc2);
                let w = (d + 1.0).max(pending_to[cb] + 1.0);
                let mut t = w;
                for _ in 0..tile_rows {
                    t = (t + 1.0).max((last_rsp + slot_out).ceil());
                    last_rsp = t;
                }
                drained[cb] = t;
                resp_free = t + 1.0;
            }
            _ => {
                accept(0.0, &mut acc1, &mut acc2);
            }
        }
        end = end.max(acc1 + 1.0);
    }
    let rsp_end = if last_rsp >= 0.0 {
        last_rsp + tau_out.max(1.0)
    } else {
        0.0
    };
    end.max(rsp_end)
}

/// Bytes, compute cycles and the modelled time of the GEMM stream `(m, k, n)` in K chunks of
/// `chunk` over `model`'s link; `bytes_*` and `compute_cycles` are the counters' (`cost::gemm_cost`).
pub fn gemm_link_cost(
    geom: &AccelGeometry,
    dims: (usize, usize, usize),
    chunk: usize,
    model: &LinkModel,
) -> Result<LinkCost> {
    let counters = super::cost::gemm_cost(geom, dims, chunk)?;
    let chunk = chunk.clamp(1, geom.k_max).min(dims.1.max(1));
    let cycle = 1.0 / model.clock_hz;
    let in_beat = (geom.cmd_bits() / 8) as f64;
    let out_beat = (geom.rsp_bits() / 8) as f64;
    let tau_in = in_beat / model.link.to_device_bytes_per_s / cycle;
    let tau_out = out_beat / model.link.from_device_bytes_per_s / cycle;
    let key = (
        format!("{geom:?}"),
        dims,
        chunk,
        tau_in.to_bits(),
        tau_out.to_bits(),
    );
    let cache = CACHE.get_or_init(Default::default);
    let cycles = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .copied();
    let link_cycles = match cycles {
        Some(c) => c,
        None => {
            let plan = plan_gemm_shape(geom, dims, chunk)
                .map_err(|e| Error::Shape(format!("cannot plan the accelerator stream: {e}")))?;
            let c = link_stream(geom, &plan.commands, tau_in, tau_out);
            let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
            if map.len() >= 4096 {
                map.clear();
            }
            map.insert(key, c);
            c
        }
    };
    let compute_s = counters.cycles as f64 * cycle;
    let transfer_s = (counters.bytes_to_device as f64 / model.link.to_device_bytes_per_s)
        .max(counters.bytes_from_device as f64 / model.link.from_device_bytes_per_s);
    Ok(LinkCost {
        bytes_to_device: counters.bytes_to_device,
        bytes_from_device: counters.bytes_from_device,
        compute_cycles: counters.cycles,
        compute_s,
        transfer_s,
        time_s: (link_cycles * cycle).max(compute_s).max(transfer_s),
    })
}

/// [`gemm_link_cost`] of `C = A (m x k) x B (k x n)` as `op` runs on the accelerator of `shape`
/// (the geometry and K chunk the `golden` and `rtl` engines stream); `None` for fp32 (host work).
pub fn op_link_cost(
    shape: &super::ArrayShape,
    op: &super::GemmOp,
    dims: (usize, usize, usize),
    model: &LinkModel,
) -> Result<Option<LinkCost>> {
    if op.format.datapath().is_none() {
        return Ok(None);
    }
    let config = shape.config_for(op)?;
    let geom = super::offload::accel_geometry(&config)?;
    let chunk = match config.datapath {
        shiftkit_hw::Datapath::Sq { .. } => super::offload::sq_stream_chunk(&config, op)?,
        shiftkit_hw::Datapath::Fp16 => super::offload::K_MAX,
    };
    gemm_link_cost(&geom, dims, chunk, model).map(Some)
}

/// Link costs summed over streams, with how many there were and how many were link-bound.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkTotals {
    pub cost: LinkCost,
    pub streams: u64,
    pub link_bound_streams: u64,
}

impl LinkTotals {
    pub fn add(&mut self, c: LinkCost) {
        self.streams += 1;
        self.link_bound_streams += u64::from(c.bound() == "link");
        self.cost += c;
    }

    pub fn merge(&mut self, o: &LinkTotals) {
        self.cost += o.cost;
        self.streams += o.streams;
        self.link_bound_streams += o.link_bound_streams;
    }

    /// [`link_report`] plus `link_bound_streams` and, for `steps` > 0, `steps` and the mean
    /// time per step `step_s`.
    pub fn report(&self, model: &LinkModel, steps: u64) -> serde_json::Value {
        let mut v = link_report(model, &self.cost, self.streams);
        v["link_bound_streams"] = self.link_bound_streams.into();
        if steps > 0 {
            v["steps"] = steps.into();
            v["step_s"] = (self.cost.time_s / steps as f64).into();
        }
        v
    }
}

type CacheKey = (String, (usize, usize, usize), usize, u64, u64);
static CACHE: OnceLock<Mutex<HashMap<CacheKey, f64>>> = OnceLock::new();

#[cfg(test)]
mod tests {
    use super::*;
    use shiftkit_hw::accel::model;
    use shiftkit_hw::{ArrayConfig, Datapath};

    fn geom(rows: usize, cols: usize, datapath: Datapath, k_max: usize) -> AccelGeometry {
        let config = ArrayConfig::sized(rows, cols, datapath, 7, None).unwrap();
        AccelGeometry::new(&config, k_max).unwrap()
    }

    #[test]
    fn parses_links_and_refuses_bad_ones_in_one_line() {
        let l: Link = "uart:3M".parse().unwrap();
        assert_eq!(l.to_device_bytes_per_s, 300_000.0);
        let l: Link = "axi:64@100M".parse().unwrap();
        assert_eq!(l.to_device_bytes_per_s, 800e6);
        let l: Link = "pcie:4G".parse().unwrap();
        assert_eq!(l.from_device_bytes_per_s, 4e9);
        for bad in [
            "uart",
            "uart:",
            "uart:-3",
            "axi:64",
            "axi:63@100M",
            "usb:1G",
            "pcie:x",
        ] {
            let e = bad.parse::<Link>().unwrap_err();
            assert!(e.starts_with("--link") && !e.contains('\n'), "{e}");
        }
        assert_eq!(parse_clock("12M"), Ok(12e6));
        assert!(parse_clock("0").is_err());
    }

    /// With a link of at least one beat per cycle each way, the command-level model is the
    /// cycle-exact model of the host streaming one beat per cycle.
    #[test]
    fn fast_link_is_the_cycle_model() {
        let mut s = 0x11u64;
        let mut next = |lo: usize, hi: usize| {
            s = crate::rng::mix64(s.wrapping_add(0x9E37_79B9_7F4A_7C15));
            lo + (s % (hi - lo + 1) as u64) as usize
        };
        for case in 0..60 {
            let dp = [
                Datapath::Sq { bits: 4 },
                Datapath::Sq { bits: 6 },
                Datapath::Sq { bits: 8 },
                Datapath::Fp16,
            ][case % 4];
            let g = geom(next(1, 6), next(1, 6), dp, [8, 16, 64][next(0, 2)]);
            let dims = (next(1, 30), next(1, 80), next(1, 30));
            let chunk = next(1, 70);
            let plan = plan_gemm_shape(&g, dims, chunk.min(g.k_max)).unwrap();
            let t = model::run(&g, &plan.commands, |_| true, |_| true, 10_000_000);
            let tau = [0.0, 0.5, 1.0][case % 3];
            let got = link_stream(&g, &plan.commands, tau, tau);
            assert_eq!(got, t.cycles as f64, "{g:?} {dims:?} chunk {chunk}");
        }
    }

    #[test]
    fn slow_links_bound_the_time_from_both_sides() {
        let g = geom(8, 8, Datapath::Sq { bits: 4 }, 256);
        for spec in ["uart:3M", "axi:32@100M", "axi:64@100M", "pcie:4G"] {
            let m = LinkModel {
                link: spec.parse().unwrap(),
                clock_hz: 100e6,
            };
            let c = gemm_link_cost(&g, (64, 512, 64), 256, &m).unwrap();
            let slack = 1e-9 + 1e-6 * c.time_s;
            assert!(
                c.time_s + slack >= c.compute_s.max(c.transfer_s),
                "{spec}: {c:?}"
            );
            // At worst nothing overlaps: compute, then every byte one way, then the other.
            let serial = c.compute_s
                + c.bytes_to_device as f64 / m.link.to_device_bytes_per_s
                + c.bytes_from_device as f64 / m.link.from_device_bytes_per_s;
            assert!(c.time_s <= serial + 1e-5, "{spec}: {c:?}");
        }
        // UART: 9-byte beats at 300 kB/s are 3,000 cycles each: link-bound, the transfer.
        let uart = LinkModel {
            link: "uart:3M".parse().unwrap(),
            clock_hz: 100e6,
        };
        let c = gemm_link_cost(&g, (64, 512, 64), 256, &uart).unwrap();
        assert_eq!(c.bound(), "link");
        assert!((c.time_s / c.transfer_s - 1.0).abs() < 0.01, "{c:?}");
        // PCIe at 4 GB/s: 9-byte beats in 0.23 cycles, the compute bound.
        let pcie = LinkModel {
            link: "pcie:4G".parse().unwrap(),
            clock_hz: 100e6,
        };
        let c = gemm_link_cost(&g, (64, 512, 64), 256, &pcie).unwrap();
        assert_eq!(c.bound(), "compute");
        assert_eq!(c.time_s, c.compute_s);
    }
}
