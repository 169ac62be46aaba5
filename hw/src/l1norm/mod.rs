//! The fully quantized L1-normalization unit (SPEC §5): integer rows in, SQ-b codes out,
//! streaming, one element per cycle, one reciprocal per row.
//!
//! # Integer contract
//!
//! Configuration ([`L1NormConfig`]): input width `W` (two's complement), row buffers of `2^A`
//! elements, output format SQ-b (`b` = 4, 6, 8, `Q = 2^(b-1) - 1`), output fraction bits
//! `f` (`0 <= f <= b - 1`, default `b - 3`), and `eps >= 0` in input units (at most `2^(W-1)`).
//!
//! A row is `x_0 .. x_{n-1}`, `1 <= n <= 2^A`, each `-2^(W-1) <= x_i < 2^(W-1)`. The unit
//! computes, for each `i`, the SQ-b code
//!
//! ```text
//!   q_i ~ clamp(round_half_even(y_i / 2^-f), -Q, Q),    y_i = (x_i - mu) / sigma,
//!   mu = (1/n) sum x,  d = (1/n) sum |x - mu|,  sigma = sqrt(pi/2) d + eps
//! ```
//!
//! i.e. the output tensor is SQ-b with **one per-tensor step `2^-f`** (SPEC §2 with window
//! `E = 0` and scale `s = 2^-f`; dequantized value `q * 2^-f`). With the default `f = b - 3` the
//! codes span `+-Q / 2^f` = +-3.5, +-3.9, +-4.0 sigma for b = 4, 6, 8. The hardware applies
//! `gamma = 1`, `beta = 0`: `gamma_i * y_i + beta_i` is the host's job (it is per feature, costs
//! a multiply per element, and the host already holds gamma and beta in f32).
//!
//! `eps` is in input units: when the integers stand for `x * scale` (dequantized inputs), the
//! same normalization of the real values is obtained with `eps_real / scale`, because `mu` and
//! `d` scale with the input and `y` does not.
//!
//! "~" is made precise below: the unit computes exactly the integer function [`golden()`], which
//! is within 1 LSB (one step `2^-f`) of the f64 value `round_half_even(((x_i - mu)/sigma)/2^-f)`
//! clamped to `[-Q, Q]` computed in f64 on the same integers, for every input. A constant row
//! (`d = 0`, also `n = 1`) gives all zeros, with any `eps` including 0.
//!
//! ## The integer function
//!
//! Offset inputs `x' = x + 2^(W-1)` (the MSB flipped: `0 <= x' < 2^W`, differences unchanged).
//! Constants: `G = 4` guard bits, `K = b + G + 2`, `P = b + 6`, `T = P + G + 2`,
//! `F = f + A + G + 2`, `CD = max(P + 2, A + 1)`, `SA = CD - A - 1`,
//! `c_m = round_f64(sqrt(2 pi) 2^CD)` (`CD + 2` bits), `eps ~ e_m 2^-EE` with
//! `e_m = round_f64(eps 2^EE)` of `EB = P + 4` bits (`e_m = 0` if `eps = 0`).
//!
//! Per row (all exact integer arithmetic; `floor` on nonnegative values):
//!
//! ```text
//!   S'  = sum x'_i                                  (exact)
//!   MU  = floor(S' 2^F / n),  qS = MU >> F = floor(S'/n)
//!   Xp  = sum of x'_i > qS,   cgt = #{i : x'_i > qS}
//!   Dh  = n Xp - S' cgt                             (= D/2 with D = sum |n x_i - S| = n^2 d, exact)
//!   TE  = floor(e_m n^2 2^(CD - EE))
//!   den = c_m Dh + TE                               (~ 2^CD n^2 sigma)
//!   a1  = n^2 2^SA
//!   Dh = 0:  M = 0, s = 0
//!   else:    s = min{ s >= 0 : a1 2^s >= den },   M = floor(a1 2^(s + P - 1) / den)
//!            (so 2^(P-1) <= M < 2^P)
//! ```
//!
//! Per element:
//!
//! ```text
//!   w    = x'_i 2^(F+1) - (2 MU + 1)                (= 2^(F+1) (x_i - mu_c), mu_c = (MU + 1/2) 2^-F)
//!   u    = clamp(floor(w / 2^s), -2^(K-1), 2^(K-1) - 1)
//!   prod = (2u + 1) M
//!   q_i  = clamp(round_half_even(prod / 2^T), -Q, Q)
//! ```
//!
//! Why `Dh` is exact: `t_i = n x_i - S` sums to 0, so `sum |t_i| = 2 sum_{t_i > 0} t_i`, and
//! `t_i > 0  <=>  x'_i > S'/n  <=>  x'_i > floor(S'/n) = qS` (integers), so
//! `sum_{t_i > 0} t_i = n Xp - S' cgt`. No per-element multiplier and no rounded mean enter `d`.
//!
//! ## Precision (proof of the 1-LSB claim)
//!
//! Write `v = (x - mu) R` for the exact value in code units, `R = 2^f / sigma`, and
//! `lambda = 2^(s-F-1) R`, the exact weight of one unit of `w / 2^s`. The hardware weight is
//! `lambda_h = M / 2^(P+G+1) = lambda (1 + eta)`.
//!
//! 1. *Range of R.* For a nonconstant row `D >= 2(n-1)`, so `d >= 2(n-1)/n^2 >= 1/n` (`n >= 2`),
//!    `sigma >= c d >= c/n` (`c = sqrt(pi/2)`) and `R <= 2^f n / c < 2^(f+A) / c`.
//! 2. *Normalization.* `M` is normalized by construction: `M >= 2^(P-1)  <=>  a1 2^s >= den` and
//!    `M < 2^P  <=>  a1 2^(s-1) < den` (minimality), so `lambda_h` is in
//!    `[2^-(G+2), 2^-(G+1))`. (By 1., `s >= 2` always; `s <= W + A + 2 <= 31` since
//!    `eps <= 2^(W-1)`: five bits.)
//! 3. *Reciprocal error.* `den = 2^CD n^2 sigma (1 + delta)`: `c_m` has relative error
//!    `<= 2^-(CD+2)`, `e_m` `<= 2^-EB`, the floor in `TE` loses `< 1 <= 2^-CD den / 2.5`, so
//!    `|delta| <= 2^-(P+4) + 2^-(P+4) + 0.4 2^-(P+2)`; the floor in `M` loses `< 2^-(P-1)`
//!    relatively. Hence `|eta| <= eps_M = 1.2 2^-(P-1)`.
//! 4. *Mean.* `|mu_c - mu| <= 2^-(F+1)` (from `MU <= S'2^F/n < MU + 1`), so with
//!    `e1 = (x - mu) 2^(F+1) - w`, `|e1| <= 1` and `|e1| R 2^-(F+1) <= 2^-(F+1) R < 2^-(G+3) / c`.
//! 5. *Shift.* Unsaturated, `|u + 1/2 - w/2^s| <= 1/2`.
//! 6. With `v = (w/2^s) lambda + e1 R 2^-(F+1)` and `v_hw = prod / 2^T = (u + 1/2) lambda_h`:
//!
//!    ```text
//!    |v_hw - v| <= lambda/2 + |(u + 1/2) lambda| eps_M + 2^-(F+1) R
//!              <= (1 + eps_M)(2^-(G+2)/(1 - eps_M) + 2^-(G+3)/c) + |v| eps_M
//!    ```
//!
//!    For `|v| <= Q + 1 = 2^(b-1)` and `P = b + 6`: `|v_hw - v| <= 0.0407`
//!    ([`L1NormConsts::error_bound`]), for every b.
//! 7. *Saturation and clamping.* If `u` saturates high, `w/2^s >= 2^(K-1)` so
//!    `v >= 2^(K-1) lambda - 0.007 >= Q + 1 - 0.03` (true code `Q`), and
//!    `v_hw >= (2^K - 1) 2^-(G+3) = Q + 1 - 2^-(G+3)` (code `Q`); low likewise. If `|v| > Q + 1`
//!    without saturation, `|v_hw| >= (Q + 1)(1 - eps_M) - 0.022 > Q + 1/2`: both clamp.
//! 8. The f64 reference differs from `v` by a few ulps (`< 1e-12`). Two numbers less than 1
//!    apart round to integers at most 1 apart, and clamping keeps that; hence every code is
//!    within 1 LSB of the f64 reference, and equal to it unless `v` is within 0.041 of a
//!    rounding boundary (measured: >99.3 % of codes are identical, largest `|v_hw - v|` 0.022;
//!    `golden_tests`).
//!
//! # The hardware
//!
//! [`unit::L1Norm`] streams rows through three stages, each holding one row in one of three
//! row buffers (block RAM, `2^A x W` each; the banks rotate, see [`mod@unit`]):
//!
//! - [`ingest`] (stage I): one element per cycle (`in_valid`/`in_ready`, `in_last`; the
//!   `2^A`-th element also ends a row), writes `x'` to the row buffer and sums `S'`; then
//!   `W + F` cycles of restoring division for `MU` (the only per-row division besides `M`).
//! - [`engine`] (stage II): reads the row once more (`Xp`, `cgt`) while a side engine forms `n^2`
//!   and the eps term; then `Dh` (`A + 1` cycles), `c_m Dh` (`CD + 2`), normalization (at most
//!   `s/4 + 4`) and the radix-2 division for `M` (`P` cycles): the one reciprocal of the row.
//!   All its products are shift-and-add over one operand's bits (one adder each).
//! - [`emit`] (stage III): reads the row a third time and emits one code per cycle through a
//!   four-stage pipeline (subtract, arithmetic shift + saturate, `(K+1) x P` shift-and-add
//!   multiplier, round + clamp). `out_valid`/`out_code`/`out_last`; `out_hold` stands the
//!   stage still (every register keeps its value; the accelerator top's packer uses it as
//!   back-pressure), and through the hand-offs stages II and I wait behind it.
//!
//! `reset` (synchronous) returns every stage to idle and drops rows in progress. With
//! `out_hold` and `reset` tied low the unit is the free-running one the timing below describes;
//! each held cycle delays stage III by one cycle.
//!
//! Inside a row, elements go in and codes come out at one per cycle. Cycle counts are exact
//! ([`timing`], checked against the simulation): stage I spends `n + W + F + 1` cycles on a row,
//! stage II `max(n + 2, A + EB + 2) + (A + 1) + (CD + 2) + norm + P + 3`
//! (`norm = s - 3 floor((s-1)/4) + 1`; `norm` and `P` drop out when `Dh = 0`), stage III
//! `n + 5`. The stages work on three rows at once, so a stream of rows of length `n` takes
//! one row per stage-II time (the slowest stage; [`RowTiming::period`]): for `W = 16`,
//! `A = 10` that is `n + 49 .. n + 56` cycles for long rows (0.95 elements per cycle at
//! `n = 1024`, 0.83 at 256, 0.55 at 64). The row latency (last element in to first code out)
//! is `W + F + stage II + 6`, e.g. 1112 / 1117 / 1123 cycles for b = 4 / 6 / 8 and `n = 1024`.
//!
//! Resources (yosys 0.23, `W = 16`, `A = 10`, default `f`, flattened; three 1024 x 16 row
//! buffers): sq4 1271 LUT6 + 699 FF + 3 RAMB18 on xc7 (`-nodsp`), 1839 LUT4 + 751 FF +
//! 12 SB_RAM40_4K on ice40; sq6 1386 / 728 / 3 and 2006 / 780 / 12; sq8 1563 / 758 / 3 and
//! 2183 / 810 / 12.

