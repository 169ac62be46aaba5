//! Progress for long work, readable in a terminal and in a CI log.
//!
//! On a terminal (stdout and stderr both TTYs) a [`Progress`] is an indicatif bar on stderr;
//! several bars at once (demo segments side by side) share one [`indicatif::MultiProgress`] so
//! they do not overwrite each other. Otherwise it prints one status line per period
//! (`label: done/total unit (pct), elapsed 1m05s, eta 2m10s, message`) to stdout, where a log
//! captures it in order with the results; `SHIFTKIT_PROGRESS_SECS` sets the period (default 15).
//! Work that has no known total (a build) uses [`Progress::spinner`]: stage messages, each
//! printed once as a line when not on a terminal.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Environment variable: seconds between status lines when not on a terminal.
pub const PERIOD_ENV: &str = "SHIFTKIT_PROGRESS_SECS";

/// Where progress goes: bars (terminal), lines, or nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Lines,
    Hidden,
}

/// Bars on a terminal, lines otherwise.
pub fn default_mode() -> Mode {
    if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        Mode::Bar
    } else {
        Mode::Lines
    }
}

fn multi() -> &'static MultiProgress {
    static MULTI: OnceLock<MultiProgress> = OnceLock::new();
    MULTI.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Print a line without breaking the bars that are being drawn (plain `println!` otherwise).
pub fn println(line: impl AsRef<str>) {
    let line = line.as_ref();
    if default_mode() == Mode::Bar {
        let _ = multi().println(line);
    } else {
        println!("{line}");
    }
}

