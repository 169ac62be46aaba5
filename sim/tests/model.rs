//! End-to-end tests of the model library flow on small hand-written designs.

mod common;

use common::{nonce, opts, src, Rng};
use shiftkit_sim::{build_library, BuildOptions, Model, PortDir, SimError, TraceFormat};
use std::time::Instant;

/// An 8-bit counter with synchronous reset and a 4-bit step.
const COUNTER: &str = "
module counter(input clk, input rst, input [3:0] step, output reg [7:0] count);
  always @(posedge clk) if (rst) count <= 8'd0; else count <= count + {4'd0, step};
endmodule
";

/// Combinational adders over the three storage classes Verilator uses above 32 bits.
const ADDER: &str = "
module wide_adder(input [99:0] a, input [99:0] b, output [100:0] sum,
                  input [39:0] x, input [39:0] y, output [40:0] xy,
                  input signed [5:0] s, output signed [11:0] s2);
  assign sum = {1'b0, a} + {1'b0, b};
  assign xy = {1'b0, x} + {1'b0, y};
  assign s2 = s * s;
endmodule
";

fn counter() -> Model {
    Model::build_sources(&[src("counter.v", COUNTER)], "counter", &opts()).expect("counter builds")
}

#[test]
fn counter_ports_and_ticks() {
    let mut m = counter();
    let table: Vec<_> = m
        .ports()
        .iter()
        .map(|p| (p.name.as_str(), p.width, p.dir))
        .collect();
    assert_eq!(
        table,
        [
            ("clk", 1, PortDir::Input),
            ("rst", 1, PortDir::Input),
            ("step", 4, PortDir::Input),
            ("count", 8, PortDir::Output),
        ]
    );
    let (clk, rst, step, count) = (
        m.port("clk").unwrap(),
        m.port("rst").unwrap(),
        m.port("step").unwrap(),
        m.port("count").unwrap(),
    );
    m.set_u64(rst, 1).unwrap();
    m.tick(clk).unwrap();
    assert_eq!(m.get_u64(count).unwrap(), 0);
    m.set_u64(rst, 0).unwrap();
    m.set_u64(step, 3).unwrap();
    for _ in 0..100 {
        m.tick(clk).unwrap();
    }
    assert_eq!(m.cycles(), 101);
    assert_eq!(m.get_u64(count).unwrap(), (3 * 100) % 256);
    assert_eq!(m.get(count).unwrap(), vec![(300 % 256) as u32]);
}

#[test]
fn wide_ports_round_trip() {
    let mut m = Model::build_sources(&[src("adder.v", ADDER)], "wide_adder", &opts()).unwrap();
    let [a, b, sum, x, y, xy, s, s2] =
        ["a", "b", "sum", "x", "y", "xy", "s", "s2"].map(|n| m.port(n).expect(n));
    assert_eq!(m.info(sum).unwrap().width, 101);
    assert_eq!(m.info(sum).unwrap().words(), 4);
    let mut rng = Rng(7);
    let mask100 = (1u128 << 100) - 1;
    for _ in 0..200 {
        let (va, vb) = (
            (u128::from(rng.next()) << 64 | u128::from(rng.next())) & mask100,
            (u128::from(rng.next()) << 64 | u128::from(rng.next())) & mask100,
        );
        m.set(a, &words(va)).unwrap();
        m.set(b, &words(vb)).unwrap();
        let (vx, vy) = (rng.next() >> 24, rng.next() >> 24);
        m.set_u64(x, vx).unwrap();
        m.set_u64(y, vy).unwrap();
        let vs = rng.range(-32, 31);
        m.set_i64(s, vs).unwrap();
        m.eval();
        assert_eq!(m.get(sum).unwrap(), words(va + vb));
        assert_eq!(m.get_u64(xy).unwrap(), vx + vy);
        assert_eq!(m.get_i64(s2).unwrap(), vs * vs);
    }
    // Bad values are errors, not truncations.
    assert!(matches!(
        m.set_u64(x, 1 << 40),
        Err(SimError::ValueTooWide { .. })
    ));
    assert!(matches!(
        m.set(a, &[0, 0, 0, 0x10]),
        Err(SimError::ValueTooWide { .. })
    ));
    assert!(matches!(
        m.set(a, &[0, 0, 0, 0, 1]),
        Err(SimError::ValueTooWide { .. })
    ));
    m.set(a, &[5, 0, 0, 0, 0])
        .expect("zero extra words are fine");
    assert!(matches!(
        m.set_i64(s, -33),
        Err(SimError::ValueTooWide { .. })
    ));
    assert!(matches!(
        m.set_u64(sum, 1),
        Err(SimError::NotAnInput { .. })
    ));
    assert!(matches!(m.get_u64(sum), Err(SimError::ValueTooWide { .. })));
    assert!(matches!(m.port("nope"), Err(SimError::NoSuchPort { .. })));
    assert!(m.tick(a).is_err(), "a 100-bit port is no clock");
}

