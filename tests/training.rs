//! The training runtime: every model's backward pass against finite differences (fp32 on the
//! `cpu` engine), reproducibility of quantized training, and a short end-to-end grokking run.

mod common;

use common::shiftkit;

use shiftkit::engine::{ArrayShape, EngineKind};
use shiftkit::nn::loss::softmax_cross_entropy;
use shiftkit::nn::Offload;
use shiftkit::workloads::grokking::data::{modular_addition, Inputs};
use shiftkit::workloads::grokking::model::{GrokMlp, MnistMlp, Model};
use shiftkit::workloads::grokking::transformer::GrokTransformer;
use shiftkit::Format;

fn cpu() -> Offload {
    Offload::new(Format::Fp32, EngineKind::Cpu, ArrayShape::default(), 7, 0).unwrap()
}

fn loss_of(model: &mut dyn Model, inputs: &Inputs, labels: &[usize]) -> f64 {
    let logits = model.forward(&mut cpu(), inputs, false).unwrap();
    softmax_cross_entropy(&logits, labels, false).loss
}

/// Compare every parameter gradient with a central difference on a sample of entries.
fn check_gradients(model: &mut dyn Model, inputs: &Inputs, labels: &[usize]) {
    let mut ctx = cpu();
    let logits = model.forward(&mut ctx, inputs, true).unwrap();
    let out = softmax_cross_entropy(&logits, labels, true);
    model.params_mut().iter_mut().for_each(|p| p.zero_grad());
    model.backward(&mut ctx, &out.grad).unwrap();
    let grads: Vec<Vec<f32>> = model.params().iter().map(|p| p.grad.data.clone()).collect();
    let h = 1e-3f32;
    for (pi, grad) in grads.iter().enumerate() {
        let n = grad.len();
        for idx in (0..n).step_by((n / 7).max(1)) {
            let orig = model.params()[pi].value.data[idx];
            model.params_mut()[pi].value.data[idx] = orig + h;
            let up = loss_of(model, inputs, labels);
            model.params_mut()[pi].value.data[idx] = orig - h;
            let down = loss_of(model, inputs, labels);
            model.params_mut()[pi].value.data[idx] = orig;
            let fd = (up - down) / (2.0 * h as f64);
            let g = grad[idx] as f64;
            let name = &model.params()[pi].name;
            assert!(
                (fd - g).abs() <= 2e-3 + 0.05 * fd.abs().max(g.abs()),
                "{name}[{idx}]: backward {g} vs finite difference {fd}"
            );
        }
    }
}

#[test]
fn mlp_gradients_match_finite_differences() {
    let data = modular_addition(7, 0.5, 1).unwrap();
    let mut model = GrokMlp::new(7, 12, 6, 3);
    check_gradients(&mut model, &data.train.inputs, &data.train.labels);
}

#[test]
fn transformer_gradients_match_finite_differences() {
    let data = modular_addition(7, 0.5, 2).unwrap();
    let mut model = GrokTransformer::new(7, 8, 8, 4);
    check_gradients(&mut model, &data.train.inputs, &data.train.labels);
}

#[test]
fn mnist_mlp_gradients_match_finite_differences() {
    let mut g = shiftkit::rng::SplitMix64::new(5);
    let x = shiftkit::Matrix::from_fn(6, 12, |_, _| g.uniform() as f32);
    let labels = vec![0, 1, 2, 3, 1, 0];
    let mut model = MnistMlp::new(&[12, 9, 9, 4], 1.0, 6);
    check_gradients(&mut model, &Inputs::Dense(x), &labels);
}

