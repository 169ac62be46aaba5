//! `SqAccel`: the ShiftQuant accelerator top (`docs/accelerator.md`).
//!
//! ```text
//!   cmd ──> CmdDecoder ──LOAD──> OperandRam A, B ──> SqFeeder ──> SqArray ──drain──┐
//!               │  COMPUTE ─────────────────────────────^                          │
//!               │  DRAIN / STATUS ──> ResultPath (Collector, ResultRam x C, Responder)
//!               │                        └──> rsp <──┐
//!               └─ L1NORM data ──> L1Path (serializer, L1-norm unit, packer)
//! ```
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

use super::buffers::{BeatLayout, OperandRam};
use super::compute::{SqFeeder, SQ_COLLECT_TAP};
use super::decoder::CmdDecoder;
use super::l1path::L1Path;
use super::result_path::ResultPath;
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
    decoder: CmdDecoder,
    feeder: SqFeeder,
    abuf: OperandRam<B>,
    bbuf: OperandRam<B>,
    pub(crate) array: SqArray<B, P, ACC>,
    /// Drain collector, C buffers, DRAIN / STATUS responder.
    pub(crate) result_path: ResultPath<ACC>,
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
        let operand = |lanes| OperandRam::new(lanes, BeatLayout::of(geom), geom.k_max);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_data: (0..words).map(|_| Default::default()).collect(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            rsp_data: (0..cols * per_lane).map(|_| Default::default()).collect(),
            rsp_valid: Default::default(),
            rsp_ready: Default::default(),
            decoder: match geom.l1norm {
                Some(c) => CmdDecoder::with_l1norm(
                    geom.k_max,
                    geom.k_per_beat,
                    geom.l1_in_lanes(),
                    c.n_max(),
                ),
                None => CmdDecoder::new(geom.k_max, geom.k_per_beat),
            },
            feeder: SqFeeder::new(rows),
            abuf: operand(rows),
            bbuf: operand(cols),
            array: SqArray::new(rows, cols, params),
            result_path: ResultPath::new(rows, cols, per_lane, SQ_COLLECT_TAP, false),
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
        self.decoder.clock.next = self.clock.val();
        self.feeder.clock.next = self.clock.val();
        self.abuf.clock.next = self.clock.val();
        self.bbuf.clock.next = self.clock.val();
        self.array.clock.next = self.clock.val();
        self.result_path.clock.next = self.clock.val();
        self.decoder.reset.next = self.reset.val();
        self.feeder.reset.next = self.reset.val();
        self.result_path.reset.next = self.reset.val();
        // Command port -> decoder; interlock inputs.
        self.decoder.cmd_valid.next = self.cmd_valid.val();
        self.decoder.header.next = self.cmd_data[0].val();
        self.cmd_ready.next = self.decoder.cmd_ready.val();
        self.decoder.cmp_free.next = self.feeder.free.val();
        self.decoder.a_busy0.next = self.feeder.a_busy0.val();
        self.decoder.a_busy1.next = self.feeder.a_busy1.val();
        self.decoder.b_busy0.next = self.feeder.b_busy0.val();
        self.decoder.b_busy1.next = self.feeder.b_busy1.val();
        self.decoder.c_blocked0.next = self.result_path.c_blocked0.val();
        self.decoder.c_blocked1.next = self.result_path.c_blocked1.val();
        // L1NORM: decoder -> L1 path; DRAIN / STATUS also wait for the L1NORM responses
        // accepted before them.
        self.l1path.clock.next = self.clock.val();
        self.l1path.reset.next = self.reset.val();
        self.l1path.start.next = self.decoder.l1_start.val();
        self.l1path.beat.next = self.decoder.l1_beat.val();
        self.l1path.beat_count.next = self.decoder.l1_count.val();
        self.l1path.beat_final.next = self.decoder.l1_final.val();
        for w in 0..self._cmd_words {
            self.l1path.cmd_data[w].next = self.cmd_data[w].val();
        }
        self.decoder.l1_ready.next = self.l1path.beat_ready.val() && self.l1_on.val();
        self.l1path.turn.next = self.result_path.free.val();
        self.l1path.rsp_ready.next = self.rsp_ready.val();
        self.decoder.rsp_free.next =
            self.result_path.free.val() && !(self.l1path.pending.val() && self.l1_on.val());
        // LOAD: command beats -> operand buffers.
        self.abuf.write_enable.next = self.decoder.a_write.val();
        self.bbuf.write_enable.next = self.decoder.b_write.val();
        self.abuf.write_bank.next = self.decoder.write_bank.val();
        self.bbuf.write_bank.next = self.decoder.write_bank.val();
        self.abuf.write_addr.next = self.decoder.write_addr.val();
        self.bbuf.write_addr.next = self.decoder.write_addr.val();
        for w in 0..self._cmd_words {
            self.abuf.write_words[w].next = self.cmd_data[w].val();
            self.bbuf.write_words[w].next = self.cmd_data[w].val();
        }
        // COMPUTE: decoder -> feeder -> buffers -> array.
        self.feeder.start.next = self.decoder.cmp_start.val();
        self.feeder.a_bank_in.next = self.decoder.hdr_bank.val();
        self.feeder.b_bank_in.next = self.decoder.hdr_bank2.val();
        self.feeder.c_bank_in.next = self.decoder.hdr_cbank.val();
        self.feeder.hold_in.next = self.decoder.hdr_hold.val();
        self.feeder.k_len_in.next = self.decoder.hdr_k_len.val();
        self.abuf.read_bank.next = self.feeder.a_read_bank.val();
        self.bbuf.read_bank.next = self.feeder.b_read_bank.val();
        self.abuf.read_addr.next = self.feeder.read_addr.val();
        self.bbuf.read_addr.next = self.feeder.read_addr.val();
        self.feeder.a_exp.next = self.abuf.read_exp.val();
        self.feeder.b_exp.next = self.bbuf.read_exp.val();
        self.array.ctl_in.next = self.feeder.ctl.val();
        for i in 0..self._rows {
            self.array.a_in[i].next = self.abuf.read_lanes[i].val();
            self.unused_a_east[i].next = self.array.a_east[i].val();
            self.unused_ctl_east[i].next = self.array.ctl_east[i].val();
        }
        for j in 0..self._cols {
            self.array.b_in[j].next = self.bbuf.read_lanes[j].val();
            self.unused_b_south[j].next = self.array.b_south[j].val();
        }
        // Array drain, COMPUTE / DRAIN / STATUS starts -> result path -> response port.
        for j in 0..self._cols {
            self.result_path.drain_valid[j].next = self.array.drain_valid[j].val();
            self.result_path.drain_out[j].next = self.array.drain_out[j].val();
        }
        self.result_path.flush_event.next = self.feeder.flush_event.val();
        self.result_path.flush_bank.next = self.feeder.flush_bank.val();
        self.result_path.compute_start.next = self.decoder.cmp_start.val();
        self.result_path.compute_hold.next = self.decoder.hdr_hold.val();
        self.result_path.compute_bank.next = self.decoder.hdr_cbank.val();
        self.result_path.drain_start.next = self.decoder.drain_start.val();
        self.result_path.status_start.next = self.decoder.status_start.val();
        self.result_path.drain_bank.next = self.decoder.hdr_bank.val();
        self.result_path.compute_active.next = self.feeder.active.val();
        self.result_path.error.next = self.decoder.error.val();
        self.result_path.accepted.next = self.decoder.accepted.val();
        self.result_path.rsp_ready.next = self.rsp_ready.val();
        for w in 0..self._rsp_words {
            self.rsp_data[w].next = self.result_path.rsp_data[w].val();
        }
        self.rsp_valid.next = self.result_path.rsp_valid.val();
        // An L1NORM beat is offered only while the responder is idle.
        if self.l1path.rsp_valid.val() && self.l1_on.val() {
            for w in 0..self._rsp_words {
                self.rsp_data[w].next = self.l1path.rsp_data[w].val();
            }
            self.rsp_valid.next = true;
        }
    }
}
