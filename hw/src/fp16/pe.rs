//! The FP16 processing element: forwarding registers (A + control east, B south, as in
//! `crate::pe::SqPe`) around a four-stage multiply-accumulate pipeline and a drain register.
//!
//! ```text
//!   a_in, b_in, ctl_in -> [a, b, ctl] -> MulFront -> [M] -> MulBack -> [P] -> AlignAdd -> [X]
//!                         (forwarded)    stage 1a            1b              2  ^          |
//!                                                                               acc    NormRound 3
//!                                                                                ^         |
//!                                                                                +--[ACC]--+
//! ```
//!
//! Latency ([`FP16_LATENCY`]): operands at the ports in cycle t are in the forwarding registers
//! after edge t, in M after t+1, in P after t+2, in X after t+3, and their sum is in ACC (or,
//! with `flush`, in the drain register) after edge t+4.
//!
//! **Accumulation scheme: two interleaved outputs (C-slow).** The accumulator loop
//! `ACC -> AlignAdd -> X -> NormRound -> ACC` holds two registers, so an addition cannot use the
//! result of the addition issued in the previous cycle. Instead of stalling, the PE computes
//! **two independent dot products** ("slots"), alternating cycle by cycle: the operand pair that
//! enters stage 2 in cycle n is added to the result of the pair that entered in cycle n - 2.
//! Each slot is a strict sequential binary32 recurrence `acc = flush(acc + a*b)` in its own
//! arrival order, bit for bit the golden model; the registers that pipeline the adder *are* the
//! two accumulators, so interleaving costs no storage. Throughput: one MAC per cycle per PE when
//! both slots are fed (an output-stationary array computes a tile of 2R x C outputs, rows
//! m and m + R of a pair interleaved on the same A lane; B's element for a given k is presented
//! twice, in consecutive cycles). A schedule with a single output per PE must feed a bubble
//! (`valid = 0`) every other cycle: half the throughput.
//!
//! Control per pair: `valid` (accumulate this pair; otherwise the product is -0, which leaves the
//! accumulator bit for bit unchanged) and `flush` (last pair of its slot's tile: four cycles
//! later the final sum goes into the drain register and the slot's accumulator restarts from +0).
//! The drain register then shifts results north one PE per cycle exactly as in the integer PE
//! (`drain <= flush ? sum : drain_in`); the two slots of a PE flush in consecutive cycles.
//! After power-up (rust-hdl's registers start at zero) both slots hold +0. An inf or NaN
//! (never offloaded by the runtime) stays in its slot's accumulator, as IEEE arithmetic says,
//! until that slot's flush.

use super::add::{AlignAdd, NormRound, FRAME_BITS};
use super::mul::{Fp16MulBack, Fp16MulFront};
use rust_hdl::prelude::*;

/// Width of the packed control bundle: `valid`, `flush`.
pub const FP16_CTL_BITS: usize = 2;

/// Number of interleaved accumulations a PE carries (the accumulator loop's register count).
pub const FP16_SLOTS: usize = 2;

/// Clock edges from the forwarding registers to the sum in ACC / the drain register (one more
/// edge, into the forwarding registers, comes first).
pub const FP16_LATENCY: usize = 4;

/// The control bundle that travels with A, packed LSB first as `{flush, valid}` (the same bit
/// positions as the integer PE's `MacCtl`, which has the per-K shift above them).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Fp16Ctl {
    pub valid: bool,
    pub flush: bool,
}

impl Fp16Ctl {
    pub const VALID_BIT: usize = 0;
    pub const FLUSH_BIT: usize = 1;

    pub fn new(valid: bool, flush: bool) -> Self {
        Fp16Ctl { valid, flush }
    }
    pub fn idle() -> Self {
        Fp16Ctl::default()
    }
    /// The packed value to drive on a `ctl` port.
    pub fn pack(&self) -> u64 {
        u64::from(self.valid) << Self::VALID_BIT | u64::from(self.flush) << Self::FLUSH_BIT
    }
    pub fn to_bits(&self) -> Bits<FP16_CTL_BITS> {
        bits(self.pack())
    }
}

/// One FP16 PE (see the module doc).
#[derive(LogicBlock)]
pub struct Fp16Pe {
    pub clock: Signal<In, Clock>,
    pub a_in: Signal<In, Bits<16>>,
    pub ctl_in: Signal<In, Bits<FP16_CTL_BITS>>,
    pub b_in: Signal<In, Bits<16>>,
    pub a_out: Signal<Out, Bits<16>>,
    pub ctl_out: Signal<Out, Bits<FP16_CTL_BITS>>,
    pub b_out: Signal<Out, Bits<16>>,
    /// Drain chain input, from the PE to the south (zero at the bottom row).
    pub drain_in: Signal<In, Bits<32>>,
    pub drain_valid_in: Signal<In, Bit>,
    /// This PE's drain register (binary32 bits), to the PE to the north.
    pub drain_out: Signal<Out, Bits<32>>,
    pub drain_valid_out: Signal<Out, Bit>,
    a_reg: DFF<Bits<16>>,
    ctl_reg: DFF<Bits<FP16_CTL_BITS>>,
    b_reg: DFF<Bits<16>>,
    front: Fp16MulFront,
    /// Stage 1a -> 1b: the raw product, its exponent and class, the control.
    m_prod: DFF<Bits<22>>,
    m_esum: DFF<Bits<8>>,
    m_sign: DFF<Bit>,
    m_nan: DFF<Bit>,
    m_inf: DFF<Bit>,
    m_valid: DFF<Bit>,
    m_flush: DFF<Bit>,
    back: Fp16MulBack,
    /// Stage 1 -> 2: the product and its flush flag.
    p_reg: DFF<Bits<32>>,
    p_flush: DFF<Bit>,
    add: AlignAdd,
    /// Stage 2 -> 3.
    x_sign: DFF<Bit>,
    x_zsign: DFF<Bit>,
    x_exp: DFF<Bits<8>>,
    x_sum: DFF<Bits<FRAME_BITS>>,
    x_nan: DFF<Bit>,
    x_inf: DFF<Bit>,
    x_flush: DFF<Bit>,
    round: NormRound,
    acc: DFF<Bits<32>>,
    drain: DFF<Bits<32>>,
    drain_valid: DFF<Bit>,
    valid_bit: Constant<Bits<1>>,
    flush_bit: Constant<Bits<1>>,
    pos_zero: Constant<Bits<32>>,
}