fn words(v: u128) -> Vec<u32> {
    (0..4).map(|i| (v >> (32 * i)) as u32).collect()
}

#[test]
fn second_build_is_a_cache_hit() {
    let sources = [src("counter.v", &format!("{}{COUNTER}", nonce()))];
    let first = build_library(&sources, "counter", &opts()).unwrap();
    assert!(!first.cached);
    let t = Instant::now();
    let second = build_library(&sources, "counter", &opts()).unwrap();
    let lookup = t.elapsed();
    assert!(second.cached);
    assert_eq!(first.path, second.path);
    assert!(lookup.as_secs_f64() < 2.0, "cache lookup took {lookup:?}");
    eprintln!(
        "counter model: first build {:.2?}, cached lookup {:.2?}",
        first.elapsed, second.elapsed
    );
    let mut m = Model::load(&second.path).unwrap();
    let clk = m.port("clk").unwrap();
    m.tick(clk).unwrap();
    let _ = std::fs::remove_dir_all(first.path.parent().unwrap());
}

#[test]
fn concurrent_builds_of_one_design_agree() {
    let text = format!("{}{COUNTER}", nonce());
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let text = text.clone();
            std::thread::spawn(move || {
                build_library(&[src("counter.v", &text)], "counter", &opts())
            })
        })
        .collect();
    let libs: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("no panic").expect("builds"))
        .collect();
    assert_eq!(libs[0].path, libs[1].path);
    assert_eq!(
        libs.iter().filter(|l| l.cached).count(),
        1,
        "one build compiled, the other waited for it and loaded its library"
    );
    let mut m = Model::load(&libs[0].path).unwrap();
    let (clk, step, count) = (
        m.port("clk").unwrap(),
        m.port("step").unwrap(),
        m.port("count").unwrap(),
    );
    m.set_u64(step, 1).unwrap();
    m.tick(clk).unwrap();
    assert_eq!(m.get_u64(count).unwrap(), 1);
    let dir = libs[0].path.parent().unwrap();
    let leftovers = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(&libs[0].key))
        .count();
    assert_eq!(leftovers, 1, "only the published directory remains");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn traces_fst_and_vcd() {
    let dir = tempfile::tempdir().unwrap();
    for (fmt, file) in [(TraceFormat::Auto, "auto"), (TraceFormat::Vcd, "wave.vcd")] {
        let o = BuildOptions {
            trace: fmt,
            ..opts()
        };
        let mut m = Model::build_sources(&[src("counter.v", COUNTER)], "counter", &o).unwrap();
        let ext = match m.trace_format() {
            Some(TraceFormat::Fst) => "fst",
            Some(TraceFormat::Vcd) => "vcd",
            f => panic!("unexpected trace format {f:?}"),
        };
        let path = dir.path().join(format!("{file}.{ext}"));
        let (clk, step) = (m.port("clk").unwrap(), m.port("step").unwrap());
        m.trace(&path).unwrap();
        m.set_u64(step, 5).unwrap();
        for _ in 0..20 {
            m.tick(clk).unwrap();
        }
        m.trace_close();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            bytes.len() > 100,
            "{} has {} bytes",
            path.display(),
            bytes.len()
        );
        if ext == "vcd" {
            let text = String::from_utf8_lossy(&bytes);
            assert!(text.contains("$enddefinitions") && text.contains("count"));
        }
        // Re-opening a trace on the same instance works too.
        let again = dir.path().join(format!("again-{file}.{ext}"));
        m.trace(&again).unwrap();
        m.tick(clk).unwrap();
        drop(m);
        assert!(std::fs::metadata(&again).unwrap().len() > 0);
    }
    let o = BuildOptions {
        trace: TraceFormat::Off,
        ..opts()
    };
    let mut m = Model::build_sources(&[src("counter.v", COUNTER)], "counter", &o).unwrap();
    assert_eq!(m.trace_format(), None);
    assert!(matches!(
        m.trace(dir.path().join("x.vcd")),
        Err(SimError::Trace(_))
    ));
}

#[test]
fn trace_to_an_unwritable_path_is_an_error() {
    let mut m = counter();
    let r = m.trace("/nonexistent-dir/deeper/wave.fst");
    assert!(matches!(r, Err(SimError::Trace(_))), "{r:?}");
}