pub mod emit;
pub mod engine;
pub mod golden;
pub mod ingest;
pub mod prim;
pub mod unit;

#[cfg(test)]
pub(crate) mod golden_tests;
#[cfg(test)]
mod tests;

pub use golden::{
    golden, golden_elem, golden_row, reference_codes, reference_values, timing, L1NormConfig,
    L1NormConsts, L1NormError, RowTiming, DEFAULT_EPS,
};
pub use unit::L1Norm;

use crate::error::HwError;
use crate::verilog::Port;
use rust_hdl::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// All-ones in bits `lo..hi` of an `N`-bit vector.
pub(crate) fn bit_range<const N: usize>(lo: usize, hi: usize) -> Bits<N> {
    let mut v = Bits::<N>::default();
    for i in lo..hi.min(N) {
        v = v.replace_bit(i, true);
    }
    v
}

/// A generation-time integer that the `#[hdl_gen]` code binds to a loop variable with a one-pass
/// loop (`for k in c.lo()..c.hi()`): rust-hdl prints a loop variable as a plain decimal, so shift
/// amounts and slice offsets come out as `x << 21` and `x[(21)+:(16)]`, which Verilator accepts
/// without width warnings (a sized `localparam` index would have to match `clog2` of the vector).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopConst(usize);

impl LoopConst {
    pub fn new(v: usize) -> Self {
        LoopConst(v)
    }
    pub fn lo(&self) -> usize {
        self.0
    }
    pub fn hi(&self) -> usize {
        self.0 + 1
    }
    pub fn lo64(&self) -> u64 {
        self.0 as u64
    }
    pub fn hi64(&self) -> u64 {
        self.0 as u64 + 1
    }
}

