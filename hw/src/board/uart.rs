//! 8N1 UART transmitter and receiver.
//!
//! The bit period is `div` clock cycles, fixed when the design is generated
//! ([`baud_divider`]: `round(clock_hz / baud)`, e.g. 12 MHz / 115200 = 104, 0.16 % fast). Both
//! sides count it down in a 16-bit counter, so `div` is `MIN_DIVIDER..=65535`; the decrement is
//! masked to the bits that `div - 1` needs ([`counter_mask`]), so synthesis keeps only those
//! (7 for 104: a 16-bit borrow chain was once a UP5K board design's longest path).
//!
//! - [`UartTx`]: ready/valid byte input; the line idles high and sends start (0), 8 data bits LSB
//!   first, stop (1). `ready` rises again after the full stop bit.
//! - [`UartRx`]: the line goes through a 2-FF synchronizer (stored inverted, so that the
//!   flip-flops' power-up value 0 means "idle"), then a falling edge starts a frame; every bit is
//!   sampled once, in the middle of its period (`div/2` cycles after the edge, then every `div`).
//!   A start bit that is high again at mid-bit is a glitch and is ignored. A valid stop bit
//!   makes `valid` pulse for one cycle with the byte on `data` (held until the next byte's bits
//!   shift in); a low stop bit pulses `frame_error` instead and the byte is dropped.
//!
//! Mid-bit sampling tolerates a clock mismatch of up to about half a bit over the 9.5 bits from
//! the start edge to the stop sample, i.e. ~5 % between sender and receiver, minus the
//! synchronizer's 2-3 cycles of edge uncertainty (`1/div` of a bit each).

use super::BoardError;
use rust_hdl::prelude::*;

/// Width of the bit-period counters.
pub const DIVIDER_BITS: usize = 16;
/// Smallest bit period in cycles: mid-bit sampling needs a few cycles per bit around the
/// synchronizer's latency.
pub const MIN_DIVIDER: u64 = 8;
/// Largest baud-rate error accepted by [`baud_divider`] (the receiver on the other side needs
/// the rest of the ~5 % budget).
pub const MAX_BAUD_ERROR: f64 = 0.02;

/// Frame length in bit periods: start, 8 data, stop.
const FRAME_BITS: u64 = 10;

/// The bit period in clock cycles for `baud` at `clock_hz`: `round(clock_hz / baud)`, checked
/// to fit the counters and to be within [`MAX_BAUD_ERROR`] of the requested rate.
pub fn baud_divider(clock_hz: u64, baud: u64) -> Result<u32, BoardError> {
    let bad = |reason: String| BoardError::Baud {
        clock_hz,
        baud,
        reason,
    };
    if baud == 0 {
        return Err(bad("the baud rate must be positive".into()));
    }
    let div = (clock_hz + baud / 2) / baud;
    if div < MIN_DIVIDER {
        return Err(bad(format!(
            "a bit would last {div} clock cycles; the UART needs at least {MIN_DIVIDER}"
        )));
    }
    if div >= 1 << DIVIDER_BITS {
        return Err(bad(format!(
            "a bit would last {div} clock cycles; the counters hold at most {}",
            (1u64 << DIVIDER_BITS) - 1
        )));
    }
    let actual = clock_hz as f64 / div as f64;
    let error = (actual - baud as f64).abs() / baud as f64;
    if error > MAX_BAUD_ERROR {
        return Err(bad(format!(
            "the nearest divider ({div}) gives {actual:.0} baud, {:.1} % off (at most {:.0} % \
             allowed)",
            100.0 * error,
            100.0 * MAX_BAUD_ERROR
        )));
    }
    Ok(div as u32)
}

/// All-ones in the bits that the values `0..div` need: the bit-period counters count down from
/// at most `div - 1`, so their bits above are constant zero once masked with this.
pub fn counter_mask(div: u32) -> Bits<DIVIDER_BITS> {
    let width = 32 - (div.max(2) - 1).leading_zeros();
    bits((1u64 << width) - 1)
}

/// UART transmitter, 8N1, `div` clock cycles per bit.
#[derive(LogicBlock)]
pub struct UartTx {
    pub clock: Signal<In, Clock>,
    /// Synchronous, active high: abandons a frame and idles the line.
    pub reset: Signal<In, Bit>,
    pub data: Signal<In, Bits<8>>,
    pub valid: Signal<In, Bit>,
    /// High while idle; a byte is taken when `valid && ready`.
    pub ready: Signal<Out, Bit>,
    /// The serial line (idle high).
    pub tx: Signal<Out, Bit>,
    /// Bits still to send, LSB next; ones shift in from the top (the stop bit and idle).
    shreg: DFF<Bits<8>>,
    /// Bit periods left in the frame, including the current one; 0 = idle.
    left: DFF<Bits<4>>,
    /// Cycles left in the current bit period, minus one.
    count: DFF<Bits<DIVIDER_BITS>>,
    /// The line, inverted (power-up 0 = idle high).
    tx_n: DFF<Bit>,
    div_m1: Constant<Bits<DIVIDER_BITS>>,
    count_mask: Constant<Bits<DIVIDER_BITS>>,
    one_c: Constant<Bits<DIVIDER_BITS>>,
    one_l: Constant<Bits<4>>,
    zero_l: Constant<Bits<4>>,
    frame: Constant<Bits<4>>,
    top: Constant<Bits<8>>,
}

