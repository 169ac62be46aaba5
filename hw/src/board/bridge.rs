//! The host link: UART bytes <-> the accelerator top's command and response streams.
//!
//! Framing (also in `docs/accelerator.md`, "Host link (UART)"): every beat has a fixed length,
//! so no escaping or headers are needed. A `cmd_data` beat of `W_IN` bits is sent as
//! `ceil(W_IN / 8)` bytes, least significant byte first; a `rsp_data` beat comes back as
//! `ceil(W_OUT / 8)` bytes, least significant first. [`encode_beat`] / [`decode_beat`] are the
//! host side of that.
//!
//! [`HostBridge`] works on byte lanes (`cmd_bytes[i]` = `cmd_data[8i+7:8i]`), so one Rust type
//! serves every width; the beat widths are generation-time parameters. Command side: received
//! bytes shift into an assembly register; a complete beat moves into a holding register that
//! drives `cmd_valid` (so the next beat can arrive while the accelerator holds `cmd_ready` low).
//! A byte that finds both registers full is dropped and sets the sticky `overrun` flag. A partial
//! beat followed by `resync_cycles` of silence is discarded, so a host that lost count resyncs
//! by pausing.
//!
//! Timing: the accelerator computes `cmd_ready` combinationally from the beat on `cmd_data` (a
//! long path through its decoder), so the only bridge logic after `cmd_ready` is the clear of
//! the holding register's valid flag. Everything else looks at registers: the holding register
//! refills in the cycle after it empties, and a received byte is handled one cycle after it
//! arrives (`rx_stage`), i.e. after that refill. A byte is therefore dropped in exactly the cases
//! it would be without the two delays, and at UART speed (a byte every `10 * div >= 80` cycles)
//! they cost nothing. (Before, `cmd_ready` also steered the refill and the byte intake: the
//! longest path of a 4x4 sq4 board design on the UP5K ran decoder -> bridge.) Response side: an idle bridge takes a beat (`rsp_ready` high only then) and
//! shifts its bytes out to the UART transmitter.
//!
//! [`EchoAccel`] is a stand-in for the accelerator top with the same stream ports: it returns
//! the bytes of each command beat as response beats (zero-padded to whole beats).

use rust_hdl::prelude::*;

/// Width of the byte counters: beats of up to 1023 bytes (8184 bits).
pub const BEAT_COUNT_BITS: usize = 10;
/// Width of the resync timer.
pub const RESYNC_BITS: usize = 24;

/// Bytes per beat of `width_bits` bits.
pub fn beat_bytes(width_bits: usize) -> usize {
    width_bits.div_ceil(8)
}

/// The bytes of one beat: `words` (32-bit, word 0 = bits 31:0) little-endian, cut to
/// `ceil(width_bits / 8)` bytes. Words past the beat are ignored; missing words are zero.
pub fn encode_beat(words: &[u32], width_bits: usize) -> Vec<u8> {
    (0..beat_bytes(width_bits))
        .map(|i| words.get(i / 4).map_or(0, |w| (w >> (8 * (i % 4))) as u8))
        .collect()
}

/// The 32-bit words of one beat from its bytes (little-endian), `ceil(width_bits / 32)` words.
pub fn decode_beat(bytes: &[u8], width_bits: usize) -> Vec<u32> {
    (0..width_bits.div_ceil(32))
        .map(|w| {
            (0..4)
                .map(|b| u32::from(*bytes.get(4 * w + b).unwrap_or(&0)) << (8 * b))
                .fold(0, |a, x| a | x)
        })
        .collect()
}