/// `CD = max(P + 2, A + 1)` with `P = b + 6`.
pub const fn cd(a: usize, b: usize) -> usize {
    if b + 8 > a + 1 {
        b + 8
    } else {
        a + 1
    }
}

/// The const generics of [`L1Norm`] for `(W, A, b)`, in order:
/// `[W, A, NB, RB, SB, QB, N2B, DW, DH, EW, P, CB, EB, NW, K, K1, PW, B, IB]`.
pub const fn dims(w: usize, a: usize, b: usize) -> [usize; 19] {
    let cd = cd(a, b);
    [
        w,
        a,
        a + 1,
        a + 2,
        w + a,
        w + a + b + 5,
        2 * a + 1,
        cd + 2 * a + w + 5,
        2 * a + w - 2,
        b + 10 + 2 * a,
        b + 6,
        cd + 2,
        b + 10,
        w + a + b + 7,
        b + 6,
        b + 7,
        2 * b + 13,
        b,
        b + 2,
    ]
}

/// The concrete [`L1Norm`] type for literal `(W, A, b)`.
macro_rules! l1norm_unit {
    ($w:literal, $a:literal, $b:literal) => {
        $crate::l1norm::L1Norm<
            $w,
            $a,
            { $a + 1 },
            { $a + 2 },
            { $w + $a },
            { $w + $a + $b + 5 },
            { 2 * $a + 1 },
            { $crate::l1norm::cd($a, $b) + 2 * $a + $w + 5 },
            { 2 * $a + $w - 2 },
            { $b + 10 + 2 * $a },
            { $b + 6 },
            { $crate::l1norm::cd($a, $b) + 2 },
            { $b + 10 },
            { $w + $a + $b + 7 },
            { $b + 6 },
            { $b + 7 },
            { 2 * $b + 13 },
            $b,
            { $b + 2 },
        >
    };
}
#[allow(unused_imports)]
pub(crate) use l1norm_unit;

