//! The bit-exact golden model of the L1-norm unit (pure Rust, no rust-hdl), its configuration,
//! every derived constant, and the f64 reference that the contract is measured against.
//!
//! The integer contract, its derivation and the error proof are in the [module
//! documentation](super). Every quantity below has the name it has there and in the RTL.

use std::fmt;

/// `sqrt(2 pi) = 2 sqrt(pi / 2)`: the factor of `Dh = D / 2` in the denominator.
pub const SQRT_2PI: f64 = 2.506_628_274_631_000_2;
/// `sqrt(pi / 2)`, SPEC §5.
pub const SQRT_HALF_PI: f64 = 1.253_314_137_315_500_3;
/// Guard bits `G` of the per-element datapath (see the module docs, "precision").
pub const GUARD: u32 = 4;
/// Extra bits of the reciprocal mantissa: `P = b + RECIP_EXTRA`.
pub const RECIP_EXTRA: u32 = 6;
/// Width of the per-row shift `s` (`s <= W + A + 2 <= 31`).
pub const SHIFT_BITS: u32 = 5;
/// Coarse step of the normalization loop (`r <<= 4` while `r << 4 < den`).
pub const NORM_STEP: u32 = 4;
/// SPEC §5 default.
pub const DEFAULT_EPS: f64 = 1e-5;

/// A bad configuration or a bad row: what is wrong and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L1NormError(pub String);

impl fmt::Display for L1NormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for L1NormError {}

/// What the user chooses (run-time parameters of generation).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct L1NormConfig {
    /// `W`: inputs are `W`-bit two's-complement integers.
    pub in_bits: u32,
    /// `A`: rows hold `1..=2^A` elements (`n_max = 2^A`; three `2^A x W` row buffers).
    pub addr_bits: u32,
    /// `b`: output format SQ-b, 4, 6 or 8.
    pub bits: u32,
    /// `f`: the output step is `2^-f` (codes `q` stand for `q * 2^-f`), `0..=b-1`.
    pub frac_bits: u32,
    /// `eps` in input units, `0 <= eps <= 2^(W-1)`.
    pub eps: f64,
}

impl L1NormConfig {
    /// `W = 16`, `A = 10` (rows up to 1024), `f = b - 3` (codes span +-Q/2^f = +-3.5 / 3.9 / 4.0
    /// standard deviations for b = 4 / 6 / 8), `eps = 1e-5`.
    pub fn new(bits: u32) -> Self {
        L1NormConfig {
            in_bits: 16,
            addr_bits: 10,
            bits,
            frac_bits: bits.saturating_sub(3),
            eps: DEFAULT_EPS,
        }
    }

    pub fn with_frac_bits(self, frac_bits: u32) -> Self {
        L1NormConfig { frac_bits, ..self }
    }

    pub fn with_eps(self, eps: f64) -> Self {
        L1NormConfig { eps, ..self }
    }

    pub fn with_geometry(self, in_bits: u32, addr_bits: u32) -> Self {
        L1NormConfig {
            in_bits,
            addr_bits,
            ..self
        }
    }

    /// Maximum row length `2^A`.
    pub fn n_max(&self) -> usize {
        1usize << self.addr_bits
    }

    /// The output step `2^-f`: code `q` stands for `q * step` (in units of sigma).
    pub fn step(&self) -> f64 {
        (-(self.frac_bits as f64)).exp2()
    }

    /// Check the configuration and derive every constant of the design.
    pub fn consts(&self) -> Result<L1NormConsts, L1NormError> {
        L1NormConsts::new(self)
    }
}

