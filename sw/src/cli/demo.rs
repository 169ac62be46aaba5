//! `shiftkit demo`: the README's main job. For now: every format on the same sample GEMM, with
//! its error against an f64 reference, its speed on this host and its modelled accelerator cost.

use crate::engine::{self, ArrayShape, EngineKind, GemmOp};
use crate::error::{Error, Result};
use crate::format::Format;
use crate::matrix::Matrix;
use crate::npy::write_bytes;
use crate::rng::SplitMix64;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for demo.json.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Size of the square sample GEMM.
    #[arg(long, default_value_t = 512)]
    pub size: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Skip the grokking runs and the synthesis (a quick smoke run).
    #[arg(long)]
    pub quick: bool,
    /// Epoch budget of each grokking run.
    #[arg(long, default_value_t = 30_000)]
    pub epochs: usize,
}

#[derive(Serialize)]
struct Row {
    format: Format,
    engine: EngineKind,
    rel_error: f64,
    gmacs_per_s: f64,
    cycles: u64,
    bytes_to_device: u64,
    bytes_from_device: u64,
    utilization: f64,
}

/// Activations-like A (a few outlier channels, as in transformer activations) and weights-like B.
pub fn sample_operands(n: usize, seed: u64) -> (Matrix, Matrix) {
    let mut g = SplitMix64::new(seed);
    let a = Matrix::from_fn(n, n, |_, c| {
        let scale = if c % 61 == 7 { 20.0 } else { 1.0 };
        (scale * g.normal()) as f32
    });
    let b = Matrix::from_fn(n, n, |_, _| (g.normal() / (n as f64).sqrt()) as f32);
    (a, b)
}

fn f64_reference(a: &Matrix, b: &Matrix) -> Vec<f64> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let mut c = vec![0.0f64; m * n];
    for i in 0..m {
        for kk in 0..k {
            let av = a.at(i, kk) as f64;
            for (cj, &bv) in c[i * n..(i + 1) * n].iter_mut().zip(b.row(kk)) {
                *cj += av * bv as f64;
            }
        }
    }
    c
}

pub fn run(args: &DemoArgs) -> Result<()> {
    if args.size == 0 {
        return Err(Error::Usage("--size must be at least 1".into()));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| {
        Error::file(
            &args.out,
            format!("cannot create the output directory: {e}"),
        )
    })?;
    let (a, b) = sample_operands(args.size, args.seed);
    let exact = f64_reference(&a, &b);
    let norm = exact.iter().map(|v| v * v).sum::<f64>().sqrt();
    let shape = ArrayShape::default();
    let mut rows = Vec::new();
    println!(
        "shiftkit demo: C = A x B, {0}x{0}x{0}, A with outlier channels, {1}x{2} array model",
        args.size, shape.rows, shape.cols
    );
    println!(
        "{:<6} {:<7} {:>10} {:>10} {:>12} {:>6}",
        "format", "engine", "rel.err", "GMAC/s", "cycles", "util"
    );
    for format in Format::ALL {
        let kind = EngineKind::default_for(format);
        let mut engine = engine::create(kind, shape)?;
        let op = GemmOp::new(format);
        let start = Instant::now();
        let c = engine.gemm(&a, &b, &op)?;
        let secs = start.elapsed().as_secs_f64();
        let err = c
            .data
            .iter()
            .zip(&exact)
            .map(|(&x, &y)| (x as f64 - y).powi(2))
            .sum::<f64>()
            .sqrt();
        let counters = *engine.counters();
        let row = Row {
            format,
            engine: kind,
            rel_error: err / norm,
            gmacs_per_s: counters.macs as f64 / secs / 1e9,
            cycles: counters.cycles,
            bytes_to_device: counters.bytes_to_device,
            bytes_from_device: counters.bytes_from_device,
            utilization: counters.utilization(shape.rows * shape.cols),
        };
        println!(
            "{:<6} {:<7} {:>10.2e} {:>10.1} {:>12} {:>5.1}%",
            format.name(),
            kind.name(),
            row.rel_error,
            row.gmacs_per_s,
            row.cycles,
            100.0 * row.utilization
        );
        rows.push(row);
    }
    let path = args.out.join("demo.json");
    let text = serde_json::to_string_pretty(&serde_json::json!({ "size": args.size, "seed": args.seed, "array": shape, "results": rows }))
        .map_err(|e| Error::Usage(e.to_string()))?;
    write_bytes(&path, text.as_bytes())?;
    println!("wrote {}", path.display());
    if args.quick {
        return Ok(());
    }
    grokking_showcase(args)?;
    rtl_check(args)?;
    resource_showcase(args)
}

