//! [`Model`]: one cycle-accurate instance of a Verilated design, driven from Rust.
//!
//! The `cxx` bridge below reaches the fixed C++ loader (`cpp/loader.{h,cc}`), which `dlopen`s a
//! model library built by [`crate::compile`] and forwards to its `skm_*` C ABI. Values cross as
//! slices of `u32` words, least significant first (Verilator's `VlWide` layout), so ports of any
//! width use the same two calls.

use crate::compile::{build_library, read_sources, BuildOptions, SourceFile, TraceFormat};
use crate::error::{Result, SimError};
use crate::ports::{words_for, PortDir, PortInfo};
use std::path::{Path, PathBuf};

#[cxx::bridge(namespace = "shiftkit_sim")]
mod ffi {
    unsafe extern "C++" {
        include!("shiftkit-sim/cpp/loader.h");

        type SimLib;

        fn sim_open(path: &str) -> Result<UniquePtr<SimLib>>;
        fn port_count(self: &SimLib) -> u32;
        fn port_name(self: &SimLib, port: u32) -> String;
        fn port_width(self: &SimLib, port: u32) -> u32;
        fn port_is_input(self: &SimLib, port: u32) -> bool;
        fn set(self: Pin<&mut SimLib>, port: u32, words: &[u32]);
        fn get(self: &SimLib, port: u32, words: &mut [u32]);
        fn eval(self: Pin<&mut SimLib>);
        fn trace_open(self: Pin<&mut SimLib>, path: &str) -> Result<()>;
        fn trace_dump(self: Pin<&mut SimLib>, time: u64);
        fn trace_close(self: Pin<&mut SimLib>);
        fn trace_kind(self: &SimLib) -> u32;
    }
}

// SAFETY: a SimLib owns its model and its own VerilatedContext and shares no mutable state with
// other instances (each library hides its runtime), so it may move to another thread. It is not
// Sync: a Verilated model must not be evaluated from two threads at once (`&mut self` API).
unsafe impl Send for ffi::SimLib {}

/// A port of a [`Model`], by index into [`Model::ports`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortId(pub u32);

/// One instance of a Verilated design.
pub struct Model {
    lib: cxx::UniquePtr<ffi::SimLib>,
    path: PathBuf,
    ports: Vec<PortInfo>,
    cycles: u64,
    tracing: bool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("ports", &self.ports.len())
            .field("cycles", &self.cycles)
            .finish()
    }
}

impl Model {
    /// Load a model library (built by [`crate::build_library`]) and create one instance. Loading
    /// the same library again gives an independent instance.
    pub fn load(lib_path: impl AsRef<Path>) -> Result<Model> {
        let path = lib_path.as_ref().to_path_buf();
        let load_err = |detail: String| SimError::Load {
            path: path.clone(),
            detail,
        };
        let text = path
            .to_str()
            .ok_or_else(|| load_err("the path is not UTF-8".into()))?;
        let lib = ffi::sim_open(text).map_err(|e| load_err(e.what().to_string()))?;
        let ports = (0..lib.port_count())
            .map(|i| PortInfo {
                name: lib.port_name(i),
                width: lib.port_width(i),
                dir: if lib.port_is_input(i) {
                    PortDir::Input
                } else {
                    PortDir::Output
                },
            })
            .collect();
        Ok(Model {
            lib,
            path,
            ports,
            cycles: 0,
            tracing: false,
        })
    }

    /// Build (or find in the cache) the model of `top` from Verilog files and/or directories,
    /// then load it.
    pub fn build<P: AsRef<Path>>(sources: &[P], top: &str, opts: &BuildOptions) -> Result<Model> {
        Model::build_sources(&read_sources(sources)?, top, opts)
    }

    /// [`Model::build`] from Verilog text held in memory (nothing is written on a cache hit).
    pub fn build_sources(sources: &[SourceFile], top: &str, opts: &BuildOptions) -> Result<Model> {
        Model::load(build_library(sources, top, opts)?.path)
    }

    /// The library this instance came from.
    pub fn library(&self) -> &Path {
        &self.path
    }

    /// The top's ports in declaration order. Inouts are listed as inputs (they can be set).
    pub fn ports(&self) -> &[PortInfo] {
        &self.ports
    }