/// The bytes <-> beats bridge (see the module doc).
#[derive(LogicBlock)]
pub struct HostBridge {
    pub clock: Signal<In, Clock>,
    /// Synchronous, active high.
    pub reset: Signal<In, Bit>,
    /// From the UART receiver: one byte per `rx_valid` pulse (no back-pressure).
    pub rx_data: Signal<In, Bits<8>>,
    pub rx_valid: Signal<In, Bit>,
    /// To the UART transmitter (ready/valid).
    pub tx_data: Signal<Out, Bits<8>>,
    pub tx_valid: Signal<Out, Bit>,
    pub tx_ready: Signal<In, Bit>,
    /// `cmd_data`, byte lane `i` = bits `8i+7:8i`.
    pub cmd_bytes: Vec<Signal<Out, Bits<8>>>,
    pub cmd_valid: Signal<Out, Bit>,
    pub cmd_ready: Signal<In, Bit>,
    /// `rsp_data`, byte lane `i` = bits `8i+7:8i`.
    pub rsp_bytes: Vec<Signal<In, Bits<8>>>,
    pub rsp_valid: Signal<In, Bit>,
    pub rsp_ready: Signal<Out, Bit>,
    /// Sticky: a received byte was dropped because the accelerator did not take beats fast
    /// enough. Cleared by reset only.
    pub overrun: Signal<Out, Bit>,
    /// A beat is on its way in either direction.
    pub busy: Signal<Out, Bit>,
    /// The byte received in the previous cycle, if `rx_stage_valid`.
    rx_stage: DFF<Bits<8>>,
    rx_stage_valid: DFF<Bit>,
    asm: Vec<DFF<Bits<8>>>,
    asm_count: DFF<Bits<BEAT_COUNT_BITS>>,
    asm_full: DFF<Bit>,
    hold: Vec<DFF<Bits<8>>>,
    hold_valid: DFF<Bit>,
    silence: DFF<Bits<RESYNC_BITS>>,
    out: Vec<DFF<Bits<8>>>,
    out_count: DFF<Bits<BEAT_COUNT_BITS>>,
    overrun_r: DFF<Bit>,
    last_in: Constant<Bits<BEAT_COUNT_BITS>>,
    nb_out: Constant<Bits<BEAT_COUNT_BITS>>,
    one_n: Constant<Bits<BEAT_COUNT_BITS>>,
    zero_n: Constant<Bits<BEAT_COUNT_BITS>>,
    resync: Constant<Bits<RESYNC_BITS>>,
    one_r: Constant<Bits<RESYNC_BITS>>,
    zero_r: Constant<Bits<RESYNC_BITS>>,
    _nb_in: usize,
    _nb_out: usize,
}

