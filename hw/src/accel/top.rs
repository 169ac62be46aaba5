//! `SqAccel`: the ShiftQuant accelerator top (`docs/accelerator.md`).
//!
//! ```text
//!        ┌─ Control ─────────────────────────────────────────────────────────┐
//!   cmd ─┼> CmdDecoder ──LOAD──> OperandRam A, B ──lanes──────────────────────┼──> SqArray
//!        │      │  COMPUTE ──> FeederHost <═══ join ═══> SqFeeder ──ctl──────┼──> SqArray
//!        │      │  DRAIN / STATUS ──> ResultPath (Collector, ResultRam x C,   │<── drain
//!   rsp <┼──────┼───────────────────── Responder) <── L1NORM response beats ──┼─┐
//!        └──────┼─────────────────────────────────────────────────────────────┘ │
//!               └─ L1NORM data ──> L1Path (serializer, L1-norm unit, packer) ───┘
//! ```
//!
//! [`Control`](super::control::Control) (decoder, operand buffers, result path) is shared with
//! the FP16 top; this top adds the integer feeder and array and the L1NORM path.
//!
//! The type's parameters are the PE's (`B` bits, `P` product, `ACC` accumulator) and the
//! L1-norm unit's (`W`, `A` and the widths derived from them and `B`, see `crate::l1norm::dims`;
//! `RP` is the unit's `P`). [`sq_accel!`](crate::sq_accel) names the type for `(b, p, acc, W, A)`.
//! A top generated without the unit (`AccelGeometry::l1norm` = `None`) has a decoder that
//! treats opcode 6 as unknown, and every output of the L1 path is gated with the constant
//! `l1_on` = 0, so nothing of it reaches a port and synthesis removes it (rust-hdl cannot make
//! a sub-block with vector ports optional).
//!
//! The rust-hdl block's command and response ports are vectors of 32-bit words
//! (`cmd_data_<w>`, `rsp_data_<w>`: word `w` = bits `32w+31 : 32w` of the documented port),
//! because a flat port's width would have to be a type parameter; `generate` wraps the block in
//! a module with the documented flat `cmd_data` / `rsp_data` ports.

use super::compute::{SqFeeder, SQ_COLLECT_TAP};
use super::control::{Control, FeederHost};
use super::l1path::L1Path;
use super::{AccelGeometry, WORD_BITS};
use crate::array::SqArray;
use crate::l1norm::L1NormConfig;
use crate::pe::{PeParams, CTL_BITS};
use rust_hdl::prelude::*;

/// The concrete [`SqAccel`] type for literal `(b, p, acc, W, A)` (PE bits, product and
/// accumulator widths; the L1-norm unit's input width and row-buffer address bits).
#[macro_export]
macro_rules! sq_accel {
    ($b:literal, $p:literal, $acc:literal, $w:literal, $a:literal) => {
        $crate::accel::top::SqAccel<
            $b,
            $p,
            $acc,
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
            { $b + 2 },
        >
    };
}

#[derive(LogicBlock)]
pub struct SqAccel<
    const B: usize,
    const P: usize,
    const ACC: usize,
    const W: usize,
    const A: usize,
    const NB: usize,
    const RB: usize,
    const SB: usize,
    const QB: usize,
    const N2B: usize,
    const DW: usize,
    const DH: usize,
    const EW: usize,
    const RP: usize,
    const CB: usize,
    const EB: usize,
    const NW: usize,
    const K: usize,
    const K1: usize,
    const PW: usize,
    const IB: usize,
> {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cmd_data: Vec<Signal<In, Bits<WORD_BITS>>>,
    pub cmd_valid: Signal<In, Bit>,
    pub cmd_ready: Signal<Out, Bit>,
    pub rsp_data: Vec<Signal<Out, Bits<WORD_BITS>>>,
    pub rsp_valid: Signal<Out, Bit>,
    pub rsp_ready: Signal<In, Bit>,
    /// Decoder, operand buffers, result path.
    pub(crate) control: Control<B, ACC>,
    feeder: SqFeeder,
    pub(crate) array: SqArray<B, P, ACC>,
    /// The L1NORM path (inert in a top without the unit).
    l1path: L1Path<W, A, NB, RB, SB, QB, N2B, DW, DH, EW, RP, CB, EB, NW, K, K1, PW, B, IB>,
    /// The top has the L1-norm unit (gates the path's outputs).
    l1_on: Constant<Bit>,
    /// The array's cascade outputs (for tiling arrays) are not used by the top.
    unused_a_east: Vec<Signal<Local, Bits<B>>>,
    unused_ctl_east: Vec<Signal<Local, Bits<CTL_BITS>>>,
    unused_b_south: Vec<Signal<Local, Bits<B>>>,
    _rows: usize,
    _cols: usize,
    _cmd_words: usize,
    _rsp_words: usize,
}

