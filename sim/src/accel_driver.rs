//! Co-simulation of a generated accelerator top (`docs/accelerator.md`) under Verilator: the
//! `rtl` engine's back end.
//!
//! [`AccelSim`] builds the top of an `ArrayConfig` (`shiftkit_hw::generate::generate_accel`)
//! inside a small probe module (below), resets it, streams a command sequence one beat per cycle
//! whenever `cmd_ready` is high, keeps `rsp_ready` high and collects the response beats. Its
//! cycle numbering is the one of `docs/accelerator.md` and `shiftkit_hw::accel::model`: cycle 0
//! is the first cycle after the (one-cycle) reset, and [`AccelRun::cycles`] counts up to and
//! including the cycle in which the last beat moved, exactly like `model::Timing::cycles`.
//!
//! The probe module (`<top>_sim`) instantiates the top unchanged and adds one output,
//! `array_busy`: a 64-bit counter of the cycles in which the array's `valid` input was high,
//! read through a hierarchical reference into the core. Counting in the model instead of
//! reading a port every cycle keeps the per-cycle cost at two evaluations.
//!
//! A stuck stream never hangs: when no beat moves on either port for [`AccelSim::set_watchdog`]
//! cycles, the run fails naming the command it waits on and the cycle.

use crate::compile::{BuildOptions, SourceFile, TraceFormat};
use crate::error::{Result, SimError};
use crate::model::{Model, PortId};
use shiftkit_hw::accel::commands::{
    Command, BANK2_BIT, BANK_BIT, CBANK_BIT, HOLD_BIT, K_LEN_MASK, OPCODE_LSB, OP_COMPUTE,
    OP_DRAIN, OP_L1NORM, OP_LOAD_A, OP_LOAD_B, OP_NOP, OP_STATUS,
};
use shiftkit_hw::accel::AccelGeometry;
use shiftkit_hw::generate::{generate_accel, GeneratedDesign};
use shiftkit_hw::ArrayConfig;
use std::path::Path;

/// Default watchdog: cycles without a handshake on either port before a run gives up. Far above
/// any legal wait (a DRAIN waits at most about `K_MAX + C + 2R` cycles for its tile).
pub const DEFAULT_WATCHDOG: u64 = 100_000;

/// What one command stream did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccelRun {
    /// Every response beat, 32-bit words least significant first, in order.
    pub responses: Vec<Vec<u32>>,
    /// Cycles from cycle 0 (the first after reset) up to and including the cycle in which the
    /// last command or response beat moved (`model::Timing::cycles`).
    pub cycles: u64,
    /// The cycle in which each command's header was accepted.
    pub accepted: Vec<u64>,
    /// Cycles in which the array's `valid` input was high (counted in the probe module).
    pub busy_cycles: u64,
}

/// The probe module's ports.
struct Ports {
    clock: PortId,
    reset: PortId,
    cmd_data: PortId,
    cmd_valid: PortId,
    cmd_ready: PortId,
    rsp_data: PortId,
    rsp_valid: PortId,
    rsp_ready: PortId,
    array_busy: PortId,
}

/// One Verilated accelerator top and the host side of its two streams.
pub struct AccelSim {
    model: Model,
    geom: AccelGeometry,
    top: String,
    ports: Ports,
    watchdog: u64,
    /// Cycles run since the last reset.
    cycle: u64,
    /// The cycle each response beat of the last run left in.
    response_cycles: Vec<u64>,
}

impl std::fmt::Debug for AccelSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccelSim")
            .field("top", &self.top)
            .field("geom", &self.geom)
            .field("cycle", &self.cycle)
            .finish()
    }
}

impl AccelSim {
    /// Generate the accelerator top of `config` with operand buffers `k_max` deep, build its
    /// model (or find it in the cache) and reset it.
    pub fn build(config: &ArrayConfig, k_max: usize, opts: &BuildOptions) -> Result<AccelSim> {
        AccelSim::from_design(&generate_accel(config, k_max)?, opts)
    }

