//! `shiftkit train clip-pretrain`: a quick pretraining run learns (zero-shot above chance), its
//! checkpoint is a Hugging Face CLIPModel that `shiftkit clip embed` reads back bit for bit
//! against the training code's own forward pass, the text tower and temperature load back
//! exactly, a rerun reuses the checkpoint, and bad settings fail in one line.

mod common;

use common::shiftkit;
use shiftkit::data::mnist::standard_split;
use shiftkit::engine::{ArrayShape, EngineKind};
use shiftkit::nn::Offload;
use shiftkit::workloads::clip::captions;
use shiftkit::workloads::clip::model::{normalize_pixels, ClipModel};
use shiftkit::workloads::clip::pretrain::{self, PretrainConfig, QUICK_SIZES};
use shiftkit::Format;

fn cpu() -> Offload {
    Offload::new(Format::Fp32, EngineKind::Cpu, ArrayShape::default(), 7, 0).unwrap()
}

fn quick(out: &std::path::Path) -> PretrainConfig {
    PretrainConfig {
        format: Format::Fp32,
        engine: EngineKind::Cpu,
        shape: ArrayShape::default(),
        window: shiftkit_hw::config::DEFAULT_WINDOW,
        seed: 0,
        sizes: QUICK_SIZES,
        epochs: 4,
        batch: 32,
        lr: 2e-3,
        weight_decay: 0.1,
        warmup: 0.05,
        quick: true,
        out: out.to_path_buf(),
        progress: false,
    }
}

#[test]
fn quick_pretrain_learns_and_its_checkpoint_round_trips_through_clip_embed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clip");
    let r = pretrain::run(&quick(&out)).unwrap();
    let acc = r.summary["zero_shot_accuracy"].as_f64().unwrap();
    assert!(acc > 0.3, "zero-shot accuracy {acc} (chance 0.1)");
    for f in [
        "config.json",
        "model.safetensors",
        "vocab.json",
        "preprocessor_config.json",
        "metrics.csv",
        "summary.json",
        "zero_shot.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let config = common::json(&out.join("config.json"));
    assert_eq!(config["architectures"][0], "CLIPModel");
    assert_eq!(config["text_config"]["eos_token_id"], captions::EOS);

    // Six test digits through `clip embed` and through the trained model in memory.
    let test = standard_split(None).unwrap().test;
    let n = 6;
    let pixels = normalize_pixels(&test.images[..n * 784]);
    let px = dir.path().join("pixels.npy");
    shiftkit::npy::write_array(&px, &[n, 1, 28, 28], &pixels).unwrap();
    let emb = dir.path().join("embeds.npy");
    let ran = shiftkit(&[
        "clip",
        "embed",
        "--model",
        out.to_str().unwrap(),
        "--pixels",
        px.to_str().unwrap(),
        "--out",
        emb.to_str().unwrap(),
        "--batch",
        "6",
    ]);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let (shape, got) = shiftkit::npy::read_array(&emb).unwrap();
    let want = r.model.encode_images(&mut cpu(), &pixels, n).unwrap();
    assert_eq!(shape, vec![n, QUICK_SIZES.projection]);
    assert_eq!(
        got, want.data,
        "clip embed differs from the training forward"
    );

    // The whole model loads back: the same text embeddings and temperature, bit for bit.
    let loaded = ClipModel::load(&out).unwrap();
    assert_eq!(loaded.scale(), r.model.scale());
    let seqs: Vec<Vec<usize>> = (0..10)
        .map(|c| captions::tokenize(&captions::class_prompts(c)[1]))
        .collect();
    let a = r
        .model
        .text
        .forward(&mut cpu(), &seqs)
        .unwrap()
        .embeds
        .unwrap();
    let b = loaded
        .text
        .forward(&mut cpu(), &seqs)
        .unwrap()
        .embeds
        .unwrap();
    assert_eq!(a.data, b.data);

    // A rerun reuses the checkpoint; other settings are refused in one line.
    let again = pretrain::run(&quick(&out)).unwrap();
    assert_eq!(again.summary["zero_shot_accuracy"].as_f64().unwrap(), acc);
    let mut other = quick(&out);
    other.lr = 1e-3;
    let e = pretrain::run(&other).err().expect("refused").to_string();
    assert!(e.contains("lr") && !e.contains('\n'), "{e}");
}

