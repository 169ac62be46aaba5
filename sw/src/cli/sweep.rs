//! `shiftkit sweep`: run a plan's jobs locally or on Slurm, show their status, merge their results.

use crate::error::{Error, Result};
use crate::sweep::{self, collect, job, local, slurm, Counts};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum SweepCommand {
    /// Run every unfinished job of PLAN.toml (locally, or as a Slurm array with --slurm).
    Run(RunArgs),
    /// Merge the finished jobs into DIR/results.json, results.csv, Pareto plots and pareto.md.
    Collect(CollectArgs),
    /// Done / failed / pending jobs, from the job folders alone.
    Status { dir: PathBuf },
    /// Run the I-th job of the sweep in DIR (what each Slurm array task does).
    RunOne { dir: PathBuf, index: usize },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The plan: base = "COMMAND ..." and [axes] flag = [values] (see README, examples/sweeps/).
    pub plan: PathBuf,
    /// The sweep directory: DIR/jobs/<id>/ per job, results.* after collecting.
    #[arg(long)]
    pub out: PathBuf,
    /// Jobs at once (default: the CPUs; with --slurm, the array's task limit, default all).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Also run the jobs that failed before.
    #[arg(long)]
    pub retry_failed: bool,
    /// Write DIR/sweep.sbatch and submit it with sbatch (when on PATH) instead of running locally.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: wait for the array to finish, then collect.
    #[arg(long, requires = "slurm")]
    pub wait: bool,
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// Time limit of each task (sbatch --time, e.g. 2:00:00).
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    #[arg(long, requires = "slurm")]
    pub cpus_per_task: Option<u32>,
    /// Memory of each task (sbatch --mem, e.g. 4G).
    #[arg(long, requires = "slurm")]
    pub mem: Option<String>,
}

#[derive(Args, Debug)]
pub struct CollectArgs {
    pub dir: PathBuf,
    /// Folders with synthesis results for the LUT axis of training sweeps: a `shiftkit report
    /// --out` folder (its synthesis cache) or a hardware sweep's DIR. Repeatable.
    #[arg(long)]
    pub luts_from: Vec<PathBuf>,
    /// The target whose LUTs are used.
    #[arg(long, default_value = "xc7-nodsp")]
    pub lut_target: String,
}

pub fn run(cmd: &SweepCommand) -> Result<()> {
    match cmd {
        SweepCommand::Run(a) if a.slurm => run_slurm(a),
        SweepCommand::Run(a) => run_local(a),
        SweepCommand::Collect(a) => {
            let c = collect::collect(&a.dir, &a.luts_from, &a.lut_target)?;
            report_collected(&a.dir, &c);
            Ok(())
        }
        SweepCommand::Status { dir } => status(dir),
        SweepCommand::RunOne { dir, index } => match sweep::run_one(dir, *index)? {
            0 => Ok(()),
            code => Err(Error::Usage(format!(
                "job {index} of {} failed (exit {code}): see its stderr.log under {}",
                dir.display(),
                dir.join("jobs").display()
            ))),
        },
    }
}

fn report_collected(dir: &Path, c: &collect::Collected) {
    for f in &c.results.failed {
        let axes: Vec<String> = f.axes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("failed {} ({}): {}", f.id, axes.join(" "), f.last_log_line);
    }
    println!(
        "collected {} finished jobs ({} failed, {} not finished) into {} and {}; {} Pareto plots, {}",
        c.results.rows.len(),
        c.results.failed.len(),
        c.results.pending,
        dir.join("results.json").display(),
        dir.join("results.csv").display(),
        c.plots.len(),
        dir.join("pareto.md").display()
    );
}

/// Exit non-zero (one line) when jobs failed.
fn check_failures(dir: &Path, counts: Counts) -> Result<()> {
    if counts.failed == 0 {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{} of {} jobs failed: see `shiftkit sweep status {}`; rerun with --retry-failed",
        counts.failed,
        counts.done + counts.failed + counts.pending,
        dir.display()
    )))
}

fn run_local(a: &RunArgs) -> Result<()> {
    let jobs = sweep::prepare(&a.plan, &a.out)?;
    let todo = sweep::to_run(&jobs, a.retry_failed);
    let workers = a.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let dirs: Vec<PathBuf> = todo.iter().map(|&i| jobs[i].0.clone()).collect();
    let ran = local::run(&sweep::current_exe()?, &dirs, workers)?;
    let counts = Counts::of(&sweep::statuses(&a.out)?);
    println!(
        "sweep {}: {counts} (ran {}, skipped {} finished)",
        a.out.display(),
        dirs.len(),
        jobs.len() - dirs.len()
    );
    if ran.done + ran.failed > 0 || !a.out.join("results.json").exists() {
        let c = collect::collect(&a.out, &[], "xc7-nodsp")?;
        report_collected(&a.out, &c);
    }
    check_failures(&a.out, counts)
}

fn run_slurm(a: &RunArgs) -> Result<()> {
    let jobs = sweep::prepare(&a.plan, &a.out)?;
    let todo = sweep::to_run(&jobs, a.retry_failed);
    let dir = sweep::absolute(&a.out)?;
    if todo.is_empty() {
        println!("nothing to submit: {}", Counts::of(&jobs));
        return check_failures(&dir, Counts::of(&jobs));
    }
    // A failed job being retried is reset now, so `status` shows it pending until its task runs.
    for &i in &todo {
        let _ = std::fs::remove_file(jobs[i].0.join(job::DONE_FILE));
    }
    let opts = slurm::Options {
        partition: a.partition.clone(),
        time: a.time.clone(),
        cpus_per_task: a.cpus_per_task,
        mem: a.mem.clone(),
        limit: a.jobs,
    };
    let text = slurm::script(&sweep::current_exe()?, &dir, &todo, &opts);
    let script = slurm::write_script(&dir, &text)?;
    if !slurm::have_sbatch() {
        if a.wait {
            return Err(Error::Usage(format!(
                "--wait: sbatch is not on PATH; {} is written: submit it on the cluster with `sbatch {}`",
                script.display(),
                script.display()
            )));
        }
        println!(
            "sbatch is not on PATH: submit the {} jobs with `sbatch {}`",
            todo.len(),
            script.display()
        );
        return Ok(());
    }
    let id = slurm::submit(&script)?;
    println!(
        "submitted array job {id} ({} tasks) from {}; follow it with `shiftkit sweep status {}`",
        todo.len(),
        script.display(),
        dir.display()
    );
    if !a.wait {
        return Ok(());
    }
    slurm::wait(&id)?;
    let counts = Counts::of(&sweep::statuses(&dir)?);
    println!("sweep {}: {counts}", dir.display());
    let c = collect::collect(&dir, &[], "xc7-nodsp")?;
    report_collected(&dir, &c);
    check_failures(&dir, counts)
}

fn status(dir: &Path) -> Result<()> {
    let jobs = sweep::statuses(dir)?;
    let index = sweep::read_index(dir)?;
    for ((jd, st), id) in jobs.iter().zip(&index.jobs) {
        if let job::Status::Failed(d) = st {
            let axes = job::read_spec(jd)
                .map(|s| {
                    s.axes
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            println!(
                "failed  {id} ({axes}) exit {}: {}",
                d.exit_code.map_or("by signal".into(), |c| c.to_string()),
                job::last_log_line(jd)
            );
        }
    }
    println!("{}", Counts::of(&jobs));
    Ok(())
}