/// Every derived constant (all integers); see the module docs for where each comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct L1NormConsts {
    pub w: u32,
    pub a: u32,
    pub b: u32,
    /// `Q = 2^(b-1) - 1`.
    pub q: i64,
    pub f: u32,
    /// `G`.
    pub g: u32,
    /// `K = b + G + 2`: bits of the shifted, saturated deviation `u`.
    pub k: u32,
    /// `P = b + 6`: bits of the reciprocal mantissa `M`.
    pub p: u32,
    /// `T = P + G + 2`: fraction bits of the product `(2u + 1) * M`.
    pub t: u32,
    /// `F = f + A + G + 2`: fraction bits of the mean `MU`.
    pub fbits: u32,
    /// `F` for `f = b - 1` (sizes the containers, so that `f` is a run-time parameter).
    pub fmax: u32,
    /// `NW = W + Fmax + 2`: bits of `w`.
    pub nw: u32,
    /// `CD = max(P + 2, A + 1)`: `den` is `2^CD * n^2 * sigma`.
    pub cd: u32,
    /// `c_m = round(sqrt(2 pi) * 2^CD)` (`CB = CD + 2` bits).
    pub c_m: u64,
    pub cb: u32,
    /// `eps ~ e_m * 2^-EE` with `e_m` of `EB = P + 4` bits (`e_m = 0` when `eps = 0`).
    pub e_m: u64,
    pub eb: u32,
    pub ee: i32,
    /// `TE = ((e_m * n^2) << SL) >> SR`, `SL - SR = CD - EE`.
    pub sl: u32,
    pub sr: u32,
    /// `a1 = n^2 << SA`, `SA = CD - A - 1`.
    pub sa: u32,
    /// `den < 2^DB`, `DB = CD + 2A + W + 1`; registers of the row engine are `DW = DB + 4` bits.
    pub db: u32,
    pub dw: u32,
    /// `Dh < 2^DH`, `DH = 2A + W - 2`; `e_m n^2 < 2^EW`, `EW = EB + 2A`.
    pub dh: u32,
    pub ew: u32,
}

impl L1NormConsts {
    pub fn new(cfg: &L1NormConfig) -> Result<Self, L1NormError> {
        let bad = |m: String| Err(L1NormError(m));
        let (w, a, b, f) = (cfg.in_bits, cfg.addr_bits, cfg.bits, cfg.frac_bits);
        if ![4, 6, 8].contains(&b) {
            return bad(format!("L1-norm output bits must be 4, 6 or 8, got {b}"));
        }
        if !(2..=24).contains(&w) {
            return bad(format!("L1-norm input width must be 2..=24 bits, got {w}"));
        }
        if !(3..=14).contains(&a) || w + a > 29 {
            return bad(format!(
                "L1-norm rows of up to 2^{a} elements of {w} bits: need 3 <= A <= 14 and W + A <= 29"
            ));
        }
        if f >= b {
            return bad(format!(
                "L1-norm output step 2^-{f} with b = {b}: the fraction bits f must be 0..={}",
                b - 1
            ));
        }
        let eps = cfg.eps;
        let eps_max = ((w - 1) as f64).exp2();
        if !(eps.is_finite() && (0.0..=eps_max).contains(&eps)) {
            return bad(format!(
                "L1-norm eps must be finite and in [0, 2^(W-1)] = [0, {eps_max}], got {eps}"
            ));
        }
        let g = GUARD;
        let k = b + g + 2;
        let p = b + RECIP_EXTRA;
        let t = p + g + 2;
        let fbits = f + a + g + 2;
        let fmax = (b - 1) + a + g + 2;
        let nw = w + fmax + 2;
        let cd = (p + 2).max(a + 1);
        let c_m = (SQRT_2PI * (cd as f64).exp2()).round() as u64;
        let cb = cd + 2;
        let eb = p + 4;
        let db = cd + 2 * a + w + 1;
        let dw = db + NORM_STEP;
        // eps = e_m * 2^-EE, e_m in [2^(EB-1), 2^EB). Values so small that their term is below
        // 2^-(EB+DW) of one unit of den vanish (e_m = 0): they cannot move floor(.) anyway.
        let (mut e_m, mut ee) = (0u64, 0i32);
        if eps > 0.0 {
            let mut e = eb as i32 - 1 - eps.log2().floor() as i32;
            if e <= 1000 {
                let mut m = (eps * (e as f64).exp2()).round();
                // log2 rounding at a power of two: fix the binade.
                while m >= ((eb) as f64).exp2() {
                    e -= 1;
                    m = (eps * (e as f64).exp2()).round();
                }
                while m < ((eb - 1) as f64).exp2() {
                    e += 1;
                    m = (eps * (e as f64).exp2()).round();
                }
                if e - (cd as i32) < (dw + eb) as i32 {
                    e_m = m as u64;
                    ee = e;
                }
            }
        }
        let (sl, sr) = if e_m == 0 {
            (0, 0)
        } else if cd as i32 >= ee {
            ((cd as i32 - ee) as u32, 0)
        } else {
            (0, (ee - cd as i32) as u32)
        };
        if dw > 64 {
            return bad(format!(
                "L1-norm row engine would need {dw}-bit registers (W = {w}, A = {a}, b = {b}); \
                 reduce W or A so that CD + 2A + W + 5 <= 64"
            ));
        }
        Ok(L1NormConsts {
            w,
            a,
            b,
            q: (1i64 << (b - 1)) - 1,
            f,
            g,
            k,
            p,
            t,
            fbits,
            fmax,
            nw,
            cd,
            c_m,
            cb,
            e_m,
            eb,
            ee,
            sl,
            sr,
            sa: cd - a - 1,
            db,
            dw,
            dh: 2 * a + w - 2,
            ew: eb + 2 * a,
        })
    }

