//! Each board's constraint file (read from `constraints/` on disk) pins exactly the ports of
//! that board's top: every top-level port is constrained, and nothing constrained is missing
//! from the top. Checked for the echo stand-in and the real accelerator top (same ports).

use shiftkit_hw::board::constraints::pinned_ports;
use shiftkit_hw::board::{accel_for, generate_board, Board, DEFAULT_BAUD};
use std::collections::BTreeSet;
use std::path::Path;

#[test]
fn board_constraint_files_pin_exactly_the_board_top_ports() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../constraints");
    for design in ["echo", "sq4"] {
        let accel = accel_for(design, 2, 2).expect("accel");
        for board in Board::ALL {
            let info = board.info();
            let text = std::fs::read_to_string(dir.join(info.constraints_file))
                .unwrap_or_else(|e| panic!("{}: {e}", info.constraints_file));
            assert_eq!(
                text, info.constraints,
                "{board}: the embedded copy is the file"
            );
            let pinned = pinned_ports(info.constraints_file, &text);
            let d = generate_board(board, &accel, DEFAULT_BAUD).expect("generates");
            let ports: BTreeSet<&str> = d.ports.iter().map(|p| p.name.as_str()).collect();
            let pins: BTreeSet<&str> = pinned.keys().map(String::as_str).collect();
            assert_eq!(ports, pins, "{board} / {design}: ports vs pinned");
            assert!(
                d.ports.iter().all(|p| p.width == 1),
                "{board}: scalar ports"
            );
            assert_eq!(
                ports.contains("reset_button_0"),
                info.has_button,
                "{board}: reset button"
            );
            // No two ports on one pin.
            let sites: BTreeSet<&str> = pinned.values().map(String::as_str).collect();
            assert_eq!(sites.len(), pinned.len(), "{board}: a pin used twice");
        }
    }
}

#[test]
fn board_constraint_files_constrain_the_clock_period() {
    let period = |b: Board| {
        let text = b.info().constraints;
        match b {
            Board::Icebreaker | Board::Hx8kBreakout => text.contains("set_frequency clk 12"),
            Board::ArtyA7_35 => text.contains("create_clock -add -name sys_clk_pin -period 10.00"),
            Board::Ulx3s => text.contains("FREQUENCY PORT \"clk\" 25 MHZ"),
        }
    };
    for b in Board::ALL {
        assert!(period(b), "{b}");
    }
}