fn period() -> Duration {
    let secs = std::env::var(PERIOD_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(15.0);
    Duration::from_secs_f64(secs)
}

/// `1m05s`, `12s`, `0.4s`, `1h02m`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 10 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The status line of `done` of `total` after `elapsed` (the ETA assumes a steady pace).
pub fn status_line(
    label: &str,
    done: u64,
    total: u64,
    unit: &str,
    elapsed: Duration,
    msg: &str,
) -> String {
    let pct = if total > 0 {
        100.0 * done as f64 / total as f64
    } else {
        0.0
    };
    let eta = if done > 0 && total > done {
        let rest = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
        format!(", eta {}", format_duration(Duration::from_secs_f64(rest)))
    } else {
        String::new()
    };
    let msg = if msg.is_empty() {
        String::new()
    } else {
        format!(", {msg}")
    };
    format!(
        "{label}: {done}/{total} {unit} ({pct:.0}%), elapsed {}{eta}{msg}",
        format_duration(elapsed)
    )
}

struct LineState {
    pos: u64,
    msg: String,
    last_print: Instant,
}

/// A progress indicator; see the module documentation.
pub struct Progress {
    mode: Mode,
    bar: Option<ProgressBar>,
    label: String,
    unit: String,
    total: u64,
    start: Instant,
    period: Duration,
    /// Spinner lines go to stderr (a build's stages are diagnostics), counted work to stdout.
    to_stderr: bool,
    state: Mutex<LineState>,
}

impl Progress {
    /// Counted work: `total` `unit`s (e.g. epochs).
    pub fn new(label: &str, total: u64, unit: &str) -> Progress {
        Progress::with_mode(default_mode(), label, total, unit)
    }

    pub fn with_mode(mode: Mode, label: &str, total: u64, unit: &str) -> Progress {
        let bar = (mode == Mode::Bar).then(|| {
            let b = multi().add(ProgressBar::new(total));
            b.set_style(
                ProgressStyle::with_template(&format!(
                    "{{prefix:>14}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} ({{elapsed}}, eta {{eta}})"
                ))
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(label.to_string());
            b
        });
        Progress::build(mode, bar, label, total, unit, false)
    }

    /// Work without a known total, told in stages ([`Progress::stage`]); lines go to stderr.
    pub fn spinner(label: &str) -> Progress {
        let mode = if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Lines
        };
        let bar = (mode == Mode::Bar).then(|| {
            let b = multi().add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_prefix(label.to_string());
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress::build(mode, bar, label, 0, "", true)
    }

    pub fn hidden() -> Progress {
        Progress::build(Mode::Hidden, None, "", 0, "", false)
    }

    fn build(
        mode: Mode,
        bar: Option<ProgressBar>,
        label: &str,
        total: u64,
        unit: &str,
        to_stderr: bool,
    ) -> Progress {
        let now = Instant::now();
        Progress {
            mode,
            bar,
            label: label.to_string(),
            unit: unit.to_string(),
            total,
            start: now,
            period: period(),
            to_stderr,
            state: Mutex::new(LineState {
                pos: 0,
                msg: String::new(),
                last_print: now,
            }),
        }
    }

    fn emit(&self, line: &str) {
        if self.to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }

    /// Print the status line if a period has passed since the last one.
    fn maybe_line(&self, state: &mut LineState) {
        if self.mode == Mode::Lines && state.last_print.elapsed() >= self.period {
            state.last_print = Instant::now();
            self.emit(&status_line(
                &self.label,
                state.pos,
                self.total,
                &self.unit,
                self.start.elapsed(),
                &state.msg,
            ));
        }
    }

    pub fn set_position(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.pos = pos;
        self.maybe_line(&mut s);
    }

    pub fn inc(&self, n: u64) {
        let pos = self.state.lock().map_or(0, |s| s.pos) + n;
        self.set_position(pos);
    }

    /// A short status next to the count (e.g. the accuracies); shown with the next update.
    pub fn set_message(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if let Some(b) = &self.bar {
            b.set_message(msg.clone());
        }
        if let Ok(mut s) = self.state.lock() {
            s.msg = msg;
        }
    }

    /// A new stage of spinner work: shown on the spinner, or printed once as a line.
    pub fn stage(&self, msg: impl Into<String>) {
        let msg = msg.into();
        match (&self.bar, self.mode) {
            (Some(b), _) => b.set_message(msg),
            (None, Mode::Lines) => {
                if let Ok(mut s) = self.state.lock() {
                    s.last_print = Instant::now();
                }
                self.emit(&format!(
                    "{}: {msg} (elapsed {})",
                    self.label,
                    format_duration(self.start.elapsed())
                ))
            }
            _ => {}
        }
    }

    /// Update the spinner's message (a counter inside a stage); printed as a line at most once
    /// a period when not on a terminal.
    pub fn detail(&self, msg: impl Into<String>) {
        let msg = msg.into();
        if let Some(b) = &self.bar {
            b.set_message(msg);
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.mode == Mode::Lines && s.last_print.elapsed() >= self.period {
            s.last_print = Instant::now();
            self.emit(&format!(
                "{}: {msg} (elapsed {})",
                self.label,
                format_duration(self.start.elapsed())
            ));
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Remove the bar; in line mode print the final count (counted work only).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
            multi().remove(b);
        }
        if self.mode == Mode::Lines && !self.to_stderr {
            let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            self.emit(&status_line(
                &self.label,
                s.pos,
                self.total,
                &self.unit,
                self.start.elapsed(),
                &if s.msg.is_empty() {
                    "done".to_string()
                } else {
                    format!("done, {}", s.msg)
                },
            ));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_state_count_elapsed_and_eta() {
        let l = status_line(
            "dense",
            250,
            1000,
            "epochs",
            Duration::from_secs(30),
            "test 0.50",
        );
        assert_eq!(
            l,
            "dense: 250/1000 epochs (25%), elapsed 30s, eta 1m30s, test 0.50"
        );
        let done = status_line("x", 10, 10, "files", Duration::from_secs(3725), "");
        assert_eq!(done, "x: 10/10 files (100%), elapsed 1h02m");
        assert_eq!(format_duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(format_duration(Duration::from_millis(2340)), "2.3s");
    }
}
