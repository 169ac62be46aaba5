//! The flows whose tools are optional (Vivado, the ECP5 tools) and the missing-tool error of a
//! required one. Separate binary: it changes tool-location variables.

use shiftkit_hw::board::{accel_for, generate_board, write_board, Board, DEFAULT_BAUD};
use shiftkit_hw::flow::{bitstream, FlowStatus};

#[test]
fn board_flow_writes_vivado_and_ecp5_scripts_without_the_tools() {
    for board in [Board::ArtyA7_35, Board::Ulx3s] {
        let dir = tempfile::tempdir().expect("tempdir");
        let design = generate_board(board, &accel_for("echo", 2, 2).unwrap(), DEFAULT_BAUD)
            .expect("generates");
        let files = write_board(&design, dir.path()).expect("writes");
        let report = bitstream(board, &files, &design.top, dir.path()).expect("a report");
        let script = std::fs::read_to_string(&report.script).expect("script written");
        assert!(dir.path().join(board.info().constraints_file).is_file());
        match board {
            Board::ArtyA7_35 => {
                for cmd in [
                    "read_verilog",
                    "read_xdc",
                    "synth_design -top shiftkit_board_arty_a7_35 -part xc7a35ticsg324-1L",
                    "opt_design",
                    "place_design",
                    "route_design",
                    "report_timing_summary",
                    "write_bitstream",
                ] {
                    assert!(script.contains(cmd), "{cmd}:\n{script}");
                }
            }
            _ => {
                for cmd in [
                    "synth_ecp5 -top shiftkit_board_ulx3s",
                    "nextpnr-ecp5 --85k --package CABGA381",
                    "--lpf",
                    "ecppack",
                ] {
                    assert!(script.contains(cmd), "{cmd}:\n{script}");
                }
            }
        }
        if let FlowStatus::NotRun { missing } = &report.status {
            assert!(!missing.is_empty());
            let how = report.how_to_run.as_deref().unwrap();
            assert!(how.contains(&report.script.display().to_string()) || how.contains("vivado"));
            eprintln!("{}", report.summary());
        }
    }
}

#[test]
fn board_flow_names_a_missing_required_tool() {
    std::env::set_var("SHIFTKIT_ICEPACK", "/nonexistent/icepack");
    let dir = tempfile::tempdir().expect("tempdir");
    let v = dir.path().join("t.v");
    std::fs::write(&v, "module t(input wire clk); endmodule\n").unwrap();
    let msg = bitstream(Board::Icebreaker, &[v], "t", dir.path())
        .expect_err("icepack missing")
        .to_string();
    assert!(
        msg.contains("icepack was not found") && msg.contains("apt-get install fpga-icestorm"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}
