//! The `rtl` engine: every GEMM runs on the generated accelerator top (`docs/accelerator.md`)
//! simulated cycle by cycle by Verilator (`shiftkit_sim::accel_driver::AccelSim`).
//!
//! Around the datapath it does exactly what `golden` does, with the same code (`offload`):
//! quantize (or convert to binary16) the f32 operands, then scale the drained integers with
//! `sq_gemm::scale_out`. In between, the operands become the command stream of
//! `commands::plan_gemm` (K in chunks of `offload::sq_stream_chunk`, or `K_MAX` chained in the
//! array for fp16), the simulated top runs it, and `GemmPlan::assemble` / `assemble_f32` turn the
//! DRAIN responses into the accumulators (chunk partial sums added in i64) or binary32 results.
//! So `rtl` and `golden` give identical bits, and identical counters: the cycles the simulation
//! took equal the timing model's that `golden` reports (`cost`).
//!
//! One model per `ArrayConfig` (a GEMM's format and window pick it), built the first time it is
//! needed and kept: building runs Verilator and a C++ compiler (tens of seconds; the library is
//! cached on disk by a hash of the Verilog, so later processes only load it).

use super::cost::cycle_bound;
use super::l1norm_op::{L1NormCodes, L1NormOp, L1NormStream};
use super::offload::{accel_geometry, half_operands, quantize_operands, sq_stream_chunk, K_MAX};
use super::{ArrayShape, Counters, Engine, EngineKind, GemmOp};
use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::progress::{format_duration, Progress};
use crate::sq::SqMatrix;
use crate::sq_gemm::{per_k_flags, scale_out};
use shiftkit_hw::accel::commands::{plan_gemm, CommandError, GemmPlan, Operand};
use shiftkit_hw::{ArrayConfig, Datapath};
use shiftkit_sim::accel_driver::{AccelRun, AccelSim};
use shiftkit_sim::{BuildObserver, BuildOptions, BuildProgress, BuildStage, SimError, Verilator};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct RtlEngine {
    shape: ArrayShape,
    opts: BuildOptions,
    sims: HashMap<ArrayConfig, AccelSim>,
    counters: Counters,
    /// Cycles the array computed (valid k-steps), summed like `counters`.
    busy_cycles: u64,
    /// Show a spinner on stderr while a model builds (hidden when stderr is not a terminal).
    progress: bool,
}

impl RtlEngine {
    /// An engine for arrays of `shape`, building models with `opts`. Fails at once, with the
    /// install hint, when Verilator is missing.
    pub fn new(shape: ArrayShape, opts: BuildOptions) -> Result<Self> {
        Verilator::find(opts.verilator.as_deref()).map_err(sim_error)?;
        Ok(RtlEngine {
            shape,
            opts,
            sims: HashMap::new(),
            counters: Counters::default(),
            busy_cycles: 0,
            progress: true,
        })
    }

    pub fn set_progress(&mut self, on: bool) {
        self.progress = on;
    }

    /// Build (or load from the disk cache) the model that runs `op`, so that a later `gemm`
    /// spends its time simulating only.
    pub fn prepare(&mut self, op: &GemmOp) -> Result<()> {
        let config = self.shape.config_for(op)?;
        self.sim(&config).map(|_| ())
    }

    /// Write a waveform (`.fst` or `.vcd`) of the GEMMs in `op`'s configuration that follow,
    /// until [`RtlEngine::close_trace`].
    pub fn trace(&mut self, op: &GemmOp, path: &Path) -> Result<()> {
        let config = self.shape.config_for(op)?;
        self.sim(&config)?.trace(path).map_err(sim_error)
    }

    /// Finish every open waveform file.
    pub fn close_trace(&mut self) {
        self.sims.values_mut().for_each(AccelSim::trace_close);
    }

    /// Cycles in which the array computed, over all GEMMs since the counters were reset.
    pub fn busy_cycles(&self) -> u64 {
        self.busy_cycles
    }

