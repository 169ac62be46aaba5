//! The board top around the real ShiftQuant accelerator top (`crate::accel::top::SqAccel`,
//! 2x2 sq4), simulated in rust-hdl end to end: commands go in as UART frames on `uart_rx`,
//! responses are decoded from `uart_tx`.

use super::*;
use crate::accel::commands::{decode_drain, encode_all, Command, DataVector, Status};
use crate::accel::top::SqAccel;
use crate::accel::{AccelGeometry, WORD_BITS};
use crate::board::bridge::{decode_beat, encode_beat};
use crate::board::testing::{tick, uart_frame, LineDecoder};
use crate::config::{ArrayConfig, Datapath};
use crate::pe::PeParams;

/// Byte lanes -> 32-bit words (simulation only: this test block is never printed as Verilog).
#[derive(LogicBlock)]
struct BytesToWords {
    bytes: Vec<Signal<In, Bits<8>>>,
    words: Vec<Signal<Out, Bits<WORD_BITS>>>,
}

impl Logic for BytesToWords {
    fn update(&mut self) {
        for (w, word) in self.words.iter_mut().enumerate() {
            let v = (0..4).fold(0u64, |a, b| {
                a | self.bytes[4 * w + b].val().to_u64() << (8 * b)
            });
            word.next = bits(v);
        }
    }
    fn connect(&mut self) {
        self.words.iter_mut().for_each(|w| w.connect());
    }
    fn hdl(&self) -> Verilog {
        Verilog::Empty
    }
}

/// 32-bit words -> byte lanes (simulation only).
#[derive(LogicBlock)]
struct WordsToBytes {
    words: Vec<Signal<In, Bits<WORD_BITS>>>,
    bytes: Vec<Signal<Out, Bits<8>>>,
}

impl Logic for WordsToBytes {
    fn update(&mut self) {
        for (i, byte) in self.bytes.iter_mut().enumerate() {
            byte.next = bits(self.words[i / 4].val().to_u64() >> (8 * (i % 4)) & 0xff);
        }
    }
    fn connect(&mut self) {
        self.bytes.iter_mut().for_each(|b| b.connect());
    }
    fn hdl(&self) -> Verilog {
        Verilog::Empty
    }
}

/// `SqAccel` (sq4, acc 32) with byte-lane stream ports, to sit in a board top.
#[derive(LogicBlock)]
pub struct SqAccelBytes {
    clock: Signal<In, Clock>,
    reset: Signal<In, Bit>,
    cmd_bytes: Vec<Signal<In, Bits<8>>>,
    cmd_valid: Signal<In, Bit>,
    cmd_ready: Signal<Out, Bit>,
    rsp_bytes: Vec<Signal<Out, Bits<8>>>,
    rsp_valid: Signal<Out, Bit>,
    rsp_ready: Signal<In, Bit>,
    core: crate::sq_accel!(4, 8, 32, 16, 10),
    to_words: BytesToWords,
    to_bytes: WordsToBytes,
    _nb_in: usize,
    _nb_out: usize,
    _w_in: usize,
    _w_out: usize,
}

fn lanes<T: Default>(n: usize) -> Vec<T> {
    (0..n).map(|_| T::default()).collect()
}

impl SqAccelBytes {
    fn new(geom: &AccelGeometry, params: PeParams) -> Self {
        let (w_in, w_out) = (geom.cmd_words(), geom.rsp_words());
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_bytes: lanes(4 * w_in),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            rsp_bytes: lanes(4 * w_out),
            rsp_valid: Default::default(),
            rsp_ready: Default::default(),
            core: SqAccel::new(geom, params),
            to_words: BytesToWords {
                bytes: lanes(4 * w_in),
                words: lanes(w_in),
            },
            to_bytes: WordsToBytes {
                words: lanes(w_out),
                bytes: lanes(4 * w_out),
            },
            _nb_in: 4 * w_in,
            _nb_out: 4 * w_out,
            _w_in: w_in,
            _w_out: w_out,
        }
    }
}

impl Logic for SqAccelBytes {
    #[hdl_gen]
    fn update(&mut self) {
        self.core.clock.next = self.clock.val();
        self.core.reset.next = self.reset.val();
        for i in 0..self._nb_in {
            self.to_words.bytes[i].next = self.cmd_bytes[i].val();
        }
        for w in 0..self._w_in {
            self.core.cmd_data[w].next = self.to_words.words[w].val();
        }
        self.core.cmd_valid.next = self.cmd_valid.val();
        self.cmd_ready.next = self.core.cmd_ready.val();
        for w in 0..self._w_out {
            self.to_bytes.words[w].next = self.core.rsp_data[w].val();
        }
        for i in 0..self._nb_out {
            self.rsp_bytes[i].next = self.to_bytes.bytes[i].val();
        }
        self.rsp_valid.next = self.core.rsp_valid.val();
        self.core.rsp_ready.next = self.rsp_ready.val();
    }
}