impl HostBridge {
    /// A bridge for beats of `nb_in` command bytes and `nb_out` response bytes; a partial
    /// command beat is dropped after `resync_cycles` cycles without a byte.
    pub fn new(nb_in: usize, nb_out: usize, resync_cycles: u64) -> Self {
        let max = (1 << BEAT_COUNT_BITS) - 1;
        assert!(
            (1..=max).contains(&nb_in) && (1..=max).contains(&nb_out),
            "beats of {nb_in} / {nb_out} bytes: 1..={max} supported"
        );
        assert!(
            (1..1 << RESYNC_BITS).contains(&resync_cycles),
            "resync_cycles {resync_cycles} out of range"
        );
        Self {
            clock: Default::default(),
            reset: Default::default(),
            rx_data: Default::default(),
            rx_valid: Default::default(),
            tx_data: Default::default(),
            tx_valid: Default::default(),
            tx_ready: Default::default(),
            cmd_bytes: (0..nb_in).map(|_| Default::default()).collect(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            rsp_bytes: (0..nb_out).map(|_| Default::default()).collect(),
            rsp_valid: Default::default(),
            rsp_ready: Default::default(),
            overrun: Default::default(),
            busy: Default::default(),
            rx_stage: Default::default(),
            rx_stage_valid: Default::default(),
            asm: (0..nb_in).map(|_| Default::default()).collect(),
            asm_count: Default::default(),
            asm_full: Default::default(),
            hold: (0..nb_in).map(|_| Default::default()).collect(),
            hold_valid: Default::default(),
            silence: Default::default(),
            out: (0..nb_out).map(|_| Default::default()).collect(),
            out_count: Default::default(),
            overrun_r: Default::default(),
            last_in: Constant::new(bits(nb_in as u64 - 1)),
            nb_out: Constant::new(bits(nb_out as u64)),
            one_n: Constant::new(bits(1)),
            zero_n: Constant::new(bits(0)),
            resync: Constant::new(bits(resync_cycles)),
            one_r: Constant::new(bits(1)),
            zero_r: Constant::new(bits(0)),
            _nb_in: nb_in,
            _nb_out: nb_out,
        }
    }

    pub fn nb_in(&self) -> usize {
        self._nb_in
    }

    pub fn nb_out(&self) -> usize {
        self._nb_out
    }
}

impl Logic for HostBridge {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            rx_stage,
            rx_stage_valid,
            asm_count,
            asm_full,
            hold_valid,
            silence,
            out_count,
            overrun_r
        );
        for i in 0..self._nb_in {
            self.asm[i].clock.next = self.clock.val();
            self.asm[i].d.next = self.asm[i].q.val();
            self.hold[i].clock.next = self.clock.val();
            self.hold[i].d.next = self.hold[i].q.val();
            self.cmd_bytes[i].next = self.hold[i].q.val();
        }
        for i in 0..self._nb_out {
            self.out[i].clock.next = self.clock.val();
            self.out[i].d.next = self.out[i].q.val();
        }
        // Command side (see the module doc for why only `hold_valid` looks at `cmd_ready`). The
        // holding register empties when the accelerator takes the beat, and refills from a
        // complete assembly register in the next cycle.
        self.cmd_valid.next = self.hold_valid.q.val();
        if self.cmd_ready.val() {
            self.hold_valid.d.next = false;
        }
        if self.asm_full.q.val() & !self.hold_valid.q.val() {
            for i in 0..self._nb_in {
                self.hold[i].d.next = self.asm[i].q.val();
            }
            self.hold_valid.d.next = true;
            self.asm_full.d.next = false;
        }
        self.rx_stage.d.next = self.rx_data.val();
        self.rx_stage_valid.d.next = self.rx_valid.val();
        if self.rx_stage_valid.q.val() {
            self.silence.d.next = self.zero_r.val();
            if self.asm_full.q.val() & self.hold_valid.q.val() {
                self.overrun_r.d.next = true;
            } else {
                // Shift in from the top: after nb_in bytes the first one is in lane 0.
                for i in 1..self._nb_in {
                    self.asm[i - 1].d.next = self.asm[i].q.val();
                }
                for last in (self._nb_in - 1)..self._nb_in {
                    self.asm[last].d.next = self.rx_stage.q.val();
                }
                self.asm_count.d.next = self.asm_count.q.val() + self.one_n.val();
                if self.asm_count.q.val() == self.last_in.val() {
                    self.asm_count.d.next = self.zero_n.val();
                    self.asm_full.d.next = true;
                }
            }
        } else if self.asm_count.q.val().any() {
            // A partial beat: drop it after a long silence.
            self.silence.d.next = self.silence.q.val() + self.one_r.val();
            if self.silence.q.val() == self.resync.val() {
                self.silence.d.next = self.zero_r.val();
                self.asm_count.d.next = self.zero_n.val();
            }
        }
        // Response side: take a whole beat when idle, then send it byte by byte.
        self.rsp_ready.next = !self.out_count.q.val().any();
        self.tx_valid.next = self.out_count.q.val().any();
        for first in 0..1 {
            self.tx_data.next = self.out[first].q.val();
        }
        if self.out_count.q.val().any() & self.tx_ready.val() {
            for i in 1..self._nb_out {
                self.out[i - 1].d.next = self.out[i].q.val();
            }
            self.out_count.d.next = self.out_count.q.val() - self.one_n.val();
        }
        if !self.out_count.q.val().any() & self.rsp_valid.val() {
            for i in 0..self._nb_out {
                self.out[i].d.next = self.rsp_bytes[i].val();
            }
            self.out_count.d.next = self.nb_out.val();
        }
        self.overrun.next = self.overrun_r.q.val();
        self.busy.next = self.rx_stage_valid.q.val()
            | self.asm_count.q.val().any()
            | self.asm_full.q.val()
            | self.hold_valid.q.val()
            | self.out_count.q.val().any();
        if self.reset.val() {
            self.rx_stage_valid.d.next = false;
            self.asm_count.d.next = self.zero_n.val();
            self.asm_full.d.next = false;
            self.hold_valid.d.next = false;
            self.silence.d.next = self.zero_r.val();
            self.out_count.d.next = self.zero_n.val();
            self.overrun_r.d.next = false;
        }
    }
}

