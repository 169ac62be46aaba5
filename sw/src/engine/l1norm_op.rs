//! L1 normalization on the accelerator engines (`docs/accelerator.md`, "L1NORM"): integer rows
//! of the unit's input width `W` go in, SQ-b codes with one per-tensor step `2^-f` come out, as
//! `shiftkit_hw::l1norm` documents (its integer contract; `gamma = 1`, `beta = 0`, the affine
//! part is the host's).
//!
//! What `golden` and `rtl` do the same way lives here, so they cannot drift apart: the checks of
//! the input (one line naming the row and element), the command stream (one L1NORM per row, in
//! order), and the counters of that stream. `golden` computes the codes with
//! `l1norm::golden` and the cycles with the cycle-exact `accel::model::run` on the stream;
//! `rtl` runs the same stream on the Verilated top. The `cpu` engine has no unit: fp32 rows are
//! normalized on the host (`crate::l1norm::forward`).
//!
//! The unit's parameters are those the tops are generated with by default
//! (`accel::default_l1norm(b)`: `W` = 16, rows of up to 1024, `f = b - 3`, `eps = 1e-5` in input
//! units), for the SQ format's `b`.

use super::offload::accel_geometry;
use super::{ArrayShape, Counters, GemmOp};
use crate::error::{Error, Result};
use crate::format::Format;
use shiftkit_hw::accel::commands::{decode_l1norm, Command};
use shiftkit_hw::accel::{model, AccelGeometry};
use shiftkit_hw::config::DEFAULT_WINDOW;
use shiftkit_hw::l1norm::{golden::timing_bound, L1NormConfig};
use shiftkit_hw::{ArrayConfig, Datapath};

/// Which accelerator normalizes: the SQ format of its codes (the top's bits) and the window of
/// the top (it only picks the design, so GEMMs and L1NORMs of one window share one top).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1NormOp {
    pub format: Format,
    pub window: u32,
}

impl L1NormOp {
    /// The top of `format` with the default window.
    pub fn new(format: Format) -> Self {
        L1NormOp {
            format,
            window: DEFAULT_WINDOW,
        }
    }
}

/// The normalized rows: SQ-b codes, code `q` standing for `q * 2^-frac_bits`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L1NormCodes {
    pub rows: Vec<Vec<i8>>,
    pub frac_bits: u32,
}

impl L1NormCodes {
    /// The per-tensor step `2^-f`.
    pub fn step(&self) -> f64 {
        (-f64::from(self.frac_bits)).exp2()
    }
}

/// A checked L1NORM stream: the top it runs on, its unit, and one command per row.
pub(super) struct L1NormStream {
    pub config: ArrayConfig,
    pub geom: AccelGeometry,
    pub unit: L1NormConfig,
    pub commands: Vec<Command>,
}

impl L1NormStream {
    /// Check `rows` for the top of `op` on an array of `shape` and build the stream.
    pub fn plan(shape: &ArrayShape, rows: &[Vec<i64>], op: &L1NormOp) -> Result<Self> {
        match op.format.datapath() {
            None => return Err(Error::Unsupported(
                "fp32 rows are L1-normalized on the host (shiftkit::l1norm::forward), not on an \
                     accelerator: use an sq format"
                    .into(),
            )),
            Some(Datapath::Fp16) => {
                return Err(Error::Unsupported(
                    "the fp16 accelerator top has no L1-norm unit: normalize on the host \
                     (shiftkit::l1norm::forward) or use an sq format"
                        .into(),
                ))
            }
            Some(Datapath::Sq { .. }) => {}
        }
        let mut gemm = GemmOp::new(op.format);
        gemm.window = op.window;
        let config = shape.config_for(&gemm)?;
        let geom = accel_geometry(&config)?;
        let unit = geom.l1norm.ok_or_else(|| {
            Error::Unsupported(format!(
                "the {} accelerator top has no L1-norm unit: normalize on the host",
                op.format
            ))
        })?;
        check_rows(rows, &unit)?;
        let commands = rows
            .iter()
            .map(|r| Command::l1norm(&geom, r.clone()))
            .collect();
        Ok(L1NormStream {
            config,
            geom,
            unit,
            commands,
        })
    }