    fn sim(&mut self, config: &ArrayConfig) -> Result<&mut AccelSim> {
        if !self.sims.contains_key(config) {
            let mut opts = self.opts.clone();
            let shown = self
                .progress
                .then(|| BuildDisplay::attach(config, &mut opts));
            let sim = AccelSim::build(config, K_MAX, &opts).map_err(sim_error);
            if let Some(d) = shown {
                d.finish(sim.is_ok());
            }
            self.sims.insert(*config, sim?);
        }
        Ok(self.sims.get_mut(config).expect("inserted above"))
    }

    /// Run `plan` on the model of `config`; the run and its counters.
    fn run_plan(&mut self, config: &ArrayConfig, plan: &GemmPlan) -> Result<(AccelRun, Counters)> {
        let sim = self.sim(config)?;
        let geom = *sim.geometry();
        // Far above any legal wait, so a hung top is reported, never a hung host.
        sim.set_watchdog(cycle_bound(&geom, &plan.commands));
        let run = sim.run(&plan.commands).map_err(sim_error)?;
        let beats: usize = plan.commands.iter().map(|c| c.beats(&geom)).sum();
        let counters = Counters {
            gemms: 1,
            macs: (plan.m * plan.k * plan.n) as u64,
            bytes_to_device: (beats * geom.cmd_bits() / 8) as u64,
            bytes_from_device: (run.responses.len() * geom.rsp_bits() / 8) as u64,
            cycles: run.cycles,
        };
        Ok((run, counters))
    }

    fn sq_gemm(
        &mut self,
        config: &ArrayConfig,
        a: &Matrix,
        b: &Matrix,
        op: &GemmOp,
        bits: u32,
    ) -> Result<(Matrix, AccelRun, Counters)> {
        let geom = accel_geometry(config)?;
        let (qa, qb) = quantize_operands(a, b, op, bits)?;
        let chunk = sq_stream_chunk(config, op)?;
        let (a_k, b_k) = per_k_flags(&qa, &qb);
        let (ca, cb) = (widen(&qa), widen(&qb));
        let plan = plan_gemm(
            &geom,
            &sq_operand(&qa, &ca, a_k),
            &sq_operand(&qb, &cb, b_k),
            chunk,
        )
        .map_err(stream_error)?;
        let (run, counters) = self.run_plan(config, &plan)?;
        let acc = plan.assemble(&geom, &run.responses).map_err(stream_error)?;
        Ok((scale_out(&acc, &qa, &qb), run, counters))
    }

    fn fp16_gemm(
        &mut self,
        config: &ArrayConfig,
        a: &Matrix,
        b: &Matrix,
    ) -> Result<(Matrix, AccelRun, Counters)> {
        let geom = accel_geometry(config)?;
        let (ha, hb) = half_operands(a, b)?;
        let bits = |h: &crate::fp16::HalfMatrix| -> Vec<i32> {
            h.data.iter().map(|x| i32::from(x.to_bits())).collect()
        };
        let (ca, cb) = (bits(&ha), bits(&hb));
        let operand = |rows, cols, codes| Operand {
            rows,
            cols,
            codes,
            k_exps: None,
        };
        let plan = plan_gemm(
            &geom,
            &operand(ha.rows, ha.cols, &ca),
            &operand(hb.rows, hb.cols, &cb),
            K_MAX,
        )
        .map_err(stream_error)?;
        let (run, counters) = self.run_plan(config, &plan)?;
        let c = plan
            .assemble_f32(&geom, &run.responses)
            .map_err(stream_error)?;
        Ok((Matrix::new(plan.m, plan.n, c)?, run, counters))
    }
}