    /// `eps` as the hardware sees it: `e_m * 2^-EE`.
    pub fn eps_hw(&self) -> f64 {
        self.e_m as f64 * (-(self.ee as f64)).exp2()
    }

    /// Rows up to `2^A` elements.
    pub fn n_max(&self) -> usize {
        1usize << self.a
    }

    /// Proven bound on `|v_hw - v|` for `|v| <= Q + 1` (`v` the exact value in code units, `v_hw`
    /// the value the unit rounds): see "precision" in the module docs.
    pub fn error_bound(&self) -> f64 {
        let eps_m = 1.2 * (-((self.p - 1) as f64)).exp2();
        let lam = (-((self.g + 1) as f64)).exp2() / (1.0 - eps_m);
        let e_mean = (-((self.g + 3) as f64)).exp2() / SQRT_HALF_PI;
        (1.0 + eps_m) * (lam / 2.0 + e_mean) + ((self.q + 1) as f64) * eps_m
    }
}

/// Per-row quantities of the golden model (the RTL registers of the same names).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowTrace {
    pub n: u64,
    /// `S' = sum x'_i`, `x' = x + 2^(W-1)`.
    pub s_sum: u64,
    /// `MU = floor(S' * 2^F / n)`.
    pub mu: u64,
    /// `qS = MU >> F = floor(S' / n)`.
    pub qs: u64,
    /// `Xp = sum of x'_i > qS`, `cgt` = their count.
    pub xp: u64,
    pub cgt: u64,
    /// `Dh = n * Xp - S' * cgt = (1/2) sum |n x_i - S|`.
    pub dh: u64,
    pub n2: u64,
    /// `TE = ((e_m * n^2) << SL) >> SR`.
    pub te: u64,
    /// `den = c_m * Dh + TE`.
    pub den: u64,
    /// Shift and reciprocal mantissa (`0, 0` when `Dh = 0`).
    pub s: u32,
    pub m: u64,
}

/// Per-element quantities (for debugging the RTL and for the precision tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElemTrace {
    /// `w = (x' << (F+1)) - (2 MU + 1)`.
    pub w: i128,
    /// `u = sat_K(floor(w / 2^s))`.
    pub u: i64,
    /// `prod = (2u + 1) * M`; the unit rounds `v_hw = prod / 2^T`.
    pub prod: i128,
    pub code: i8,
}