impl Default for Fp16Pe {
    fn default() -> Self {
        Self::new()
    }
}

impl Fp16Pe {
    pub fn new() -> Self {
        Self {
            clock: Default::default(),
            a_in: Default::default(),
            ctl_in: Default::default(),
            b_in: Default::default(),
            a_out: Default::default(),
            ctl_out: Default::default(),
            b_out: Default::default(),
            drain_in: Default::default(),
            drain_valid_in: Default::default(),
            drain_out: Default::default(),
            drain_valid_out: Default::default(),
            a_reg: Default::default(),
            ctl_reg: Default::default(),
            b_reg: Default::default(),
            front: Default::default(),
            m_prod: Default::default(),
            m_esum: Default::default(),
            m_sign: Default::default(),
            m_nan: Default::default(),
            m_inf: Default::default(),
            m_valid: Default::default(),
            m_flush: Default::default(),
            back: Default::default(),
            p_reg: Default::default(),
            p_flush: Default::default(),
            add: Default::default(),
            x_sign: Default::default(),
            x_zsign: Default::default(),
            x_exp: Default::default(),
            x_sum: Default::default(),
            x_nan: Default::default(),
            x_inf: Default::default(),
            x_flush: Default::default(),
            round: Default::default(),
            acc: Default::default(),
            drain: Default::default(),
            drain_valid: Default::default(),
            valid_bit: Constant::new(bits(Fp16Ctl::VALID_BIT as u64)),
            flush_bit: Constant::new(bits(Fp16Ctl::FLUSH_BIT as u64)),
            pos_zero: Constant::new(bits(0)),
        }
    }
}

impl Logic for Fp16Pe {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            a_reg,
            ctl_reg,
            b_reg,
            m_prod,
            m_esum,
            m_sign,
            m_nan,
            m_inf,
            m_valid,
            m_flush,
            p_reg,
            p_flush,
            x_sign,
            x_zsign,
            x_exp,
            x_sum,
            x_nan,
            x_inf,
            x_flush,
            acc,
            drain,
            drain_valid
        );
        // Forwarding.
        self.a_reg.d.next = self.a_in.val();
        self.ctl_reg.d.next = self.ctl_in.val();
        self.b_reg.d.next = self.b_in.val();
        self.a_out.next = self.a_reg.q.val();
        self.ctl_out.next = self.ctl_reg.q.val();
        self.b_out.next = self.b_reg.q.val();
        // Stage 1: product.
        self.front.a.next = self.a_reg.q.val();
        self.front.b.next = self.b_reg.q.val();
        self.m_prod.d.next = self.front.prod.val();
        self.m_esum.d.next = self.front.esum.val();
        self.m_sign.d.next = self.front.sign.val();
        self.m_nan.d.next = self.front.nan.val();
        self.m_inf.d.next = self.front.inf.val();
        self.m_valid.d.next = self.ctl_reg.q.val().get_bit(self.valid_bit.val().index());
        self.m_flush.d.next = self.ctl_reg.q.val().get_bit(self.flush_bit.val().index());
        self.back.prod.next = self.m_prod.q.val();
        self.back.esum.next = self.m_esum.q.val();
        self.back.sign.next = self.m_sign.q.val();
        self.back.nan.next = self.m_nan.q.val();
        self.back.inf.next = self.m_inf.q.val();
        self.back.valid.next = self.m_valid.q.val();
        self.p_reg.d.next = self.back.p.val();
        self.p_flush.d.next = self.m_flush.q.val();
        // Stage 2: align and add to this slot's accumulator.
        self.add.x.next = self.acc.q.val();
        self.add.y.next = self.p_reg.q.val();
        self.x_sign.d.next = self.add.sign.val();
        self.x_zsign.d.next = self.add.zsign.val();
        self.x_exp.d.next = self.add.exp.val();
        self.x_sum.d.next = self.add.sum.val();
        self.x_nan.d.next = self.add.nan.val();
        self.x_inf.d.next = self.add.inf.val();
        self.x_flush.d.next = self.p_flush.q.val();
        // Stage 3: normalize, round, flush; then accumulate or drain.
        self.round.sign.next = self.x_sign.q.val();
        self.round.zsign.next = self.x_zsign.q.val();
        self.round.exp.next = self.x_exp.q.val();
        self.round.sum.next = self.x_sum.q.val();
        self.round.nan.next = self.x_nan.q.val();
        self.round.inf.next = self.x_inf.q.val();
        self.acc.d.next = self.round.r.val();
        self.drain.d.next = self.drain_in.val();
        self.drain_valid.d.next = self.drain_valid_in.val();
        if self.x_flush.q.val() {
            self.acc.d.next = self.pos_zero.val();
            self.drain.d.next = self.round.r.val();
            self.drain_valid.d.next = true;
        }
        self.drain_out.next = self.drain.q.val();
        self.drain_valid_out.next = self.drain_valid.q.val();
    }
}