/// Stand-in for the accelerator top: returns every command beat as response beats. The
/// `nb_in` command bytes, zero-padded to a whole number of `nb_out`-byte beats, come back in
/// order: one response beat when `nb_in <= nb_out`, `ceil(nb_in / nb_out)` otherwise
/// ([`echo_response`] is the same thing on the host side).
#[derive(LogicBlock)]
pub struct EchoAccel {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cmd_bytes: Vec<Signal<In, Bits<8>>>,
    pub cmd_valid: Signal<In, Bit>,
    pub cmd_ready: Signal<Out, Bit>,
    pub rsp_bytes: Vec<Signal<Out, Bits<8>>>,
    pub rsp_valid: Signal<Out, Bit>,
    pub rsp_ready: Signal<In, Bit>,
    /// The beat being returned, `nb_out * beats` lanes; lanes `0..nb_out` are on `rsp_bytes`.
    buf: Vec<DFF<Bits<8>>>,
    /// Response beats still to send.
    left: DFF<Bits<BEAT_COUNT_BITS>>,
    beats: Constant<Bits<BEAT_COUNT_BITS>>,
    one: Constant<Bits<BEAT_COUNT_BITS>>,
    zero_n: Constant<Bits<BEAT_COUNT_BITS>>,
    zero: Constant<Bits<8>>,
    _nb_in: usize,
    _nb_out: usize,
    _len: usize,
}

impl EchoAccel {
    pub fn new(nb_in: usize, nb_out: usize) -> Self {
        let max = (1 << BEAT_COUNT_BITS) - 1;
        assert!((1..=max).contains(&nb_in) && (1..=max).contains(&nb_out));
        let beats = nb_in.div_ceil(nb_out);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_bytes: (0..nb_in).map(|_| Default::default()).collect(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            rsp_bytes: (0..nb_out).map(|_| Default::default()).collect(),
            rsp_valid: Default::default(),
            rsp_ready: Default::default(),
            buf: (0..beats * nb_out).map(|_| Default::default()).collect(),
            left: Default::default(),
            beats: Constant::new(bits(beats as u64)),
            one: Constant::new(bits(1)),
            zero_n: Constant::new(bits(0)),
            zero: Constant::new(bits(0)),
            _nb_in: nb_in,
            _nb_out: nb_out,
            _len: beats * nb_out,
        }
    }
}

/// The bytes [`EchoAccel`] sends back for one command beat of `cmd` bytes.
pub fn echo_response(cmd: &[u8], nb_out: usize) -> Vec<u8> {
    let len = cmd.len().div_ceil(nb_out) * nb_out;
    (0..len).map(|i| *cmd.get(i).unwrap_or(&0)).collect()
}