fn check_row(c: &L1NormConsts, row: &[i64]) -> Result<(), L1NormError> {
    if row.is_empty() || row.len() > c.n_max() {
        return Err(L1NormError(format!(
            "L1-norm rows must have 1..={} elements (A = {}), got {}",
            c.n_max(),
            c.a,
            row.len()
        )));
    }
    let lim = 1i64 << (c.w - 1);
    if let Some((i, x)) = row.iter().enumerate().find(|(_, &x)| x < -lim || x >= lim) {
        return Err(L1NormError(format!(
            "L1-norm input element {i} = {x} does not fit {} bits signed",
            c.w
        )));
    }
    Ok(())
}

/// The per-row part of the golden model.
pub fn golden_row(c: &L1NormConsts, row: &[i64]) -> Result<RowTrace, L1NormError> {
    check_row(c, row)?;
    let off = 1i64 << (c.w - 1);
    let xs = row.iter().map(|&x| (x + off) as u64);
    let n = row.len() as u64;
    let s_sum: u64 = xs.clone().sum();
    let mu = ((s_sum as u128) << c.fbits) / n as u128;
    let mu = mu as u64;
    let qs = mu >> c.fbits;
    debug_assert_eq!(qs, s_sum / n);
    let (xp, cgt) = xs
        .filter(|&x| x > qs)
        .fold((0u64, 0u64), |(s, k), x| (s + x, k + 1));
    let dh = (n as u128 * xp as u128 - s_sum as u128 * cgt as u128) as u64;
    assert!(dh < 1 << c.dh, "Dh {dh} exceeds 2^{}", c.dh);
    assert!((c.e_m as u128) * ((n * n) as u128) < 1 << c.ew);
    let n2 = n * n;
    let te = ((((c.e_m as u128) * n2 as u128) << c.sl) >> c.sr.min(127)) as u64;
    let den128 = c.c_m as u128 * dh as u128 + te as u128;
    assert!(den128 < 1u128 << c.db, "den {den128} exceeds 2^{}", c.db);
    let den = den128 as u64;
    let (mut s, mut m) = (0u32, 0u64);
    if dh != 0 {
        let mut r = (n2 as u128) << c.sa;
        while r < den as u128 {
            if r << NORM_STEP < den as u128 {
                r <<= NORM_STEP;
                s += NORM_STEP;
            } else {
                r <<= 1;
                s += 1;
            }
        }
        assert!(s < 1 << SHIFT_BITS, "shift {s} overflows {SHIFT_BITS} bits");
        for _ in 0..c.p {
            let ge = r >= den as u128;
            if ge {
                r -= den as u128;
            }
            m = 2 * m + ge as u64;
            r <<= 1;
        }
        debug_assert!(m >> (c.p - 1) == 1, "M is normalized");
    }
    Ok(RowTrace {
        n,
        s_sum,
        mu,
        qs,
        xp,
        cgt,
        dh,
        n2,
        te,
        den,
        s,
        m,
    })
}

/// The per-element part of the golden model.
pub fn golden_elem(c: &L1NormConsts, r: &RowTrace, x: i64) -> ElemTrace {
    let xp = (x + (1i64 << (c.w - 1))) as i128;
    let w = (xp << (c.fbits + 1)) - (2 * r.mu as i128 + 1);
    let kmax = (1i128 << (c.k - 1)) - 1;
    let u = (w >> r.s).clamp(-kmax - 1, kmax) as i64;
    let prod = (2 * u as i128 + 1) * r.m as i128;
    let ip = prod >> c.t;
    let half = (prod >> (c.t - 1)) & 1 == 1;
    let sticky = prod & ((1i128 << (c.t - 1)) - 1) != 0;
    let up = half && (sticky || ip & 1 == 1);
    let code = (ip + up as i128).clamp(-c.q as i128, c.q as i128) as i8;
    ElemTrace { w, u, prod, code }
}