    pub fn port(&self, name: &str) -> Result<PortId> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .map(|i| PortId(i as u32))
            .ok_or_else(|| SimError::NoSuchPort {
                name: name.to_string(),
                known: self
                    .ports
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn info(&self, port: PortId) -> Result<&PortInfo> {
        self.ports
            .get(port.0 as usize)
            .ok_or_else(|| SimError::NoSuchPort {
                name: format!("#{}", port.0),
                known: format!("{} ports", self.ports.len()),
            })
    }

    /// Drive an input with `words` (LSW first). Fewer words than the port needs are
    /// zero-extended, extra words must be zero: bits above the port's width are an error, never
    /// silently dropped.
    pub fn set(&mut self, port: PortId, words: &[u32]) -> Result<()> {
        let p = self.info(port)?;
        if !p.dir.is_input() {
            return Err(SimError::NotAnInput {
                port: p.name.clone(),
            });
        }
        check_fits(p, words)?;
        let n = p.words();
        if words.len() >= n {
            // Words past the port's are zero (checked above).
            self.lib.pin_mut().set(port.0, &words[..n]);
        } else {
            let mut full = vec![0u32; n];
            full[..words.len()].copy_from_slice(words);
            self.lib.pin_mut().set(port.0, &full);
        }
        Ok(())
    }

    /// Drive an input with an unsigned value.
    pub fn set_u64(&mut self, port: PortId, value: u64) -> Result<()> {
        self.set(port, &[value as u32, (value >> 32) as u32])
    }

    /// Drive an input with a signed value in two's complement of the port's width; it must be
    /// representable (`-2^(w-1) <= value < 2^w`, so unsigned codes pass too).
    pub fn set_i64(&mut self, port: PortId, value: i64) -> Result<()> {
        let p = self.info(port)?;
        let w = p.width.min(64);
        let lo = if w >= 64 {
            i64::MIN
        } else {
            -(1i64 << (w - 1))
        };
        if value < lo {
            return Err(SimError::ValueTooWide {
                port: p.name.clone(),
                width: p.width,
                detail: format!("{value} is below {lo}"),
            });
        }
        let masked = if w >= 64 {
            value as u64
        } else {
            (value as u64) & ((1u64 << w) - 1)
        };
        if value >= 0 && value as u64 != masked {
            return Err(SimError::ValueTooWide {
                port: p.name.clone(),
                width: p.width,
                detail: format!("{value} needs more bits"),
            });
        }
        let low = [masked as u32, (masked >> 32) as u32];
        if value >= 0 || p.width <= 64 {
            return self.set(port, &low);
        }
        // A negative value on a port wider than 64 bits: sign-extend into the upper words.
        let n = p.words();
        let mut words = vec![u32::MAX; n];
        words[..2].copy_from_slice(&low);
        words[n - 1] &= u32::MAX >> (32 * n as u32 - p.width);
        self.set(port, &words)
    }

    /// Read any port (LSW first, `ceil(width / 32)` words).
    pub fn get(&self, port: PortId) -> Result<Vec<u32>> {
        let mut w = vec![0u32; self.info(port)?.words()];
        self.lib.get(port.0, &mut w);
        Ok(w)
    }

    /// [`Model::get`] into a caller's buffer (no allocation); `out` must have the port's words.
    pub fn get_into(&self, port: PortId, out: &mut [u32]) -> Result<()> {
        let p = self.info(port)?;
        if out.len() != p.words() {
            return Err(SimError::ValueTooWide {
                port: p.name.clone(),
                width: p.width,
                detail: format!("buffer has {} words, the port {}", out.len(), p.words()),
            });
        }
        self.lib.get(port.0, out);
        Ok(())
    }

    /// Read a port of at most 64 bits, zero-extended.
    pub fn get_u64(&self, port: PortId) -> Result<u64> {
        let p = self.info(port)?;
        if p.width > 64 {
            return Err(SimError::ValueTooWide {
                port: p.name.clone(),
                width: p.width,
                detail: "wider than 64 bits: use get()".into(),
            });
        }
        let mut w = [0u32; 2];
        self.lib.get(port.0, &mut w[..p.words()]);
        Ok(u64::from(w[0]) | u64::from(w[1]) << 32)
    }

    /// Read a port of at most 64 bits as a two's complement number of its width.
    pub fn get_i64(&self, port: PortId) -> Result<i64> {
        let v = self.get_u64(port)?;
        let w = self.info(port)?.width;
        Ok(if w >= 64 {
            v as i64
        } else {
            ((v << (64 - w)) as i64) >> (64 - w)
        })
    }

    /// Settle the model (combinational logic and any edges of the inputs just set).
    pub fn eval(&mut self) {
        self.lib.pin_mut().eval();
    }

    /// One full clock cycle on `clock`: low + eval, high + eval (the rising edge), with a trace
    /// sample after each half, at times `2n` and `2n + 1` for cycle `n`.
    pub fn tick(&mut self, clock: PortId) -> Result<()> {
        self.clock_low(clock)?;
        self.clock_high(clock)
    }

    /// The first half of [`Model::tick`]: clock low, settle, trace sample `2n`. Outputs that
    /// depend combinationally on the inputs just set (a `ready` computed from `data`) can be
    /// read now, before the edge, without the extra evaluation a `eval()` + `tick()` would cost.
    pub fn clock_low(&mut self, clock: PortId) -> Result<()> {
        self.check_clock(clock)?;
        let mut lib = self.lib.pin_mut();
        lib.as_mut().set(clock.0, &[0]);
        lib.as_mut().eval();
        if self.tracing {
            lib.as_mut().trace_dump(2 * self.cycles);
        }
        Ok(())
    }

    /// The second half of [`Model::tick`]: the rising edge, trace sample `2n + 1`; the cycle
    /// counts as run.
    pub fn clock_high(&mut self, clock: PortId) -> Result<()> {
        self.check_clock(clock)?;
        let mut lib = self.lib.pin_mut();
        lib.as_mut().set(clock.0, &[1]);
        lib.as_mut().eval();
        if self.tracing {
            lib.as_mut().trace_dump(2 * self.cycles + 1);
        }
        self.cycles += 1;
        Ok(())
    }

    fn check_clock(&self, clock: PortId) -> Result<()> {
        let p = self.info(clock)?;
        if !p.dir.is_input() || p.width != 1 {
            return Err(SimError::Driver(format!(
                "`{}` is not a 1-bit input, it cannot be a clock",
                p.name
            )));
        }
        Ok(())
    }

    /// Clock cycles run by [`Model::tick`] so far.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// Start writing a waveform to `path` (FST or VCD, see [`Model::trace_format`]); replaces any
    /// trace already open. The file is complete once [`Model::trace_close`] runs or the model
    /// is dropped.
    pub fn trace(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = path
            .to_str()
            .ok_or_else(|| SimError::Trace(format!("{} is not UTF-8", path.display())))?;
        self.lib
            .pin_mut()
            .trace_open(text)
            .map_err(|e| SimError::Trace(e.what().to_string()))?;
        self.tracing = true;
        Ok(())
    }

    /// Flush and close the trace file, if one is open.
    pub fn trace_close(&mut self) {
        self.lib.pin_mut().trace_close();
        self.tracing = false;
    }

    /// The waveform format compiled into the library (`None` if built with `TraceFormat::Off`).
    pub fn trace_format(&self) -> Option<TraceFormat> {
        match self.lib.trace_kind() {
            1 => Some(TraceFormat::Vcd),
            2 => Some(TraceFormat::Fst),
            _ => None,
        }
    }
}

/// `words` fits port `p`: no more words than it has, no bit set above its width.
fn check_fits(p: &PortInfo, words: &[u32]) -> Result<()> {
    let n = words_for(p.width);
    let err = |detail: String| SimError::ValueTooWide {
        port: p.name.clone(),
        width: p.width,
        detail,
    };
    for (i, &w) in words.iter().enumerate() {
        let allowed = if i >= n {
            0
        } else if i == n - 1 {
            u32::MAX >> (32 * n as u32 - p.width)
        } else {
            u32::MAX
        };
        if w & !allowed != 0 {
            return Err(err(format!(
                "word {i} = {w:#x} has bits above bit {}",
                p.width - 1
            )));
        }
    }
    Ok(())
}
