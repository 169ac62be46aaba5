//! Hot-path GEMM kernels.
//!
//! The golden engine's ShiftQuant GEMMs run on [`vnni8`] (u8 x i8 `vpdpbusd` on AVX-512 VNNI,
//! `vpmaddubsw` on AVX2, with the per-K shifts applied between groups of K and the f32 scaling
//! in the store; `sq_fused` packs its operands). The entry points below serve the reference
//! path (`sq_gemm`; also sq8 on CPUs without AVX-512 VNNI), the FP16 datapath and the wide
//! fallback.
//!
//! Three entry points, all row-major, all exact or bit-reproducible:
//! - [`gemm_i16`]: exact i16 x i16 -> i64 GEMM (the ShiftQuant integer datapath), built on
//!   `vpmaddwd` / `vpdpwssd` with i32 lanes that are widened into i64 before they can overflow;
//! - [`gemm_i32`]: exact i32 x i32 -> i64 GEMM, the rare fallback for operands that do not fit i16;
//! - [`gemm_f16_seq`]: f32 GEMM with a fixed, sequential (ascending-k) summation order per output,
//!   the FP16 reference datapath.
//!
//! Each entry point picks an instruction set at run time ([`Isa::detect`]): AVX-512 (F+BW+VL+VNNI)
//! where present, else AVX2+FMA (the project's baseline machine), else portable scalar code.
//! All variants return identical bits: the integer results are exact, and the f32 kernels perform
//! the same IEEE operation sequence for every output (see `f16seq.rs`). The `*_isa` variants pin an
//! instruction set; they exist for tests and benchmarks that compare the variants.
//!
//! Layout of this module (each file says why it is the way it is):
//! - `driver.rs`: cache blocking, packed-buffer layout and the rayon split shared by the SIMD paths;
//! - `int16.rs`: i16 scan, scaling, safe i32 run length, packing;
//! - `int16_x86.rs`: the i16 AVX2 and AVX-512 VNNI micro-kernels;
//! - `int32.rs`: the blocked i32 path;
//! - `f16seq.rs`: the sequential-order f32 path;
//! - `scalar.rs`: portable reference kernels (the fallback, and the tests' oracle);
//! - `vnni8.rs`: the 8-bit kernel with its accumulation schedule and fused store (VNNI form);
//! - `vnni8_avx2.rs`: its AVX2 form (i16 pair sums widened into i32), for codes up to 63;
//! - `rows.rs`: the row sweeps of the host normalizations (vectorized sums, row blocks over
//!   the threads), shared by the L1 norm and LayerNorm;
//! - `tests.rs`: exactness tests.

// Off x86-64 only the scalar paths are reachable; the blocked driver stays compiled (and tested
// on x86-64) but is unused there.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_variables))]

mod driver;
mod f16seq;
mod int16;
#[cfg(target_arch = "x86_64")]
mod int16_x86;
mod int32;
pub mod rows;
mod scalar;
#[cfg(test)]
mod tests;
pub mod vnni8;

/// Instruction-set variant of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Portable Rust, no target features assumed.
    Scalar,
    /// AVX2 + FMA (x86-64 only).
    Avx2,
    /// AVX-512 F + BW + VL + VNNI, plus AVX2 + FMA (x86-64 only).
    Avx512,
}

impl Isa {
    /// The fastest variant this CPU supports. Feature detection is cached by std, so this is cheap.
    pub fn detect() -> Isa {
        if Isa::Avx512.is_available() {
            Isa::Avx512
        } else if Isa::Avx2.is_available() {
            Isa::Avx2
        } else {
            Isa::Scalar
        }
    }

    /// Whether this CPU (and this build's target architecture) can run the variant.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.is_available()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vl")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// All variants this CPU supports, slowest first.
    pub fn available() -> Vec<Isa> {
        [Isa::Scalar, Isa::Avx2, Isa::Avx512]
            .into_iter()
            .filter(|isa| isa.is_available())
            .collect()
    }

    /// `self` if available, else the best available variant below it.
    fn clamp_available(self) -> Isa {
        Isa::available()
            .into_iter()
            .filter(|&isa| isa <= self)
            .max()
            .unwrap_or(Isa::Scalar)
    }
}

/// Below this many multiply-accumulates a GEMM runs on the calling thread: waking a rayon worker
/// (~6-20 us on the 2-core KVM target) costs more than the second core saves. Measured on the i16
/// AVX-512 path: two threads lose at 128^3, break even near 192^3, win by 1.3x at 256^3.
const PAR_MIN_MACS: usize = 1 << 23;

pub(crate) fn want_threads(m: usize, n: usize, k: usize) -> bool {
    let macs = m.saturating_mul(n).saturating_mul(k);
    macs >= PAR_MIN_MACS && rayon::current_num_threads() > 1
}

/// `x * y`, panicking with a clear message instead of wrapping (shapes that overflow usize can
/// never describe real buffers).
fn dims(x: usize, y: usize) -> usize {
    match x.checked_mul(y) {
        Some(v) => v,
        None => panic!("kernels: matrix dimensions {x} x {y} overflow usize"),
    }
}