/// Cycle counts of the RTL for one row (exact; `tests` checks them against the simulation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RowTiming {
    /// Cycles stage I spends on a row: `n` accepted elements, `W + F` division steps, the
    /// hand-off (when stage II takes the row at once).
    pub stage1: u64,
    /// Cycles stage II spends on a row: from taking it to being able to take the next.
    pub stage2: u64,
    /// Cycles stage III spends on a row: `n` reads and the pipeline drain.
    pub stage3: u64,
    /// From the cycle the row's last element is accepted to the cycle its first code is valid,
    /// when stages II and III are free.
    pub latency: u64,
}

impl RowTiming {
    /// Cycles per row of a stream of rows like this one: the slowest stage.
    pub fn period(&self) -> u64 {
        self.stage1.max(self.stage2).max(self.stage3)
    }
}

/// The RTL's cycle counts for a row with per-row quantities `r` (see the stage docs).
pub fn timing(c: &L1NormConsts, r: &RowTrace) -> RowTiming {
    let n = r.n;
    let (nb, eb, cb, p) = ((c.a + 1) as u64, c.eb as u64, c.cb as u64, c.p as u64);
    // Stage II leaves WAITSUB after the second pass and the side engine (n^2, eps term).
    let x = (n + 2).max(nb + eb + 1);
    // Normalization: coarse steps of 4 while they cannot overshoot, single steps, exit check.
    let s = r.s as u64;
    let norm_div = if r.dh == 0 {
        0
    } else {
        let coarse = (s - 1) / 4;
        (coarse + (s - 4 * coarse) + 1) + p
    };
    // Cycle (counted from the one that takes the row) in which stage II offers it on.
    let hand = x + nb + cb + 2 + norm_div;
    let stage2 = hand + 1;
    let div = (c.w + c.fbits) as u64;
    RowTiming {
        stage1: n + div + 1,
        stage2,
        stage3: n + 5,
        latency: div + 1 + hand + 6,
    }
}

/// [`timing`] for a row of `n` elements, maximized over the shifts the design admits
/// (`2 <= s <= W + A + 2`): an upper bound of the per-row cycles of rows of that length.
pub fn timing_bound(c: &L1NormConsts, n: u64) -> RowTiming {
    (2..=c.w + c.a + 2)
        .map(|s| {
            let r = RowTrace {
                n,
                dh: 1,
                s,
                ..Default::default()
            };
            timing(c, &r)
        })
        .max_by_key(|t| t.stage2)
        .expect("nonempty")
}

/// The golden model: one row of `n` integer inputs -> `n` SQ-b codes (step `2^-f`).
pub fn golden(cfg: &L1NormConfig, row: &[i64]) -> Result<Vec<i8>, L1NormError> {
    let c = cfg.consts()?;
    let r = golden_row(&c, row)?;
    Ok(row.iter().map(|&x| golden_elem(&c, &r, x).code).collect())
}

/// The f64 value of the contract's expression, in code units (before rounding): element `i` is
/// `((x_i - mu) / sigma) / 2^-f` with `mu`, `d`, `sigma` computed in f64 as in SPEC §5.
/// `eps` is the configured value. A constant row gives 0 (also with `eps = 0`, where f64
/// would give 0/0).
pub fn reference_values(cfg: &L1NormConfig, row: &[i64]) -> Vec<f64> {
    let n = row.len() as f64;
    let mu = row.iter().map(|&x| x as f64).sum::<f64>() / n;
    let d = row.iter().map(|&x| (x as f64 - mu).abs()).sum::<f64>() / n;
    let sigma = SQRT_HALF_PI * d + cfg.eps;
    let step = cfg.step();
    row.iter()
        .map(|&x| {
            let c = x as f64 - mu;
            if c == 0.0 {
                0.0
            } else {
                (c / sigma) / step
            }
        })
        .collect()
}

/// `round_half_even(v)` clamped to `[-Q, Q]`, for each reference value.
pub fn reference_codes(cfg: &L1NormConfig, row: &[i64]) -> Vec<i8> {
    let q = ((1i64 << (cfg.bits - 1)) - 1) as f64;
    reference_values(cfg, row)
        .into_iter()
        .map(|v| v.round_ties_even().clamp(-q, q) as i8)
        .collect()
}