    /// [`AccelSim::build`] from an accelerator design already generated.
    pub fn from_design(design: &GeneratedDesign, opts: &BuildOptions) -> Result<AccelSim> {
        let accel = design.accel.as_ref().ok_or_else(|| {
            SimError::Accel(format!(
                "`{}` is not an accelerator top (generate it with DesignKind::Accel)",
                design.top
            ))
        })?;
        // The L1-norm unit as generated (the manifest's geometry, not the default one).
        let l1 = accel.l1norm.as_ref().map(|u| u.config);
        let geom = AccelGeometry::with_l1norm(&design.config, accel.k_max, l1)?
            .with_k_per_beat(accel.k_per_beat)?;
        let (probe_top, probe) = probe_module(design);
        let sources = [
            SourceFile {
                name: format!("{}.v", design.top),
                text: design.verilog.clone(),
            },
            SourceFile {
                name: format!("{probe_top}.v"),
                text: probe,
            },
        ];
        let model = Model::build_sources(&sources, &probe_top, opts)?;
        let port = |name: &str, width: usize| -> Result<PortId> {
            let id = model.port(name)?;
            let got = model.info(id)?.width as usize;
            if got != width {
                return Err(SimError::Accel(format!(
                    "port `{name}` of `{}` is {got} bits wide, the geometry says {width}",
                    design.top
                )));
            }
            Ok(id)
        };
        let ports = Ports {
            clock: port("clock", 1)?,
            reset: port("reset", 1)?,
            cmd_data: port("cmd_data", geom.cmd_bits())?,
            cmd_valid: port("cmd_valid", 1)?,
            cmd_ready: port("cmd_ready", 1)?,
            rsp_data: port("rsp_data", geom.rsp_bits())?,
            rsp_valid: port("rsp_valid", 1)?,
            rsp_ready: port("rsp_ready", 1)?,
            array_busy: port("array_busy", 64)?,
        };
        let mut sim = AccelSim {
            model,
            geom,
            top: design.top.clone(),
            ports,
            watchdog: DEFAULT_WATCHDOG,
            cycle: 0,
            response_cycles: vec![],
        };
        sim.reset()?;
        Ok(sim)
    }

    pub fn geometry(&self) -> &AccelGeometry {
        &self.geom
    }

    /// The accelerator top's module name (`shiftkit_accel_<dp>_<R>x<C>`).
    pub fn top(&self) -> &str {
        &self.top
    }

    /// The underlying model (the probe module around the top), e.g. for direct probing.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// One reset cycle (`reset` high, `cmd_valid` and `rsp_ready` low); the next cycle is
    /// cycle 0.
    pub fn reset(&mut self) -> Result<()> {
        let p = &self.ports;
        let zero = vec![0u32; self.geom.cmd_words()];
        self.model.set_u64(p.reset, 1)?;
        self.model.set_u64(p.cmd_valid, 0)?;
        self.model.set_u64(p.rsp_ready, 0)?;
        self.model.set(p.cmd_data, &zero)?;
        self.model.tick(p.clock)?;
        self.model.set_u64(p.reset, 0)?;
        self.cycle = 0;
        Ok(())
    }

    /// Cycles without a handshake on either port after which a run fails (at least 1).
    pub fn set_watchdog(&mut self, cycles: u64) {
        self.watchdog = cycles.max(1);
    }

