//! The board-level blocks' Verilog against the real tools: `verilator --lint-only -Wall` (only
//! the waivers in `tools::LINT_WAIVERS`) and yosys `hierarchy -check; proc`.

use shiftkit_hw::board::bridge::{EchoAccel, HostBridge};
use shiftkit_hw::board::top::{EchoBoardTop, TopParams};
use shiftkit_hw::board::uart::{UartRx, UartTx};
use shiftkit_hw::board::verilog::emit;
use shiftkit_hw::tools::{verilator_lint, yosys_check};

fn check(top: &str, verilog: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(format!("{top}.v"));
    std::fs::write(&file, verilog).expect("write");
    verilator_lint(&file, top).unwrap_or_else(|e| panic!("{top}: {e}"));
    yosys_check(&file, top).unwrap_or_else(|e| panic!("{top}: {e}"));
}

#[test]
fn board_uart_and_bridge_lint_clean() {
    check("uart_tx", &emit(UartTx::new(104), "uart_tx").expect("emit"));
    check("uart_rx", &emit(UartRx::new(104), "uart_rx").expect("emit"));
    for (nb_in, nb_out) in [(4, 8), (8, 4), (12, 5), (1, 1)] {
        let top = format!("bridge_{nb_in}_{nb_out}");
        check(
            &top,
            &emit(HostBridge::new(nb_in, nb_out, 1 << 20), &top).expect("emit"),
        );
        let top = format!("echo_{nb_in}_{nb_out}");
        check(
            &top,
            &emit(EchoAccel::new(nb_in, nb_out), &top).expect("emit"),
        );
    }
}

fn params(has_button: bool) -> TopParams {
    TopParams {
        uart_divider: 104,
        has_button,
        button_active_low: true,
        leds_active_low: [true, true, false],
        por_cycles: 12_000,
        resync_cycles: 1_200_000,
        heartbeat_half_period: 6_000_000,
        busy_stretch_cycles: 600_000,
    }
}

#[test]
fn board_top_with_echo_lints_clean() {
    for (has_button, w_in, w_out) in [(true, 32, 64), (false, 96, 32)] {
        let top = EchoBoardTop::with_echo(&params(has_button), w_in, w_out);
        let v = emit(top, "board").expect("emit");
        check("board", &v);
    }
}

/// Every board's top around a generated 2x2 sq4 accelerator top (one file for the tools).
#[test]
fn board_tops_around_the_real_accelerator_lint_clean() {
    let accel = shiftkit_hw::board::accel_for("sq4", 2, 2).expect("accel");
    for board in shiftkit_hw::board::Board::ALL {
        let d = shiftkit_hw::board::generate_board(board, &accel, 115_200).expect("generates");
        assert_eq!(d.files.len(), 2);
        let all: String = d.files.iter().map(|(_, t)| t.as_str()).collect();
        check(&d.top, &all);
    }
}

#[test]
fn board_tops_with_echo_lint_clean_for_every_board() {
    let accel = shiftkit_hw::board::accel_for("echo", 3, 5).expect("accel");
    for board in shiftkit_hw::board::Board::ALL {
        let d = shiftkit_hw::board::generate_board(board, &accel, 115_200).expect("generates");
        check(&d.top, &d.files[0].1);
    }
}
