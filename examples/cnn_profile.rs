//! Times training steps of the data-diet CNN at batch 128 in wall-clock and process CPU time
//! (CPU time is what stays comparable when other jobs share the cores), for profiling:
//! `cargo run --release --example cnn_profile -- [fp32|sq6|sq4] [steps]`.

use shiftkit::data::mnist::shipped_test_set;
use shiftkit::nn::Offload;
use shiftkit::workloads::data_diet::cnn::{batch_of, Cnn};
use shiftkit::workloads::data_diet::train::{train_step, Hyper};
use shiftkit::Format;
use std::time::Instant;

fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let format: Format = args
        .get(1)
        .map_or("fp32", |s| s.as_str())
        .parse()
        .map_err(anyhow::Error::msg)?;
    let steps: usize = args.get(2).map_or(Ok(20), |s| s.parse())?;
    let data = shipped_test_set()?;
    let ids: Vec<usize> = (0..128).collect();
    let x = batch_of(&data, &ids);
    let labels: Vec<usize> = ids.iter().map(|&i| data.labels[i] as usize).collect();
    let mut ctx = Offload::for_format(format)?;
    let engine = ctx.engine_kind();
    let mut model = Cnn::new(0);
    let hyper = Hyper::default();
    let mut opt = hyper.optimizer();
    for _ in 0..3 {
        train_step(&mut model, &mut ctx, &x, &labels, &mut opt, hyper.lr)?;
    }
    let (t0, c0) = (Instant::now(), cpu_seconds());
    for _ in 0..steps {
        train_step(&mut model, &mut ctx, &x, &labels, &mut opt, hyper.lr)?;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    println!(
        "{} on {}: {:.2} ms wall, {:.2} ms CPU per step ({steps} steps)",
        format.name(),
        engine.name(),
        wall * 1e3 / steps as f64,
        cpu * 1e3 / steps as f64
    );
    Ok(())
}
