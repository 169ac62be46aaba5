//! The data-diet workload: the CNN's gradients against finite differences, exact per-example
//! gradient norms (GraNd) against materialized single-example gradients, and the CLI on a
//! --quick experiment (outputs, resumption, noisy-label detection, one-line errors).

mod common;
use common::{json, shiftkit};

use shiftkit::data::mnist::shipped_test_set;
use shiftkit::engine::{ArrayShape, EngineKind};
use shiftkit::nn::loss::softmax_cross_entropy;
use shiftkit::nn::Offload;
use shiftkit::workloads::data_diet::cnn::{batch_of, Cnn};
use shiftkit::Format;

fn cpu() -> Offload {
    Offload::new(Format::Fp32, EngineKind::Cpu, ArrayShape::default(), 7, 0).unwrap()
}

#[test]
fn cnn_gradients_match_finite_differences_and_grand_is_exact() {
    let data = shipped_test_set().unwrap();
    let ids = [0usize, 1, 2];
    let x = batch_of(&data, &ids);
    let labels: Vec<usize> = ids.iter().map(|&i| data.labels[i] as usize).collect();
    let mut model = Cnn::new(4);
    // Non-zero biases: with zero ones, conv1's pre-activation on the blank background is exactly
    // 0, ReLU's kink, where a central difference sees half a slope.
    let mut rng = shiftkit::rng::SplitMix64::new(9);
    for p in model.params_mut() {
        if p.name.ends_with("bias") {
            p.value
                .data
                .iter_mut()
                .for_each(|b| *b = 0.1 * rng.normal() as f32);
        }
    }
    let loss = |m: &mut Cnn| {
        let logits = m.forward(&mut cpu(), &x, false).unwrap();
        softmax_cross_entropy(&logits, &labels, false).loss
    };
    let mut ctx = cpu();
    let logits = model.forward(&mut ctx, &x, true).unwrap();
    let out = softmax_cross_entropy(&logits, &labels, true);
    model.params_mut().iter_mut().for_each(|p| p.zero_grad());
    model.backward(&mut ctx, &out.grad).unwrap();
    let grads: Vec<Vec<f32>> = model.params().iter().map(|p| p.grad.data.clone()).collect();
    // Small steps: a bias of conv1 moves 576 pre-activations at once, and a larger step
    // crosses ReLU and max-pool switches.
    let h = 1e-3f32;
    for (pi, grad) in grads.iter().enumerate() {
        // The largest entries (a finite difference of a tiny one is all rounding) and a sample.
        let mut idx: Vec<usize> = (0..grad.len()).collect();
        idx.sort_by(|&a, &b| grad[b].abs().total_cmp(&grad[a].abs()));
        for &i in idx.iter().take(4) {
            let orig = model.params()[pi].value.data[i];
            model.params_mut()[pi].value.data[i] = orig + h;
            let up = loss(&mut model);
            model.params_mut()[pi].value.data[i] = orig - h;
            let down = loss(&mut model);
            model.params_mut()[pi].value.data[i] = orig;
            let fd = (up - down) / (2.0 * h as f64);
            let g = grad[i] as f64;
            let name = &model.params()[pi].name;
            assert!(
                (fd - g).abs() <= 1e-3 + 0.05 * fd.abs().max(g.abs()),
                "{name}[{i}]: backward {g} vs finite difference {fd}"
            );
        }
    }

    // GraNd: the per-example norm of the full parameter gradient, computed from layer inputs
    // and output gradients, equals the norm of each example's own backward pass.
    let logits = model.forward(&mut ctx, &x, true).unwrap();
    let per_ex = softmax_cross_entropy(&logits, &labels, true);
    let mut g = per_ex.grad.clone();
    g.data.iter_mut().for_each(|v| *v *= ids.len() as f32); // each example's own dloss/dlogits
    let norms = model.per_example_sq_grad_norms(&mut ctx, &g).unwrap();
    for (b, &i) in ids.iter().enumerate() {
        let xb = batch_of(&data, &[i]);
        let logits = model.forward(&mut ctx, &xb, true).unwrap();
        let out = softmax_cross_entropy(&logits, &labels[b..b + 1], true);
        model.params_mut().iter_mut().for_each(|p| p.zero_grad());
        model.backward(&mut ctx, &out.grad).unwrap();
        let want: f64 = model
            .params()
            .iter()
            .flat_map(|p| p.grad.data.iter())
            .map(|&v| (v as f64).powi(2))
            .sum();
        assert!(
            (norms[b] - want).abs() <= 1e-4 * want,
            "example {b}: {} vs materialized {want}",
            norms[b]
        );
    }
}