/// Dense and ticket grokking in sq6 on the golden engine.
fn grokking_showcase(args: &DemoArgs) -> Result<()> {
    use crate::workloads::grokking;
    use crate::workloads::report::read_summary;
    println!();
    println!(
        "grokking tickets, (x + y) mod 67, paper MLP, sq6 on golden ({}x{} array model)",
        8, 8
    );
    let out = args.out.join("grokking");
    let cfg = showcase_config(EngineKind::Golden, args.epochs, out.clone());
    grokking::run(&cfg)?;
    let dense = read_summary(&out.join("dense"))?;
    let ticket = read_summary(&out)?;
    println!(
        "{:<8} {:>12} {:>10} {:>10} {:>14} {:>8}",
        "run", "generalized", "train acc", "test acc", "cycles", "s/1k ep"
    );
    for (name, s) in [("dense", &dense), ("ticket", &ticket)] {
        println!(
            "{:<8} {:>12} {:>10.3} {:>10.3} {:>14} {:>8.1}",
            name,
            s["generalized_epoch"]
                .as_u64()
                .map_or("-".to_string(), |e| e.to_string()),
            s["final_train_acc"].as_f64().unwrap_or(0.0),
            s["final_test_acc"].as_f64().unwrap_or(0.0),
            s["counters"]["cycles"].as_u64().unwrap_or(0),
            s["s_per_1000_epochs"].as_f64().unwrap_or(0.0),
        );
    }
    if let (Some(d), Some(t)) = (
        dense["generalized_epoch"].as_u64(),
        ticket["generalized_epoch"].as_u64(),
    ) {
        println!(
            "the ticket generalizes in {:.3}x the dense epochs",
            t as f64 / d.max(1) as f64
        );
    }
    println!("plots: {}", out.join("dense_vs_ticket.png").display());
    Ok(())
}

/// The showcase's grokking run (sq6, seed 0, the paper's MLP and optimizer) on `engine`.
fn showcase_config(
    engine: EngineKind,
    epochs: usize,
    out: PathBuf,
) -> crate::workloads::grokking::GrokkingConfig {
    use crate::workloads::grokking::{GrokkingConfig, ModelKind, TicketFrom};
    GrokkingConfig {
        model: ModelKind::Mlp,
        format: Format::Sq6,
        engine,
        shape: ArrayShape::default(),
        window: shiftkit_hw::config::DEFAULT_WINDOW,
        seed: 0,
        rounding_seed: None,
        fp32_gemms: Vec::new(),
        p: 67,
        train_frac: 0.4,
        epochs,
        eval_every: 10,
        lr: 1e-3,
        weight_decay: 1.0,
        // The ticket stops as soon as it generalizes (the demo shows when). The dense run goes
        // on for 5,000 epochs, so weight decay cleans its weights up before the mask is taken:
        // the paper takes it from the final weights of a long run; at generalization the mask
        // is noisier and the ticket about 3x slower (measured: 1,520 vs 550 epochs, sq6 seed 0).
        stop_after_generalized: Some(0),
        dense_stop_after_generalized: Some(5000),
        save_every: None,
        ticket: true,
        prune_rate: 0.6,
        ticket_from: TicketFrom::Final,
        control: None,
        from: None,
        out,
        progress: true,
    }
}

