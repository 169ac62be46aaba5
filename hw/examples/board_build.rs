//! `cargo run -p shiftkit-hw --example board_build -- BOARD DESIGN ROWS COLS OUTDIR`: generate
//! the board design (UART shell + accelerator) and run the FPGA flow on it, as
//! `shiftkit bitstream` does; prints the one-line summary (Fmax, utilization).
use shiftkit_hw::board::{accel_for_board, Board, DEFAULT_BAUD};
use shiftkit_hw::flow::build_board;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 5 {
        eprintln!("usage: board_build BOARD DESIGN ROWS COLS OUTDIR");
        std::process::exit(2);
    }
    let run = || -> Result<String, String> {
        let board: Board = args[0].parse().map_err(|e| format!("{e}"))?;
        let num = |s: &str| s.parse::<usize>().map_err(|_| format!("not a size: {s}"));
        let accel = accel_for_board(board, &args[1], num(&args[2])?, num(&args[3])?)
            .map_err(|e| e.to_string())?;
        let (_, report) = build_board(board, &accel, DEFAULT_BAUD, std::path::Path::new(&args[4]))
            .map_err(|e| e.to_string())?;
        Ok(report.summary())
    };
    match run() {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    }
}
