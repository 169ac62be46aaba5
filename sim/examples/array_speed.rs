//! Simulation speed of the Verilated ShiftQuant array, single-threaded:
//! `cargo run --release -p shiftkit-sim --example array_speed -- [ROWS COLS [CYCLES]]`.
//!
//! Prints the build (or cache lookup) time, the raw clock rate (`Model::tick` only) and the
//! driven rate (`ArrayDriver::step`: set every input, tick, read every drain port).

use shiftkit_hw::{ArrayConfig, Datapath};
use shiftkit_sim::array_driver::{ArrayDriver, Ctl};
use shiftkit_sim::{BuildOptions, Result};
use std::time::Instant;

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (rows, cols) = (
        args.first().copied().unwrap_or(2),
        args.get(1).copied().unwrap_or(2),
    );
    let cycles = args.get(2).copied().unwrap_or(1_000_000);
    let cfg = ArrayConfig::new(rows, cols, Datapath::Sq { bits: 4 })
        .map_err(|e| shiftkit_sim::SimError::Driver(e.to_string()))?;
    let t = Instant::now();
    let mut drv = ArrayDriver::build(&cfg, &BuildOptions::default())?;
    println!("{cfg}: model ready in {:.2?}", t.elapsed());

    let clock = drv.model().port("clock")?;
    let t = Instant::now();
    for _ in 0..cycles {
        drv.model_mut().tick(clock)?;
    }
    let raw = cycles as f64 / t.elapsed().as_secs_f64();

    // Driven: K = 16 tiles back to back with changing codes, drains collected.
    let (a, b): (Vec<i64>, Vec<i64>) = (
        (0..rows as i64).map(|i| i % 7 - 3).collect(),
        (0..cols as i64).map(|j| 3 - j % 7).collect(),
    );
    let n = cycles / 4;
    let t = Instant::now();
    for c in 0..n {
        let flush = c % 16 == 15;
        drv.step(
            &a,
            &b,
            Ctl {
                valid: true,
                flush,
                shift: (c % 8) as u32,
            },
        )?;
        if c % 4096 == 4095 {
            drv.finish()?;
        }
    }
    let driven = n as f64 / t.elapsed().as_secs_f64();
    println!("{cfg}: {raw:.0} cycles/s raw tick, {driven:.0} cycles/s driven (set + tick + drain)");
    Ok(())
}
