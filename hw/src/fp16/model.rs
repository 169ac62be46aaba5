//! The bit-exact reference of the FP16 datapath, in plain Rust (no `half` dependency).
//!
//! Host `f32` arithmetic is IEEE binary32 with round-to-nearest-even, so the recurrence is
//! literally SPEC §4: `acc = flush(acc + f32(a) * f32(b))`, the product exact. The RTL returns the
//! canonical quiet NaN 0x7fc00000 for every NaN result; the host's NaN bits differ by platform,
//! so [`same_result`] compares NaNs by kind.

/// binary16 bits -> the binary32 value (exact; subnormals included, inf/NaN kept).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let mag = match (exp, frac) {
        (0, 0) => 0,
        // Subnormal: frac * 2^-24 is a normal binary32 value.
        (0, f) => (f as f32 * f32::from_bits((127 - 24) << 23)).to_bits(),
        (0x1f, 0) => 0x7f80_0000,
        (0x1f, f) => 0x7fc0_0000 | (f << 13),
        (e, f) => ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(sign | mag)
}

/// A binary32 value below 2^-126 in magnitude becomes a zero of the same sign.
pub fn flush(x: f32) -> f32 {
    if x.is_subnormal() {
        0.0f32.copysign(x)
    } else {
        x
    }
}

/// The exact product of two binary16 values (what stage 1 produces).
pub fn product(a: u16, b: u16) -> f32 {
    f16_to_f32(a) * f16_to_f32(b)
}

/// One accumulation step: `flush(acc + a*b)`.
pub fn mac(acc: f32, a: u16, b: u16) -> f32 {
    flush(acc + product(a, b))
}

/// The dot product of `pairs` in order, from +0.
pub fn dot(pairs: &[(u16, u16)]) -> f32 {
    pairs.iter().fold(0.0f32, |acc, &(a, b)| mac(acc, a, b))
}

/// Bit-identical, except that any NaN equals any NaN.
pub fn same_result(rtl: u32, model: f32) -> bool {
    if model.is_nan() {
        f32::from_bits(rtl).is_nan()
    } else {
        rtl == model.to_bits()
    }
}
