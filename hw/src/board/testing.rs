//! Helpers shared by the board-level simulation tests.

use rust_hdl::prelude::*;

/// One clock cycle: settle the new inputs, then a rising and a falling edge.
pub fn tick<T: Block>(uut: &mut T, clock: impl Fn(&mut T, bool)) {
    assert!(simulate(uut, 200), "settles before the edge");
    clock(uut, true);
    assert!(simulate(uut, 200), "settles after the rising edge");
    clock(uut, false);
    assert!(simulate(uut, 200), "settles after the falling edge");
}

/// The line levels of one 8N1 frame, `div` clock cycles per bit.
pub fn uart_frame(byte: u8, div: usize) -> Vec<bool> {
    let mut levels = vec![false];
    levels.extend((0..8).map(|i| byte >> i & 1 == 1));
    levels.push(true);
    levels
        .into_iter()
        .flat_map(|l| std::iter::repeat_n(l, div))
        .collect()
}

/// Decodes a sampled serial line (one sample per clock) the way a host UART would.
pub struct LineDecoder {
    div: usize,
    /// Cycles until the next sample, and the bits still to sample (0 = idle).
    wait: usize,
    left: usize,
    byte: u16,
    prev: bool,
    pub bytes: Vec<u8>,
    pub frame_errors: usize,
}

impl LineDecoder {
    pub fn new(div: usize) -> Self {
        LineDecoder {
            div,
            wait: 0,
            left: 0,
            byte: 0,
            prev: true,
            bytes: vec![],
            frame_errors: 0,
        }
    }

    pub fn sample(&mut self, level: bool) {
        if self.left == 0 {
            if self.prev && !level {
                self.left = 10;
                self.wait = self.div / 2;
                self.byte = 0;
            }
        } else if self.wait > 0 {
            self.wait -= 1;
        } else {
            self.wait = self.div - 1;
            self.left -= 1;
            match self.left {
                9 => {
                    if level {
                        self.left = 0;
                    }
                }
                0 => {
                    if level {
                        self.bytes.push(self.byte as u8);
                    } else {
                        self.frame_errors += 1;
                    }
                }
                _ => self.byte = self.byte >> 1 | u16::from(level) << 7,
            }
        }
        self.prev = level;
    }
}
