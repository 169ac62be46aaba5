//! Local execution: N worker threads, each running one job process at a time, and one overall
//! progress bar (a periodic one-line status when stderr is not a terminal).

use super::job::{self, Outcome};
use crate::error::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a local run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub done: usize,
    pub failed: usize,
    pub interrupted: usize,
}

enum Event {
    Started,
    Ended(Result<Outcome>),
}

/// How often the status line is printed when there is no terminal.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Run the jobs in `dirs` (their `job.json` written) on `workers` threads.
pub fn run(exe: &Path, dirs: &[PathBuf], workers: usize) -> Result<RunCounts> {
    let total = dirs.len();
    let mut counts = RunCounts::default();
    if total == 0 {
        return Ok(counts);
    }
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Event>();
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let b = ProgressBar::new(total as u64);
        b.set_style(
            ProgressStyle::with_template(
                "sweep [{bar:30}] {pos}/{len} {msg} ({elapsed}, ETA {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, total) {
            let tx = tx.clone();
            let next = &next;
            // Each worker lives until the queue is empty, so its children (which die with the
            // thread that spawned them) are never killed early.
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= total {
                    break;
                }
                let _ = tx.send(Event::Started);
                let _ = tx.send(Event::Ended(job::run(exe, &dirs[i])));
            });
        }
        drop(tx);
        let mut running = 0usize;
        let mut last_status = Instant::now();
        let mut first_error = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(Event::Started) => running += 1,
                Ok(Event::Ended(r)) => {
                    running -= 1;
                    match r {
                        Ok(Outcome::Finished(d)) if d.exit_code == Some(0) => counts.done += 1,
                        Ok(Outcome::Finished(_)) => counts.failed += 1,
                        Ok(Outcome::Interrupted) => counts.interrupted += 1,
                        Err(e) => {
                            counts.failed += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                    bar.inc(1);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            let finished = counts.done + counts.failed + counts.interrupted;
            bar.set_message(format!(
                "done {}, failed {}, running {running}",
                counts.done, counts.failed
            ));
            if !tty && last_status.elapsed() >= STATUS_EVERY {
                last_status = Instant::now();
                eprintln!(
                    "sweep: {finished}/{total} finished (done {}, failed {}), running {running}, {}",
                    counts.done,
                    counts.failed,
                    eta(start.elapsed(), finished, total)
                );
            }
        }
        bar.finish_and_clear();
        match first_error {
            Some(e) => Err(e),
            None => Ok(counts),
        }
    })
}

/// "ETA 3m20s" from the mean time per finished job so far.
fn eta(elapsed: Duration, finished: usize, total: usize) -> String {
    if finished == 0 {
        return "ETA unknown".into();
    }
    let left = elapsed.as_secs_f64() / finished as f64 * (total - finished) as f64;
    let s = left.round() as u64;
    if s >= 60 {
        format!("ETA {}m{:02}s", s / 60, s % 60)
    } else {
        format!("ETA {s}s")
    }
}
