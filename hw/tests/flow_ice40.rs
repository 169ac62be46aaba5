//! The iCE40 flow end to end (yosys, nextpnr-ice40 and icepack are required): a real
//! iCEBreaker bitstream of a small board top, and a place-and-route failure reported in one line.

use shiftkit_hw::board::{accel_for, Board, BoardError, DEFAULT_BAUD};
use shiftkit_hw::flow::{build_board, FlowStatus, TIMING_JSON};

#[test]
fn board_flow_builds_an_icebreaker_bitstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accel = accel_for("echo", 2, 2).expect("accel");
    let (design, report) =
        build_board(Board::Icebreaker, &accel, DEFAULT_BAUD, dir.path()).expect("builds");
    assert_eq!(report.status, FlowStatus::Built);
    let bin = report.bitstream.clone().expect("a bitstream");
    assert!(bin.is_file() && std::fs::metadata(&bin).unwrap().len() > 1000);
    assert_eq!(bin.extension().unwrap(), "bin");
    let timing: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(TIMING_JSON)).unwrap())
            .expect("timing.json parses");
    let fmax = timing["fmax_mhz"].as_f64().expect("fmax");
    assert!(fmax > 12.0, "meets the 12 MHz board clock: {fmax}");
    let lc = &timing["utilization"]["ICESTORM_LC"];
    assert!(lc["used"].as_u64().unwrap() > 50 && lc["available"].as_u64() == Some(5280));
    assert!(dir.path().join("build.sh").is_file());
    assert!(dir.path().join("board.json").is_file());
    assert_eq!(design.link.cmd_beat_bytes, 4);
    eprintln!("{}", report.summary());
}

#[test]
fn board_flow_reports_a_place_and_route_failure_in_one_line() {
    // A top with a port that the iCEBreaker's PCF does not pin.
    let dir = tempfile::tempdir().expect("tempdir");
    let v = dir.path().join("t.v");
    std::fs::write(
        &v,
        "module t(input wire clk, input wire stray, output reg uart_tx);\n\
         always @(posedge clk) uart_tx <= stray;\nendmodule\n",
    )
    .unwrap();
    let e = shiftkit_hw::flow::bitstream(Board::Icebreaker, &[v], "t", dir.path())
        .expect_err("unpinned port");
    let msg = e.to_string();
    assert!(matches!(e, BoardError::ToolFailed { .. }), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(
        msg.contains("place and route (nextpnr-ice40) failed: ERROR:"),
        "{msg}"
    );
    assert!(msg.contains("stray"), "{msg}");
    eprintln!("{msg}");
}

/// The real 2x2 sq4 accelerator top on the iCEBreaker (the size the UP5K holds comfortably).
#[test]
fn board_flow_builds_the_real_2x2_accelerator_for_the_icebreaker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accel = accel_for("sq4", 2, 2).expect("accel");
    let (design, report) =
        build_board(Board::Icebreaker, &accel, DEFAULT_BAUD, dir.path()).expect("builds");
    assert_eq!(design.files.len(), 2, "board top + accelerator top");
    assert!(report.bitstream.as_ref().is_some_and(|b| b.is_file()));
    assert!(report.fmax_mhz.is_some_and(|f| f > 12.0));
    eprintln!("{}", report.summary());
}

/// The HX8K breakout's pin file against the real device (echo stand-in: small and quick).
#[test]
fn board_flow_builds_an_hx8k_breakout_bitstream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let accel = accel_for("echo", 2, 2).expect("accel");
    let (_, report) =
        build_board(Board::Hx8kBreakout, &accel, DEFAULT_BAUD, dir.path()).expect("builds");
    assert!(report.bitstream.as_ref().is_some_and(|b| b.is_file()));
    assert!(report.fmax_mhz.is_some_and(|f| f > 12.0));
    assert_eq!(report.utilization["ICESTORM_LC"].available, 7680);
    eprintln!("{}", report.summary());
}
