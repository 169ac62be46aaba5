//! Slurm execution: `DIR/sweep.sbatch`, an array job whose task i runs one unfinished job
//! through `shiftkit sweep run-one DIR I`, submitted with `sbatch` when it is on PATH. The job
//! folders stay the only state, so `sweep status` needs no Slurm accounting and a resubmission
//! puts only the unfinished jobs into the array.

use crate::error::{Error, Result};
use crate::npy::write_bytes;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const SCRIPT_FILE: &str = "sweep.sbatch";

/// `#SBATCH` options from the command line.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub partition: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: Option<u32>,
    pub mem: Option<String>,
    /// At most this many tasks at once (the array's `%L`); default: all.
    pub limit: Option<usize>,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The batch script for the plan jobs `indices` (positions in `sweep.json`).
pub fn script(exe: &Path, dir: &Path, indices: &[usize], opts: &Options) -> String {
    let n = indices.len();
    let limit = opts.limit.unwrap_or(n).clamp(1, n.max(1));
    let logs = dir.join("slurm");
    let mut s = String::from("#!/bin/bash\n# Written by `shiftkit sweep run --slurm`: one array task per unfinished job.\n");
    s.push_str("#SBATCH --job-name=shiftkit-sweep\n");
    s.push_str(&format!(
        "#SBATCH --array=0-{}%{limit}\n",
        n.saturating_sub(1)
    ));
    s.push_str(&format!(
        "#SBATCH --output={}/%A_%a.out\n",
        logs.to_string_lossy()
    ));
    if let Some(p) = &opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &opts.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(c) = opts.cpus_per_task {
        s.push_str(&format!("#SBATCH --cpus-per-task={c}\n"));
    }
    if let Some(m) = &opts.mem {
        s.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    let list: Vec<String> = indices.iter().map(|i| i.to_string()).collect();
    s.push_str("set -euo pipefail\n");
    s.push_str("# Array task -> the job's position in sweep.json.\n");
    s.push_str(&format!("JOBS=({})\n", list.join(" ")));
    s.push_str(&format!(
        "exec {} sweep run-one {} \"${{JOBS[$SLURM_ARRAY_TASK_ID]}}\"\n",
        quote(&exe.to_string_lossy()),
        quote(&dir.to_string_lossy())
    ));
    s
}

/// Write `DIR/sweep.sbatch` (and the log folder Slurm writes into).
pub fn write_script(dir: &Path, text: &str) -> Result<PathBuf> {
    let logs = dir.join("slurm");
    std::fs::create_dir_all(&logs)
        .map_err(|e| Error::file(&logs, format!("cannot create: {e}")))?;
    let path = dir.join(SCRIPT_FILE);
    write_bytes(&path, text.as_bytes())?;
    Ok(path)
}

/// Whether `sbatch` is on PATH.
pub fn have_sbatch() -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("sbatch").is_file()))
}

/// Submit the script; return the array's job id.
pub fn submit(script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|e| Error::Usage(format!("cannot run sbatch: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Usage(format!(
            "sbatch {} failed: {}",
            script.display(),
            msg.trim().replace('\n', " ")
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // `--parsable` prints "jobid" or "jobid;cluster".
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() {
        return Err(Error::Usage("sbatch printed no job id".into()));
    }
    Ok(id)
}

/// Wait until no task of array `job` is pending or running. Polls `squeue` (faster than
/// `sbatch --wait`, whose own polling returns in 2-10 s steps).
pub fn wait(job: &str) -> Result<()> {
    let mut failures = 0;
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-j", job, "-o", "%i"])
            .output()
            .map_err(|e| Error::Usage(format!("cannot run squeue: {e}")))?;
        if out.status.success() {
            failures = 0;
            if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return Ok(());
            }
        } else {
            // An array that left the controller's memory is reported as an invalid id.
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("Invalid job id") {
                return Ok(());
            }
            failures += 1;
            if failures > 20 {
                return Err(Error::Usage(format!(
                    "squeue keeps failing while waiting for job {job}: {}",
                    err.trim().replace('\n', " ")
                )));
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
