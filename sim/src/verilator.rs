//! Finding Verilator, checking its version, and running build steps with a log.

use crate::error::{Result, SimError};
use crate::interrupt::GroupChild;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Environment variable overriding the Verilator binary (the same one `shiftkit-hw` uses).
pub const VERILATOR_ENV: &str = "SHIFTKIT_VERILATOR";

/// A usable Verilator: its binary and the first line of `--version` (part of the cache key, so
/// an upgrade rebuilds every model).
#[derive(Clone, Debug)]
pub struct Verilator {
    pub bin: PathBuf,
    pub version: String,
}

impl Verilator {
    /// `explicit`, else `$SHIFTKIT_VERILATOR`, else `verilator` on `PATH`; must be 5.x or newer.
    pub fn find(explicit: Option<&Path>) -> Result<Verilator> {
        let missing = |found: Option<String>| SimError::VerilatorMissing { found };
        let bin = match explicit {
            Some(p) => p.to_path_buf(),
            None => match std::env::var_os(VERILATOR_ENV) {
                Some(p) => PathBuf::from(p),
                None => on_path("verilator").ok_or_else(|| missing(None))?,
            },
        };
        let out = Command::new(&bin)
            .arg("--version")
            .output()
            .map_err(|_| missing(None))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text.lines().next().unwrap_or("").trim().to_string();
        match major_version(&version) {
            Some(m) if m >= 5 && out.status.success() => Ok(Verilator { bin, version }),
            _ => Err(missing(Some(format!(
                "`{}` says {:?}",
                bin.display(),
                version
            )))),
        }
    }
}

/// The major version in `Verilator 5.006 2023-01-22 rev ...`.
pub(crate) fn major_version(line: &str) -> Option<u32> {
    let v = line.strip_prefix("Verilator ")?;
    v.split('.').next()?.trim().parse().ok()
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Run one build step in its own process group (see [`crate::interrupt`]), appending its
/// command line and output to `log` and calling `tick` about once a second while it runs. On
/// failure: a [`SimError::BuildFailed`] with the first error line (the log path is fixed up by
/// the caller once the log has reached its final place); on a signal: [`SimError::Interrupted`].
pub(crate) fn run_logged(
    cmd: &mut Command,
    log: &Path,
    top: &str,
    tick: &mut dyn FnMut(),
) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(SimError::io("cannot write build log", log))?;
    let _ = writeln!(file, "$ {cmd:?}");
    let from = file.metadata().map(|m| m.len()).unwrap_or(0);
    let program = cmd.get_program().to_owned();
    let cannot_run = |e: std::io::Error| SimError::BuildFailed {
        top: top.to_string(),
        first_error: format!("cannot run {program:?}: {e}"),
        log: log.to_path_buf(),
    };
    let out = file
        .try_clone()
        .map_err(SimError::io("cannot write build log", log))?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(file);
    let status = GroupChild::spawn(cmd)
        .and_then(|mut child| child.wait(Duration::from_secs(1), tick))
        .map_err(cannot_run)?;
    let Some(status) = status else {
        return Err(SimError::Interrupted);
    };
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b[(from as usize).min(b.len())..]).into_owned())
        .unwrap_or_default();
    Err(SimError::BuildFailed {
        top: top.to_string(),
        first_error: first_error(&text)
            .unwrap_or_else(|| format!("{program:?} exited with {status}")),
        log: log.to_path_buf(),
    })
}

/// The most telling line of a failed step: Verilator's first `%Error`, else a compiler or
/// linker `error:`, else the last non-empty line.
pub(crate) fn first_error(text: &str) -> Option<String> {
    let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .find(|l| l.starts_with("%Error"))
        .or_else(|| lines().find(|l| l.contains("error:") || l.contains("undefined reference")))
        .or_else(|| lines().next_back())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_and_error_lines() {
        assert_eq!(
            major_version("Verilator 5.006 2023-01-22 rev (Debian 5.006-3)"),
            Some(5)
        );
        assert_eq!(major_version("Verilator 4.038 2020-07-11"), Some(4));
        assert_eq!(major_version("iverilog 12"), None);
        let log = "%Warning-WIDTH: x\n%Error: a.v:3:1: syntax error\n%Error: Exiting\n";
        assert_eq!(
            first_error(log).as_deref(),
            Some("%Error: a.v:3:1: syntax error")
        );
        let cc = "In file included from x\nVskm.cpp:3:1: error: 'x' was not declared\n";
        assert!(first_error(cc).is_some_and(|l| l.contains("error: 'x'")));
        assert_eq!(first_error(""), None);
    }
}