board_top!(
    /// The board top around the 2x2 sq4 accelerator block (simulation).
    SqBoardTop,
    SqAccelBytes
);

struct Link {
    uut: SqBoardTop,
    div: usize,
    decoder: LineDecoder,
    geom: AccelGeometry,
}

impl Link {
    fn new() -> Link {
        let config = ArrayConfig::new(2, 2, Datapath::Sq { bits: 4 }).expect("valid");
        let geom = AccelGeometry::new(&config, 16).expect("geometry");
        let params = PeParams {
            acc_bits: 32,
            max_shift: 2 * config.window,
        };
        let accel = SqAccelBytes::new(&geom, params);
        let (nb_in, nb_out) = (accel._nb_in, accel._nb_out);
        assert_eq!((nb_in, nb_out), (4, 8), "W_IN = 32, W_OUT = 64");
        let div = 8;
        let mut uut = SqBoardTop::new(&tests::small_params(div), accel, nb_in, nb_out);
        uut.uart_rx.next = true;
        uut.reset_button[0].next = true;
        uut.connect_all();
        check_all(&uut).expect("connected");
        let mut link = Link {
            uut,
            div: div as usize,
            decoder: LineDecoder::new(div as usize),
            geom,
        };
        link.run(&[], 40);
        link
    }

    /// Send `line` (UART levels), then clock `extra` more cycles.
    fn run(&mut self, line: &[bool], extra: usize) {
        for t in 0..line.len() + extra {
            self.uut.uart_rx.next = *line.get(t).unwrap_or(&true);
            tick(&mut self.uut, |u: &mut SqBoardTop, v| {
                u.clk.next = Clock { clk: v }
            });
            self.decoder.sample(self.uut.uart_tx.val());
        }
    }

    /// Send the commands' beats as UART frames; return the response beats (32-bit words each).
    fn exchange(&mut self, commands: &[Command], rsp_beats: usize) -> Vec<Vec<u32>> {
        let beats = encode_all(commands, &self.geom).expect("encodes");
        let line: Vec<bool> = beats
            .iter()
            .flat_map(|b| encode_beat(b, self.geom.cmd_bits()))
            .flat_map(|byte| uart_frame(byte, self.div))
            .collect();
        let nb_out = self.geom.rsp_bits() / 8;
        let before = self.decoder.bytes.len();
        // The response bytes, 10 bits each, plus slack for the commands to run.
        self.run(&line, (rsp_beats * nb_out * 10 + 20) * self.div + 200);
        let got = &self.decoder.bytes[before..];
        assert_eq!(got.len(), rsp_beats * nb_out, "response bytes");
        got.chunks(nb_out)
            .map(|c| decode_beat(c, self.geom.rsp_bits()))
            .collect()
    }
}

#[test]
fn board_top_runs_status_and_a_tile_on_the_real_2x2_accelerator() {
    let mut link = Link::new();
    let geom = link.geom;
    let status = link.exchange(&[Command::Status], 1);
    let s0 = Status::decode(&status[0], &geom);
    assert!(s0.cycles > 0, "the cycle counter runs: {s0:?}");
    assert_eq!(s0.flags, Some(0), "idle, no error");

    // C = A x B for A = [[1, 2], [3, -4]], B = [[5, 6], [-7, 1]], all exponents 0.
    let v = |lanes: [i32; 2]| DataVector {
        lanes: lanes.to_vec(),
        exp: 0,
    };
    let commands = [
        // LOAD_A vector k = column k of A.
        Command::LoadA {
            bank: 0,
            vectors: vec![v([1, 3]), v([2, -4])],
        },
        // LOAD_B vector k = row k of B.
        Command::LoadB {
            bank: 0,
            vectors: vec![v([5, 6]), v([-7, 1])],
        },
        Command::compute(0, 0, 0, 2),
        Command::Drain { c_bank: 0 },
    ];
    let rsp = link.exchange(&commands, 2);
    let c = decode_drain(&rsp, &geom).expect("two rows");
    assert_eq!(c, vec![vec![-9, 8], vec![43, 14]]);

    let s1 = Status::decode(&link.exchange(&[Command::Status], 1)[0], &geom);
    assert!(s1.cycles > s0.cycles);
    assert_eq!(s1.flags, Some(0));
    assert_eq!(link.decoder.frame_errors, 0);
    assert!(!link.uut.bridge.overrun.val());
}