/// The first epochs of the dense run again on `rtl` (the generated Verilog under Verilator):
/// losses, accuracies, cycle counts and weights must equal `golden`'s bit for bit.
fn rtl_check(args: &DemoArgs) -> Result<()> {
    const EPOCHS: usize = 1;
    println!();
    println!(
        "training again for {EPOCHS} epoch on rtl (Verilated 8x8 sq6 accelerator), against golden"
    );
    let dir = args.out.join("rtl-check");
    let mut metrics = Vec::new();
    for engine in [EngineKind::Golden, EngineKind::Rtl] {
        let mut cfg = showcase_config(engine, EPOCHS, dir.join(engine.name()));
        cfg.ticket = false;
        cfg.eval_every = 1;
        crate::workloads::grokking::run(&cfg)?;
        metrics.push(run_fingerprint(&cfg.out)?);
    }
    let same = metrics[0] == metrics[1];
    let text = serde_json::json!({ "epochs": EPOCHS, "bit_exact": same });
    write_bytes(&dir.join("rtl_check.json"), text.to_string().as_bytes())?;
    if !same {
        return Err(Error::Usage(format!(
            "rtl and golden training differ (see {}): the RTL and its golden model disagree",
            dir.display()
        )));
    }
    println!("rtl == golden: losses, accuracies, cycles and weights identical bit for bit");
    Ok(())
}

/// Everything a run produced that must not depend on the engine: metrics.csv without the
/// wall-clock column, and the final weights.
fn run_fingerprint(dir: &std::path::Path) -> Result<Vec<Vec<u8>>> {
    let read =
        |p: PathBuf| std::fs::read(&p).map_err(|e| Error::file(&p, format!("cannot read: {e}")));
    let csv = String::from_utf8_lossy(&read(dir.join("metrics.csv"))?)
        .lines()
        .map(|l| l.rsplit_once(',').map_or(l, |(head, _)| head).to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = vec![csv.into_bytes()];
    let weights = dir.join("weights").join("final");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&weights)
        .map_err(|e| Error::file(&weights, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for n in names {
        out.push(read(n)?);
    }
    Ok(out)
}

/// LUTs of the 4x4 arrays against the FP16 reference array (yosys, no DSPs).
fn resource_showcase(args: &DemoArgs) -> Result<()> {
    use crate::design::{self, Design};
    use shiftkit_hw::synth::{synthesize, Target};
    println!();
    println!("4x4 arrays, yosys LUTs without DSPs (ratio to the FP16 reference array)");
    let hw = |e: shiftkit_hw::HwError| Error::Usage(e.to_string());
    let dir = args.out.join("designs");
    let mut rows = Vec::new();
    for target in [Target::Xc7Nodsp, Target::Ice40] {
        let mut luts = Vec::new();
        for d in [Design::Fp16, Design::Sq4, Design::Sq6] {
            let cfg = design::config(d, 4, 4, shiftkit_hw::config::DEFAULT_WINDOW, None)?;
            let g = design::generate(d, &cfg, &dir.join(d.name()))?;
            let files: Vec<&std::path::Path> = g.files.iter().map(|p| p.as_path()).collect();
            luts.push((d, synthesize(&files, &g.top, target).map_err(hw)?.cells.lut));
        }
        let fp16 = luts[0].1.max(1) as f64;
        let line: Vec<String> = luts
            .iter()
            .map(|(d, l)| format!("{} {} ({:.3}x)", d.name(), l, *l as f64 / fp16))
            .collect();
        println!("{:<10} {}", target.name(), line.join("   "));
        rows.push(serde_json::json!({ "target": target.name(), "luts": luts.iter().map(|(d, l)| (d.name(), l)).collect::<std::collections::BTreeMap<_, _>>() }));
    }
    let path = args.out.join("resources.json");
    let text = serde_json::to_string_pretty(&rows).map_err(|e| Error::Usage(e.to_string()))?;
    write_bytes(&path, text.as_bytes())
}