/// `shiftkit ARGS`, which must succeed.
fn shiftkit_ok(args: &[&str]) {
    let res = shiftkit(args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// A run's summary.json.
fn summary(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// metrics.csv without the wall-clock column.
fn metrics_without_time(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn grokking_cli_writes_spec_outputs_and_is_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, format: &str, seed: &str| {
        let out = tmp.path().join(name);
        let (seed, rounding) = seed.split_once('/').unwrap_or((seed, seed));
        let res = shiftkit(&[
            "train",
            "grokking",
            "--format",
            format,
            "--p",
            "11",
            "--epochs",
            "40",
            "--eval-every",
            "10",
            "--seed",
            seed,
            "--rounding-seed",
            rounding,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        out
    };
    let a = run("a", "sq6", "3");
    let b = run("b", "sq6", "3");
    let c = run("c", "sq6", "4");
    let header = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert!(header.starts_with("epoch,train_loss,train_acc,test_loss,test_acc"));
    assert_eq!(
        metrics_without_time(&a),
        metrics_without_time(&b),
        "same seed, same bits"
    );
    assert_ne!(metrics_without_time(&a), metrics_without_time(&c));
    // Another rounding stream, same split and initialization: another trajectory.
    let d = run("d", "sq6", "3/9");
    assert_ne!(metrics_without_time(&a), metrics_without_time(&d));
    assert_eq!(summary(&d)["rounding_seed"], 9);
    assert_eq!(summary(&d)["seed"], 3);
    let s = summary(&a);
    assert_eq!(s["rounding_seed"], 3);
    for key in [
        "memorized_epoch",
        "generalized_epoch",
        "final_train_acc",
        "final_test_acc",
        "counters",
        "wall_s",
    ] {
        assert!(s.get(key).is_some(), "summary.json lacks {key}");
    }
    assert_eq!(
        s["weight_decay"].as_f64(),
        Some(1.0),
        "the paper's MLP decays at 1"
    );
    assert!(s["counters"]["macs"].as_u64().unwrap() > 0);
    assert!(s["counters"]["cycles"].as_u64().unwrap() > 0);
    assert!(a.join("accuracy.png").exists());
    // Weights rewound for tickets are kept.
    assert!(
        a.join("weights/init/embed.npy").exists() && a.join("weights/final/unembed.npy").exists()
    );
}

#[test]
fn fp32_gemms_ablation_moves_roles_to_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let out = tmp.path().join(name);
        let base = [
            "train",
            "grokking",
            "--p",
            "11",
            "--epochs",
            "30",
            "--eval-every",
            "10",
        ];
        shiftkit_ok(&[&base[..], extra, &["--out", out.to_str().unwrap()]].concat());
        out
    };
    // Losses and accuracies only (epoch, train_loss, train_acc, test_loss, test_acc).
    let losses = |dir: &std::path::Path| -> Vec<String> {
        metrics_without_time(dir)
            .iter()
            .map(|l| l.split(',').take(5).collect::<Vec<_>>().join(","))
            .collect()
    };
    let macs = |dir: &std::path::Path| summary(dir)["counters"]["macs"].as_u64().unwrap();
    let fp32 = run("fp32", &["--format", "fp32", "--engine", "cpu"]);
    let sq6 = run("sq6", &["--format", "sq6"]);
    let all_host = run(
        "all",
        &[
            "--format",
            "sq6",
            "--fp32-gemms",
            "forward,input-grad,weight-grad",
        ],
    );
    let fwd_host = run("fwd", &["--format", "sq6", "--fp32-gemms", "forward"]);
    // Every role on the host is the fp32 run, bit for bit, with no accelerator work.
    assert_eq!(losses(&all_host), losses(&fp32));
    assert_eq!(macs(&all_host), 0);
    // One role on the host: a third trajectory, and less accelerator work than plain sq6.
    assert_ne!(losses(&fwd_host), losses(&sq6));
    assert_ne!(losses(&fwd_host), losses(&fp32));
    assert!(macs(&fwd_host) > 0 && macs(&fwd_host) < macs(&sq6));
}

#[test]
fn mnist_defaults_to_the_papers_weight_decay_unless_given() {
    let tmp = tempfile::tempdir().unwrap();
    let decay = |extra: &[&str]| {
        let out = tmp.path().join(format!("mnist{}", extra.len()));
        let base = ["train", "grokking", "--model", "mnist", "--format", "fp32"];
        let run = ["--engine", "cpu", "--epochs", "2", "--eval-every", "1"];
        shiftkit_ok(&[&base[..], &run, extra, &["--out", out.to_str().unwrap()]].concat());
        summary(&out)["weight_decay"].as_f64().unwrap()
    };
    assert!(
        (decay(&[]) - 0.1).abs() < 1e-7,
        "config_mnist.py: weight decay 0.1"
    );
    assert_eq!(decay(&["--weight-decay", "0.5"]), 0.5);
}

#[test]
fn ticket_run_reuses_a_dense_run_and_reports_both() {
    let tmp = tempfile::tempdir().unwrap();
    let dense = tmp.path().join("dense");
    let base = [
        "train",
        "grokking",
        "--format",
        "fp32",
        "--p",
        "11",
        "--epochs",
        "30",
        "--eval-every",
        "10",
    ];
    let res = shiftkit(&[&base[..], &["--out", dense.to_str().unwrap()]].concat());
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let ticket = tmp.path().join("ticket");
    let res = shiftkit(
        &[
            &base[..],
            &[
                "--ticket",
                "--from",
                dense.to_str().unwrap(),
                "--out",
                ticket.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ticket.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["ticket"]["kind"], "ticket");
    assert!((s["ticket"]["kept_fraction"].as_f64().unwrap() - 0.4).abs() < 1e-3);
    assert!(s["ticket"].get("dense_generalized_epoch").is_some());
    // The ticket's pruned weights stay zero through training.
    let w = shiftkit::npy::read_matrix(&ticket.join("weights/final/inproj.npy")).unwrap();
    let zeros = w.data.iter().filter(|&&v| v == 0.0).count();
    assert!(zeros > 0);
    // A random-mask control prunes the same fraction.
    let ctl = tmp.path().join("random");
    let res = shiftkit(
        &[
            &base[..],
            &[
                "--control",
                "random",
                "--from",
                dense.to_str().unwrap(),
                "--out",
                ctl.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ctl.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["ticket"]["kind"], "random-mask");
}

#[test]
fn bad_training_flags_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    for (args, needle) in [
        (
            vec!["--format", "fp32", "--engine", "golden"],
            "use --engine cpu",
        ),
        (
            vec!["--format", "sq6", "--engine", "cpu"],
            "use --engine golden",
        ),
        (
            vec!["--format", "sq6", "--prune-rate", "1.5", "--ticket"],
            "--prune-rate 1.5",
        ),
        (vec!["--format", "sq6", "--p", "1"], "--p 1 is too small"),
        (
            vec!["--format", "sq6", "--ticket-from", "soon"],
            "neither an epoch number nor 'final'",
        ),
    ] {
        let res = shiftkit(
            &[
                &[
                    "train",
                    "grokking",
                    "--epochs",
                    "2",
                    "--out",
                    out.to_str().unwrap(),
                ][..],
                &args[..],
            ]
            .concat(),
        );
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert!(!res.status.success());
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr} should mention {needle}");
    }
}

#[test]
fn snapshots_feed_tickets_and_compare_tabulates_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |n: &str| tmp.path().join(n).to_str().unwrap().to_string();
    let base = [
        "train",
        "grokking",
        "--format",
        "sq6",
        "--p",
        "11",
        "--epochs",
        "30",
        "--eval-every",
        "10",
    ];
    let ok = |res: std::process::Output| {
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        res
    };
    ok(shiftkit(
        &[&base[..], &["--save-every", "10", "--out", &path("dense")]].concat(),
    ));
    for e in [10, 20, 30] {
        assert!(tmp
            .path()
            .join(format!("dense/weights/epoch_{e}/inproj.npy"))
            .exists());
    }
    ok(shiftkit(
        &[
            &base[..],
            &["--ticket", "--from", &path("dense"), "--ticket-from", "20"],
            &["--out", &path("ticket")],
        ]
        .concat(),
    ));
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("ticket/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(s["ticket"]["ticket_from"], "20");

    ok(shiftkit(
        &[
            &base[..],
            &[
                "--rounding-seed",
                "5",
                "--window",
                "6",
                "--out",
                &path("dense-r5"),
            ],
        ]
        .concat(),
    ));

    ok(shiftkit(
        &[
            &base[..],
            &["--ticket", "--from", &path("dense"), "--prune-rate", "0.8"],
            &["--weight-decay", "0", "--out", &path("ticket-final")],
        ]
        .concat(),
    ));

    let res = ok(shiftkit(&[
        "compare",
        &path("dense"),
        &path("ticket"),
        &path("dense-r5"),
        &path("ticket-final"),
        "--out",
        &path("cmp"),
    ]));
    let table = String::from_utf8_lossy(&res.stdout);
    assert!(
        table.contains("| sq6 dense seed 0 |")
            && table.contains("| sq6 ticket@20 seed 0 |")
            && table.contains("| sq6 dense seed 0 rounding 5 window 6 |")
            && table.contains("| sq6 ticket@final(30) seed 0 rate 0.8 wd 0 |"),
        "{table}"
    );
    let rows: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("cmp/compare.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 4);
    assert!(rows[1]["cycles"].as_u64().unwrap() > 0);
    assert!(tmp.path().join("cmp/accuracy.png").exists());
    assert!(tmp.path().join("cmp/compare.md").exists());

    // --threshold T: the first epoch each run reaches test accuracy T, read from metrics.csv.
    let curve: Vec<(u64, f64)> = std::fs::read_to_string(tmp.path().join("dense/metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[4].parse().unwrap())
        })
        .collect();
    let best = curve.iter().map(|c| c.1).fold(0.0, f64::max);
    let first = curve.iter().find(|c| c.1 >= best).unwrap().0;
    let t = format!("{best}");
    ok(shiftkit(&[
        "compare",
        &path("dense"),
        "--threshold",
        &t,
        "--out",
        &path("cmp-t"),
    ]));
    let rows: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("cmp-t/compare.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rows[0]["generalized_epoch"].as_u64(), Some(first));
    assert_eq!(rows[0]["generalized_at"].as_f64(), Some(best));
    let res = shiftkit(&[
        "compare",
        &path("dense"),
        "--threshold",
        "1.5",
        "--out",
        &path("x"),
    ]);
    assert!(!res.status.success());

    // Not a run directory: one line, nothing written.
    let res = shiftkit(&["compare", &path("nope"), "--out", &path("cmp2")]);
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("summary.json"), "{err}");
    assert!(!tmp.path().join("cmp2").exists());
}

#[test]
fn grokking_summary_times_the_run_over_the_link() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, link: &[&str]| {
        let out = tmp.path().join(name);
        let base = [
            "train",
            "grokking",
            "--p",
            "11",
            "--epochs",
            "4",
            "--eval-every",
            "2",
            "--format",
            "sq4",
        ];
        shiftkit_ok(&[&base[..], link, &["--out", out.to_str().unwrap()]].concat());
        summary(&out)
    };
    let plain = run("plain", &[]);
    assert!(plain.get("link").is_none(), "no --link, no link block");
    let s = run("uart", &["--link", "uart:3M", "--clock", "12M"]);
    let l = &s["link"];
    assert_eq!(l["spec"], "uart:3M");
    assert_eq!(l["clock_hz"], 12e6);
    // Every accelerator GEMM's bytes and cycles are the counters', summed.
    assert_eq!(l["bytes_to_device"], s["counters"]["bytes_to_device"]);
    assert_eq!(l["compute_cycles"], s["counters"]["cycles"]);
    assert_eq!(l["streams"], s["counters"]["gemms"]);
    assert_eq!(l["steps"], 4);
    let f = |k: &str| l[k].as_f64().unwrap();
    assert!((f("step_s") * 4.0 - f("time_s")).abs() < 1e-9 * f("time_s"));
    assert!(f("time_s") >= f("transfer_s").max(f("compute_s")) * (1.0 - 1e-9));
    assert_eq!(l["bound"], "link");
    // The same run trains the same way with or without the link model.
    assert_eq!(
        metrics_without_time(&tmp.path().join("plain")),
        metrics_without_time(&tmp.path().join("uart"))
    );
}
