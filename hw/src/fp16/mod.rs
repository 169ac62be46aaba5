//! The FP16 reference datapath (SPEC §4): binary16 operands, exact products, binary32
//! accumulation with round-to-nearest-even in arrival order from +0, results below 2^-126
//! flushed to a zero of the same sign.
//!
//! - [`mul`]: stage 1 (two halves), the exact binary16 x binary16 product as binary32 bits ([`Fp16Mul`],
//!   with the 11 x 11 array multiplier [`SigMul11`]).
//! - [`add`]: stages 2 and 3, binary32 addition: [`AlignAdd`] (compare, align, add) and
//!   [`NormRound`] (normalize, round to nearest even, flush, pack).
//! - [`pe`]: the PE ([`Fp16Pe`]): forwarding registers, the pipeline (1a, 1b, 2, 3), two interleaved
//!   accumulators (the pipeline registers of the accumulator loop) and the drain register.
//! - [`array`]: the R x C output-stationary array of PEs ([`Fp16Array`]), `2R x C` outputs per
//!   tile.
//! - [`model`]: the bit-exact Rust reference of all of the above.
//! - [`norm`], [`prim`]: leading-zero normalizer; concatenation and zero extension.

pub mod add;
pub mod array;
pub mod model;
pub mod mul;
pub mod norm;
pub mod pe;
pub mod prim;

#[cfg(test)]
mod tests;

pub use add::{AlignAdd, ExpAdjust, MagOrder, NormRound};
pub use array::Fp16Array;
pub use mul::{Fp16Mul, Fp16MulBack, Fp16MulFront, SigMul11};
pub use pe::{Fp16Ctl, Fp16Pe, FP16_CTL_BITS, FP16_LATENCY, FP16_SLOTS};

/// binary32 bit patterns the datapath produces for special results.
pub const F32_NEG_ZERO: u32 = 0x8000_0000;
pub const F32_POS_INF: u32 = 0x7f80_0000;
pub const F32_NEG_INF: u32 = 0xff80_0000;
/// The canonical quiet NaN: every NaN result of the datapath is exactly this pattern.
pub const F32_QNAN: u32 = 0x7fc0_0000;
