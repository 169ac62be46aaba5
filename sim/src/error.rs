//! The one error type of the crate. Every failure a caller can cause or meet (missing tool, bad
//! Verilog, wrong port, wrong value width) is a variant here, never a panic.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// Verilator is missing or older than 5.0 (`found` is what `--version` printed, if anything).
    #[error(
        "verilator 5.x not found: install it with `apt-get install verilator` (or run scripts/install-deps.sh){}",
        found.as_deref().map(|f| format!("; found: {f}")).unwrap_or_default()
    )]
    VerilatorMissing { found: Option<String> },

    /// Verilator, the C++ compiler or the linker failed: the first error line and the full log.
    #[error("building the model of `{top}` failed: {first_error} (full log: {})", log.display())]
    BuildFailed {
        top: String,
        first_error: String,
        log: PathBuf,
    },

    /// A signal (Ctrl-C, SIGTERM) stopped the build; its processes and temporary folder are gone.
    #[error("the Verilator build was interrupted")]
    Interrupted,

    /// No usable sources (empty list, a directory without `.v`/`.sv` files, unreadable file).
    #[error("bad Verilog sources: {0}")]
    Sources(String),

    /// Verilator's view of the design could not be turned into a port table.
    #[error("cannot read the ports of `{top}`: {detail}")]
    Ports { top: String, detail: String },

    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// `dlopen`/`dlsym` failed or the library's `skm_new` returned null.
    #[error("cannot load model library {}: {detail}", path.display())]
    Load { path: PathBuf, detail: String },

    #[error("the model has no port `{name}` (ports: {known})")]
    NoSuchPort { name: String, known: String },

    #[error("port `{port}` is an output: only inputs can be set")]
    NotAnInput { port: String },

    /// A value does not fit the port (too many words, or bits set above the port's width).
    #[error("value for port `{port}` ({width} bits) does not fit: {detail}")]
    ValueTooWide {
        port: String,
        width: u32,
        detail: String,
    },

    #[error("tracing: {0}")]
    Trace(String),

    /// The array driver was misused or the array misbehaved (drain count, protocol violation).
    #[error("array driver: {0}")]
    Driver(String),

    /// The accelerator co-simulation was misused or the top misbehaved (watchdog, bad stream).
    #[error("accelerator co-simulation: {0}")]
    Accel(String),

    #[error(transparent)]
    Hw(#[from] shiftkit_hw::HwError),
}

impl SimError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> SimError {
        let path = path.into();
        move |source| SimError::Io { what, path, source }
    }
}

pub type Result<T, E = SimError> = std::result::Result<T, E>;
