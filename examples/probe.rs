//! Temporary: CPU time per engine call (process CPU time, so a loaded machine does not skew it).
use shiftkit::engine::{self, ArrayShape, EngineKind, GemmOp};
use shiftkit::rng::SplitMix64;
use shiftkit::{Format, Matrix};
fn cpu_s() -> f64 {
    let mut t = libc_timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { clock_gettime(2, &mut t) }; // CLOCK_PROCESS_CPUTIME_ID
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}
#[repr(C)]
struct libc_timespec {
    tv_sec: i64,
    tv_nsec: i64,
}
extern "C" {
    fn clock_gettime(clk: i32, t: *mut libc_timespec) -> i32;
}
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (m, k, n): (usize, usize, usize) = (
        args[2].parse().unwrap(),
        args[3].parse().unwrap(),
        args[4].parse().unwrap(),
    );
    let format: Format = args[1].parse().unwrap();
    let iters: usize = args.get(5).map_or(50, |s| s.parse().unwrap());
    let mut g = SplitMix64::new(1);
    let a = Matrix::from_fn(m, k, |_, _| g.normal() as f32);
    let b = Matrix::from_fn(k, n, |_, _| g.normal() as f32);
    let kind = EngineKind::default_for(format);
    let mut e = engine::create(kind, ArrayShape::default()).unwrap();
    let mut op = GemmOp::new(format);
    use shiftkit::format::{AAxis, BAxis};
    use shiftkit::sq::Rounding;
    match args.get(6).map(|s| s.as_str()) {
        Some("ig") => {
            op.a_rounding = Rounding::Stochastic { seed: 3 };
        }
        Some("wg") => {
            (op.a_axis, op.b_axis) = (AAxis::M, BAxis::K);
            op.b_rounding = Rounding::Stochastic { seed: 3 };
        }
        _ => {}
    }
    for _ in 0..3 {
        e.gemm(&a, &b, &op).unwrap();
    }
    let t0 = cpu_s();
    let w0 = std::time::Instant::now();
    for _ in 0..iters {
        std::hint::black_box(e.gemm(&a, &b, &op).unwrap());
    }
    let cpu = (cpu_s() - t0) / iters as f64;
    let wall = w0.elapsed().as_secs_f64() / iters as f64;
    println!(
        "{format} {m}x{k}x{n}: cpu {:.3} ms/call, wall {:.3} ms/call",
        cpu * 1e3,
        wall * 1e3
    );
}
