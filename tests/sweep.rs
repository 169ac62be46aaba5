//! `shiftkit sweep` end to end through the binary: a local sweep of tiny GEMMs and a few-epoch
//! grokking run, a runner SIGKILLed half-way and resumed, bad plans, and a real Slurm array
//! (CI starts a single-node cluster with scripts/slurm-local.sh and sets SHIFTKIT_REQUIRE_SLURM=1).

mod common;

use common::shiftkit;

use serde_json::Value;
use shiftkit::npy::write_matrix;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `shiftkit sweep run PLAN --out DIR EXTRA...`, which must succeed: its stdout.
fn sweep_run(plan: &str, dir: &Path, extra: &[&str]) -> String {
    let dir = s(dir);
    let mut args = vec!["sweep", "run", plan, "--out", &dir];
    args.extend_from_slice(extra);
    ok(&shiftkit(&args))
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p:?}: {e}")))
        .unwrap()
}

/// Two small operands for gemm jobs.
fn operands(dir: &Path) -> (String, String) {
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    write_matrix(&a, &common::sample(6, 12, 1, 8.0)).unwrap();
    write_matrix(&b, &common::sample(12, 5, 2, 1.0)).unwrap();
    (s(&a), s(&b))
}

fn write_plan(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    s(&p)
}

