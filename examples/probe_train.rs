//! Temporary: CPU time per grokking training step (process CPU time).
use shiftkit::engine::{ArrayShape, EngineKind};
use shiftkit::nn::optim::AdamW;
use shiftkit::nn::Offload;
use shiftkit::workloads::grokking::data::modular_addition;
use shiftkit::workloads::grokking::model::GrokMlp;
use shiftkit::workloads::grokking::train::{train_step, LossKind};
use shiftkit::Format;
#[repr(C)]
struct Ts { s: i64, ns: i64 }
extern "C" { fn clock_gettime(clk: i32, t: *mut Ts) -> i32; }
fn cpu_s() -> f64 { let mut t = Ts { s: 0, ns: 0 }; unsafe { clock_gettime(2, &mut t) }; t.s as f64 + t.ns as f64 * 1e-9 }
fn main() {
    let format: Format = std::env::args().nth(1).unwrap().parse().unwrap();
    let data = modular_addition(67, 0.4, 0).unwrap();
    let engine = EngineKind::default_for(format);
    let mut ctx = Offload::new(format, engine, ArrayShape::default(), 7, 0).unwrap();
    let mut model = GrokMlp::new(67, 500, 48, 1);
    let mut opt = AdamW::new(1e-3, (0.9, 0.98), 1.0);
    for _ in 0..20 { train_step(&mut model, &mut ctx, &data.train, LossKind::CrossEntropy, &mut opt).unwrap(); }
    let (c0, w0) = (cpu_s(), std::time::Instant::now());
    let n = 200;
    for _ in 0..n { train_step(&mut model, &mut ctx, &data.train, LossKind::CrossEntropy, &mut opt).unwrap(); }
    println!("{format}: cpu {:.2} ms/step, wall {:.2} ms/step", (cpu_s() - c0) * 1e3 / n as f64, w0.elapsed().as_secs_f64() * 1e3 / n as f64);
}
