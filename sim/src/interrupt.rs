//! Build steps (Verilator, `make`, the compilers it starts) run in their own process group, so
//! that an interrupted build can stop all of them at once and leave nothing running.
//!
//! A build step's group is not the terminal's foreground group, so Ctrl-C no longer reaches the
//! compilers by itself. While at least one build runs, SIGINT, SIGTERM and SIGHUP are caught: the
//! handler kills every registered group (SIGKILL) and records the signal; the waiting build then
//! removes its temporary directory and re-raises the signal with its default action, so the
//! process ends as it would have without the handler (exit status of the signal). With no build
//! running, the handler restores the default action at once and re-raises.
//! If the process itself is SIGKILLed, `make` gets SIGTERM from the kernel (`PR_SET_PDEATHSIG`)
//! and stops its own children; the temporary directory is then removed by the next build
//! ([`crate::compile`] drops temp folders of processes that no longer exist).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

/// Process groups of running build steps (0 = free slot). Fixed size: the signal handler may
/// only touch atomics.
const SLOTS: usize = 32;
static GROUPS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static ACTIVE_BUILDS: AtomicUsize = AtomicUsize::new(0);
/// The signal that interrupted a build (0: none).
static CAUGHT: AtomicI32 = AtomicI32::new(0);
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(sig: libc::c_int) {
    if ACTIVE_BUILDS.load(Ordering::SeqCst) == 0 {
        reraise(sig);
        return;
    }
    CAUGHT.store(sig, Ordering::SeqCst);
    for g in &GROUPS {
        let pgid = g.load(Ordering::SeqCst);
        if pgid > 0 {
            // SAFETY: kill is async-signal-safe.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

/// Default action for `sig`, then deliver it to this process (ends it for INT/TERM/HUP).
fn reraise(sig: libc::c_int) {
    // SAFETY: signal and raise are async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

fn install_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in SIGNALS {
            // SAFETY: installing a handler that only uses async-signal-safe calls. A signal the
            // process ignores (e.g. SIGHUP under nohup) stays ignored.
            unsafe {
                let old = libc::signal(sig, on_signal as *const () as libc::sighandler_t);
                if old == libc::SIG_IGN {
                    libc::signal(sig, libc::SIG_IGN);
                }
            }
        }
    });
}

/// Marks a build as running (signals are caught) for as long as it lives.
pub(crate) struct BuildGuard(());

impl BuildGuard {
    pub(crate) fn new() -> BuildGuard {
        install_handlers();
        ACTIVE_BUILDS.fetch_add(1, Ordering::SeqCst);
        BuildGuard(())
    }

    /// After the build cleaned up: if a signal interrupted it, end the process the way that
    /// signal would have.
    pub(crate) fn finish(self) {
        drop(self);
        let sig = CAUGHT.load(Ordering::SeqCst);
        if sig != 0 {
            eprintln!("interrupted: stopped the Verilator build and removed its temporary folder");
            reraise(sig);
        }
    }
}

impl Drop for BuildGuard {
    fn drop(&mut self) {
        ACTIVE_BUILDS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The signal that interrupted a build, if any.
pub(crate) fn interrupted() -> Option<i32> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// A running build step in its own process group; the whole group is killed when this is
/// dropped before the step finished (an error, a panic, an interrupt).
pub(crate) struct GroupChild {
    child: Child,
    slot: Option<usize>,
    done: bool,
}

impl GroupChild {
    pub(crate) fn spawn(cmd: &mut Command) -> std::io::Result<GroupChild> {
        cmd.process_group(0);
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        let pgid = child.id() as i32;
        let slot = GROUPS.iter().position(|g| {
            g.compare_exchange(0, pgid, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        });
        let mut me = GroupChild {
            child,
            slot,
            done: false,
        };
        if interrupted().is_some() {
            me.kill();
        }
        Ok(me)
    }

    /// Wait for the step, calling `tick` about every `every` and stopping the group at once
    /// when a signal interrupts the build. `None`: interrupted.
    pub(crate) fn wait(
        &mut self,
        every: Duration,
        mut tick: impl FnMut(),
    ) -> std::io::Result<Option<ExitStatus>> {
        let poll = Duration::from_millis(50);
        let mut since_tick = Duration::ZERO;
        loop {
            if interrupted().is_some() {
                self.kill();
                return Ok(None);
            }
            if let Some(status) = self.child.try_wait()? {
                self.done = true;
                self.release();
                return Ok(Some(status));
            }
            std::thread::sleep(poll);
            since_tick += poll;
            if since_tick >= every {
                since_tick = Duration::ZERO;
                tick();
            }
        }
    }

    fn kill(&mut self) {
        let pgid = self.child.id() as i32;
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        self.done = true;
        self.release();
    }

    fn release(&mut self) {
        if let Some(s) = self.slot.take() {
            GROUPS[s].store(0, Ordering::SeqCst);
        }
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        if !self.done {
            self.kill();
        }
        self.release();
    }
}
