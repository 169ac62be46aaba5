//! One job's folder, `DIR/jobs/<id>/`: `job.json` (its exact command line), `stdout.log` and
//! `stderr.log`, the command's own outputs, and `done`, written last and atomically with the
//! exit status. A job without `done` has not finished (never started, running, or killed).

use crate::error::{Error, Result};
use crate::npy::write_bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub const JOB_FILE: &str = "job.json";
pub const DONE_FILE: &str = "done";
pub const STDOUT_FILE: &str = "stdout.log";
pub const STDERR_FILE: &str = "stderr.log";

/// What `job.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub id: String,
    /// The axis values, as they went on the command line.
    pub axes: BTreeMap<String, String>,
    /// The arguments after the binary, output flags included.
    pub args: Vec<String>,
    /// The same as one shell line (for reading and for running by hand).
    pub command: String,
}

/// What `done` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// The exit code, or `None` when a signal ended the job.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Wall time of the `shiftkit` process.
    pub wall_s: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Done,
    Failed(Done),
    /// Not finished: never started, still running, or interrupted.
    Pending,
}

pub fn job_dir(sweep_dir: &Path, id: &str) -> PathBuf {
    sweep_dir.join("jobs").join(id)
}

/// The job's status from its folder alone (no scheduler involved).
pub fn status(dir: &Path) -> Status {
    let done = std::fs::read(dir.join(DONE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Done>(&b).ok());
    match done {
        Some(d) if d.exit_code == Some(0) => Status::Done,
        Some(d) => Status::Failed(d),
        None => Status::Pending,
    }
}

/// Shell-quote one word for `JobSpec::command`.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub fn command_line(args: &[String]) -> String {
    std::iter::once("shiftkit".to_string())
        .chain(args.iter().map(|a| quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Write `job.json` unless it already holds `spec` (a rerun of a big sweep does no writes).
pub fn write_spec(dir: &Path, spec: &JobSpec) -> Result<()> {
    let path = dir.join(JOB_FILE);
    let text = serde_json::to_string_pretty(spec).map_err(|e| Error::Usage(e.to_string()))?;
    if std::fs::read(&path).ok().as_deref() == Some(text.as_bytes()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::file(dir, format!("cannot create the job folder: {e}")))?;
    write_bytes(&path, text.as_bytes())
}

pub fn read_spec(dir: &Path) -> Result<JobSpec> {
    let path = dir.join(JOB_FILE);
    let bytes =
        std::fs::read(&path).map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::file(&path, format!("not a job.json: {e}")))
}

/// How a job run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Finished(Done),
    /// SIGINT / SIGTERM / SIGHUP (Ctrl-C, scancel, a closed terminal): no `done` is written,
    /// so the job counts as unfinished and the next run starts it again.
    Interrupted,
}

/// Run the job in `dir` (its `job.json` already written) with the `shiftkit` binary `exe`.
/// The child dies with the calling thread (PR_SET_PDEATHSIG), so a killed runner leaves no
/// orphan writing into a folder that the next run reuses; call this from a thread that lives
/// until the child has exited.
pub fn run(exe: &Path, dir: &Path) -> Result<Outcome> {
    let spec = read_spec(dir)?;
    let _ = std::fs::remove_file(dir.join(DONE_FILE)); // a failed job being retried
    let log = |name: &str| {
        let p = dir.join(name);
        std::fs::File::create(&p).map_err(|e| Error::file(&p, format!("cannot create: {e}")))
    };
    let mut cmd = Command::new(exe);
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(log(STDOUT_FILE)?)
        .stderr(log(STDERR_FILE)?);
    die_with_parent(&mut cmd);
    let start = Instant::now();
    let status = cmd
        .spawn()
        .and_then(|mut c| c.wait())
        .map_err(|e| Error::file(exe, format!("cannot run: {e}")))?;
    let wall_s = start.elapsed().as_secs_f64();
    use std::os::unix::process::ExitStatusExt;
    let signal = status.signal();
    if matches!(signal, Some(libc::SIGINT | libc::SIGTERM | libc::SIGHUP)) {
        return Ok(Outcome::Interrupted);
    }
    let done = Done {
        exit_code: status.code(),
        signal,
        wall_s,
    };
    let text = serde_json::to_string_pretty(&done).map_err(|e| Error::Usage(e.to_string()))?;
    write_bytes(&dir.join(DONE_FILE), text.as_bytes())?;
    Ok(Outcome::Finished(done))
}

#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// The last non-empty line of the job's stderr, else of its stdout (why a job failed).
pub fn last_log_line(dir: &Path) -> String {
    for name in [STDERR_FILE, STDOUT_FILE] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            if let Some(l) = text.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
                return l.to_string();
            }
        }
    }
    String::new()
}