impl UartTx {
    /// `div` = clock cycles per bit (see [`baud_divider`]).
    pub fn new(div: u32) -> Self {
        assert!(
            (MIN_DIVIDER..1 << DIVIDER_BITS).contains(&u64::from(div)),
            "UART divider {div} out of range"
        );
        Self {
            clock: Default::default(),
            reset: Default::default(),
            data: Default::default(),
            valid: Default::default(),
            ready: Default::default(),
            tx: Default::default(),
            shreg: Default::default(),
            left: Default::default(),
            count: Default::default(),
            tx_n: Default::default(),
            div_m1: Constant::new(bits(u64::from(div) - 1)),
            count_mask: Constant::new(counter_mask(div)),
            one_c: Constant::new(bits(1)),
            one_l: Constant::new(bits(1)),
            zero_l: Constant::new(bits(0)),
            frame: Constant::new(bits(FRAME_BITS)),
            top: Constant::new(bits(0x80)),
        }
    }
}

impl Logic for UartTx {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, shreg, left, count, tx_n);
        // Ready when idle, or in the last cycle of the stop bit (frames go back to back).
        self.ready.next = !self.left.q.val().any()
            | ((self.left.q.val() == self.one_l.val()) & !self.count.q.val().any());
        self.tx.next = !self.tx_n.q.val();
        if self.left.q.val().any() {
            if self.count.q.val().any() {
                self.count.d.next = (self.count.q.val() - self.one_c.val()) & self.count_mask.val();
            } else {
                // Next bit period: data bits, then the stop bit (a shifted-in one), then idle.
                self.count.d.next = self.div_m1.val();
                self.left.d.next = self.left.q.val() - self.one_l.val();
                self.tx_n.d.next = !self.shreg.q.val().get_bit(0);
                self.shreg.d.next = (self.shreg.q.val() >> 1) | self.top.val();
            }
        }
        if self.valid.val() & self.ready.val() {
            self.shreg.d.next = self.data.val();
            self.left.d.next = self.frame.val();
            self.count.d.next = self.div_m1.val();
            // The start bit.
            self.tx_n.d.next = true;
        }
        if self.reset.val() {
            self.left.d.next = self.zero_l.val();
            self.tx_n.d.next = false;
        }
    }
}

/// UART receiver, 8N1, `div` clock cycles per bit, with a 2-FF synchronizer on `rx`.
#[derive(LogicBlock)]
pub struct UartRx {
    pub clock: Signal<In, Clock>,
    /// Synchronous, active high: abandons a frame in progress.
    pub reset: Signal<In, Bit>,
    /// The serial line, asynchronous to `clock`.
    pub rx: Signal<In, Bit>,
    /// The last byte received (valid in the cycle `valid` is high).
    pub data: Signal<Out, Bits<8>>,
    /// One-cycle pulse per byte received with a good stop bit.
    pub valid: Signal<Out, Bit>,
    /// One-cycle pulse when a stop bit was low (byte dropped).
    pub frame_error: Signal<Out, Bit>,
    /// Synchronizer, inverted: `sync2 = 1` means the line is low.
    sync1: DFF<Bit>,
    sync2: DFF<Bit>,
    shreg: DFF<Bits<8>>,
    /// Samples left in the frame (start check, 8 data, stop); 0 = idle.
    left: DFF<Bits<4>>,
    count: DFF<Bits<DIVIDER_BITS>>,
    valid_r: DFF<Bit>,
    ferr_r: DFF<Bit>,
    div_m1: Constant<Bits<DIVIDER_BITS>>,
    count_mask: Constant<Bits<DIVIDER_BITS>>,
    half_m1: Constant<Bits<DIVIDER_BITS>>,
    one_c: Constant<Bits<DIVIDER_BITS>>,
    one_l: Constant<Bits<4>>,
    zero_l: Constant<Bits<4>>,
    frame: Constant<Bits<4>>,
    top: Constant<Bits<8>>,
}

