//! The supported boards: FPGA, clock, the pins that the board top uses, and where each board's
//! constraint file is (`constraints/` at the repository root, embedded here at compile time).

use super::top::TopParams;
use super::uart::baud_divider;
use super::BoardError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Board {
    /// 1BitSquared iCEBreaker: iCE40UP5K-SG48, 12 MHz.
    Icebreaker,
    /// Lattice iCE40-HX8K Breakout Board: iCE40HX8K-CT256, 12 MHz.
    Hx8kBreakout,
    /// Digilent Arty A7-35: XC7A35T-1CSG324L, 100 MHz.
    ArtyA7_35,
    /// Radiona ULX3S: LFE5U-85F-6BG381C, 25 MHz.
    Ulx3s,
}

/// The FPGA and how the flow addresses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Fpga {
    /// `nextpnr-ice40 --<device> --package <package>`.
    Ice40 {
        device: &'static str,
        package: &'static str,
    },
    /// Vivado part name.
    Xc7 { part: &'static str },
    /// `nextpnr-ecp5 --<device> --package <package> --speed <speed>`.
    Ecp5 {
        device: &'static str,
        package: &'static str,
        speed: u32,
    },
}

/// Everything the generator and the flow need to know about a board.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BoardInfo {
    /// The name used on the command line and in file names.
    pub name: &'static str,
    pub description: &'static str,
    pub fpga: Fpga,
    pub clock_hz: u64,
    /// Whether there is a button wired as `reset_button_0`, and its polarity.
    pub has_button: bool,
    pub button_active_low: bool,
    /// LED polarities: heartbeat, busy, error.
    pub leds_active_low: [bool; 3],
    /// File name under `constraints/`.
    pub constraints_file: &'static str,
    /// Its contents.
    #[serde(skip)]
    pub constraints: &'static str,
}

const ICEBREAKER: BoardInfo = BoardInfo {
    name: "icebreaker",
    description: "iCEBreaker (iCE40UP5K-SG48, 12 MHz)",
    fpga: Fpga::Ice40 {
        device: "up5k",
        package: "sg48",
    },
    clock_hz: 12_000_000,
    has_button: true,
    button_active_low: true,
    // LEDG_N and LEDR_N on the main board are active low; LED1 on the PMOD2 snap-off is active
    // high.
    leds_active_low: [true, false, true],
    constraints_file: "icebreaker.pcf",
    constraints: include_str!("../../../constraints/icebreaker.pcf"),
};

const HX8K_BREAKOUT: BoardInfo = BoardInfo {
    name: "hx8k-breakout",
    description: "iCE40-HX8K Breakout Board (iCE40HX8K-CT256, 12 MHz)",
    fpga: Fpga::Ice40 {
        device: "hx8k",
        package: "ct256",
    },
    clock_hz: 12_000_000,
    // No user button on this board: power-on reset only.
    has_button: false,
    button_active_low: false,
    leds_active_low: [false; 3],
    constraints_file: "hx8k-breakout.pcf",
    constraints: include_str!("../../../constraints/hx8k-breakout.pcf"),
};

const ARTY_A7_35: BoardInfo = BoardInfo {
    name: "arty-a7-35",
    description: "Arty A7-35 (XC7A35T-1CSG324L, 100 MHz)",
    fpga: Fpga::Xc7 {
        part: "xc7a35ticsg324-1L",
    },
    clock_hz: 100_000_000,
    has_button: true,
    button_active_low: true,
    leds_active_low: [false; 3],
    constraints_file: "arty-a7-35.xdc",
    constraints: include_str!("../../../constraints/arty-a7-35.xdc"),
};

const ULX3S: BoardInfo = BoardInfo {
    name: "ulx3s",
    description: "ULX3S (LFE5U-85F-6BG381C, 25 MHz)",
    fpga: Fpga::Ecp5 {
        device: "85k",
        package: "CABGA381",
        speed: 6,
    },
    clock_hz: 25_000_000,
    has_button: true,
    button_active_low: true,
    leds_active_low: [false; 3],
    constraints_file: "ulx3s.lpf",
    constraints: include_str!("../../../constraints/ulx3s.lpf"),
};

/// Default UART rate of the host link.
pub const DEFAULT_BAUD: u64 = 115_200;

impl Board {
    pub const ALL: [Board; 4] = [
        Board::Icebreaker,
        Board::Hx8kBreakout,
        Board::ArtyA7_35,
        Board::Ulx3s,
    ];

    pub fn info(&self) -> &'static BoardInfo {
        match self {
            Board::Icebreaker => &ICEBREAKER,
            Board::Hx8kBreakout => &HX8K_BREAKOUT,
            Board::ArtyA7_35 => &ARTY_A7_35,
            Board::Ulx3s => &ULX3S,
        }
    }

    pub fn name(&self) -> &'static str {
        self.info().name
    }

    /// The board top's module name, e.g. `shiftkit_board_icebreaker`.
    pub fn top_name(&self) -> String {
        format!("shiftkit_board_{}", self.name().replace('-', "_"))
    }

    /// The board top's parameters for a host link at `baud`: 1 ms power-on reset, partial
    /// beats dropped after 100 ms of silence, 1 Hz heartbeat, busy LED stretched to 50 ms.
    pub fn top_params(&self, baud: u64) -> Result<TopParams, BoardError> {
        let info = self.info();
        let hz = info.clock_hz;
        Ok(TopParams {
            uart_divider: baud_divider(hz, baud)?,
            has_button: info.has_button,
            button_active_low: info.button_active_low,
            leds_active_low: info.leds_active_low,
            por_cycles: hz / 1_000,
            resync_cycles: hz / 10,
            heartbeat_half_period: hz / 2,
            busy_stretch_cycles: hz / 20,
        })
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Board {
    type Err = BoardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Board::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| BoardError::UnknownBoard(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_names_round_trip_and_params_are_sane() {
        for b in Board::ALL {
            assert_eq!(b.name().parse::<Board>().unwrap(), b);
            let p = b.top_params(DEFAULT_BAUD).unwrap();
            assert!(p.por_cycles > 0 && p.heartbeat_half_period > p.busy_stretch_cycles);
            assert!(!b.info().constraints.is_empty());
        }
        let e = "de0-nano".parse::<Board>().unwrap_err().to_string();
        assert!(
            e.contains("icebreaker, hx8k-breakout, arty-a7-35, ulx3s"),
            "{e}"
        );
        assert_eq!(Board::ArtyA7_35.top_name(), "shiftkit_board_arty_a7_35");
    }
}
