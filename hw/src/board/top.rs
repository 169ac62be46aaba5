//! The board top: power-on reset, UART, host-link bridge, the accelerator, status LEDs.
//!
//! ```text
//!   reset_button_0 ─> PowerOnReset ─> reset (everything below)
//!   uart_rx ─> UartRx ─bytes─> HostBridge ─cmd beats─> accelerator (EchoAccel, or the
//!   uart_tx <─ UartTx <─bytes─            <─rsp beats─  generated top, by module name)
//!   led_heartbeat (1 Hz), led_busy (link activity, stretched), led_error (sticky overrun or
//!   framing error)
//! ```
//!
//! One Rust type for every board and width: board properties (clock, polarities, whether there
//! is a reset button) and the beat widths are run-time parameters ([`TopParams`]). The
//! accelerator slot holds either the rust-hdl [`EchoAccel`] stand-in (simulatable) or an
//! [`ExternalAccel`] leaf that instantiates a Verilog module by name with the documented flat
//! ports (`cmd_data[W_IN-1:0]`, `rsp_data[W_OUT-1:0]`).

use super::bridge::{beat_bytes, EchoAccel, HostBridge};
use super::uart::{UartRx, UartTx};
use rust_hdl::prelude::*;

/// Width of the power-on reset counter.
pub const POR_BITS: usize = 20;
/// Width of the heartbeat counter.
pub const HEARTBEAT_BITS: usize = 28;
/// Width of the busy-LED stretcher.
pub const STRETCH_BITS: usize = 24;

/// Holds `reset` high for `hold_cycles` after configuration and after the button is released.
/// The button goes through a 2-FF synchronizer; bounces restart the count (so it debounces too).
#[derive(LogicBlock)]
pub struct PowerOnReset {
    pub clock: Signal<In, Clock>,
    /// High while pressed (polarity already applied), asynchronous.
    pub button: Signal<In, Bit>,
    /// Synchronous, active high.
    pub reset: Signal<Out, Bit>,
    sync1: DFF<Bit>,
    sync2: DFF<Bit>,
    count: DFF<Bits<POR_BITS>>,
    /// Power-up value 0: in reset from the first cycle on.
    released: DFF<Bit>,
    hold: Constant<Bits<POR_BITS>>,
    one: Constant<Bits<POR_BITS>>,
    zero: Constant<Bits<POR_BITS>>,
}

impl PowerOnReset {
    pub fn new(hold_cycles: u64) -> Self {
        assert!(
            (1..1 << POR_BITS).contains(&hold_cycles),
            "reset hold of {hold_cycles} cycles out of range"
        );
        Self {
            clock: Default::default(),
            button: Default::default(),
            reset: Default::default(),
            sync1: Default::default(),
            sync2: Default::default(),
            count: Default::default(),
            released: Default::default(),
            hold: Constant::new(bits(hold_cycles)),
            one: Constant::new(bits(1)),
            zero: Constant::new(bits(0)),
        }
    }
}

impl Logic for PowerOnReset {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, sync1, sync2, count, released);
        self.sync1.d.next = self.button.val();
        self.sync2.d.next = self.sync1.q.val();
        self.released.d.next = self.count.q.val() == self.hold.val();
        if self.count.q.val() != self.hold.val() {
            self.count.d.next = self.count.q.val() + self.one.val();
        }
        if self.sync2.q.val() {
            self.count.d.next = self.zero.val();
            self.released.d.next = false;
        }
        self.reset.next = !self.released.q.val();
    }
}

/// A Verilog accelerator top instantiated by module name, with the documented flat ports; the
/// byte lanes are concatenated / split in the wrapper. Not simulatable in rust-hdl (its outputs
/// stay low there).
#[derive(LogicBlock)]
pub struct ExternalAccel {
    pub clock: Signal<In, Clock>,
    pub reset: Signal<In, Bit>,
    pub cmd_bytes: Vec<Signal<In, Bits<8>>>,
    pub cmd_valid: Signal<In, Bit>,
    pub cmd_ready: Signal<Out, Bit>,
    pub rsp_bytes: Vec<Signal<Out, Bits<8>>>,
    pub rsp_valid: Signal<Out, Bit>,
    pub rsp_ready: Signal<In, Bit>,
    _module: String,
    _w_in: usize,
    _w_out: usize,
}