fn check_lens(m: usize, n: usize, k: usize, a: usize, b: usize, c: usize) {
    assert!(
        a >= dims(m, k),
        "kernels: a has {a} elements, need m*k = {m}*{k}"
    );
    assert!(
        b >= dims(k, n),
        "kernels: b has {b} elements, need k*n = {k}*{n}"
    );
    assert!(
        c >= dims(m, n),
        "kernels: c has {c} elements, need m*n = {m}*{n}"
    );
}

/// Exact integer GEMM: c[i*n + j] += sum_k a[i*k_len + kk] as i64 * b[kk*n + j] as i64.
/// a: m x k row-major i16, b: k x n row-major i16, c: m x n row-major i64 (accumulated into).
///
/// `max_abs_a` / `max_abs_b` are caller-guaranteed bounds on |a| and |b| entries (checked in debug
/// builds). The kernel decides how many k-steps it may sum in i32 lanes from the bounds it
/// *measures* while scanning the operands (never larger than the declared ones when the contract
/// holds), so it cannot overflow even if the caller's bound is wrong. The same scan finds common
/// power-of-two factors (ShiftQuant codes with the shift folded in are multiples of 2^E), which
/// are divided out of the operands and multiplied back into the i64 result, exactly.
///
/// Exact for any m, n, k. Uses both cores (rayon) when the problem is big enough to pay off.
/// Accumulation into `c` wraps modulo 2^64, so the result is exact whenever the final sums fit i64.
///
/// # Panics
/// If a slice is shorter than its matrix.
#[allow(clippy::too_many_arguments)]
pub fn gemm_i16(
    m: usize,
    n: usize,
    k: usize,
    a: &[i16],
    b: &[i16],
    max_abs_a: i32,
    max_abs_b: i32,
    c: &mut [i64],
) {
    gemm_i16_isa(Isa::detect(), m, n, k, a, b, max_abs_a, max_abs_b, c);
}

/// [`gemm_i16`] on a pinned instruction set (falls back to the best available one below `isa`).
#[allow(clippy::too_many_arguments)]
pub fn gemm_i16_isa(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: &[i16],
    b: &[i16],
    max_abs_a: i32,
    max_abs_b: i32,
    c: &mut [i64],
) {
    check_lens(m, n, k, a.len(), b.len(), c.len());
    let (a, b, c) = (&a[..m * k], &b[..k * n], &mut c[..m * n]);
    int16::gemm(
        isa.clamp_available(),
        m,
        n,
        k,
        a,
        b,
        max_abs_a,
        max_abs_b,
        c,
    );
}

/// Exact integer GEMM for wide operands (fallback when values do not fit i16): same contract as
/// [`gemm_i16`] with i32 inputs, i64 accumulation. The caller guarantees the true sums fit i64
/// (accumulation wraps modulo 2^64, so intermediate overflow does not matter).
///
/// # Panics
/// If a slice is shorter than its matrix.
pub fn gemm_i32(m: usize, n: usize, k: usize, a: &[i32], b: &[i32], c: &mut [i64]) {
    gemm_i32_isa(Isa::detect(), m, n, k, a, b, c);
}

/// [`gemm_i32`] on a pinned instruction set (falls back to the best available one below `isa`).
pub fn gemm_i32_isa(isa: Isa, m: usize, n: usize, k: usize, a: &[i32], b: &[i32], c: &mut [i64]) {
    check_lens(m, n, k, a.len(), b.len(), c.len());
    let (a, b, c) = (&a[..m * k], &b[..k * n], &mut c[..m * n]);
    int32::gemm(isa.clamp_available(), m, n, k, a, b, c);
}

/// Sequential-order f32 GEMM for the FP16 reference datapath. For every (i, j):
/// `acc = +0.0f32; for kk in 0..k ascending { acc = acc + a[i*k+kk] * b[kk*n+j] }` (each op f32
/// round-to-nearest-even), then a subnormal `acc` becomes a zero of the same sign; `c[i*n+j] = acc`
/// (`c` is overwritten, not accumulated into). A NaN result is returned as the canonical quiet NaN
/// `f32::NAN` (IEEE leaves propagated NaN payloads to the implementation; canonicalising keeps
/// every variant bit-identical).
///
/// Inputs must be f32 values exactly representable in binary16, which makes every product exact
/// in f32, so the fused multiply-add used by the SIMD kernels gives the same bits as
/// multiply-then-add (see `f16seq.rs` for this and for why the flush never triggers).
///
/// # Panics
/// If a slice is shorter than its matrix.
pub fn gemm_f16_seq(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    gemm_f16_seq_isa(Isa::detect(), m, n, k, a, b, c);
}

/// [`gemm_f16_seq`] on a pinned instruction set (falls back to the best available one below `isa`).
pub fn gemm_f16_seq_isa(
    isa: Isa,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
) {
    check_lens(m, n, k, a.len(), b.len(), c.len());
    let (a, b, c) = (&a[..m * k], &b[..k * n], &mut c[..m * n]);
    f16seq::gemm(isa.clamp_available(), m, n, k, a, b, c);
}