impl<
        const B: usize,
        const P: usize,
        const ACC: usize,
        const W: usize,
        const A: usize,
        const NB: usize,
        const RB: usize,
        const SB: usize,
        const QB: usize,
        const N2B: usize,
        const DW: usize,
        const DH: usize,
        const EW: usize,
        const RP: usize,
        const CB: usize,
        const EB: usize,
        const NW: usize,
        const K: usize,
        const K1: usize,
        const PW: usize,
        const IB: usize,
    > SqAccel<B, P, ACC, W, A, NB, RB, SB, QB, N2B, DW, DH, EW, RP, CB, EB, NW, K, K1, PW, IB>
{
    pub fn new(geom: &AccelGeometry, params: PeParams) -> Self {
        let (rows, cols) = (geom.rows, geom.cols);
        assert_eq!(geom.lane_bits, B, "SqAccel's command lanes are its codes");
        assert!(ACC <= geom.result_lane_bits);
        let words = geom.cmd_words();
        let l1_config = geom
            .l1norm
            .unwrap_or_else(|| L1NormConfig::new(B as u32).with_geometry(W as u32, A as u32));
        assert_eq!(
            (
                l1_config.in_bits as usize,
                l1_config.addr_bits as usize,
                l1_config.bits as usize
            ),
            (W, A, B),
            "SqAccel's L1-norm type parameters match the geometry"
        );
        let l1_consts = l1_config
            .consts()
            .expect("AccelGeometry holds a valid L1-norm configuration");
        let per_lane = geom.result_lane_bits / WORD_BITS;
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_data: (0..words).map(|_| Default::default()).collect(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            rsp_data: (0..cols * per_lane).map(|_| Default::default()).collect(),
            rsp_valid: Default::default(),
            rsp_ready: Default::default(),
            control: Control::new(geom, SQ_COLLECT_TAP),
            feeder: SqFeeder::new(rows),
            array: SqArray::new(rows, cols, params),
            l1path: L1Path::new(&l1_consts, words, geom.cmd_bits() / W, geom.rsp_words()),
            l1_on: Constant::new(geom.l1norm.is_some()),
            unused_a_east: (0..rows).map(|_| Default::default()).collect(),
            unused_ctl_east: (0..rows).map(|_| Default::default()).collect(),
            unused_b_south: (0..cols).map(|_| Default::default()).collect(),
            _rows: rows,
            _cols: cols,
            _cmd_words: words,
            _rsp_words: geom.rsp_words(),
        }
    }
}

impl<
        const B: usize,
        const P: usize,
        const ACC: usize,
        const W: usize,
        const A: usize,
        const NB: usize,
        const RB: usize,
        const SB: usize,
        const QB: usize,
        const N2B: usize,
        const DW: usize,
        const DH: usize,
        const EW: usize,
        const RP: usize,
        const CB: usize,
        const EB: usize,
        const NW: usize,
        const K: usize,
        const K1: usize,
        const PW: usize,
        const IB: usize,
    > Logic
    for SqAccel<B, P, ACC, W, A, NB, RB, SB, QB, N2B, DW, DH, EW, RP, CB, EB, NW, K, K1, PW, IB>
{
    #[hdl_gen]
    fn update(&mut self) {
        // Clocks and resets.
        self.control.clock.next = self.clock.val();
        self.feeder.clock.next = self.clock.val();
        self.array.clock.next = self.clock.val();
        self.l1path.clock.next = self.clock.val();
        self.control.reset.next = self.reset.val();
        self.feeder.reset.next = self.reset.val();
        self.l1path.reset.next = self.reset.val();
        // The ports.
        for w in 0..self._cmd_words {
            self.control.cmd_data[w].next = self.cmd_data[w].val();
            self.l1path.cmd_data[w].next = self.cmd_data[w].val();
        }
        self.control.cmd_valid.next = self.cmd_valid.val();
        self.cmd_ready.next = self.control.cmd_ready.val();
        self.control.rsp_ready.next = self.rsp_ready.val();
        for w in 0..self._rsp_words {
            self.rsp_data[w].next = self.control.rsp_data[w].val();
        }
        self.rsp_valid.next = self.control.rsp_valid.val();
        // COMPUTE: control <-> feeder; buffers -> array; array drain -> control.
        FeederHost::join(&mut self.control.feeder, &mut self.feeder.ctrl);
        self.feeder.a_exp.next = self.control.a_exp.val();
        self.feeder.b_exp.next = self.control.b_exp.val();
        self.array.ctl_in.next = self.feeder.ctl.val();
        for i in 0..self._rows {
            self.array.a_in[i].next = self.control.a_lanes[i].val();
            self.unused_a_east[i].next = self.array.a_east[i].val();
            self.unused_ctl_east[i].next = self.array.ctl_east[i].val();
        }
        for j in 0..self._cols {
            self.array.b_in[j].next = self.control.b_lanes[j].val();
            self.unused_b_south[j].next = self.array.b_south[j].val();
            self.control.drain_valid[j].next = self.array.drain_valid[j].val();
            self.control.drain_out[j].next = self.array.drain_out[j].val();
        }
        // L1NORM: decoder -> L1 path -> response port (the path is inert without the unit).
        self.l1path.start.next = self.control.l1_start.val();
        self.l1path.beat.next = self.control.l1_beat.val();
        self.l1path.beat_count.next = self.control.l1_count.val();
        self.l1path.beat_final.next = self.control.l1_final.val();
        self.control.l1_ready.next = self.l1path.beat_ready.val() && self.l1_on.val();
        self.control.l1_pending.next = self.l1path.pending.val() && self.l1_on.val();
        self.control.l1_rsp_valid.next = self.l1path.rsp_valid.val() && self.l1_on.val();
        for w in 0..self._rsp_words {
            self.control.l1_rsp_data[w].next = self.l1path.rsp_data[w].val();
        }
        self.l1path.turn.next = self.control.rsp_turn.val();
        self.l1path.rsp_ready.next = self.rsp_ready.val();
    }
}
