//! `cargo run -p shiftkit-hw --example gen -- ROWS COLS BITS [WINDOW ACC_BITS] OUTDIR`: write a
//! generated array (Verilog + manifest.json) into OUTDIR.
use shiftkit_hw::{generate, write_design, ArrayConfig, Datapath};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: gen ROWS COLS BITS [WINDOW ACC_BITS] OUTDIR";
    let num = |i: usize| -> u64 {
        args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            eprintln!("{usage}");
            std::process::exit(2)
        })
    };
    let (rows, cols, bits) = (num(0) as usize, num(1) as usize, num(2) as u32);
    let result = ArrayConfig::new(rows, cols, Datapath::Sq { bits }).and_then(|c| {
        if args.len() >= 6 {
            c.with_window(num(3) as u32)?.with_acc_bits(num(4) as u32)
        } else {
            Ok(c)
        }
    });
    let config = match result {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2)
        }
    };
    let out = args.last().cloned().unwrap_or_else(|| ".".into());
    match generate(&config).and_then(|d| write_design(&d, std::path::Path::new(&out))) {
        Ok(m) => println!("{} -> {out}/{}", m.top, m.files[0]),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1)
        }
    }
}
