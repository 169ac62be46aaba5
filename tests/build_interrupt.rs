//! An interrupted Verilator build (a caller's timeout sends SIGTERM; Ctrl-C takes the same path)
//! stops its make and compiler processes at once and leaves no temporary folder in the cache.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes working in `dir` (their cwd, e.g. make and the compilers) or naming it on their
/// command line (Verilator's `--Mdir`), as (pid, command line).
fn processes_in(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let cwd = std::fs::read_link(e.path().join("cwd"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        if cmdline.contains(&needle) || cwd.starts_with(&needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

#[test]
fn sigterm_mid_build_stops_the_compilers_and_removes_the_temp_folder() {
    let cache = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiftkit"))
        .args(["sim", "--design", "sq4", "--rows", "2", "--cols", "2"])
        .args(["--m", "2", "--k", "2", "--n", "2", "--json"])
        .arg(out.path().join("sim.json"))
        .env("SHIFTKIT_SIM_CACHE", cache.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until a C++ compiler runs for the build (the runtime or the model).
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let procs = processes_in(cache.path());
        if procs
            .iter()
            .any(|(_, c)| c.contains("cc1plus") || c.starts_with("g++") || c.contains("c++ "))
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build finished before a compiler was seen"
        );
        assert!(Instant::now() < deadline, "no compiler started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let killed = Instant::now();
    let exit = child.wait_with_output().unwrap();
    let mut left = processes_in(cache.path());
    while !left.is_empty() && killed.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
        left = processes_in(cache.path());
    }
    assert!(left.is_empty(), "still running 2 s after SIGTERM: {left:?}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        exit.status.signal(),
        Some(15),
        "shiftkit should end as SIGTERM would end it; stderr: {}",
        String::from_utf8_lossy(&exit.stderr)
    );
    let stderr = String::from_utf8_lossy(&exit.stderr);
    assert!(
        stderr.contains("compiling"),
        "the build's stage is shown: {stderr}"
    );
    let temps: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "temporary folders left: {temps:?}");
}
