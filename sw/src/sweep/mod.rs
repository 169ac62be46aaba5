//! Design-space sweeps: a plan's jobs run as separate `shiftkit` processes, each in its own
//! folder `DIR/jobs/<id>/`, on local workers ([`local`]) or as a Slurm array ([`slurm`]), then
//! merged into `results.json`, `results.csv`, Pareto plots and `pareto.md` ([`collect`]).
//!
//! The folders are the only state: a job is finished when its `done` marker exists, so a rerun
//! (after Ctrl-C, a killed runner, or on another machine) skips what finished and needs no
//! scheduler accounting.

pub mod collect;
pub mod job;
pub mod local;
mod pareto;
pub mod plan;
pub mod slurm;

use crate::error::{Error, Result};
use crate::npy::write_bytes;
use job::{JobSpec, Status};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `DIR/sweep.json`: the plan's jobs in order (`run-one DIR I` runs the I-th) and its axes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Index {
    pub base: String,
    pub axes: Vec<String>,
    pub jobs: Vec<String>,
}

pub const INDEX_FILE: &str = "sweep.json";
pub const PLAN_COPY: &str = "plan.toml";

pub fn read_index(dir: &Path) -> Result<Index> {
    let path = dir.join(INDEX_FILE);
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::file(
            &path,
            format!("cannot read ({e}): is this the DIR of a `shiftkit sweep run`?"),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::file(&path, format!("not a sweep.json: {e}")))
}

/// Absolute, so job command lines work from any working directory (Slurm runs tasks elsewhere).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::file(p, format!("cannot resolve the path: {e}")))
}

/// Create `dir`, copy the plan, write `sweep.json` and every job's `job.json`; return each job's
/// folder and status. Nothing is written for a plan that does not load.
pub fn prepare(plan_path: &Path, dir: &Path) -> Result<Vec<(PathBuf, Status)>> {
    let plan = plan::load(plan_path, &crate::cli::command())?;
    let dir = absolute(dir)?;
    std::fs::create_dir_all(dir.join("jobs"))
        .map_err(|e| Error::file(&dir, format!("cannot create the sweep directory: {e}")))?;
    let text = std::fs::read(plan_path)
        .map_err(|e| Error::file(plan_path, format!("cannot read: {e}")))?;
    if std::fs::read(dir.join(PLAN_COPY)).ok() != Some(text.clone()) {
        write_bytes(&dir.join(PLAN_COPY), &text)?;
    }
    let index = Index {
        base: plan.base.join(" "),
        axes: plan.axis_names(),
        jobs: plan.jobs.iter().map(|j| j.id.clone()).collect(),
    };
    let json = serde_json::to_vec_pretty(&index).map_err(|e| Error::Usage(e.to_string()))?;
    if std::fs::read(dir.join(INDEX_FILE)).ok() != Some(json.clone()) {
        write_bytes(&dir.join(INDEX_FILE), &json)?;
    }
    let mut out = Vec::with_capacity(plan.jobs.len());
    for j in &plan.jobs {
        let jd = job::job_dir(&dir, &j.id);
        let st = job::status(&jd);
        if st != Status::Done || !jd.join(job::JOB_FILE).exists() {
            let mut args = j.args.clone();
            args.extend(plan.output.flags(&jd));
            let spec = JobSpec {
                id: j.id.clone(),
                axes: j.axes.iter().map(|(f, v)| (f.clone(), v.text())).collect(),
                command: job::command_line(&args),
                args,
            };
            job::write_spec(&jd, &spec)?;
        }
        out.push((jd, st));
    }
    Ok(out)
}

/// The folders of a sweep's jobs, in plan order, with their status.
pub fn statuses(dir: &Path) -> Result<Vec<(PathBuf, Status)>> {
    let index = read_index(dir)?;
    Ok(index
        .jobs
        .iter()
        .map(|id| {
            let d = job::job_dir(dir, id);
            let s = job::status(&d);
            (d, s)
        })
        .collect())
}

/// Done / failed / pending counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub done: usize,
    pub failed: usize,
    pub pending: usize,
}

impl Counts {
    pub fn of(jobs: &[(PathBuf, Status)]) -> Counts {
        let mut c = Counts::default();
        for (_, s) in jobs {
            match s {
                Status::Done => c.done += 1,
                Status::Failed(_) => c.failed += 1,
                Status::Pending => c.pending += 1,
            }
        }
        c
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} jobs: {} done, {} failed, {} pending",
            self.done + self.failed + self.pending,
            self.done,
            self.failed,
            self.pending
        )
    }
}

/// Which jobs a run (local or a Slurm submission) starts: unfinished ones, and the failed ones
/// with `retry_failed`.
pub fn to_run(jobs: &[(PathBuf, Status)], retry_failed: bool) -> Vec<usize> {
    jobs.iter()
        .enumerate()
        .filter(|(_, (_, s))| match s {
            Status::Pending => true,
            Status::Failed(_) => retry_failed,
            Status::Done => false,
        })
        .map(|(i, _)| i)
        .collect()
}

/// `shiftkit sweep run-one DIR I`: run the I-th job of the plan unless it is done; the exit code
/// is the job's (so the scheduler sees a failure as one).
pub fn run_one(dir: &Path, index: usize) -> Result<i32> {
    let dir = absolute(dir)?;
    let idx = read_index(&dir)?;
    let id = idx.jobs.get(index).ok_or_else(|| {
        Error::Usage(format!(
            "job {index} does not exist: the sweep in {} has jobs 0..{}",
            dir.display(),
            idx.jobs.len().saturating_sub(1)
        ))
    })?;
    let jd = job::job_dir(&dir, id);
    if job::status(&jd) == Status::Done {
        println!("job {index} ({id}) is already done");
        return Ok(0);
    }
    let exe = current_exe()?;
    Ok(match job::run(&exe, &jd)? {
        job::Outcome::Finished(d) => d.exit_code.unwrap_or(128 + d.signal.unwrap_or(0)),
        job::Outcome::Interrupted => 130,
    })
}

pub fn current_exe() -> Result<PathBuf> {
    std::env::current_exe()
        .map_err(|e| Error::Usage(format!("cannot find the shiftkit binary: {e}")))
}