#[test]
fn bad_pretrain_settings_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    for (args, want) in [
        (vec!["--hidden", "32"], "--hidden"),
        (vec!["--batch", "1"], "--batch"),
        (vec!["--heads", "5"], "multiple of heads"),
    ] {
        let mut a = vec![
            "train",
            "clip-pretrain",
            "--format",
            "fp32",
            "--out",
            out.to_str().unwrap(),
        ];
        a.extend(args);
        let r = shiftkit(&a);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success(), "{a:?} succeeded");
        assert!(
            err.contains(want) && err.trim().lines().count() == 1,
            "{a:?}: {err}"
        );
        assert!(!out.join("model.safetensors").exists());
    }
}

/// `train clip --quick`: the backbone pretrained into DIR/backbone, a detector per tune and
/// ablation, every held-out kind's AUROC / AP / EER in summary.json, the plots, the trainable
/// fractions and the paired differences.
#[test]
fn quick_detection_writes_every_held_out_kind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("det");
    let args = [
        "train",
        "clip",
        "--format",
        "fp32",
        "--quick",
        "--tune",
        "ln,linear,full",
        "--ablate",
        "slerp",
        "--train-kinds",
        "splice,blur",
        "--test-kinds",
        "erase,contrast",
        "--out",
        out.to_str().unwrap(),
    ];
    let r = shiftkit(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for f in [
        "backbone/model.safetensors",
        "summary.json",
        "manipulations.png",
        "roc-ln.png",
        "roc-linear.png",
        "roc-full.png",
        "sphere-linear.png",
        "sphere-ln.png",
        "sphere-ln-no-slerp.png",
        "runs/ln-seed0.json",
        "runs/ln-no-slerp-seed0.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let s = common::json(&out.join("summary.json"));
    let runs = s["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 8, "4 arms x 1 seed x 2 held-out kinds");
    for run in runs {
        for k in ["auroc", "ap", "eer"] {
            let v = run[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{run}");
        }
        assert!(["erase", "contrast"].contains(&run["kind"].as_str().unwrap()));
        assert!(["ln", "linear", "full", "ln-no-slerp"].contains(&run["arm"].as_str().unwrap()));
    }
    let t = &s["tunes"];
    assert_eq!(t["ln-no-slerp"]["tune"], "ln");
    assert_eq!(t["ln-no-slerp"]["weights"]["slerp"], 0.0);
    assert_eq!(t["ln"]["weights"]["slerp"], 0.5);
    assert_eq!(s["trainable_fraction"]["full"], 1.0);
    // The linear probe runs the tower forward only; LN-tuning adds its backward (the test
    // pass is forward only for both).
    let macs = |arm: &str| t[arm]["counters"]["macs"].as_u64().unwrap();
    assert!(
        macs("linear") > 0 && 2 * macs("ln") > 3 * macs("linear"),
        "{t}"
    );
    assert_eq!(macs("ln"), macs("full"));
    for pair in ["ln-linear", "full-linear", "ln-full", "ln-no-slerp-ln"] {
        let d = &s["paired_mean_auroc_differences"][pair];
        assert_eq!(d["n"], 1, "{pair}: {d}");
    }
    let (ln, lin) = (
        s["trainable_fraction"]["ln"].as_f64().unwrap(),
        s["trainable_fraction"]["linear"].as_f64().unwrap(),
    );
    assert!(lin < ln && ln < 0.05, "{ln} {lin}");
    // A rerun reuses every run.
    let again = shiftkit(&args);
    assert!(again.status.success());
    assert_eq!(common::json(&out.join("summary.json"))["runs"], s["runs"]);
    // A slerp probability outside [0, 1] and a zero LayerNorm lr are refused in one line each.
    for (flag, value, sub) in [("--slerp", "2", "bad"), ("--ln-lr", "0", "bad-lr")] {
        let bad = shiftkit(&[
            "train",
            "clip",
            "--format",
            "fp32",
            "--quick",
            flag,
            value,
            "--out",
            dir.path().join(sub).to_str().unwrap(),
        ]);
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(
            !bad.status.success() && err.contains(flag) && err.trim().lines().count() == 1,
            "{err}"
        );
    }
}
