//! The cycle-exact timing model of an accelerator top: which cycle each command beat is
//! accepted in, which cycle each response beat leaves in, and how many cycles the array computes.
//!
//! It mirrors the control registers of `decoder`, `compute` (feeder, collector), `fp16_feeder`
//! (for fp16 geometries), `response` and `l1path` one for one and ignores the data, except
//! for L1NORM rows: the L1-norm unit's stage II takes a data-dependent number of cycles per row
//! (`crate::l1norm::timing`), so the model computes each row's per-row quantities. `docs/accelerator.md` states the same rules in prose; the
//! accelerator tests check this model against the rust-hdl simulation cycle for cycle. Cycle 0 is
//! the first cycle after reset.

use super::commands::{
    Command, BANK2_BIT, BANK_BIT, CBANK_BIT, HOLD_BIT, K_LEN_MASK, OPCODE_LSB, OP_COMPUTE,
    OP_DRAIN, OP_L1NORM, OP_LOAD_A, OP_LOAD_B, OP_STATUS,
};
use super::AccelGeometry;

/// What happened when, for one command stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timing {
    /// The cycle in which each command beat was accepted (`cmd_valid && cmd_ready`).
    pub accept: Vec<u64>,
    /// The cycle in which each response beat was taken (`rsp_valid && rsp_ready`).
    pub responses: Vec<u64>,
    /// Cycles in which the array input carried a valid k-step.
    pub array_busy: u64,
    /// Cycles from cycle 0 up to and including the last accepted or taken beat.
    pub cycles: u64,
}

impl Timing {
    /// Array utilization: `macs / (R * C * cycles)`.
    pub fn utilization(&self, geom: &AccelGeometry, macs: u64) -> f64 {
        macs as f64 / (geom.rows as u64 * geom.cols as u64 * self.cycles.max(1)) as f64
    }
}