    /// Write a waveform of everything that follows to `path`: `.fst` or `.vcd`, which must be
    /// the format the model was built with (`BuildOptions::trace`; `Auto` gives FST where zlib
    /// is available). The file is complete after [`AccelSim::trace_close`] or on drop.
    pub fn trace(&mut self, path: &Path) -> Result<()> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let want = match ext {
            "fst" => TraceFormat::Fst,
            "vcd" => TraceFormat::Vcd,
            _ => {
                return Err(SimError::Trace(format!(
                    "{}: a trace file must end in .fst or .vcd",
                    path.display()
                )))
            }
        };
        match self.model.trace_format() {
            None => Err(SimError::Trace(
                "the model was built without tracing (TraceFormat::Off, or Auto on a large design): \
                 build it with TraceFormat::Fst or Vcd (`shiftkit sim --trace` does) to write waveforms"
                    .into(),
            )),
            Some(f) if f != want => {
                let other = if f == TraceFormat::Fst { "fst" } else { "vcd" };
                Err(SimError::Trace(format!(
                    "{}: this model writes {f:?} waveforms; name the file *.{other}, or build \
                     with BuildOptions {{ trace: TraceFormat::{want:?}, .. }}",
                    path.display()
                )))
            }
            Some(_) => self.model.trace(path),
        }
    }

    /// Flush and close the waveform, if one is open.
    pub fn trace_close(&mut self) {
        self.model.trace_close();
    }

    /// The cycle in which each response beat of the last run left (`model::Timing::responses`).
    pub fn response_cycles(&self) -> &[u64] {
        &self.response_cycles
    }

    /// Reset, then stream `commands` (one beat per cycle whenever `cmd_ready`; `rsp_ready`
    /// always high) until every response beat they produce has left. Commands the encoder
    /// rejects (`Command::validate`) are an error before anything runs.
    pub fn run(&mut self, commands: &[Command]) -> Result<AccelRun> {
        let geom = self.geom;
        let mut stream = Stream::default();
        for (i, c) in commands.iter().enumerate() {
            let beats = c.encode(&geom).map_err(|e| {
                SimError::Accel(format!("command {i} ({}): {e}", describe(c.header())))
            })?;
            let at = stream.flat.len() / geom.cmd_words();
            stream.push_command(at, c.header(), c.beats(&geom) - 1, c.response_beats(&geom));
            stream.flat.extend(beats.into_iter().flatten());
        }
        let want = stream.rsps.iter().sum();
        self.run_stream(&stream, want)
    }

    /// [`AccelSim::run`] on raw beats (`geometry().cmd_words()` words each), expecting
    /// `responses` response beats: for streams the encoder refuses (bad opcodes, `k_len` out of
    /// range), which the hardware must survive. Headers are found by the decoder's rule for
    /// LOADs (`ceil(k_len / P)` data beats follow, whatever `k_len` is); any other header is taken as one
    /// beat, so streams with L1NORM data go through [`AccelSim::run`].
    pub fn run_beats(&mut self, beats: &[Vec<u32>], responses: usize) -> Result<AccelRun> {
        let words = self.geom.cmd_words();
        if let Some((i, b)) = beats.iter().enumerate().find(|(_, b)| b.len() != words) {
            return Err(SimError::Accel(format!(
                "beat {i} has {} words; `cmd_data` of `{}` takes {words}",
                b.len(),
                self.top
            )));
        }
        let mut stream = Stream {
            flat: beats.iter().flatten().copied().collect(),
            ..Stream::default()
        };
        let mut beat = 0;
        while beat < beats.len() {
            let header = beats[beat][0];
            let data = match header >> OPCODE_LSB {
                OP_LOAD_A | OP_LOAD_B => self.geom.load_beats((header & K_LEN_MASK) as usize),
                _ => 0,
            };
            let rsps = match header >> OPCODE_LSB {
                OP_DRAIN => self.geom.tile_rows(),
                OP_STATUS => 1,
                _ => 0,
            };
            stream.push_command(beat, header, data, rsps);
            beat += 1 + data;
        }
        self.run_stream(&stream, responses)
    }

    /// The stream loop: offer `stream`'s beats in order until `want` response beats are in.
    fn run_stream(&mut self, stream: &Stream, want: usize) -> Result<AccelRun> {
        self.reset()?;
        let words = self.geom.cmd_words();
        let nbeats = stream.flat.len() / words;
        let p = &self.ports;
        let m = &mut self.model;
        let mut run = AccelRun {
            responses: Vec::with_capacity(want),
            accepted: Vec::with_capacity(stream.headers.len()),
            ..AccelRun::default()
        };
        self.response_cycles.clear();
        self.response_cycles.reserve(want);
        m.set_u64(p.rsp_ready, 1)?;
        // `next`: the beat on offer; `cmd`: the next command whose header is to be accepted.
        let (mut next, mut cmd) = (0usize, 0usize);
        // What the ports hold now, so each is set only when it changes.
        let (mut on_port, mut valid_on_port) = (usize::MAX, false);
        // `quiet_from`: the first cycle after the last handshake.
        let (mut t, mut quiet_from) = (0u64, 0u64);
        while next < nbeats || run.responses.len() < want {
            if t - quiet_from >= self.watchdog {
                self.cycle = t;
                let waiting = stream.waiting_on(next, nbeats, run.responses.len(), want);
                return Err(SimError::Accel(format!(
                    "watchdog: no handshake on either port for {} cycles, at cycle {t}: {waiting}",
                    self.watchdog
                )));
            }
            let valid = next < nbeats;
            if valid && on_port != next {
                m.set(p.cmd_data, &stream.flat[next * words..(next + 1) * words])?;
                on_port = next;
            }
            if valid != valid_on_port {
                m.set_u64(p.cmd_valid, u64::from(valid))?;
                valid_on_port = valid;
            }
            m.clock_low(p.clock)?;
            let fire = valid && m.get_u64(p.cmd_ready)? != 0;
            let rsp = m.get_u64(p.rsp_valid)? != 0;
            if rsp {
                run.responses.push(m.get(p.rsp_data)?);
                self.response_cycles.push(t);
            }
            m.clock_high(p.clock)?;
            if fire {
                if stream.headers.get(cmd) == Some(&next) {
                    run.accepted.push(t);
                    cmd += 1;
                }
                next += 1;
            }
            t += 1;
            if fire || rsp {
                quiet_from = t;
                run.cycles = t;
            }
        }
        self.cycle = t;
        run.busy_cycles = m.get_u64(p.array_busy)?;
        Ok(run)
    }
}

/// A command stream laid out for the loop: the beats back to back, and per command its header
/// word, where the header is, how many data beats follow it and how many response beats it
/// produces.
#[derive(Default)]
struct Stream {
    flat: Vec<u32>,
    header_words: Vec<u32>,
    headers: Vec<usize>,
    data: Vec<usize>,
    rsps: Vec<usize>,
}

