//! `Fp16Accel`: the FP16 accelerator top (`docs/accelerator.md`, "The FP16 top"): the same
//! [`Control`] (decoder, operand buffers, result path) as `top::SqAccel`, around
//! `fp16::Fp16Array` and its own feeder (`fp16_feeder`), joined to the control through the same
//! `FeederHost` / `FeederPort` bundle. A tile is
//! `2R x C` binary32 results; data vectors have 16-bit lanes and no exponent; LOAD_A vector k
//! holds rows `0..2R` of A's column k.

use super::control::{Control, FeederHost};
use super::fp16_feeder::Fp16Feeder;
use super::{AccelGeometry, WORD_BITS};
use crate::fp16::{Fp16Array, FP16_CTL_BITS, FP16_LATENCY};
use crate::pe::SHIFT_BITS;
use rust_hdl::prelude::*;

/// Chain stage that column 0 taps: column `j`'s first value of a tile arrives `FP16_LATENCY + 1 + j`
/// cycles after the slot-0 flush enters the array (`1 + j` in the integer array), and the event
/// reaches chain stage `n` after `1 + n` cycles.
pub const FP16_COLLECT_TAP: usize = FP16_LATENCY;

#[derive(LogicBlock)]
pub struct Fp16Accel {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cmd_data: Vec<Signal<In, Bits<WORD_BITS>>>,
    pub cmd_valid: Signal<In, Bit>,
    pub cmd_ready: Signal<Out, Bit>,
    pub rsp_data: Vec<Signal<Out, Bits<WORD_BITS>>>,
    pub rsp_valid: Signal<Out, Bit>,
    pub rsp_ready: Signal<In, Bit>,
    /// Decoder, operand buffers, result path.
    pub(crate) control: Control<16, 32>,
    feeder: Fp16Feeder,
    pub(crate) array: Fp16Array,
    /// The array's cascade outputs (for tiling arrays) are not used by the top.
    unused_a_east: Vec<Signal<Local, Bits<16>>>,
    unused_ctl_east: Vec<Signal<Local, Bits<FP16_CTL_BITS>>>,
    unused_b_south: Vec<Signal<Local, Bits<16>>>,
    /// No per-K exponents in fp16 data vectors: the buffers' exponent outputs are zero.
    unused_exp: Vec<Signal<Local, Bits<SHIFT_BITS>>>,
    /// The decoder's L1NORM outputs (no L1-norm unit here: opcode 6 is unknown).
    unused_l1_count: Signal<Local, Bits<{ super::ADDR_BITS }>>,
    unused_l1: Vec<Signal<Local, Bit>>,
    zero_word: Constant<Bits<WORD_BITS>>,
    _rows: usize,
    _cols: usize,
    _cmd_words: usize,
    _rsp_words: usize,
}

impl Fp16Accel {
    pub fn new(geom: &AccelGeometry) -> Self {
        let (rows, cols) = (geom.rows, geom.cols);
        assert!(geom.lane_bits == 16 && geom.slots == 2 && geom.result_lane_bits == 32);
        let words = geom.cmd_words();
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
            control: Control::new(geom, FP16_COLLECT_TAP),
            feeder: Fp16Feeder::new(rows),
            array: Fp16Array::new(rows, cols),
            unused_a_east: (0..rows).map(|_| Default::default()).collect(),
            unused_ctl_east: (0..rows).map(|_| Default::default()).collect(),
            unused_b_south: (0..cols).map(|_| Default::default()).collect(),
            unused_l1_count: Default::default(),
            unused_l1: (0..4).map(|_| Default::default()).collect(),
            zero_word: Constant::new(bits(0)),
            unused_exp: (0..2).map(|_| Default::default()).collect(),
            _rows: rows,
            _cols: cols,
            _cmd_words: words,
            _rsp_words: geom.rsp_words(),
        }
    }
}

impl Logic for Fp16Accel {
    #[hdl_gen]
    fn update(&mut self) {
        // Clocks and resets.
        self.control.clock.next = self.clock.val();
        self.feeder.clock.next = self.clock.val();
        self.array.clock.next = self.clock.val();
        self.control.reset.next = self.reset.val();
        self.feeder.reset.next = self.reset.val();
        // The ports.
        for w in 0..self._cmd_words {
            self.control.cmd_data[w].next = self.cmd_data[w].val();
        }
        self.control.cmd_valid.next = self.cmd_valid.val();
        self.cmd_ready.next = self.control.cmd_ready.val();
        self.control.rsp_ready.next = self.rsp_ready.val();
        for w in 0..self._rsp_words {
            self.rsp_data[w].next = self.control.rsp_data[w].val();
            self.control.l1_rsp_data[w].next = self.zero_word.val();
        }
        self.rsp_valid.next = self.control.rsp_valid.val();
        // No L1-norm unit: opcode 6 is unknown.
        self.control.l1_ready.next = false;
        self.control.l1_pending.next = false;
        self.control.l1_rsp_valid.next = false;
        self.unused_l1_count.next = self.control.l1_count.val();
        self.unused_l1[0].next = self.control.l1_start.val();
        self.unused_l1[1].next = self.control.l1_beat.val();
        self.unused_l1[2].next = self.control.l1_final.val();
        self.unused_l1[3].next = self.control.rsp_turn.val();
        self.unused_exp[0].next = self.control.a_exp.val();
        self.unused_exp[1].next = self.control.b_exp.val();
        // COMPUTE: control <-> feeder; buffers -> array; array drain -> control.
        FeederHost::join(&mut self.control.feeder, &mut self.feeder.ctrl);
        self.array.ctl_in.next = self.feeder.ctl.val();
        // Slot 0 takes rows 0..R of the A entry, slot 1 rows R..2R.
        for rows in self._rows..(self._rows + 1) {
            for i in 0..self._rows {
                self.array.a_in[i].next = self.control.a_lanes[i].val();
                if self.feeder.slot.val() {
                    self.array.a_in[i].next = self.control.a_lanes[i + rows].val();
                }
                self.unused_a_east[i].next = self.array.a_east[i].val();
                self.unused_ctl_east[i].next = self.array.ctl_east[i].val();
            }
        }
        for j in 0..self._cols {
            self.array.b_in[j].next = self.control.b_lanes[j].val();
            self.unused_b_south[j].next = self.array.b_south[j].val();
            self.control.drain_valid[j].next = self.array.drain_valid[j].val();
            self.control.drain_out[j].next = self.array.drain_out[j].val();
        }
    }
}