/// The L1NORM path (`l1path`): serializer, the unit's three stages and the packer.
struct L1Model {
    /// Per good row, in order: its length and stage II's cycles from taking it to offering it
    /// on (`RowTiming::stage2 - 1`).
    rows: Vec<(u64, u64)>,
    lanes: u64,
    codes_per_beat: u64,
    /// Stage I's division steps `W + F`.
    div_steps: u64,
    // Serializer.
    ser_left: u64,
    ser_fin: bool,
    // Stage I: `ING` (None), `DIV` with its counter, or `HAND`; the row it holds.
    ing_div: Option<u64>,
    ing_hand: bool,
    ing_row: usize,
    // Stage II: the row it holds and the cycle it offers it from.
    eng: Option<(usize, u64)>,
    // Stage III: state, read index, row length; the pipeline's valid / last bits
    // (v0, va, vb, vc, vd).
    emit_st: EmitState,
    ridx: u64,
    emit_n: u64,
    valid: [bool; 5],
    last: [bool; 5],
    // Packer and the outstanding rows.
    cnt: u64,
    full: bool,
    full_last: bool,
    pending: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EmitState {
    Idle,
    Run,
    Drain,
}

impl L1Model {
    fn new(geom: &AccelGeometry, commands: &[Command]) -> Option<Self> {
        let cfg = geom.l1norm?;
        let c = cfg
            .consts()
            .expect("AccelGeometry holds a valid L1-norm configuration");
        let w = c.w;
        // The unit sees the low W bits of each lane.
        let wrap = |x: i64| (x << (64 - w)) >> (64 - w);
        let rows = commands
            .iter()
            .filter_map(|cmd| match cmd {
                Command::L1Norm { row, .. } if (1..=c.n_max()).contains(&row.len()) => {
                    let row: Vec<i64> = row.iter().map(|&x| wrap(x)).collect();
                    let r = crate::l1norm::golden::golden_row(&c, &row).expect("a valid row");
                    Some((row.len() as u64, crate::l1norm::timing(&c, &r).stage2 - 1))
                }
                _ => None,
            })
            .collect();
        Some(L1Model {
            rows,
            lanes: geom.l1_in_lanes() as u64,
            codes_per_beat: geom.l1_codes_per_beat() as u64,
            div_steps: u64::from(c.w + c.fbits),
            ser_left: 0,
            ser_fin: false,
            ing_div: None,
            ing_hand: false,
            ing_row: 0,
            eng: None,
            emit_st: EmitState::Idle,
            ridx: 0,
            emit_n: 0,
            valid: [false; 5],
            last: [false; 5],
            cnt: 0,
            full: false,
            full_last: false,
            pending: 0,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Idle,
    Wait,
    Stream,
    Status,
}

/// Run `commands` against the model. In cycle `t` the host offers the next beat if
/// `cmd_valid(t)` and takes a response beat if `rsp_ready(t)`. Panics if the stream does not
/// finish within `max_cycles` (a stream that drains nothing it computed finishes anyway).
pub fn run(
    geom: &AccelGeometry,
    commands: &[Command],
    mut cmd_valid: impl FnMut(u64) -> bool,
    mut rsp_ready: impl FnMut(u64) -> bool,
    max_cycles: u64,
) -> Timing {
    // Beats: Some(header) or None (data).
    let beats: Vec<Option<u32>> = commands
        .iter()
        .flat_map(|c| std::iter::once(Some(c.header())).chain((1..c.beats(geom)).map(|_| None)))
        .collect();
    let want_rsp: usize = commands.iter().map(|c| c.response_beats(geom)).sum();
    let (r, c) = (geom.rows as u64, geom.cols as u64);
    let fp16 = geom.slots == 2;
    let sat = geom.flush_spacing() as u64;
    let drain_rows = geom.tile_rows() as u64;
    // From the flush event at the array input (cycle u) to the tile's last value in its C bank
    // (end of cycle u + latency): column C - 1's last row.
    let latency = if fp16 {
        c + 2 * r + crate::fp16::FP16_LATENCY as u64 - 1
    } else {
        c + 2 * r + crate::array::DRAIN_DELAY as u64 - 3
    };
    let mut t = Timing::default();
    let mut next = 0usize;
    // Decoder.
    let (mut loading, mut count, mut last_load) = (false, 0u64, 0u64);
    // Feeder (fp16: `phase`, `second`, `scrub` too).
    let (mut act, mut k, mut last) = (false, 0u64, 0u64);
    let (mut a_bank, mut b_bank, mut c_bank, mut hold) = (0u8, 0u8, 0u8, false);
    let mut gap = if fp16 { 0 } else { 1u64 };
    let (mut phase, mut second, mut scrub) = (false, false, fp16);
    let (mut s1_valid, mut s1_event, mut s1_bank) = (false, false, 0u8);
    // Collector: pending flags and the cycles their tiles' last values are written.
    let mut pending = [false; 2];
    let mut clears: std::collections::VecDeque<(u64, u8)> = Default::default();
    // Responder.
    let (mut mode, mut r_bank, mut row) = (Mode::Idle, 0u8, 0u64);
    // L1NORM: the decoder's data phase (`l1data`, `store`, `left`) and the path.
    let (mut l1data, mut l1_store, mut left) = (false, false, 0u64);
    let mut l1 = L1Model::new(geom, commands);
    let n_max = geom.l1norm.map_or(0, |c| c.n_max() as u64);
    let bit = |h: u32, b: u32| ((h >> b) & 1) as u8;
    for cycle in 0..max_cycles {
        if next == beats.len() && t.responses.len() == want_rsp {
            return t;
        }
        // Feeder, combinational: `issue` = a read this cycle, `ends` = the COMPUTE's last read,
        // `flush_ev` = the (slot-0) flushing read.
        let is_last = k == last;
        let may_flush = !is_last || hold || gap == sat;
        let (issue, ends, flush_ev) = if fp16 {
            let issue0 = !phase && act && may_flush;
            let issue1 = phase && second;
            (
                issue0 || issue1,
                issue1 && is_last,
                issue0 && is_last && !hold,
            )
        } else {
            let issue = act && may_flush;
            (issue, issue && is_last, issue && is_last && !hold)
        };
        let cmp_free = !act || ends;
        let a_busy = |b: u8| act && a_bank == b && !ends;
        let b_busy = |b: u8| act && b_bank == b && !ends;
        // Responder, combinational.
        let ready_now = rsp_ready(cycle);
        let rsp_valid = matches!(mode, Mode::Stream | Mode::Status);
        let r_fire = rsp_valid && ready_now;
        let r_free = mode == Mode::Idle;
        // L1NORM path, combinational.
        let (mut in_ready, mut beat_ready, mut l1_fire, mut l1_hold) = (false, false, false, false);
        let mut l1_pending = false;
        if let Some(p) = &l1 {
            in_ready = p.ing_div.is_none() && !p.ing_hand;
            beat_ready = p.ser_left == 0 || (p.ser_left == 1 && in_ready);
            l1_fire = p.full && r_free && ready_now;
            l1_hold = p.full && !l1_fire;
            l1_pending = p.pending != 0;
        }
        let c_busy = |b: u8| matches!(mode, Mode::Wait | Mode::Stream) && r_bank == b;
        // Decoder, combinational.
        let (mut cmp_start, mut drain_start, mut status_start) = (false, false, false);
        let mut header = 0u32;
        let mut fire = false;
        let (mut l1_start, mut l1_beat) = (false, false);
        if next < beats.len() && cmd_valid(cycle) {
            if loading {
                fire = !(l1data && l1_store) || beat_ready;
                l1_beat = fire && l1data && l1_store;
            } else {
                header = beats[next].expect("a header where the decoder expects one");
                let op = header >> OPCODE_LSB;
                let k_len = u64::from(header & K_LEN_MASK);
                let k_ok = k_len >= 1 && k_len <= geom.k_max as u64;
                let bank = bit(header, BANK_BIT);
                fire = match op {
                    OP_LOAD_A => !a_busy(bank),
                    OP_LOAD_B => !b_busy(bank),
                    OP_COMPUTE => {
                        let cb = bit(header, CBANK_BIT);
                        let blocked = pending[cb as usize] || c_busy(cb);
                        !k_ok || (cmp_free && (bit(header, HOLD_BIT) == 1 || !blocked))
                    }
                    OP_DRAIN | OP_STATUS => r_free && !l1_pending,
                    _ => true,
                };
                if fire {
                    cmp_start = op == OP_COMPUTE && k_ok;
                    drain_start = op == OP_DRAIN;
                    status_start = op == OP_STATUS;
                    l1_start = op == OP_L1NORM && l1.is_some() && k_len >= 1 && k_len <= n_max;
                }
            }
        }
        if fire {
            t.accept.push(cycle);
            t.cycles = cycle + 1;
        }
        if r_fire {
            t.responses.push(cycle);
            t.cycles = cycle + 1;
        }
        t.array_busy += u64::from(s1_valid);
        // Decoder, next state.
        if l1_fire {
            t.responses.push(cycle);
            t.cycles = cycle + 1;
        }
        // The beat handed to the serializer: its element count and whether the row ends in it.
        let beat = l1_beat.then(|| {
            let lanes = l1.as_ref().map_or(1, |p| p.lanes);
            (left.min(lanes), left <= lanes)
        });
        if fire {
            if loading && l1data {
                let lanes = l1.as_ref().map_or(1, |p| p.lanes);
                if left <= lanes {
                    loading = false;
                }
                left = left.wrapping_sub(lanes);
            } else if loading {
                if count == last_load {
                    loading = false;
                }
                count += 1;
            } else {
                let op = header >> OPCODE_LSB;
                let k_len = u64::from(header & K_LEN_MASK);
                if op == OP_LOAD_A || op == OP_LOAD_B {
                    loading = k_len != 0;
                    l1data = false;
                    count = 0;
                    last_load = k_len.wrapping_sub(1) >> geom.k_per_beat_log2();
                }
                if op == OP_L1NORM && l1.is_some() {
                    loading = k_len != 0;
                    l1data = true;
                    l1_store = k_len >= 1 && k_len <= n_max;
                    left = k_len;
                }
            }
            next += 1;
        }
        if let Some(p) = &mut l1 {
            p.step(cycle, in_ready, l1_hold, l1_fire, l1_start, beat);
        }
        // Feeder, next state.
        let s1_bank_next = c_bank;
        let advance = if fp16 { phase && second } else { issue };
        if advance {
            k += 1;
        }
        if ends {
            act = false;
        }
        if cmp_start {
            act = true;
            k = 0;
            last = u64::from(header & K_LEN_MASK) - 1;
            a_bank = bit(header, BANK_BIT);
            b_bank = bit(header, BANK2_BIT);
            c_bank = bit(header, CBANK_BIT);
            hold = bit(header, HOLD_BIT) == 1;
        }
        let ev = s1_event;
        let ev_bank = s1_bank;
        gap = if flush_ev || scrub {
            1
        } else {
            (gap + 1).min(sat)
        };
        if fp16 {
            second = !phase && issue;
            phase = !phase;
            scrub = false;
        }
        s1_valid = issue;
        s1_event = flush_ev;
        s1_bank = s1_bank_next;
        if ev {
            clears.push_back((cycle + latency, ev_bank));
        }
        let mut clear = [false; 2];
        while clears.front().is_some_and(|&(when, _)| when == cycle) {
            let (_, b) = clears.pop_front().expect("non-empty");
            clear[b as usize] = true;
        }
        // Responder, next state (uses this cycle's pending flags).
        let pend = pending[r_bank as usize];
        match mode {
            Mode::Wait if !pend => mode = Mode::Stream,
            Mode::Stream if r_fire => {
                if row == drain_rows - 1 {
                    mode = Mode::Idle;
                }
                row += 1;
            }
            Mode::Status if r_fire => mode = Mode::Idle,
            _ => {}
        }
        if drain_start {
            mode = Mode::Wait;
            r_bank = bit(header, BANK_BIT);
            row = 0;
        }
        if status_start {
            mode = Mode::Status;
        }
        for b in 0..2 {
            let set = cmp_start && bit(header, HOLD_BIT) == 0 && bit(header, CBANK_BIT) == b as u8;
            pending[b] = (pending[b] && !clear[b]) || set;
        }
    }
    panic!("the command stream did not finish within {max_cycles} cycles");
}

impl L1Model {
    /// One clock edge of the L1NORM path (`l1path` and the unit's control registers).
    fn step(
        &mut self,
        cycle: u64,
        in_ready: bool,
        hold: bool,
        fire: bool,
        start: bool,
        beat: Option<(u64, bool)>,
    ) {
        // Combinational signals of this cycle, from the registers before the edge.
        let take = self.ser_left != 0 && in_ready;
        let in_last = take && self.ser_fin && self.ser_left == 1;
        let h_ack = self.ing_hand && self.eng.is_none();
        let o_valid = self.eng.is_some_and(|(_, at)| cycle >= at);
        let r_ack = !hold && self.emit_st == EmitState::Idle && o_valid;
        let (out_valid, out_last) = (self.valid[4], self.last[4]);
        let code_in = out_valid && !hold;
        let eng_row = self.eng.map(|(row, _)| row);
        let ing_row = self.ing_row;
        let row_done = fire && self.full_last;
        // Serializer.
        if take {
            self.ser_left -= 1;
        }
        if let Some((count, fin)) = beat {
            self.ser_left = count;
            self.ser_fin = fin;
        }
        // Stage I.
        if let Some(n) = self.ing_div {
            self.ing_div = (n > 1).then_some(n - 1);
            self.ing_hand = n == 1;
        } else if self.ing_hand {
            if h_ack {
                self.ing_hand = false;
                self.ing_row += 1;
            }
        } else if in_last {
            self.ing_div = Some(self.div_steps);
        }
        // Stage II.
        if r_ack {
            self.eng = None;
        }
        if h_ack {
            self.eng = Some((ing_row, cycle + self.rows[ing_row].1));
        }
        // Stage III (frozen while held).
        if !hold {
            let run = self.emit_st == EmitState::Run;
            let at_last = run && self.ridx + 1 == self.emit_n;
            let drained = !(self.valid[0] || self.valid[1] || self.valid[2]);
            self.valid = [
                run,
                self.valid[0],
                self.valid[1],
                self.valid[2],
                self.valid[3],
            ];
            self.last = [
                at_last,
                self.last[0],
                self.last[1],
                self.last[2],
                self.last[3],
            ];
            match self.emit_st {
                EmitState::Idle if r_ack => {
                    let row = eng_row.expect("stage II offers a row");
                    self.emit_n = self.rows[row].0;
                    self.ridx = 0;
                    self.emit_st = EmitState::Run;
                }
                EmitState::Run => {
                    self.ridx += 1;
                    if at_last {
                        self.emit_st = EmitState::Drain;
                    }
                }
                EmitState::Drain if drained => self.emit_st = EmitState::Idle,
                _ => {}
            }
        }
        // Packer.
        if fire {
            self.full = false;
        }
        if code_in {
            self.cnt += 1;
            if self.cnt == self.codes_per_beat || out_last {
                self.cnt = 0;
                self.full = true;
                self.full_last = out_last;
            }
        }
        self.pending = self.pending + u64::from(start) - u64::from(row_done);
    }
}

/// Cycles of the GEMM stream of `commands::plan_gemm` on an integer (sq) top (C = A x B, `m x k` times `k x n`, K in
/// chunks of `chunk`, at most `K_MAX`), the host streaming one beat per cycle and always ready
/// for responses, in closed form; `None` where the closed form does not hold (then use [`run`]).
///
/// With `D` = `crate::array::DRAIN_DELAY` (4) it holds when every chunk has the same length
/// `kc >= C + 3R + D - 5`: then no header ever waits (each COMPUTE finds the feeder free and its
/// C bank drained, each DRAIN finds the responder idle; the tightest spot is the third COMPUTE,
/// `2kc + 5` cycles after the first, into the first one's C bank, whose DRAIN's last beat leaves
/// `kc + C + 3R + D - 1` cycles after it), so the last COMPUTE is accepted in cycle
/// `a = beats - 3` (`beats - 2` for a single tile), its last read is issued in `a + kc`, its
/// results are in the C bank at the end of `a + kc + C + 2R + D - 2`, and its DRAIN's last beat
/// leaves in `a + kc + C + 3R + D - 1`:
///
/// `cycles = a + kc + C + 3R + D`.
///
/// With `P > 1` K steps per LOAD beat (`h = ceil(kc / P)` data beats per LOAD) the array is the
/// bottleneck instead: headers wait on the feeder, and each COMPUTE is accepted in the cycle the
/// one before issues its last read, `kc` cycles after it, except at a pass boundary (a new row
/// block or chunk), where LOAD_A and LOAD_B (`2h + 2` beats) and the DRAIN before them must get
/// through first: `max(kc, 2h + 4)` (`2h + 3` after the very first tile, which has no DRAIN).
/// The first COMPUTE is accepted in `2h + 2`. This holds for `h + 3 <= kc` and
/// `kc >= C + 3R + D` (each DRAIN finds the responder idle and each COMPUTE its C bank drained
/// two tiles later; the tests hold it against [`run`]).
pub fn streamed_gemm_cycles(
    geom: &AccelGeometry,
    m: usize,
    k: usize,
    n: usize,
    chunk: usize,
) -> Option<u64> {
    if m == 0 || k == 0 || n == 0 || geom.slots != 1 {
        return None;
    }
    let (r, c) = (geom.rows as u64, geom.cols as u64);
    let d = crate::array::DRAIN_DELAY as u64;
    let kc = chunk.clamp(1, geom.k_max).min(k) as u64;
    if (k as u64 / kc) * kc != k as u64 {
        return None;
    }
    let passes = (m as u64).div_ceil(r) * (k as u64 / kc);
    let tiles_n = (n as u64).div_ceil(c);
    if geom.k_per_beat > 1 {
        let h = kc.div_ceil(geom.k_per_beat as u64);
        if h + 3 > kc || kc < c + 3 * r + d {
            return None;
        }
        let tiles = passes * tiles_n;
        let boundary = |after_first: bool| kc.max(2 * h + if after_first { 3 } else { 4 });
        let mut a = 2 * h + 2 + (tiles - passes) * kc;
        if passes > 1 {
            // With one tile per pass the first boundary follows the first tile.
            a += boundary(tiles_n == 1) + (passes - 2) * boundary(false);
        }
        return Some(a + kc + c + 3 * r + d);
    }
    if kc + 5 < c + 3 * r + d {
        return None;
    }
    // Per pass: LOAD_A (1 + kc), then per tile LOAD_B (1 + kc), COMPUTE, DRAIN of the previous
    // tile; the first tile has no DRAIN before it and the last one's comes at the end.
    let beats = passes * ((1 + kc) + tiles_n * (kc + 3));
    let a = if passes * tiles_n == 1 {
        beats - 2
    } else {
        beats - 3
    };
    Some(a + kc + c + 3 * r + d)
}