#[test]
fn quick_experiment_writes_the_issues_outputs_resumes_and_refuses_other_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("diet");
    let args = [
        "train",
        "data-diet",
        "--format",
        "fp32",
        "--quick",
        "--label-noise",
        "0.1",
        "--keep",
        "0.5",
        "--score",
        "el2n,grand,grand-init",
        "--out",
        out.to_str().unwrap(),
    ];
    let res = shiftkit(&args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let scores = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    let mut lines = scores.lines();
    assert_eq!(
        lines.next(),
        Some("index,label,el2n,grand,grand-init,flipped")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 1000);
    assert_eq!(rows[0][0], "0");
    assert_eq!(rows.iter().filter(|r| r[5] == "1").count(), 100);
    let s = json(&out.join("summary.json"));
    let runs = s["runs"].as_array().unwrap();
    let names: Vec<&str> = runs.iter().map(|r| r["score"].as_str().unwrap()).collect();
    assert_eq!(names, ["full", "random", "el2n", "grand", "grand-init"]);
    for r in runs {
        for key in ["score", "keep", "seed", "test_acc", "min_class_count"] {
            assert!(r.get(key).is_some(), "a run lacks {key}: {r}");
        }
        assert!(
            r["steps"] == runs[0]["steps"],
            "every run takes the full run's steps"
        );
    }
    assert_eq!(runs[0]["keep"].as_f64(), Some(1.0));
    assert_eq!(runs[2]["examples"].as_u64(), Some(500));
    // Two epochs on 1,000 digits already learn something.
    assert!(runs[0]["test_acc"].as_f64().unwrap() > 0.5, "{}", runs[0]);
    let auroc = s["noise_detection"]["scores"]["el2n"]["auroc"]
        .as_f64()
        .unwrap();
    assert!(
        auroc > 0.6,
        "EL2N should find flipped labels: AUROC {auroc}"
    );
    assert!(s["spearman_grand_init_vs_input_l2"].as_f64().is_some());
    assert!(s["counters"]["macs"].as_u64().unwrap() > 0);
    assert_eq!(s["gemm_shapes_per_step"][0]["m"].as_u64(), Some(128 * 576));
    for png in ["accuracy_vs_keep.png", "score_hist.png", "top_el2n.png"] {
        assert!(out.join(png).exists(), "{png}");
    }
    assert!(out.join("runs/full-seed0/metrics.csv").exists());

    // A rerun with the same flags reuses every scoring run and retraining.
    let before = std::fs::read(out.join("runs/el2n-keep0.5-seed0/summary.json")).unwrap();
    let res = shiftkit(&args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let again = json(&out.join("summary.json"));
    assert_eq!(again["runs"], s["runs"]);
    assert_eq!(
        std::fs::read(out.join("runs/el2n-keep0.5-seed0/summary.json")).unwrap(),
        before
    );

    // One run at a time (the first ran one per core): the same scores and results.
    let serial = tmp.path().join("serial");
    let mut one = args.to_vec();
    let last = one.len() - 1;
    one[last] = serial.to_str().unwrap();
    one.extend(["--jobs", "1"]);
    let res = shiftkit(&one);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(serial.join("scores.csv")).unwrap(),
        scores
    );
    let strip = |v: &serde_json::Value| -> Vec<(String, f64, f64)> {
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let f = |k: &str| r[k].as_f64().unwrap();
                (r["score"].to_string(), f("test_acc"), f("test_loss"))
            })
            .collect()
    };
    assert_eq!(strip(&json(&serial.join("summary.json"))), strip(&s));

    // Other settings in the same directory: refused in one line.
    let mut other = args.to_vec();
    other[6] = "0.2";
    let res = shiftkit(&other);
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("other settings (label_noise)"), "{err}");
}

#[test]
fn seeds_zero_computes_the_scores_and_their_noise_detection_only() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("scores-only");
    let res = shiftkit(&[
        "train",
        "data-diet",
        "--format",
        "fp32",
        "--quick",
        "--seeds",
        "0",
        "--label-noise",
        "0.1",
        "--score",
        "el2n",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = json(&out.join("summary.json"));
    assert_eq!(s["runs"].as_array().map(Vec::len), Some(0));
    assert!(!out.join("runs").exists(), "no retraining");
    let auroc = s["noise_detection"]["scores"]["el2n"]["auroc"].as_f64();
    assert!(auroc.is_some_and(|a| a > 0.6), "{auroc:?}");
    let header = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    assert_eq!(header.lines().next(), Some("index,label,el2n,flipped"));
    assert!(out.join("top_el2n.png").exists());
    assert!(!out.join("accuracy_vs_keep.png").exists());
}

#[test]
fn bad_data_diet_flags_are_one_line_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let missing = tmp.path().join("no-such-dir");
    for (args, needle) in [
        (vec!["--keep", "1.5"], "--keep 1.5 must be a fraction"),
        (
            vec!["--label-noise", "1"],
            "--label-noise 1 must be in [0, 1)",
        ),
        (
            vec!["--epochs", "4", "--score-epoch", "9"],
            "--score-epoch 9 is after",
        ),
        (vec!["--engine", "golden"], "use --engine cpu"),
        (
            vec!["--data-dir", missing.to_str().unwrap()],
            "no such directory",
        ),
        (vec!["--score", "el2m"], "invalid value 'el2m'"),
    ] {
        let base = [
            "train",
            "data-diet",
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