    /// An upper bound of the cycles the stream takes with the host always ready: every row
    /// through all three stages of the unit one after another, at its slowest shift, plus its
    /// beats. Used as the timing model's limit and the simulation's watchdog, so a hung top is
    /// reported, never a hung host.
    pub fn cycle_bound(&self) -> Result<u64> {
        let consts = self
            .unit
            .consts()
            .map_err(|e| Error::Unsupported(e.to_string()))?;
        let per_row = |c: &Command| {
            let n = match c {
                Command::L1Norm { row, .. } => row.len() as u64,
                _ => 0,
            };
            let t = timing_bound(&consts, n);
            t.stage1
                + t.stage2
                + t.stage3
                + t.latency
                + (c.beats(&self.geom) + 2 * n as usize) as u64
        };
        Ok(self.commands.iter().map(per_row).sum::<u64>() + 64)
    }

    /// The counters of the stream when it took `cycles`: bytes over the two ports (command and
    /// response beats, unused lanes included, as for GEMMs); no GEMMs, no MACs.
    pub fn counters(&self, cycles: u64) -> Counters {
        let cmd_beats: usize = self.commands.iter().map(|c| c.beats(&self.geom)).sum();
        let rsp_beats = self.response_beats();
        Counters {
            gemms: 0,
            macs: 0,
            bytes_to_device: (cmd_beats * self.geom.cmd_bits() / 8) as u64,
            bytes_from_device: (rsp_beats * self.geom.rsp_bits() / 8) as u64,
            cycles,
        }
    }

    pub fn response_beats(&self) -> usize {
        self.commands
            .iter()
            .map(|c| c.response_beats(&self.geom))
            .sum()
    }

    /// The cycles of the stream on the cycle-exact model (host streaming one beat per cycle,
    /// always ready for responses): what the Verilated top takes.
    pub fn model_cycles(&self) -> Result<u64> {
        let bound = self.cycle_bound()?;
        let t = model::run(&self.geom, &self.commands, |_| true, |_| true, bound);
        if t.responses.len() != self.response_beats() {
            return Err(Error::Unsupported(format!(
                "the accelerator timing model did not finish the L1NORM stream in {bound} cycles"
            )));
        }
        Ok(t.cycles)
    }

    /// The codes of every row from the stream's response beats (in command order).
    pub fn decode(&self, responses: &[Vec<u32>]) -> Result<L1NormCodes> {
        if responses.len() != self.response_beats() {
            return Err(Error::Unsupported(format!(
                "the accelerator returned {} L1NORM response beats, expected {}",
                responses.len(),
                self.response_beats()
            )));
        }
        let mut rest = responses;
        let mut rows = Vec::with_capacity(self.commands.len());
        for c in &self.commands {
            let (beats, tail) = rest.split_at(c.response_beats(&self.geom));
            rest = tail;
            let n = match c {
                Command::L1Norm { row, .. } => row.len(),
                _ => 0,
            };
            let codes = decode_l1norm(beats, n, &self.geom)
                .map_err(|e| Error::Unsupported(format!("L1NORM response: {e}")))?;
            rows.push(codes);
        }
        Ok(self.codes(rows))
    }

    pub fn codes(&self, rows: Vec<Vec<i8>>) -> L1NormCodes {
        L1NormCodes {
            rows,
            frac_bits: self.unit.frac_bits,
        }
    }
}

/// Every row 1..=`n_max` long, every element a `W`-bit two's-complement integer; the first
/// violation as one line that says how to fix it.
fn check_rows(rows: &[Vec<i64>], unit: &L1NormConfig) -> Result<()> {
    if rows.is_empty() {
        return Err(Error::Empty("the L1-norm input (no rows)".into()));
    }
    let n_max = unit.n_max();
    let lim = 1i64 << (unit.in_bits - 1);
    for (i, row) in rows.iter().enumerate() {
        if !(1..=n_max).contains(&row.len()) {
            return Err(Error::Usage(format!(
                "L1-norm row {i} has {} elements: the accelerator's unit takes rows of 1..={n_max} \
                 (split longer rows or normalize them on the host)",
                row.len()
            )));
        }
        if let Some((j, x)) = row
            .iter()
            .enumerate()
            .find(|(_, x)| !(-lim..lim).contains(*x))
        {
            return Err(Error::Usage(format!(
                "L1-norm row {i}, element {j}: {x} does not fit the unit's {}-bit signed inputs \
                 ({}..={}): rescale the row",
                unit.in_bits,
                -lim,
                lim - 1
            )));
        }
    }
    Ok(())
}