#[test]
fn bad_verilog_gives_verilators_first_error_and_the_log() {
    let bad = "module broken(input a, output b);\n  assign b = a +;\nendmodule\n";
    let err = Model::build_sources(&[src("broken.v", bad)], "broken", &opts()).unwrap_err();
    match &err {
        SimError::BuildFailed {
            first_error, log, ..
        } => {
            assert!(first_error.starts_with("%Error"), "{first_error}");
            assert!(first_error.contains("broken.v:2"), "{first_error}");
            assert!(log.is_file(), "{} is kept", log.display());
        }
        e => panic!("unexpected error {e}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("full log:"), "{msg}");
    // A top module that does not exist is an error too.
    let e = Model::build_sources(&[src("counter.v", COUNTER)], "nope", &opts()).unwrap_err();
    assert!(matches!(e, SimError::BuildFailed { .. }), "{e}");
    // So are sources that are not there.
    assert!(matches!(
        Model::build(&["/nonexistent/x.v"], "x", &opts()),
        Err(SimError::Io { .. })
    ));
    assert!(matches!(
        Model::build_sources(&[], "x", &opts()),
        Err(SimError::Sources(_))
    ));
    assert!(matches!(
        Model::load("/nonexistent/libx.so"),
        Err(SimError::Load { .. })
    ));
}

#[test]
fn missing_or_old_verilator_is_one_clear_error() {
    let none = BuildOptions {
        verilator: Some("/nonexistent/verilator".into()),
        ..opts()
    };
    let e = Model::build_sources(&[src("counter.v", COUNTER)], "counter", &none).unwrap_err();
    assert!(
        matches!(e, SimError::VerilatorMissing { found: None }),
        "{e}"
    );
    assert!(e
        .to_string()
        .starts_with("verilator 5.x not found: install it with `apt-get install verilator` (or run scripts/install-deps.sh)"));
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("verilator");
    std::fs::write(
        &old,
        "#!/bin/sh\necho 'Verilator 4.038 2020-07-11 rev v4.036'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = BuildOptions {
        verilator: Some(old),
        ..opts()
    };
    let e = Model::build_sources(&[src("counter.v", COUNTER)], "counter", &o).unwrap_err();
    assert!(e.to_string().contains("4.038"), "{e}");
}

#[test]
fn two_designs_live_in_one_process() {
    let mut c1 = counter();
    let mut c2 = counter();
    let mut add = Model::build_sources(&[src("adder.v", ADDER)], "wide_adder", &opts()).unwrap();
    let (clk, step, count) = (
        c1.port("clk").unwrap(),
        c1.port("step").unwrap(),
        c1.port("count").unwrap(),
    );
    let (x, y, xy) = (
        add.port("x").unwrap(),
        add.port("y").unwrap(),
        add.port("xy").unwrap(),
    );
    c1.set_u64(step, 1).unwrap();
    c2.set_u64(step, 2).unwrap();
    for i in 0..10u64 {
        c1.tick(clk).unwrap();
        c2.tick(clk).unwrap();
        add.set_u64(x, i).unwrap();
        add.set_u64(y, 1000).unwrap();
        add.eval();
        assert_eq!(add.get_u64(xy).unwrap(), 1000 + i);
    }
    assert_eq!(c1.get_u64(count).unwrap(), 10);
    assert_eq!(
        c2.get_u64(count).unwrap(),
        20,
        "instances of one library are independent"
    );
    // A model can move to another thread.
    let h = std::thread::spawn(move || {
        c2.tick(clk).unwrap();
        c2.get_u64(count).unwrap()
    });
    assert_eq!(h.join().unwrap(), 22);
}

#[test]
fn builds_from_a_directory_with_an_include() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("defs.vh"), "`define STEP 4'd7\n").unwrap();
    std::fs::write(
        dir.path().join("inc.v"),
        "`include \"defs.vh\"\nmodule inc(input clk, output reg [7:0] q);\n  always @(posedge clk) q <= q + {4'd0, `STEP};\nendmodule\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let mut m = Model::build(&[dir.path()], "inc", &opts()).unwrap();
    let (clk, q) = (m.port("clk").unwrap(), m.port("q").unwrap());
    m.tick(clk).unwrap();
    m.tick(clk).unwrap();
    assert_eq!(m.get_u64(q).unwrap(), 14);
}

#[test]
fn odd_port_names_ranges_and_unsupported_ports() {
    let odd = "module odd(input \\a$b , input delete, input [7:4] hi, output [32:0] q);\n  assign q = {24'd0, hi, 3'd0, \\a$b } + {32'd0, delete};\nendmodule\n";
    let mut m = Model::build_sources(&[src("odd.v", odd)], "odd", &opts()).unwrap();
    let names: Vec<_> = m
        .ports()
        .iter()
        .map(|p| (p.name.as_str(), p.width))
        .collect();
    assert_eq!(names, [("a$b", 1), ("delete", 1), ("hi", 4), ("q", 33)]);
    let (ab, del, hi, q) = (
        m.port("a$b").unwrap(),
        m.port("delete").unwrap(),
        m.port("hi").unwrap(),
        m.port("q").unwrap(),
    );
    m.set_u64(ab, 1).unwrap();
    m.set_u64(del, 1).unwrap();
    m.set_u64(hi, 0xf).unwrap();
    m.eval();
    assert_eq!(m.get_u64(q).unwrap(), (0xf << 4) + 1 + 1);
    let arr = "module arr(input [7:0] mem [0:1], output [7:0] y);\n  assign y = mem[0] + mem[1];\nendmodule\n";
    let e = Model::build_sources(&[src("arr.v", arr)], "arr", &opts()).unwrap_err();
    assert!(
        matches!(&e, SimError::Ports { detail, .. } if detail.contains("unpacked array")),
        "{e}"
    );
}