/// The `(W, A)` geometries that [`generate_l1norm`] can instantiate (each `x` b = 4, 6, 8).
pub const GEOMETRIES: [(u32, u32); 3] = [(16, 10), (16, 8), (8, 6)];

/// Calls `$f!(type)` with the concrete type for `(W, A, b)`, or returns `$none`.
macro_rules! with_unit_type {
    ($w:expr, $a:expr, $b:expr, $go:ident, $none:expr) => {
        match ($w, $a, $b) {
            (16, 10, 4) => $go!(l1norm_unit!(16, 10, 4)),
            (16, 10, 6) => $go!(l1norm_unit!(16, 10, 6)),
            (16, 10, 8) => $go!(l1norm_unit!(16, 10, 8)),
            (16, 8, 4) => $go!(l1norm_unit!(16, 8, 4)),
            (16, 8, 6) => $go!(l1norm_unit!(16, 8, 6)),
            (16, 8, 8) => $go!(l1norm_unit!(16, 8, 8)),
            (8, 6, 4) => $go!(l1norm_unit!(8, 6, 4)),
            (8, 6, 6) => $go!(l1norm_unit!(8, 6, 6)),
            (8, 6, 8) => $go!(l1norm_unit!(8, 6, 8)),
            _ => $none,
        }
    };
}

/// Everything a driver of the generated unit needs to know (recorded as JSON next to the
/// Verilog by the integrator).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct L1NormDesignParams {
    pub bits: u32,
    pub in_bits: u32,
    pub addr_bits: u32,
    pub n_max: usize,
    /// Output step `2^-frac_bits` (per-tensor SQ-b scale).
    pub frac_bits: u32,
    pub q: i64,
    /// `eps` as configured and as the hardware represents it (`e_m * 2^-EE`).
    pub eps: f64,
    pub eps_hw: f64,
    /// Proven bound of `|v_hw - v|` in code units for `|v| <= Q + 1`.
    pub error_bound: f64,
    /// Derived constants (see the module docs).
    pub constants: BTreeMap<String, i64>,
    /// Cycle counts for rows of `n_max` elements: per-stage busy cycles with the largest
    /// possible shift `s` (an upper bound; [`timing`] gives the exact count for a given row),
    /// and the resulting row latency.
    pub timing_n_max: RowTiming,
}

/// The contents of `manifest.json` next to a generated L1-norm unit.
#[derive(Clone, Debug, Serialize)]
pub struct L1NormManifest {
    pub top: String,
    pub files: Vec<String>,
    pub generator: String,
    pub clock: String,
    /// How to drive the ports.
    pub protocol: Vec<String>,
    pub parameters: L1NormDesignParams,
    pub ports: Vec<Port>,
}