/// The job folders' names under DIR/jobs.
fn job_ids(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("jobs"))
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn local_sweep_of_gemms_and_grokking_merges_the_expected_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = operands(tmp.path());
    let plan = write_plan(
        tmp.path(),
        "gemm.toml",
        &format!(
            r#"base = "gemm --a {a} --b {b}"
zip = [["rows", "cols"]]
[axes]
format = ["sq4", "sq6", "fp16"]
rows = [2, 4]
cols = [3, 4]
[[exclude]]
format = "fp16"
rows = 4
"#
        ),
    );
    let dir = tmp.path().join("gemm-sweep");
    let out = sweep_run(&plan, &dir, &["--jobs", "2"]);
    assert!(out.contains("5 jobs: 5 done, 0 failed, 0 pending"), "{out}");
    let res = read_json(&dir.join("results.json"));
    let rows = res["rows"].as_array().unwrap();
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            let ax = |k: &str| r["axes"][k].as_str().unwrap().to_string();
            (ax("format"), ax("rows"), ax("cols"))
        })
        .collect();
    let want: Vec<(String, String, String)> = [
        ("sq4", "2", "3"),
        ("sq4", "4", "4"),
        ("sq6", "2", "3"),
        ("sq6", "4", "4"),
        ("fp16", "2", "3"),
    ]
    .iter()
    .map(|(f, r, c)| (f.to_string(), r.to_string(), c.to_string()))
    .collect();
    assert_eq!(
        got, want,
        "plan order, rows x cols zipped, fp16 4x4 excluded"
    );
    for r in rows {
        assert_eq!(r["status"], "done");
        let id = r["id"].as_str().unwrap();
        let jd = dir.join("jobs").join(id);
        // The row holds what the job's gemm wrote, flattened.
        let result = read_json(&jd.join("result.json"));
        assert_eq!(r["results"]["result.counters.macs"], 6 * 12 * 5);
        assert_eq!(r["results"]["result.format"], r["axes"]["format"]);
        assert_eq!(
            r["results"]["result.counters.cycles"],
            result["counters"]["cycles"]
        );
        assert_eq!(
            r["results"]["result.array.rows"].to_string(),
            r["axes"]["rows"].as_str().unwrap()
        );
        let spec = read_json(&jd.join("job.json"));
        let args: Vec<&str> = spec["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            args.contains(&"--json") && args.contains(&"--out"),
            "{args:?}"
        );
        assert_eq!(read_json(&jd.join("done"))["exit_code"], 0);
        assert!(jd.join("stdout.log").exists() && jd.join("stderr.log").exists());
    }
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(&header[..4], &["format", "rows", "cols", "status"]);
    assert!(header.contains(&"result.counters.cycles"), "{header:?}");
    assert_eq!(csv.lines().count(), 6);

    // A second run does nothing; one more axis value adds one job and keeps the old ids.
    let before = job_ids(&dir);
    let out = sweep_run(&plan, &dir, &[]);
    assert!(out.contains("ran 0, skipped 5 finished"), "{out}");
    let text = std::fs::read_to_string(&plan)
        .unwrap()
        .replace(r#""sq6", "fp16"]"#, r#""sq6", "fp16", "sq8"]"#);
    std::fs::write(&plan, text).unwrap();
    let out = sweep_run(&plan, &dir, &[]);
    assert!(out.contains("ran 2, skipped 5 finished"), "{out}");
    let after = job_ids(&dir);
    assert!(before.iter().all(|id| after.contains(id)));
    assert_eq!(after.len(), 7);

    // A few-epoch grokking sweep: summary.json fields, and a Pareto plot of accuracy vs cycles.
    let plan = write_plan(
        tmp.path(),
        "grok.toml",
        r#"base = "train grokking --p 11 --epochs 20 --eval-every 10"
[axes]
format = ["sq4", "fp16"]
seed = [0]
"#,
    );
    let dir = tmp.path().join("grok-sweep");
    sweep_run(&plan, &dir, &[]);
    let res = read_json(&dir.join("results.json"));
    let rows = res["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (r, f) in rows.iter().zip(["sq4", "fp16"]) {
        assert_eq!(r["axes"]["format"], f);
        assert_eq!(r["results"]["summary.format"], f);
        assert_eq!(r["results"]["summary.epochs_run"], 20);
        assert_eq!(r["results"]["summary.p"], 11);
        assert!(r["results"]["summary.counters.cycles"].as_u64().unwrap() > 0);
    }
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert!(csv.starts_with("format,seed,status,"), "{csv}");
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .contains("summary.generalized_epoch"));
    let png = std::fs::read(dir.join("pareto-accuracy-vs-cycles.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let md = std::fs::read_to_string(dir.join("pareto.md")).unwrap();
    assert!(
        md.contains("final test accuracy vs modelled cycles"),
        "{md}"
    );
    assert!(md.contains("| format | seed |"), "{md}");
}

/// A hardware sweep on real place and route (yosys, nextpnr-ice40, icepack): each row carries
/// the job's own Fmax and logic cells, and pareto.md lists exactly the non-dominated designs.
#[test]
fn bitstream_sweep_plots_fmax_against_logic_cells_from_place_and_route() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(
        tmp.path(),
        "bits.toml",
        r#"base = "bitstream --board icebreaker --rows 1 --cols 1"
[axes]
design = ["accel-sq4", "accel-sq6"]
"#,
    );
    let dir = tmp.path().join("bits");
    let out = sweep_run(&plan, &dir, &["--jobs", "2"]);
    assert!(out.contains("2 jobs: 2 done, 0 failed, 0 pending"), "{out}");
    let res = read_json(&dir.join("results.json"));
    let rows = res["rows"].as_array().unwrap();
    let mut points = Vec::new();
    for r in rows {
        let id = r["id"].as_str().unwrap().to_string();
        let timing = read_json(&dir.join("jobs").join(&id).join("timing.json"));
        let fmax = r["results"]["timing.fmax_mhz"].as_f64().unwrap();
        let cells = r["results"]["timing.utilization.ICESTORM_LC.used"]
            .as_f64()
            .unwrap();
        assert_eq!(fmax, timing["fmax_mhz"].as_f64().unwrap());
        assert!(fmax > 1.0 && cells > 100.0 && cells <= 5280.0, "{r}");
        points.push((id, cells, fmax));
    }
    let png = std::fs::read(dir.join("pareto-luts-vs-fmax.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let md = std::fs::read_to_string(dir.join("pareto.md")).unwrap();
    assert!(
        md.contains("## Fmax vs logic cells (place and route)"),
        "{md}"
    );
    for (id, c, f) in &points {
        let dominated = points
            .iter()
            .any(|(o, oc, of)| o != id && oc <= c && of >= f && (oc < c || of > f));
        assert_eq!(
            md.contains(&format!("| {id} |")),
            !dominated,
            "{id} ({c} cells, {f} MHz) listed iff Pareto-optimal:\n{md}"
        );
    }
}

/// results.json without the wall-clock fields (the only values that differ between two runs of
/// the same jobs).
fn without_times(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.ends_with("wall_s") && !k.ends_with("s_per_1000_epochs"))
                .map(|(k, x)| (k.clone(), without_times(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_times).collect()),
        other => other.clone(),
    }
}

fn done_files(dir: &Path) -> BTreeMap<String, (Vec<u8>, Vec<u8>)> {
    job_ids(dir)
        .into_iter()
        .filter_map(|id| {
            let jd = dir.join("jobs").join(&id);
            let done = std::fs::read(jd.join("done")).ok()?;
            let summary = std::fs::read(jd.join("summary.json")).ok()?;
            Some((id, (done, summary)))
        })
        .collect()
}

#[test]
fn a_sweep_killed_half_way_resumes_to_the_same_results_and_reruns_nothing_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = write_plan(
        tmp.path(),
        "plan.toml",
        r#"base = "train grokking --p 11 --epochs 20 --eval-every 10"
[axes]
seed = [0, 1, 2, 3, 4]
format = ["sq4"]
"#,
    );
    let killed = tmp.path().join("killed");
    let mut runner = Command::new(env!("CARGO_BIN_EXE_shiftkit"))
        .args(["sweep", "run", &plan, "--out", &s(&killed), "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while done_files(&killed).len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    runner.kill().unwrap(); // SIGKILL
    runner.wait().unwrap();
    // The job that was running dies with its runner (no orphan finishes it behind our back):
    // after longer than a job takes, every folder with a summary also has its done marker.
    std::thread::sleep(Duration::from_millis(1500));
    for id in job_ids(&killed) {
        let jd = killed.join("jobs").join(&id);
        assert_eq!(
            jd.join("summary.json").exists(),
            jd.join("done").exists(),
            "job {id} went on after its runner was killed"
        );
    }
    let finished = done_files(&killed);
    assert!(
        finished.len() < 5,
        "the runner was killed before the end ({} done)",
        finished.len()
    );
    assert!(!killed.join("results.json").exists());

    let out = sweep_run(&plan, &killed, &[]);
    assert!(
        out.contains(&format!("skipped {} finished", finished.len())),
        "{out}"
    );
    let after = done_files(&killed);
    assert_eq!(after.len(), 5);
    for (id, files) in &finished {
        // Byte-identical done marker and summary (whose wall time would differ on a rerun).
        assert_eq!(&after[id], files, "job {id} was run again");
    }

    let straight = tmp.path().join("straight");
    sweep_run(&plan, &straight, &[]);
    let a = without_times(&read_json(&killed.join("results.json")));
    let b = without_times(&read_json(&straight.join("results.json")));
    assert_eq!(a, b);
    assert_eq!(a["rows"].as_array().unwrap().len(), 5);
}

#[test]
fn bad_plans_get_one_line_naming_the_key_and_create_no_job_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let base = r#"base = "train grokking --p 11 --epochs 10""#;
    let cases: [(&str, String, &str); 7] = [
        (
            "unknown axis flag",
            format!("{base}\n[axes]\nformt = [\"sq4\"]\n"),
            "axes.formt",
        ),
        (
            "empty axis",
            format!("{base}\n[axes]\nformat = [\"sq4\"]\nseed = []\n"),
            "axes.seed",
        ),
        (
            "TOML error",
            format!("{base}\n[axes]\nformat = [\"sq4\",\nseed = 1\n"),
            "line 4",
        ),
        (
            "exclude matching nothing",
            format!(
                "{base}\nzip = [[\"rows\", \"cols\"]]\n[axes]\nrows = [2, 4]\ncols = [2, 4]\n[[exclude]]\nrows = 2\ncols = 4\n"
            ),
            "exclude[0]: matches no job",
        ),
        (
            "exclude with a value no axis has",
            format!("{base}\n[axes]\nseed = [0, 1]\n[[exclude]]\nseed = 7\n"),
            "exclude[0].seed",
        ),
        (
            "a value the flag rejects",
            format!("{base}\n[axes]\nformat = [\"sq4\", \"sq9\"]\n"),
            "format=sq9",
        ),
        (
            "the runner's own flag in base",
            "base = \"train grokking --out x\"\n[axes]\nseed = [0]\n".to_string(),
            "--out",
        ),
    ];
    for (what, text, needle) in cases {
        let plan = write_plan(tmp.path(), "bad.toml", &text);
        let dir = tmp.path().join("out");
        let out = shiftkit(&["sweep", "run", &plan, "--out", &s(&dir)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: accepted");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: {stderr:?}");
        assert!(
            stderr.contains(needle),
            "{what}: {stderr:?} lacks {needle:?}"
        );
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert!(!dir.exists(), "{what}: created {dir:?}");
    }
}

/// Whether a Slurm cluster answers here (sbatch on PATH and the controller up: the client
/// packages alone are not a cluster); in CI (SHIFTKIT_REQUIRE_SLURM=1) its absence is a failure.
fn slurm_available() -> bool {
    let runs = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let found = runs("sbatch", "--version") && runs("scontrol", "ping");
    if !found {
        if std::env::var("SHIFTKIT_REQUIRE_SLURM").as_deref() == Ok("1") {
            panic!("SHIFTKIT_REQUIRE_SLURM=1 but no Slurm controller answers (sbatch --version, scontrol ping): did scripts/slurm-local.sh start run?");
        }
        eprintln!(
            "skipped: no Slurm cluster here (start a local one with `scripts/slurm-local.sh start`)"
        );
    }
    found
}

#[test]
fn slurm_array_sweep_end_to_end_with_a_failed_job_resubmitted() {
    if !slurm_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = operands(tmp.path());
    // The second operand is missing at first: its jobs fail, then succeed once it exists.
    let late: PathBuf = tmp.path().join("late.npy");
    let plan = write_plan(
        tmp.path(),
        "plan.toml",
        &format!(
            r#"base = "gemm --b {b} --format sq4"
[axes]
a = ["{a}", "{late}"]
rows = [2, 4]
"#,
            late = s(&late)
        ),
    );
    let dir = tmp.path().join("sweep");
    let run = |extra: &[&str]| {
        let mut args = vec!["sweep", "run", &plan, "--out"];
        let d = s(&dir);
        args.push(&d);
        args.extend(["--slurm", "--wait"]);
        args.extend(extra);
        shiftkit(&args)
    };
    let first = run(&[]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(!first.status.success(), "the missing operand must fail");
    assert!(stderr.contains("2 of 4 jobs failed"), "{stderr}");
    let script = std::fs::read_to_string(dir.join("sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3%4"), "{script}");
    let status = ok(&shiftkit(&["sweep", "status", &s(&dir)]));
    assert!(
        status.contains("4 jobs: 2 done, 2 failed, 0 pending"),
        "{status}"
    );
    assert!(status.contains("late.npy: cannot open"), "{status}");
    let done_before = done_files_of(&dir);

    write_matrix(&late, &common::sample(6, 12, 3, 1.0)).unwrap();
    let second = run(&["--retry-failed"]);
    ok(&second);
    let script = std::fs::read_to_string(dir.join("sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-1%2"), "{script}");
    let status = ok(&shiftkit(&["sweep", "status", &s(&dir)]));
    assert!(
        status.contains("4 jobs: 4 done, 0 failed, 0 pending"),
        "{status}"
    );
    let done_after = done_files_of(&dir);
    for (id, bytes) in &done_before {
        if read_json_bytes(bytes)["exit_code"] == 0 {
            assert_eq!(&done_after[id], bytes, "finished job {id} ran again");
        }
    }
    let res = read_json(&dir.join("results.json"));
    let rows = res["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["status"] == "done"));
    assert!(res["failed"].as_array().unwrap().is_empty());
}

fn done_files_of(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    job_ids(dir)
        .into_iter()
        .filter_map(|id| {
            let b = std::fs::read(dir.join("jobs").join(&id).join("done")).ok()?;
            Some((id, b))
        })
        .collect()
}

fn read_json_bytes(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}
