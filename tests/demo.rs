//! `shiftkit demo`: the tour's page and JSON hold what its segments computed.

use std::process::Command;

fn shiftkit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shiftkit"))
}

/// `shiftkit demo ARGS --out DIR`, which must succeed: its stdout and demo.json.
fn demo_ok(args: &[&str], out: &std::path::Path) -> (String, serde_json::Value) {
    let run = shiftkit()
        .arg("demo")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json = serde_json::from_slice(&std::fs::read(out.join("demo.json")).unwrap()).unwrap();
    (stdout, json)
}

#[test]
fn a_segment_writes_its_table_to_the_page_and_its_results_to_demo_json() {
    let out = tempfile::tempdir().unwrap();
    let (stdout, json) = demo_ok(&["--only", "gemm-formats", "--size", "24"], out.path());
    // The plan comes first: what the segment shows and roughly how long it takes.
    let plan = stdout.find("gemm-formats  ~").expect("plan line");
    let done = stdout.find("[1/1 gemm-formats] done").expect("done line");
    assert!(plan < done);

    let seg = &json["segments"]["gemm-formats"];
    assert_eq!(seg["ok"], true);
    let rows = seg["results"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "one row per format");
    assert_eq!(seg["results"]["size"], 24);
    // fp32 on the host is the reference's closest; sq4 the coarsest.
    let err = |f: &str| {
        rows.iter().find(|r| r["format"] == f).unwrap()["rel_error"]
            .as_f64()
            .unwrap()
    };
    assert!(err("fp32") < err("fp16") && err("fp16") < err("sq4"));

    let page = std::fs::read_to_string(out.path().join("README.md")).unwrap();
    assert!(page.contains("## gemm-formats"), "{page}");
    // The table on the page has a row for each format with the error the JSON holds.
    let sq6 = rows.iter().find(|r| r["format"] == "sq6").unwrap();
    let cell = format!("{:.2e}", sq6["rel_error"].as_f64().unwrap());
    assert!(
        page.contains(&format!("| sq6 | golden | {cell} |")),
        "{page}"
    );
}

#[test]
fn an_unknown_segment_is_one_line_naming_the_segments() {
    let out = tempfile::tempdir().unwrap();
    let run = shiftkit()
        .args(["demo", "--only", "nope", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("nope") && err.contains("grokking"), "{err}");
    assert!(!out.path().join("demo.json").exists());
}

#[test]
fn the_grokking_segment_embeds_its_plots_and_reports_what_it_reached() {
    let out = tempfile::tempdir().unwrap();
    let args = ["--only", "grokking", "--grokking-epochs", "30"];
    let (stdout, json) = demo_ok(&args, out.path());
    let seg = &json["segments"]["grokking"];
    // 30 epochs are far too few to generalize: the page says so instead of claiming the effect.
    assert_eq!(seg["results"]["dense"]["epochs_run"], 30);
    assert!(seg["results"]["dense"]["generalized_epoch"].is_null());
    let notes = seg["notes"].to_string();
    assert!(notes.contains("not reproduced in this budget"), "{notes}");
    let page = std::fs::read_to_string(out.path().join("README.md")).unwrap();
    let images = seg["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    for img in images {
        let rel = img.as_str().unwrap();
        assert!(out.path().join(rel).is_file(), "{rel} written");
        assert!(
            page.contains(&format!("]({rel})")),
            "{rel} embedded in the page"
        );
    }
    // Status lines (stdout is not a terminal here) with the count and elapsed time.
    assert!(
        stdout.contains("dense: 30/30 epochs (100%), elapsed"),
        "{stdout}"
    );
}