impl UartRx {
    /// `div` = clock cycles per bit (see [`baud_divider`]).
    pub fn new(div: u32) -> Self {
        assert!(
            (MIN_DIVIDER..1 << DIVIDER_BITS).contains(&u64::from(div)),
            "UART divider {div} out of range"
        );
        Self {
            clock: Default::default(),
            reset: Default::default(),
            rx: Default::default(),
            data: Default::default(),
            valid: Default::default(),
            frame_error: Default::default(),
            sync1: Default::default(),
            sync2: Default::default(),
            shreg: Default::default(),
            left: Default::default(),
            count: Default::default(),
            valid_r: Default::default(),
            ferr_r: Default::default(),
            div_m1: Constant::new(bits(u64::from(div) - 1)),
            count_mask: Constant::new(counter_mask(div)),
            half_m1: Constant::new(bits(u64::from(div) / 2 - 1)),
            one_c: Constant::new(bits(1)),
            one_l: Constant::new(bits(1)),
            zero_l: Constant::new(bits(0)),
            frame: Constant::new(bits(FRAME_BITS)),
            top: Constant::new(bits(0x80)),
        }
    }
}

impl Logic for UartRx {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, sync1, sync2, shreg, left, count, valid_r, ferr_r);
        self.sync1.d.next = !self.rx.val();
        self.sync2.d.next = self.sync1.q.val();
        self.valid_r.d.next = false;
        self.ferr_r.d.next = false;
        if !self.left.q.val().any() {
            if self.sync2.q.val() {
                // Falling edge: the first sample (the start bit's middle) is div/2 cycles away.
                self.left.d.next = self.frame.val();
                self.count.d.next = self.half_m1.val();
            }
        } else if self.count.q.val().any() {
            self.count.d.next = (self.count.q.val() - self.one_c.val()) & self.count_mask.val();
        } else {
            self.count.d.next = self.div_m1.val();
            self.left.d.next = self.left.q.val() - self.one_l.val();
            if self.left.q.val() == self.frame.val() {
                // Start bit: must still be low, else it was a glitch.
                if !self.sync2.q.val() {
                    self.left.d.next = self.zero_l.val();
                }
            } else if self.left.q.val() == self.one_l.val() {
                // Stop bit.
                if self.sync2.q.val() {
                    self.ferr_r.d.next = true;
                } else {
                    self.valid_r.d.next = true;
                }
            } else {
                // Data bit, LSB first: shift in from the top.
                self.shreg.d.next = self.shreg.q.val() >> 1;
                if !self.sync2.q.val() {
                    self.shreg.d.next = (self.shreg.q.val() >> 1) | self.top.val();
                }
            }
        }
        if self.reset.val() {
            self.left.d.next = self.zero_l.val();
            self.valid_r.d.next = false;
            self.ferr_r.d.next = false;
        }
        self.data.next = self.shreg.q.val();
        self.valid.next = self.valid_r.q.val();
        self.frame_error.next = self.ferr_r.q.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::testing::{tick, uart_frame};

    #[test]
    fn board_baud_divider_rounds_and_checks() {
        assert_eq!(baud_divider(12_000_000, 115_200).unwrap(), 104);
        assert_eq!(baud_divider(100_000_000, 115_200).unwrap(), 868);
        assert_eq!(baud_divider(25_000_000, 115_200).unwrap(), 217);
        assert!(
            baud_divider(12_000_000, 3_000_000).is_err(),
            "4 cycles per bit"
        );
        assert!(
            baud_divider(100_000_000, 1_200).is_err(),
            "counter overflow"
        );
        assert!(baud_divider(12_000_000, 0).is_err());
        // 12 MHz / 921600 = 13.02 -> 13 (0.16 % off) is fine; 1 MHz / 57600 = 17.4 -> 17 is 2.1 %.
        assert_eq!(baud_divider(12_000_000, 921_600).unwrap(), 13);
        let e = baud_divider(1_000_000, 57_600).unwrap_err().to_string();
        assert!(e.contains("% off"), "{e}");
    }

    #[test]
    fn board_uart_counter_mask_covers_the_bit_period() {
        let m = |div| counter_mask(div).to_u64();
        assert_eq!(
            (m(8), m(9), m(104), m(128), m(129), m(65535)),
            (7, 15, 127, 127, 255, 65535)
        );
    }

    /// Drive `rx` with a waveform (one entry per clock cycle) and collect what the receiver says.
    fn receive(uut: &mut UartRx, wave: &[bool]) -> (Vec<u8>, usize) {
        let (mut bytes, mut errors) = (vec![], 0);
        for &level in wave {
            uut.rx.next = level;
            tick(uut, |u: &mut UartRx, v| u.clock.next = Clock { clk: v });
            if uut.valid.val() {
                bytes.push(uut.data.val().to_u64() as u8);
            }
            errors += usize::from(uut.frame_error.val());
        }
        (bytes, errors)
    }

    #[test]
    fn board_uart_rx_decodes_a_hand_built_waveform() {
        let div = 16;
        let mut uut = UartRx::new(div);
        uut.reset.next = false;
        uut.connect_all();
        check_all(&uut).expect("connected");
        // Idle, 0xA5, 0x00, 0xFF back to back (one stop bit), a 3-cycle glitch, then 0x3C sent
        // 3 % slow (bits of 16 and 17 cycles, alternating).
        let mut wave = vec![true; 40];
        for b in [0xA5u8, 0x00, 0xFF] {
            wave.extend(uart_frame(b, div as usize));
        }
        wave.extend([true; 20]);
        wave.extend([false; 3]);
        wave.extend([true; 40]);
        let slow: Vec<bool> = frame_bits(0x3C)
            .iter()
            .enumerate()
            .flat_map(|(i, &l)| std::iter::repeat_n(l, 16 + i % 2))
            .collect();
        wave.extend(slow);
        wave.extend([true; 40]);
        let (bytes, errors) = receive(&mut uut, &wave);
        assert_eq!(bytes, vec![0xA5, 0x00, 0xFF, 0x3C]);
        assert_eq!(errors, 0);

        // A frame whose stop bit is low: a frame error, no byte.
        let mut bad: Vec<bool> = vec![true; 20];
        for (i, l) in frame_bits(0x81).into_iter().enumerate() {
            let l = if i == 9 { false } else { l };
            bad.extend(std::iter::repeat_n(l, div as usize));
        }
        bad.extend([true; 60]);
        let (bytes, errors) = receive(&mut uut, &bad);
        assert_eq!((bytes, errors), (vec![], 1));
    }

    /// Start, data LSB first, stop.
    fn frame_bits(b: u8) -> Vec<bool> {
        let mut v = vec![false];
        v.extend((0..8).map(|i| b >> i & 1 == 1));
        v.push(true);
        v
    }

    /// A TX wired to an RX.
    #[derive(LogicBlock)]
    struct Loop {
        clock: Signal<In, Clock>,
        reset: Signal<In, Bit>,
        data: Signal<In, Bits<8>>,
        valid: Signal<In, Bit>,
        ready: Signal<Out, Bit>,
        got: Signal<Out, Bits<8>>,
        got_valid: Signal<Out, Bit>,
        line: Signal<Out, Bit>,
        tx: UartTx,
        rx: UartRx,
    }

    impl Logic for Loop {
        #[hdl_gen]
        fn update(&mut self) {
            self.tx.clock.next = self.clock.val();
            self.rx.clock.next = self.clock.val();
            self.tx.reset.next = self.reset.val();
            self.rx.reset.next = self.reset.val();
            self.tx.data.next = self.data.val();
            self.tx.valid.next = self.valid.val();
            self.ready.next = self.tx.ready.val();
            self.rx.rx.next = self.tx.tx.val();
            self.line.next = self.tx.tx.val();
            self.got.next = self.rx.data.val();
            self.got_valid.next = self.rx.valid.val();
        }
    }

    #[test]
    fn board_uart_loops_bytes_from_tx_to_rx() {
        let div = 10;
        let mut uut = Loop {
            clock: Default::default(),
            reset: Default::default(),
            data: Default::default(),
            valid: Default::default(),
            ready: Default::default(),
            got: Default::default(),
            got_valid: Default::default(),
            line: Default::default(),
            tx: UartTx::new(div),
            rx: UartRx::new(div),
        };
        uut.connect_all();
        check_all(&uut).expect("connected");
        let clk = |u: &mut Loop, v| u.clock.next = Clock { clk: v };
        let sent: Vec<u8> = vec![0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80, 0x7E, 0x42];
        let mut got = vec![];
        let mut line = vec![];
        let mut next = 0;
        for _ in 0..sent.len() * 10 * div as usize + 200 {
            uut.valid.next = next < sent.len();
            uut.data.next = bits(u64::from(*sent.get(next).unwrap_or(&0)));
            assert!(simulate(&mut uut, 200));
            let take = uut.valid.val() && uut.ready.val();
            tick(&mut uut, clk);
            next += usize::from(take);
            line.push(uut.line.val());
            if uut.got_valid.val() {
                got.push(uut.got.val().to_u64() as u8);
            }
        }
        assert_eq!(got, sent);
        // Back to back: the line never idles between frames, and each frame is exactly 10 bits.
        let first_low = line.iter().position(|l| !l).expect("a start bit");
        let expect: Vec<bool> = sent
            .iter()
            .flat_map(|&b| uart_frame(b, div as usize))
            .collect();
        assert_eq!(&line[first_low..first_low + expect.len()], &expect[..]);
    }
}