impl ExternalAccel {
    /// `module` with ports `clock, reset, cmd_data[w_in-1:0], cmd_valid, cmd_ready,
    /// rsp_data[w_out-1:0], rsp_valid, rsp_ready`.
    pub fn new(module: &str, w_in: usize, w_out: usize) -> Self {
        assert!(w_in >= 1 && w_out >= 1);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_bytes: (0..beat_bytes(w_in)).map(|_| Default::default()).collect(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            rsp_bytes: (0..beat_bytes(w_out)).map(|_| Default::default()).collect(),
            rsp_valid: Default::default(),
            rsp_ready: Default::default(),
            _module: module.to_string(),
            _w_in: w_in,
            _w_out: w_out,
        }
    }

    /// The wrapper body. Names use rust-hdl's `$` separators; the emitter rewrites them.
    fn wrapper(&self) -> String {
        let (nb_in, nb_out) = (self.cmd_bytes.len(), self.rsp_bytes.len());
        let cat: Vec<String> = (0..nb_in).rev().map(|i| format!("cmd_bytes${i}")).collect();
        let mut code = format!(
            "wire [{wi}:0] cmd_data_all;\nwire [{wo}:0] rsp_data_all;\n\
             assign cmd_data_all = {{{cat}}};\n",
            wi = 8 * nb_in - 1,
            wo = 8 * nb_out - 1,
            cat = cat.join(", ")
        );
        if 8 * nb_out > self._w_out {
            code += &format!(
                "assign rsp_data_all[{}:{}] = {}'d0;\n",
                8 * nb_out - 1,
                self._w_out,
                8 * nb_out - self._w_out
            );
        }
        let cmd = if 8 * nb_in > self._w_in {
            // The unused top bits of the last byte lane are dropped.
            format!("cmd_data_all[{}:0]", self._w_in - 1)
        } else {
            "cmd_data_all".to_string()
        };
        code += &format!(
            "{module} accel(\n    .clock(clock),\n    .reset(reset),\n    .cmd_data({cmd}),\n    \
             .cmd_valid(cmd_valid),\n    .cmd_ready(cmd_ready),\n    \
             .rsp_data(rsp_data_all[{wo}:0]),\n    .rsp_valid(rsp_valid),\n    \
             .rsp_ready(rsp_ready)\n);\n",
            module = self._module,
            wo = self._w_out - 1
        );
        for i in 0..nb_out {
            code += &format!(
                "assign rsp_bytes${i} = rsp_data_all[{}:{}];\n",
                8 * i + 7,
                8 * i
            );
        }
        code
    }
}

impl Logic for ExternalAccel {
    fn update(&mut self) {
        self.cmd_ready.next = false;
        self.rsp_valid.next = false;
        for b in self.rsp_bytes.iter_mut() {
            b.next = Bits::default();
        }
    }

