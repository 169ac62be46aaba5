//! The one error type of the hardware crate. Every message says what is wrong and how to fix it.

use crate::config::ConfigError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HwError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{what} is not implemented yet: {hint}")]
    Unsupported { what: String, hint: String },
    #[error("internal error: the generated design failed rust-hdl's structural check: {0}")]
    DesignCheck(String),
    #[error("internal error: renaming identifiers for Verilog would merge `{a}` and `{b}`")]
    NameClash { a: String, b: String },
    #[error("{tool} was not found on PATH (or in ${env}); install it (e.g. `apt-get install {package}`) or point ${env} at the binary")]
    ToolMissing {
        tool: String,
        env: String,
        package: String,
    },
    #[error("{tool} failed ({status}) on {input}:\n{output}")]
    ToolFailed {
        tool: String,
        status: String,
        input: String,
        output: String,
    },
    #[error("verilator lint of {input} reported {count} warning(s):\n{output}")]
    LintWarnings {
        input: String,
        count: usize,
        output: String,
    },
    #[error("could not parse {what}: {detail}")]
    Parse { what: String, detail: String },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl HwError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> HwError {
        let path = path.into();
        move |source| HwError::Io {
            action,
            path,
            source,
        }
    }
}