impl Engine for RtlEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Rtl
    }

    fn gemm(&mut self, a: &Matrix, b: &Matrix, op: &GemmOp) -> Result<Matrix> {
        let config = self.shape.config_for(op)?;
        let (c, run, counters) = match config.datapath {
            Datapath::Sq { bits } => self.sq_gemm(&config, a, b, op, bits)?,
            Datapath::Fp16 => self.fp16_gemm(&config, a, b)?,
        };
        self.counters += counters;
        self.busy_cycles += run.busy_cycles;
        Ok(c)
    }

    fn l1norm(&mut self, rows: &[Vec<i64>], op: &L1NormOp) -> Result<L1NormCodes> {
        let stream = L1NormStream::plan(&self.shape, rows, op)?;
        let bound = stream.cycle_bound()?;
        let sim = self.sim(&stream.config)?;
        if sim.geometry() != &stream.geom {
            return Err(Error::Unsupported(
                "the simulated top's L1-norm unit differs from the host's geometry".into(),
            ));
        }
        sim.set_watchdog(bound);
        let run = sim.run(&stream.commands).map_err(sim_error)?;
        let codes = stream.decode(&run.responses)?;
        self.counters += stream.counters(run.cycles);
        self.busy_cycles += run.busy_cycles;
        Ok(codes)
    }

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn reset_counters(&mut self) {
        self.counters = Counters::default();
        self.busy_cycles = 0;
    }
}

/// SQ codes as the command encoder's lanes.
fn widen(q: &SqMatrix) -> Vec<i32> {
    q.codes.iter().map(|&c| i32::from(c)).collect()
}

/// A quantized operand for the command stream. A per-K operand's exponents are its per-K shifts
/// (sent with each data vector); per-M / per-N ones are applied on the host by `scale_out`.
fn sq_operand<'a>(q: &'a SqMatrix, codes: &'a [i32], per_k: bool) -> Operand<'a> {
    Operand {
        rows: q.rows,
        cols: q.cols,
        codes,
        k_exps: per_k.then_some(q.exps.as_slice()),
    }
}

/// A simulator error as one line (a failed build's message names its full log).
fn sim_error(e: SimError) -> Error {
    let text = e.to_string();
    Error::Unsupported(text.lines().next().unwrap_or_default().to_string())
}

fn stream_error(e: CommandError) -> Error {
    Error::Shape(format!("accelerator command stream: {e}"))
}

/// The stages of a model build with their elapsed time (a spinner on a terminal, one stderr
/// line per stage otherwise); silent when the model comes from the cache.
struct BuildDisplay {
    progress: Arc<Progress>,
    /// The last stage shown (None: nothing built yet, a cache hit so far).
    stage: Arc<Mutex<Option<BuildStage>>>,
}

impl BuildDisplay {
    fn attach(config: &ArrayConfig, opts: &mut BuildOptions) -> BuildDisplay {
        let label = format!(
            "Verilator model of the {} {}x{} accelerator",
            config.datapath.name(),
            config.rows,
            config.cols
        );
        let progress = Arc::new(Progress::spinner(&label));
        let stage = Arc::new(Mutex::new(None));
        let (p, st) = (progress.clone(), stage.clone());
        opts.observer = Some(BuildObserver::new(move |ev: &BuildProgress| {
            let mut last = st.lock().unwrap_or_else(|e| e.into_inner());
            let files = if ev.files_total > 0 {
                format!(": {}/{} C++ files", ev.files_done, ev.files_total)
            } else {
                String::new()
            };
            let text = format!(
                "{}{files} ({} profile for {} kB of Verilog, make -j{})",
                ev.stage.describe(),
                ev.profile.name(),
                ev.verilog_bytes / 1000,
                ev.jobs
            );
            if *last != Some(ev.stage) {
                *last = Some(ev.stage);
                p.stage(text);
            } else if ev.files_total > 0 {
                // The file count of the model compile (the long stage): on the spinner, and
                // in a log once a period.
                p.detail(text);
            }
        }));
        BuildDisplay { progress, stage }
    }

    fn finish(self, ok: bool) {
        let built = self.stage.lock().is_ok_and(|s| s.is_some());
        self.progress.finish();
        if built && ok {
            eprintln!(
                "built the Verilator model in {} (cached on disk for later runs)",
                format_duration(self.progress.elapsed())
            );
        }
    }
}