/// A generated L1-norm unit.
#[derive(Clone, Debug)]
pub struct GeneratedL1Norm {
    pub top: String,
    pub verilog: String,
    pub ports: Vec<Port>,
    pub params: L1NormDesignParams,
}

/// The top module's name, e.g. `shiftkit_l1norm_sq6_w16_n1024`.
pub fn l1norm_top_name(cfg: &L1NormConfig) -> String {
    format!(
        "shiftkit_l1norm_sq{}_w{}_n{}",
        cfg.bits,
        cfg.in_bits,
        cfg.n_max()
    )
}

fn config_error(e: L1NormError) -> HwError {
    HwError::Unsupported {
        what: "this L1-norm configuration".into(),
        hint: e.0,
    }
}

/// Generate the Verilog of the L1-norm unit for `cfg`.
pub fn generate_l1norm(cfg: &L1NormConfig) -> Result<GeneratedL1Norm, HwError> {
    let c = cfg.consts().map_err(config_error)?;
    let top = l1norm_top_name(cfg);
    macro_rules! go {
        ($t:ty) => {
            crate::verilog::emit_verilog(<$t>::new(&c), &top)?
        };
    }
    let (verilog, ports) = with_unit_type!(
        cfg.in_bits,
        cfg.addr_bits,
        cfg.bits,
        go,
        return Err(HwError::Unsupported {
            what: format!(
                "an L1-norm unit with W = {}, A = {}",
                cfg.in_bits, cfg.addr_bits
            ),
            hint: format!("generated geometries (W, A) are {GEOMETRIES:?}"),
        })
    );
    let constants = [
        ("G", c.g as i64),
        ("K", c.k as i64),
        ("P", c.p as i64),
        ("T", c.t as i64),
        ("F", c.fbits as i64),
        ("CD", c.cd as i64),
        ("c_m", c.c_m as i64),
        ("e_m", c.e_m as i64),
        ("EE", c.ee as i64),
        ("SL", c.sl as i64),
        ("SR", c.sr as i64),
        ("SA", c.sa as i64),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Ok(GeneratedL1Norm {
        top,
        verilog,
        ports,
        params: L1NormDesignParams {
            bits: cfg.bits,
            in_bits: cfg.in_bits,
            addr_bits: cfg.addr_bits,
            n_max: cfg.n_max(),
            frac_bits: cfg.frac_bits,
            q: c.q,
            eps: cfg.eps,
            eps_hw: c.eps_hw(),
            error_bound: c.error_bound(),
            constants,
            timing_n_max: golden::timing_bound(&c, cfg.n_max() as u64),
        },
    })
}

/// Write `<top>.v` and `manifest.json` into `dir` (created if missing), each through a
/// temporary file and a rename, so no partial file is left behind.
pub fn write_l1norm(
    design: &GeneratedL1Norm,
    dir: &std::path::Path,
) -> Result<L1NormManifest, HwError> {
    std::fs::create_dir_all(dir).map_err(HwError::io("cannot create directory", dir))?;
    let file = format!("{}.v", design.top);
    let manifest = L1NormManifest {
        top: design.top.clone(),
        files: vec![file.clone()],
        generator: format!("shiftkit-hw {} (rust-hdl 0.46)", env!("CARGO_PKG_VERSION")),
        clock: "clock".into(),
        protocol: vec![
            "in: one element per cycle while in_valid & in_ready; in_last on the last element \
             of a row (a row also ends at its n_max-th element); in_data is W-bit two's \
             complement"
                .into(),
            "out: one code per cycle while out_valid, rows in order, out_last on the last code \
             of a row; out_code is b-bit two's complement in [-Q, Q] and \
             stands for out_code * 2^-frac_bits (gamma = 1, beta = 0)"
                .into(),
            "out_hold: while high, no code moves (out_* keep their values) and the stages \
             behind wait; tie low for a free-running unit"
                .into(),
            "reset: synchronous, active high, drops rows in progress; registers also start \
             at 0 (initial), so it may be tied low"
                .into(),
        ],
        parameters: design.params.clone(),
        ports: design.ports.clone(),
    };
    let json = serde_json::to_string_pretty(&manifest).map_err(|e| HwError::Parse {
        what: "the L1-norm manifest".into(),
        detail: e.to_string(),
    })?;
    crate::verilog::write_atomically(&dir.join(&file), design.verilog.as_bytes())?;
    crate::verilog::write_atomically(&dir.join("manifest.json"), json.as_bytes())?;
    Ok(manifest)
}
