//! The distillation workload: a --quick experiment end to end through the binary (outputs, the
//! summary's keys, resumption, the teacher reused), and bad flags as one-line errors that write
//! nothing.

mod common;
use common::{json, shiftkit};

#[test]
fn quick_experiment_writes_the_issues_outputs_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("kd");
    let args = [
        "train",
        "distill",
        "--format",
        "fp32",
        "--quick",
        "--loss",
        "ce,kd,kd-nd",
        "--out",
        out.to_str().unwrap(),
    ];
    let res = shiftkit(&args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = json(&out.join("summary.json"));
    let t = &s["teacher"];
    // A 2-epoch teacher on 1,000 digits already learns.
    assert!(t["test_acc"].as_f64().unwrap() > 0.6, "{t}");
    assert!(t["feature_norm"].as_f64().unwrap() > 0.0, "{t}");
    let runs = s["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["loss"].as_str().unwrap()).collect();
    assert_eq!(names, ["ce", "kd", "kd-nd"]);
    for r in runs {
        for key in [
            "loss",
            "seed",
            "test_acc",
            "feature_norm",
            "cosine_to_class_mean",
            "lsq_cosine_to_teacher",
        ] {
            assert!(
                r[key].is_number() || r[key].is_string(),
                "a run lacks {key}: {r}"
            );
        }
        let cos = r["cosine_to_class_mean"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&cos), "{r}");
        assert_eq!(r["seed"].as_u64(), Some(0));
        assert!(r["test_acc"].as_f64().unwrap() > 0.2, "{r}");
        assert_eq!(
            r["steps"], runs[0]["steps"],
            "paired runs take the same steps"
        );
    }
    assert_eq!(runs[2]["features_via"], "projection");
    assert_eq!(runs[0]["features_via"], "least-squares");
    // The same seed's students start alike: CE and KD differ only once KD's weight is on, so
    // their final accuracies are not all identical (KD and KD++ did train differently).
    assert_ne!(runs[1]["test_acc"], runs[2]["test_acc"]);
    for key in ["kd_minus_ce", "kdnd_minus_kd"] {
        assert!(
            s["paired"][key]["mean"].is_number(),
            "{key}: {}",
            s["paired"]
        );
        assert!(s["paired"][key]["se"].is_number(), "{key}");
    }
    assert!(s["means"]["kd-nd"]["test_acc"]["mean"].is_number());
    assert!(s["counters"]["macs"].as_u64().unwrap() > 0);
    for png in [
        "accuracy.png",
        "feature_norm.png",
        "cosine_to_class_mean.png",
    ] {
        let bytes = std::fs::read(out.join(png)).unwrap();
        assert_eq!(&bytes[1..4], b"PNG", "{png}");
    }
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("loss,seed,epoch,train_loss,train_acc,test_loss,test_acc,"));
    assert_eq!(metrics.lines().count(), 1 + 3 * 4, "3 losses x 4 epochs");
    assert!(out.join("teacher/teacher.json").is_file());

    // A rerun reuses the teacher and every student.
    let before = std::fs::read(out.join("runs/kd-seed0/summary.json")).unwrap();
    let res = shiftkit(&args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let again = json(&out.join("summary.json"));
    assert_eq!(again["runs"], s["runs"]);
    assert_eq!(again["teacher"]["reused"], true);
    assert_eq!(again["teacher"]["test_acc"], t["test_acc"]);
    assert_eq!(
        std::fs::read(out.join("runs/kd-seed0/summary.json")).unwrap(),
        before
    );

    // Other settings in the same folder: refused in one line.
    let mut other = args.to_vec();
    other.extend(["--temperature", "2"]);
    let res = shiftkit(&other);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("other settings (weights)"), "{err}");
}

#[test]
fn bad_distill_flags_are_one_line_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    for (args, needle) in [
        (vec!["--loss", "kl"], "invalid value 'kl'"),
        (vec!["--student", "huge"], "unknown network 'huge'"),
        (vec!["--teacher", "4-8"], "unknown network '4-8'"),
        (
            vec!["--temperature", "0"],
            "--temperature 0 must be positive",
        ),
        (vec!["--kd-weight=-1"], "--kd-weight -1 must be at least 0"),
        (vec!["--train-size", "5"], "--train-size 5 is too small"),
        (
            vec!["--train-size", "9000"],
            "larger than the training split",
        ),
        (vec!["--seeds", "0"], "must be at least 1"),
        (vec!["--dropout", "1"], "--dropout 1 must be in [0, 1)"),
        (vec!["--engine", "golden"], "use --engine cpu"),
    ] {
        let base = [
            "train",
            "distill",
            "--format",
            "fp32",
            "--out",
            out.to_str().unwrap(),
        ];
        let res = shiftkit(&[&base[..], &args[..]].concat());
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success(), "{args:?}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr} should mention {needle}");
        assert!(!out.exists(), "{args:?} wrote output");
    }
}