    fn connect(&mut self) {
        self.cmd_ready.connect();
        self.rsp_valid.connect();
        for b in self.rsp_bytes.iter_mut() {
            b.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        Verilog::Wrapper(Wrapper {
            code: self.wrapper(),
            cores: String::new(),
        })
    }
}

/// Run-time parameters of [`BoardTop`] (see `BoardOptions` for the usual values per board).
#[derive(Clone, Debug, PartialEq)]
pub struct TopParams {
    /// UART bit period in clock cycles.
    pub uart_divider: u32,
    /// Whether the board has a reset button (port `reset_button_0`), and its polarity.
    pub has_button: bool,
    pub button_active_low: bool,
    /// LED polarities: heartbeat, busy, error.
    pub leds_active_low: [bool; 3],
    /// Reset held this long after configuration / after the button is released.
    pub por_cycles: u64,
    /// A partial command beat is dropped after this many cycles without a byte.
    pub resync_cycles: u64,
    /// The heartbeat LED toggles every this many cycles.
    pub heartbeat_half_period: u64,
    /// The busy LED stays on this long after the last activity.
    pub busy_stretch_cycles: u64,
}

/// Stamps out a board top around one accelerator type (see [`BoardTop`]). rust-hdl kernels
/// cannot index a vector inside a vector nor name the fields of a generic type, so each
/// accelerator type gets its own struct.
macro_rules! board_top {
    ($(#[$meta:meta])* $name:ident, $accel:ty) => {
        $(#[$meta])*
        #[derive(LogicBlock)]
        pub struct $name {
            pub clk: Signal<In, Clock>,
            /// Zero or one reset button (a vector so that boards without one have no such port).
            pub reset_button: Vec<Signal<In, Bit>>,
            pub uart_rx: Signal<In, Bit>,
            pub uart_tx: Signal<Out, Bit>,
            pub led_heartbeat: Signal<Out, Bit>,
            pub led_busy: Signal<Out, Bit>,
            pub led_error: Signal<Out, Bit>,
            por: PowerOnReset,
            receiver: UartRx,
            transmitter: UartTx,
            bridge: HostBridge,
            pub accel: $accel,
            hb_count: DFF<Bits<HEARTBEAT_BITS>>,
            hb: DFF<Bit>,
            busy_count: DFF<Bits<STRETCH_BITS>>,
            error: DFF<Bit>,
            button_level: Signal<Local, Bit>,
            hb_half: Constant<Bits<HEARTBEAT_BITS>>,
            hb_one: Constant<Bits<HEARTBEAT_BITS>>,
            hb_zero: Constant<Bits<HEARTBEAT_BITS>>,
            stretch: Constant<Bits<STRETCH_BITS>>,
            stretch_one: Constant<Bits<STRETCH_BITS>>,
            stretch_zero: Constant<Bits<STRETCH_BITS>>,
            button_invert: Constant<Bit>,
            heartbeat_invert: Constant<Bit>,
            busy_invert: Constant<Bit>,
            error_invert: Constant<Bit>,
            _buttons: usize,
            _nb_in: usize,
            _nb_out: usize,
        }

        impl $name {
            /// A board top around `accel`, whose beats are `nb_in` / `nb_out` bytes.
            pub fn new(params: &TopParams, accel: $accel, nb_in: usize, nb_out: usize) -> Self {
                assert!(
                    (1..1 << HEARTBEAT_BITS).contains(&params.heartbeat_half_period),
                    "heartbeat half period out of range"
                );
                assert!(
                    (1..1 << STRETCH_BITS).contains(&params.busy_stretch_cycles),
                    "busy stretch out of range"
                );
                let buttons = usize::from(params.has_button);
                Self {
                    clk: Default::default(),
                    reset_button: (0..buttons).map(|_| Default::default()).collect(),
                    uart_rx: Default::default(),
                    uart_tx: Default::default(),
                    led_heartbeat: Default::default(),
                    led_busy: Default::default(),
                    led_error: Default::default(),
                    por: PowerOnReset::new(params.por_cycles),
                    receiver: UartRx::new(params.uart_divider),
                    transmitter: UartTx::new(params.uart_divider),
                    bridge: HostBridge::new(nb_in, nb_out, params.resync_cycles),
                    accel,
                    hb_count: Default::default(),
                    hb: Default::default(),
                    busy_count: Default::default(),
                    error: Default::default(),
                    button_level: Default::default(),
                    hb_half: Constant::new(bits(params.heartbeat_half_period - 1)),
                    hb_one: Constant::new(bits(1)),
                    hb_zero: Constant::new(bits(0)),
                    stretch: Constant::new(bits(params.busy_stretch_cycles)),
                    stretch_one: Constant::new(bits(1)),
                    stretch_zero: Constant::new(bits(0)),
                    button_invert: Constant::new(params.button_active_low),
                    heartbeat_invert: Constant::new(params.leds_active_low[0]),
                    busy_invert: Constant::new(params.leds_active_low[1]),
                    error_invert: Constant::new(params.leds_active_low[2]),
                    _buttons: buttons,
                    _nb_in: nb_in,
                    _nb_out: nb_out,
                }
            }
        }

        impl Logic for $name {
            #[hdl_gen]
            fn update(&mut self) {
                dff_setup!(self, clk, hb_count, hb, busy_count, error);
                self.por.clock.next = self.clk.val();
                self.receiver.clock.next = self.clk.val();
                self.transmitter.clock.next = self.clk.val();
                self.bridge.clock.next = self.clk.val();
                // Reset: the power-on timer, restarted by the button (if any; without one the
                // level is the released one).
                self.button_level.next = self.button_invert.val();
                for b in 0..self._buttons {
                    self.button_level.next = self.reset_button[b].val();
                }
                self.por.button.next = self.button_level.val() ^ self.button_invert.val();
                self.receiver.reset.next = self.por.reset.val();
                self.transmitter.reset.next = self.por.reset.val();
                self.bridge.reset.next = self.por.reset.val();
                // UART <-> bridge.
                self.receiver.rx.next = self.uart_rx.val();
                self.uart_tx.next = self.transmitter.tx.val();
                self.bridge.rx_data.next = self.receiver.data.val();
                self.bridge.rx_valid.next = self.receiver.valid.val();
                self.transmitter.data.next = self.bridge.tx_data.val();
                self.transmitter.valid.next = self.bridge.tx_valid.val();
                self.bridge.tx_ready.next = self.transmitter.ready.val();
                // Bridge <-> accelerator.
                self.accel.clock.next = self.clk.val();
                self.accel.reset.next = self.por.reset.val();
                for i in 0..self._nb_in {
                    self.accel.cmd_bytes[i].next = self.bridge.cmd_bytes[i].val();
                }
                self.accel.cmd_valid.next = self.bridge.cmd_valid.val();
                self.bridge.cmd_ready.next = self.accel.cmd_ready.val();
                for i in 0..self._nb_out {
                    self.bridge.rsp_bytes[i].next = self.accel.rsp_bytes[i].val();
                }
                self.bridge.rsp_valid.next = self.accel.rsp_valid.val();
                self.accel.rsp_ready.next = self.bridge.rsp_ready.val();
                // LEDs.
                self.hb_count.d.next = self.hb_count.q.val() + self.hb_one.val();
                if self.hb_count.q.val() == self.hb_half.val() {
                    self.hb_count.d.next = self.hb_zero.val();
                    self.hb.d.next = !self.hb.q.val();
                }
                // Busy: cycles since the last activity, saturating at the stretch (an up-counter
                // with a compare: a short, regular carry chain).
                if self.busy_count.q.val() != self.stretch.val() {
                    self.busy_count.d.next = self.busy_count.q.val() + self.stretch_one.val();
                }
                if self.bridge.busy.val() {
                    self.busy_count.d.next = self.stretch_zero.val();
                }
                self.error.d.next = self.error.q.val() | self.receiver.frame_error.val();
                if self.por.reset.val() {
                    // Lit for one stretch after a reset.
                    self.busy_count.d.next = self.stretch_zero.val();
                    self.error.d.next = false;
                }
                self.led_heartbeat.next = self.hb.q.val() ^ self.heartbeat_invert.val();
                self.led_busy.next =
                    (self.busy_count.q.val() != self.stretch.val()) ^ self.busy_invert.val();
                self.led_error.next =
                    (self.error.q.val() | self.bridge.overrun.val()) ^ self.error_invert.val();
            }
        }
    };
}

board_top!(
    /// The board top (see the module doc) around an accelerator Verilog module
    /// ([`ExternalAccel`]): what gets built for a board. Ports: `clk`, `reset_button_0` (if the
    /// board has one), `uart_rx`, `uart_tx`, `led_heartbeat`, `led_busy`, `led_error`.
    BoardTop,
    ExternalAccel
);

board_top!(
    /// [`BoardTop`] with the [`EchoAccel`] stand-in in the accelerator's place (simulatable, and
    /// buildable for a link test on a real board).
    EchoBoardTop,
    EchoAccel
);

impl EchoBoardTop {
    /// Around the [`EchoAccel`] stand-in with beats of `w_in` / `w_out` bits.
    pub fn with_echo(params: &TopParams, w_in: usize, w_out: usize) -> Self {
        let (nb_in, nb_out) = (beat_bytes(w_in), beat_bytes(w_out));
        Self::new(params, EchoAccel::new(nb_in, nb_out), nb_in, nb_out)
    }
}

impl BoardTop {
    /// Around the Verilog module `module` (documented ports, `w_in` / `w_out` bits).
    pub fn with_external(params: &TopParams, module: &str, w_in: usize, w_out: usize) -> Self {
        let accel = ExternalAccel::new(module, w_in, w_out);
        Self::new(params, accel, beat_bytes(w_in), beat_bytes(w_out))
    }
}

#[cfg(test)]
mod accel_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::bridge::echo_response;
    use crate::board::testing::{tick, uart_frame, LineDecoder};

    pub(crate) fn small_params(div: u32) -> TopParams {
        TopParams {
            uart_divider: div,
            has_button: true,
            button_active_low: true,
            leds_active_low: [true, false, true],
            por_cycles: 16,
            resync_cycles: 5000,
            heartbeat_half_period: 50,
            busy_stretch_cycles: 30,
        }
    }

    /// Runs a board top cycle by cycle: drives `uart_rx` from a queue of line levels, decodes
    /// `uart_tx`, records the LEDs (as "lit", polarity removed).
    struct Bench {
        uut: EchoBoardTop,
        div: usize,
        decoder: LineDecoder,
        line: std::collections::VecDeque<bool>,
        heartbeat: Vec<bool>,
        busy: Vec<bool>,
        error: Vec<bool>,
    }

    impl Bench {
        fn new(params: &TopParams, w_in: usize, w_out: usize) -> Bench {
            let mut uut = EchoBoardTop::with_echo(params, w_in, w_out);
            uut.uart_rx.next = true;
            uut.reset_button[0].next = true;
            uut.connect_all();
            check_all(&uut).expect("connected");
            Bench {
                uut,
                div: params.uart_divider as usize,
                decoder: LineDecoder::new(params.uart_divider as usize),
                line: Default::default(),
                heartbeat: vec![],
                busy: vec![],
                error: vec![],
            }
        }

        fn send(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.line.extend(uart_frame(b, self.div));
            }
        }

        fn run(&mut self, cycles: usize) {
            for _ in 0..cycles {
                self.uut.uart_rx.next = self.line.pop_front().unwrap_or(true);
                tick(&mut self.uut, |u: &mut EchoBoardTop, v| {
                    u.clk.next = Clock { clk: v }
                });
                self.decoder.sample(self.uut.uart_tx.val());
                self.heartbeat.push(!self.uut.led_heartbeat.val());
                self.busy.push(self.uut.led_busy.val());
                self.error.push(!self.uut.led_error.val());
            }
        }
    }

    #[test]
    fn board_top_echoes_beats_over_the_uart_line() {
        let div = 8;
        let mut bench = Bench::new(&small_params(div), 32, 64);
        bench.run(80);
        assert!(
            !bench.uut.por.reset.val(),
            "out of reset after the power-on hold"
        );
        assert!(bench.uut.uart_tx.val(), "line idles high");
        let beats: [[u8; 4]; 3] = [
            [1, 2, 3, 4],
            [0xFF, 0x00, 0x80, 0x7F],
            [0x50, 0x20, 0x00, 0x31],
        ];
        for b in &beats {
            bench.send(b);
        }
        // 12 bytes in, 24 out, 10 bits each.
        bench.run(10 * div as usize * 40);
        let want: Vec<u8> = beats.iter().flat_map(|b| echo_response(b, 8)).collect();
        assert_eq!(bench.decoder.bytes, want);
        assert_eq!(bench.decoder.frame_errors, 0);
        // Heartbeat: toggles every 50 cycles.
        let edges = bench.heartbeat.windows(2).filter(|w| w[0] != w[1]).count();
        assert!((bench.heartbeat.len() / 50 - 1..=bench.heartbeat.len() / 50).contains(&edges));
        // Busy: lit for one stretch (30 cycles) after the reset, off until the first byte, lit
        // during the transfer, off at the end.
        assert!(bench.busy[20..40].iter().all(|&b| b));
        assert!(!bench.busy[60..80].iter().any(|&b| b));
        assert!(bench.busy[240..640].iter().all(|&b| b));
        assert!(!bench.busy.last().unwrap());
        assert!(!bench.error.iter().any(|&e| e));
    }

    #[test]
    fn board_top_flags_framing_errors_until_the_button_resets_it() {
        let div = 8;
        let mut bench = Bench::new(&small_params(div), 32, 32);
        bench.run(40);
        // A frame whose stop bit is low.
        let mut bad = uart_frame(0x55, div as usize);
        let n = bad.len();
        bad[n - div as usize..].iter_mut().for_each(|l| *l = false);
        bench.line.extend(bad);
        bench.run(200);
        assert!(*bench.error.last().unwrap(), "error LED lit");
        // Press (active low) for a few cycles, release; reset is held 16 cycles after release.
        bench.uut.reset_button[0].next = false;
        bench.run(5);
        assert!(bench.uut.por.reset.val());
        bench.uut.reset_button[0].next = true;
        bench.run(10);
        assert!(bench.uut.por.reset.val(), "held after release");
        bench.run(20);
        assert!(!bench.uut.por.reset.val());
        assert!(!bench.error.last().unwrap(), "cleared by the reset");
        // And the link works afterwards.
        bench.send(&[9, 8, 7, 6]);
        bench.run(10 * div as usize * 10);
        assert_eq!(bench.decoder.bytes, vec![9, 8, 7, 6]);
    }
}