impl Logic for EchoAccel {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, left);
        for i in 0..self._len {
            self.buf[i].clock.next = self.clock.val();
            self.buf[i].d.next = self.buf[i].q.val();
        }
        for i in 0..self._nb_out {
            self.rsp_bytes[i].next = self.buf[i].q.val();
        }
        self.cmd_ready.next = !self.left.q.val().any();
        self.rsp_valid.next = self.left.q.val().any();
        if self.left.q.val().any() & self.rsp_ready.val() {
            // Next response beat: shift down by one beat.
            for nbo in self._nb_out..(self._nb_out + 1) {
                for i in 0..(self._len - self._nb_out) {
                    self.buf[i].d.next = self.buf[i + nbo].q.val();
                }
            }
            for i in (self._len - self._nb_out)..self._len {
                self.buf[i].d.next = self.zero.val();
            }
            self.left.d.next = self.left.q.val() - self.one.val();
        }
        if !self.left.q.val().any() & self.cmd_valid.val() {
            for i in 0..self._nb_in {
                self.buf[i].d.next = self.cmd_bytes[i].val();
            }
            for i in self._nb_in..self._len {
                self.buf[i].d.next = self.zero.val();
            }
            self.left.d.next = self.beats.val();
        }
        if self.reset.val() {
            self.left.d.next = self.zero_n.val();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::testing::tick;
    use crate::testutil::Rng;

    #[test]
    fn board_beat_encoding_is_little_endian() {
        assert_eq!(beat_bytes(32), 4);
        assert_eq!(beat_bytes(33), 5);
        let words = [0x4433_2211, 0x8877_6655];
        assert_eq!(
            encode_beat(&words, 64),
            vec![0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
        assert_eq!(encode_beat(&words, 40), vec![0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(decode_beat(&encode_beat(&words, 64), 64), words.to_vec());
        assert_eq!(decode_beat(&[1, 2, 3, 4, 5], 40), vec![0x0403_0201, 5]);
    }

    /// Bridge + echo stand-in; `stall` holds the echo's `cmd_ready` low, `tx_ready` models the
    /// UART transmitter.
    #[derive(LogicBlock)]
    struct BridgeEcho {
        clock: Signal<In, Clock>,
        reset: Signal<In, Bit>,
        rx_data: Signal<In, Bits<8>>,
        rx_valid: Signal<In, Bit>,
        tx_ready: Signal<In, Bit>,
        stall: Signal<In, Bit>,
        tx_data: Signal<Out, Bits<8>>,
        tx_valid: Signal<Out, Bit>,
        overrun: Signal<Out, Bit>,
        busy: Signal<Out, Bit>,
        bridge: HostBridge,
        echo: EchoAccel,
        _nb_in: usize,
        _nb_out: usize,
    }

    impl Logic for BridgeEcho {
        #[hdl_gen]
        fn update(&mut self) {
            self.bridge.clock.next = self.clock.val();
            self.echo.clock.next = self.clock.val();
            self.bridge.reset.next = self.reset.val();
            self.echo.reset.next = self.reset.val();
            self.bridge.rx_data.next = self.rx_data.val();
            self.bridge.rx_valid.next = self.rx_valid.val();
            self.bridge.tx_ready.next = self.tx_ready.val();
            self.tx_data.next = self.bridge.tx_data.val();
            self.tx_valid.next = self.bridge.tx_valid.val();
            self.overrun.next = self.bridge.overrun.val();
            self.busy.next = self.bridge.busy.val();
            for i in 0..self._nb_in {
                self.echo.cmd_bytes[i].next = self.bridge.cmd_bytes[i].val();
            }
            self.echo.cmd_valid.next = self.bridge.cmd_valid.val() & !self.stall.val();
            self.bridge.cmd_ready.next = self.echo.cmd_ready.val() & !self.stall.val();
            for i in 0..self._nb_out {
                self.bridge.rsp_bytes[i].next = self.echo.rsp_bytes[i].val();
            }
            self.bridge.rsp_valid.next = self.echo.rsp_valid.val();
            self.echo.rsp_ready.next = self.bridge.rsp_ready.val();
        }
    }

    fn bridge_echo(nb_in: usize, nb_out: usize, resync: u64) -> BridgeEcho {
        let mut uut = BridgeEcho {
            clock: Default::default(),
            reset: Default::default(),
            rx_data: Default::default(),
            rx_valid: Default::default(),
            tx_ready: Default::default(),
            stall: Default::default(),
            tx_data: Default::default(),
            tx_valid: Default::default(),
            overrun: Default::default(),
            busy: Default::default(),
            bridge: HostBridge::new(nb_in, nb_out, resync),
            echo: EchoAccel::new(nb_in, nb_out),
            _nb_in: nb_in,
            _nb_out: nb_out,
        };
        uut.connect_all();
        check_all(&uut).expect("connected");
        uut
    }

    /// Feed `input` (one byte every `gap` cycles; `None` = a cycle without a byte) and collect
    /// the bytes sent, the transmitter taking one every `tx_every` cycles.
    fn run(
        uut: &mut BridgeEcho,
        input: &[Option<u8>],
        gap: usize,
        tx_every: usize,
        stall: impl Fn(usize) -> bool,
        tail: usize,
    ) -> Vec<u8> {
        let clk = |u: &mut BridgeEcho, v| u.clock.next = Clock { clk: v };
        let mut out = vec![];
        let cycles = input.len() * gap + tail;
        for t in 0..cycles {
            let byte = if t % gap == 0 {
                input.get(t / gap).copied().flatten()
            } else {
                None
            };
            uut.rx_valid.next = byte.is_some();
            uut.rx_data.next = bits(u64::from(byte.unwrap_or(0)));
            uut.tx_ready.next = t % tx_every == 0;
            uut.stall.next = stall(t);
            assert!(simulate(uut, 200));
            if uut.tx_valid.val() && uut.tx_ready.val() {
                out.push(uut.tx_data.val().to_u64() as u8);
            }
            tick(uut, clk);
        }
        out
    }

    fn echo_of(beats: &[Vec<u8>], nb_out: usize) -> Vec<u8> {
        beats
            .iter()
            .flat_map(|b| echo_response(b, nb_out))
            .collect()
    }

    #[test]
    fn board_bridge_round_trips_beats_through_the_echo() {
        let mut rng = Rng::new(7);
        // (nb_in, nb_out): wider response (2x2 sq4: 4 / 8 bytes), narrower (two and three
        // response beats per command beat), equal, one byte.
        for (nb_in, nb_out) in [(4, 8), (8, 4), (12, 5), (12, 12), (1, 1)] {
            let mut uut = bridge_echo(nb_in, nb_out, 1000);
            let beats: Vec<Vec<u8>> = (0..5)
                .map(|_| (0..nb_in).map(|_| rng.next_u64() as u8).collect())
                .collect();
            let input: Vec<Option<u8>> = beats.iter().flatten().map(|&b| Some(b)).collect();
            // A byte every 3 cycles, the transmitter taking one per cycle: faster than any UART,
            // and the response bytes (up to 2x the command bytes here) keep up.
            let got = run(&mut uut, &input, 3, 1, |_| false, 20 * nb_out);
            assert_eq!(got, echo_of(&beats, nb_out), "{nb_in} / {nb_out}");
            assert!(!uut.overrun.val());
            assert!(!uut.busy.val(), "idle at the end");
        }
    }

    #[test]
    fn board_bridge_buffers_one_beat_and_flags_an_overrun() {
        let (nb_in, nb_out) = (4, 4);
        let beats: Vec<Vec<u8>> = (0..4u8)
            .map(|b| (0..4).map(|i| 16 * b + i).collect())
            .collect();
        let input: Vec<Option<u8>> = beats.iter().flatten().map(|&b| Some(b)).collect();
        // A byte every 4 cycles. The accelerator stalls from cycle 20 to 60, while beats 1 and 2
        // arrive: beat 1 waits in the holding register, beat 2 in the assembly register, and
        // nothing is lost.
        let mut uut = bridge_echo(nb_in, nb_out, 1000);
        let got = run(&mut uut, &input[..12], 4, 1, |t| (20..60).contains(&t), 100);
        assert_eq!(got, echo_of(&beats[..3], nb_out));
        assert!(!uut.overrun.val());
        // The same stall with beat 3 following: its first byte (cycle 48) finds both registers
        // full and is dropped.
        let mut uut = bridge_echo(nb_in, nb_out, 1000);
        let _ = run(&mut uut, &input, 4, 1, |t| (20..60).contains(&t), 100);
        assert!(uut.overrun.val(), "overrun is sticky");
        uut.reset.next = true;
        tick(&mut uut, |u: &mut BridgeEcho, v| {
            u.clock.next = Clock { clk: v }
        });
        uut.reset.next = false;
        assert!(simulate(&mut uut, 200));
        assert!(!uut.overrun.val(), "cleared by reset");
    }

    #[test]
    fn board_bridge_drops_a_partial_beat_after_silence() {
        let (nb_in, nb_out) = (4, 4);
        let mut uut = bridge_echo(nb_in, nb_out, 50);
        // Two stray bytes, a silence longer than 50 cycles, then a whole beat.
        let mut input = vec![Some(0xEE), Some(0xEE)];
        input.extend(std::iter::repeat_n(None, 20));
        input.extend([1, 2, 3, 4].map(Some));
        let got = run(&mut uut, &input, 4, 1, |_| false, 100);
        assert_eq!(got, vec![1, 2, 3, 4]);
        // The same stray bytes with a short pause are taken as the start of the beat.
        let mut uut = bridge_echo(nb_in, nb_out, 50);
        let mut input = vec![Some(0xEE), Some(0xEE)];
        input.extend(std::iter::repeat_n(None, 5));
        input.extend([1, 2, 3, 4].map(Some));
        let got = run(&mut uut, &input, 4, 1, |_| false, 100);
        assert_eq!(got, vec![0xEE, 0xEE, 1, 2]);
    }
}