impl Stream {
    /// Append a command whose header is beat `at`.
    fn push_command(&mut self, at: usize, header: u32, data: usize, rsps: usize) {
        self.headers.push(at);
        self.header_words.push(header);
        self.data.push(data);
        self.rsps.push(rsps);
    }

    /// `command i (DRAIN c_bank 1)`.
    fn name(&self, i: usize) -> String {
        format!("command {i} ({})", describe(self.header_words[i]))
    }

    /// What a stuck stream waits on: beat `next` of `nbeats` on offer, `got` of `want`
    /// response beats received.
    fn waiting_on(&self, next: usize, nbeats: usize, got: usize, want: usize) -> String {
        let n = self.headers.len();
        if next < nbeats {
            let i = self.headers.partition_point(|&h| h <= next) - 1;
            return match next - self.headers[i] {
                0 => format!("{} is not accepted (cmd_ready stays low)", self.name(i)),
                j => format!(
                    "data beat {j} of {} is not accepted (cmd_ready stays low)",
                    self.name(i)
                ),
            };
        }
        if let Some(i) = n.checked_sub(1) {
            let have = nbeats - self.headers[i] - 1;
            if have < self.data[i] {
                return format!(
                    "every beat was accepted, but {} takes {} data beats and the stream ends \
                     after {have}: the decoder waits for the rest ({got} of {want} response \
                     beats received)",
                    self.name(i),
                    self.data[i]
                );
            }
        }
        let mut first = 0;
        for i in 0..n {
            if (first..first + self.rsps[i]).contains(&got) {
                return format!(
                    "{} has not sent response beat {} of its {} ({got} of {want} response \
                     beats received; every command beat was accepted)",
                    self.name(i),
                    got - first,
                    self.rsps[i]
                );
            }
            first += self.rsps[i];
        }
        format!(
            "{want} response beats are expected but the stream's commands produce {first} \
             ({got} received)"
        )
    }
}

/// The probe module around `design`'s top: same ports, plus `array_busy`. Returns its name and
/// Verilog. The count reads the core's `array_ctl_in` (the array's control bundle; bit
/// `ctl_valid_bit` is `valid`) by hierarchical reference: if the core is ever restructured, the
/// Verilator build fails here, loudly, rather than counting something else.
fn probe_module(design: &GeneratedDesign) -> (String, String) {
    let top = &design.top;
    let name = format!("{top}_sim");
    let valid_bit = design.parameters.ctl_valid_bit;
    let port = |n: &str| {
        design
            .ports
            .iter()
            .find(|p| p.name == n)
            .map_or(1, |p| p.width)
    };
    let verilog = format!(
        "// Generated by shiftkit-sim: {top} plus a counter of the cycles its array computes.
module {name}(clock, reset, cmd_data, cmd_valid, cmd_ready, rsp_data, rsp_valid, rsp_ready,
              array_busy);
    input wire clock;
    input wire reset;
    input wire [{cmd_hi}:0] cmd_data;
    input wire cmd_valid;
    output wire cmd_ready;
    output wire [{rsp_hi}:0] rsp_data;
    output wire rsp_valid;
    input wire rsp_ready;
    output reg [63:0] array_busy;
    {top} dut(.clock(clock), .reset(reset), .cmd_data(cmd_data), .cmd_valid(cmd_valid),
        .cmd_ready(cmd_ready), .rsp_data(rsp_data), .rsp_valid(rsp_valid),
        .rsp_ready(rsp_ready));
    always @(posedge clock)
        if (reset) array_busy <= 64'd0;
        else array_busy <= array_busy + {{63'd0, dut.core.array_ctl_in[{valid_bit}]}};
endmodule
",
        cmd_hi = port("cmd_data") - 1,
        rsp_hi = port("rsp_data") - 1,
    );
    (name, verilog)
}

/// A header in words, e.g. `DRAIN c_bank 1`.
fn describe(header: u32) -> String {
    let bit = |b: u32| (header >> b) & 1;
    let k_len = header & K_LEN_MASK;
    match header >> OPCODE_LSB {
        OP_NOP => "NOP".into(),
        OP_LOAD_A => format!("LOAD_A bank {} k_len {k_len}", bit(BANK_BIT)),
        OP_LOAD_B => format!("LOAD_B bank {} k_len {k_len}", bit(BANK_BIT)),
        OP_COMPUTE => format!(
            "COMPUTE a_bank {} b_bank {} c_bank {}{} k_len {k_len}",
            bit(BANK_BIT),
            bit(BANK2_BIT),
            bit(CBANK_BIT),
            if bit(HOLD_BIT) == 1 { " hold" } else { "" }
        ),
        OP_DRAIN => format!("DRAIN c_bank {}", bit(BANK_BIT)),
        OP_STATUS => "STATUS".into(),
        OP_L1NORM => format!("L1NORM n {k_len}"),
        op => format!("unknown opcode {op}"),
    }
}
