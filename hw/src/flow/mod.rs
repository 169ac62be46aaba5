//! FPGA build flows: Verilog files + a board's constraints -> bitstream, timing and utilization.
//!
//! [`bitstream`] picks the flow from the board's FPGA family:
//!
//! - **iCE40** (run here; `yosys`, `nextpnr-ice40`, `icepack` are required):
//!   `yosys -p "synth_ice40 -top TOP -json TOP.json" FILES` ->
//!   `nextpnr-ice40 --up5k --package sg48 --pcf BOARD.pcf --json TOP.json --asc TOP.asc --freq F`
//!   -> `icepack TOP.asc TOP.bin`. nextpnr fails the build if the board clock is not met.
//! - **ECP5** (run only when `yosys`, `nextpnr-ecp5` and `ecppack` are all installed):
//!   `synth_ecp5` -> `nextpnr-ecp5 --85k --package CABGA381 --lpf BOARD.lpf --textcfg` ->
//!   `ecppack`.
//! - **Xilinx 7-series** (run only when `vivado` is on PATH): a non-project Tcl script
//!   (`read_verilog`, `read_xdc`, `synth_design`, `opt_design`, `place_design`, `route_design`,
//!   `report_timing_summary`, `report_utilization`, `write_bitstream`).
//!
//! Every flow writes its commands into `out_dir` (`build.sh` or `build.tcl`) with the
//! constraint file, so a build can be repeated by hand; a flow whose tools are missing returns a
//! report that says how to run it ([`FlowStatus::NotRun`]) instead of failing. A built design
//! gets `timing.json` (achieved Fmax per clock from nextpnr's log or Vivado's timing summary,
//! the target, and the utilization). Tools run single-threaded. Errors are one line: a missing
//! tool with the package to install, or the failing step with its first error line and the
//! path of the full log.

use crate::board::{Board, BoardError, Fpga};
use crate::tools::{Tool, YOSYS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub mod parse;

pub const NEXTPNR_ICE40: Tool = Tool {
    name: "nextpnr-ice40",
    env: "SHIFTKIT_NEXTPNR_ICE40",
    package: "nextpnr-ice40",
};
pub const ICEPACK: Tool = Tool {
    name: "icepack",
    env: "SHIFTKIT_ICEPACK",
    package: "fpga-icestorm",
};
pub const NEXTPNR_ECP5: Tool = Tool {
    name: "nextpnr-ecp5",
    env: "SHIFTKIT_NEXTPNR_ECP5",
    package: "nextpnr-ecp5",
};
pub const ECPPACK: Tool = Tool {
    name: "ecppack",
    env: "SHIFTKIT_ECPPACK",
    package: "fpga-trellis",
};
pub const VIVADO: Tool = Tool {
    name: "vivado",
    env: "SHIFTKIT_VIVADO",
    package: "(none: AMD Vivado ML Standard, free for the XC7A35T)",
};

pub const TIMING_JSON: &str = "timing.json";

/// Whether the flow ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowStatus {
    Built,
    /// The tools are not installed here; `how_to_run` in the report says what to do.
    NotRun {
        missing: Vec<String>,
    },
}

/// One clock's achieved frequency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClockTiming {
    pub clock: String,
    pub fmax_mhz: f64,
    pub target_mhz: f64,
}

/// Used / available of one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utilization {
    pub used: u64,
    pub available: u64,
}

/// What a build produced (also written as `timing.json` when the design was built).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BitstreamReport {
    pub board: Board,
    pub device: String,
    pub top: String,
    pub status: FlowStatus,
    /// The bitstream (`TOP.bin` for iCE40, `TOP.bit` otherwise), when built.
    pub bitstream: Option<PathBuf>,
    /// The board clock.
    pub target_mhz: f64,
    /// The slowest clock's achieved Fmax, when built.
    pub fmax_mhz: Option<f64>,
    pub clocks: Vec<ClockTiming>,
    /// By the tool's resource names (`ICESTORM_LC`, `Slice LUTs`, ...).
    pub utilization: BTreeMap<String, Utilization>,
    /// The script with the flow's commands (`build.sh` / `build.tcl`) and the logs.
    pub script: PathBuf,
    pub logs: Vec<PathBuf>,
    /// For a flow that did not run: the commands to run where the tools are.
    pub how_to_run: Option<String>,
}

impl BitstreamReport {
    /// One line: what was built and how fast, or why it was not.
    pub fn summary(&self) -> String {
        match (&self.status, self.fmax_mhz) {
            (FlowStatus::Built, Some(f)) => format!(
                "{}: {} built for {} ({}), Fmax {f:.1} MHz (target {:.1} MHz){}",
                self.board,
                self.bitstream
                    .as_ref()
                    .map_or("nothing".into(), |p| p.display().to_string()),
                self.device,
                self.top,
                self.target_mhz,
                self.utilization
                    .iter()
                    .filter(|(_, u)| u.used > 0)
                    .map(|(k, u)| format!(", {k} {}/{}", u.used, u.available))
                    .collect::<String>(),
            ),
            (FlowStatus::Built, None) => format!("{}: built, no timing found", self.board),
            (FlowStatus::NotRun { missing }, _) => format!(
                "{}: not built here ({} not installed); {}",
                self.board,
                missing.join(", "),
                self.how_to_run.as_deref().unwrap_or("")
            ),
        }
    }
}

/// Build `verilog_files` (top module `top`) for `board` in `out_dir` (created if missing).
pub fn bitstream(
    board: Board,
    verilog_files: &[PathBuf],
    top: &str,
    out_dir: &Path,
) -> Result<BitstreamReport, BoardError> {
    if verilog_files.is_empty() {
        return Err(BoardError::Check {
            what: "bitstream".into(),
            detail: "no Verilog files given".into(),
        });
    }
    std::fs::create_dir_all(out_dir).map_err(BoardError::io("cannot create directory", out_dir))?;
    let out_dir = out_dir
        .canonicalize()
        .map_err(BoardError::io("cannot resolve", out_dir))?;
    let files: Vec<PathBuf> = verilog_files
        .iter()
        .map(|f| f.canonicalize().map_err(BoardError::io("cannot read", f)))
        .collect::<Result<_, _>>()?;
    let info = board.info();
    let constraints = out_dir.join(info.constraints_file);
    std::fs::write(&constraints, info.constraints)
        .map_err(BoardError::io("cannot write", &constraints))?;
    let job = Job {
        board,
        top: top.to_string(),
        files,
        out_dir,
        constraints,
        target_mhz: info.clock_hz as f64 / 1e6,
    };
    match info.fpga {
        Fpga::Ice40 { device, package } => job.nextpnr_flow(Nextpnr::Ice40 { device, package }),
        Fpga::Ecp5 {
            device,
            package,
            speed,
        } => job.nextpnr_flow(Nextpnr::Ecp5 {
            device,
            package,
            speed,
        }),
        Fpga::Xc7 { part } => job.vivado_flow(part),
    }
}

enum Nextpnr {
    Ice40 {
        device: &'static str,
        package: &'static str,
    },
    Ecp5 {
        device: &'static str,
        package: &'static str,
        speed: u32,
    },
}

struct Job {
    board: Board,
    top: String,
    files: Vec<PathBuf>,
    out_dir: PathBuf,
    constraints: PathBuf,
    target_mhz: f64,
}

/// One step of a flow: a program, its arguments, and the log it writes.
struct Step {
    name: String,
    tool: Tool,
    args: Vec<String>,
    log: PathBuf,
}

impl Step {
    /// The command as a shell line (for `build.sh`).
    fn shell(&self) -> String {
        std::iter::once(self.tool.name.to_string())
            .chain(self.args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Run in `dir`, output into the log; an error with the first error line on failure.
    fn run(&self, dir: &Path) -> Result<String, BoardError> {
        let bin = self.tool.locate()?;
        let out = Command::new(&bin)
            .args(&self.args)
            .current_dir(dir)
            .output()
            .map_err(BoardError::io("cannot run", &bin))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Keep a log the tool wrote itself (`-l`); otherwise write the captured output.
        if !self.args.iter().any(|a| Path::new(a) == self.log) {
            std::fs::write(&self.log, &text).map_err(BoardError::io("cannot write", &self.log))?;
        }
        if out.status.success() {
            let log = std::fs::read_to_string(&self.log).unwrap_or(text);
            return Ok(log);
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default() + &text;
        Err(BoardError::ToolFailed {
            step: self.name.clone(),
            first_error: parse::first_error(&log).unwrap_or_else(|| format!("exit {}", out.status)),
            log: self.log.clone(),
        })
    }
}

impl Job {
    fn path(&self, name: &str) -> PathBuf {
        self.out_dir.join(name)
    }

    fn file_args(&self) -> Vec<String> {
        self.files.iter().map(|f| f.display().to_string()).collect()
    }

    fn nextpnr_flow(&self, arch: Nextpnr) -> Result<BitstreamReport, BoardError> {
        let top = &self.top;
        let json = self.path(&format!("{top}.json"));
        let freq = format!("{}", self.target_mhz);
        let (synth, pnr_tool, mut pnr_args, pack_tool, pack_args, device, bitstream) = match arch {
            Nextpnr::Ice40 { device, package } => {
                let asc = self.path(&format!("{top}.asc"));
                let bin = self.path(&format!("{top}.bin"));
                (
                    "synth_ice40",
                    NEXTPNR_ICE40,
                    vec![
                        format!("--{device}"),
                        "--package".into(),
                        package.into(),
                        "--pcf".into(),
                        self.constraints.display().to_string(),
                        "--asc".into(),
                        asc.display().to_string(),
                    ],
                    ICEPACK,
                    vec![asc.display().to_string(), bin.display().to_string()],
                    format!("iCE40{}-{}", device.to_uppercase(), package.to_uppercase()),
                    bin,
                )
            }
            Nextpnr::Ecp5 {
                device,
                package,
                speed,
            } => {
                let cfg = self.path(&format!("{top}.config"));
                let bit = self.path(&format!("{top}.bit"));
                (
                    "synth_ecp5",
                    NEXTPNR_ECP5,
                    vec![
                        format!("--{device}"),
                        "--package".into(),
                        package.into(),
                        "--speed".into(),
                        speed.to_string(),
                        "--lpf".into(),
                        self.constraints.display().to_string(),
                        "--textcfg".into(),
                        cfg.display().to_string(),
                    ],
                    ECPPACK,
                    vec![
                        "--compress".into(),
                        cfg.display().to_string(),
                        bit.display().to_string(),
                    ],
                    format!("LFE5U-{}-{speed}{package}", device.to_uppercase()),
                    bit,
                )
            }
        };
        pnr_args.extend([
            "--json".into(),
            json.display().to_string(),
            "--freq".into(),
            freq,
            "--seed".into(),
            "1".into(),
            "--threads".into(),
            "1".into(),
            "--log".into(),
            self.path("nextpnr.log").display().to_string(),
        ]);
        let mut yosys_args = vec![
            "-q".into(),
            "-l".into(),
            self.path("yosys.log").display().to_string(),
            "-p".into(),
            format!("{synth} -top {top} -json {}", json.display()),
        ];
        yosys_args.extend(self.file_args());
        let steps = [
            Step {
                name: "synthesis (yosys)".into(),
                tool: YOSYS,
                args: yosys_args,
                log: self.path("yosys.log"),
            },
            Step {
                name: format!("place and route ({})", pnr_tool.name),
                tool: pnr_tool,
                args: pnr_args,
                log: self.path("nextpnr.log"),
            },
            Step {
                name: format!("bitstream packing ({})", pack_tool.name),
                tool: pack_tool,
                args: pack_args,
                log: self.path(&format!("{}.log", pack_tool.name)),
            },
        ];
        let script = self.path("build.sh");
        let text = format!(
            "#!/bin/sh\n# {} for {} ({device}), written by shiftkit-hw.\nset -e\ncd {}\n{}\n",
            self.top,
            self.board,
            shell_quote(&self.out_dir.display().to_string()),
            steps.iter().map(Step::shell).collect::<Vec<_>>().join("\n")
        );
        std::fs::write(&script, text).map_err(BoardError::io("cannot write", &script))?;
        let mut report = BitstreamReport {
            board: self.board,
            device,
            top: self.top.clone(),
            status: FlowStatus::Built,
            bitstream: None,
            target_mhz: self.target_mhz,
            fmax_mhz: None,
            clocks: vec![],
            utilization: BTreeMap::new(),
            script: script.clone(),
            logs: steps.iter().map(|s| s.log.clone()).collect(),
            how_to_run: None,
        };
        // iCE40 tools are required; ECP5 tools are optional (report how to run instead).
        let missing: Vec<Tool> = steps
            .iter()
            .map(|s| s.tool)
            .filter(|t| t.locate().is_err())
            .collect();
        if let Some(first) = missing.first() {
            if matches!(arch, Nextpnr::Ice40 { .. }) {
                first.locate()?;
            }
            report.status = FlowStatus::NotRun {
                missing: missing.iter().map(|t| t.name.to_string()).collect(),
            };
            report.how_to_run =
                Some(format!(
                "install {} (Debian 13: apt-get install {}; or the OSS CAD Suite), then run sh {}",
                missing.iter().map(|t| t.name).collect::<Vec<_>>().join(", "),
                missing.iter().map(|t| t.package).collect::<Vec<_>>().join(" "),
                script.display()
            ));
            return Ok(report);
        }
        let _ = steps[0].run(&self.out_dir)?;
        let pnr_log = steps[1].run(&self.out_dir)?;
        let _ = steps[2].run(&self.out_dir)?;
        report.clocks = parse::nextpnr_fmax(&pnr_log, self.target_mhz);
        report.fmax_mhz = report.clocks.iter().map(|c| c.fmax_mhz).reduce(f64::min);
        report.utilization = parse::nextpnr_utilization(&pnr_log);
        if !bitstream.is_file() {
            return Err(BoardError::Check {
                what: steps[2].name.clone(),
                detail: format!("{} was not written", bitstream.display()),
            });
        }
        report.bitstream = Some(bitstream);
        self.write_timing(&report)?;
        Ok(report)
    }

    fn vivado_flow(&self, part: &str) -> Result<BitstreamReport, BoardError> {
        let top = &self.top;
        let bit = self.path(&format!("{top}.bit"));
        let tcl = self.path("build.tcl");
        let list = |v: Vec<String>| v.iter().map(|s| format!("{{{s}}}")).collect::<Vec<_>>();
        let text = format!(
            "# {top} for {board} ({part}): Vivado non-project flow, written by shiftkit-hw.\n\
             # Run: vivado -mode batch -nojournal -log vivado.log -source build.tcl\n\
             set_param general.maxThreads 1\n\
             read_verilog {files}\n\
             read_xdc {{{xdc}}}\n\
             synth_design -top {top} -part {part}\n\
             opt_design\n\
             place_design\n\
             route_design\n\
             report_timing_summary -file timing_summary.rpt\n\
             report_utilization -file utilization.rpt\n\
             write_bitstream -force {{{bit}}}\n",
            board = self.board,
            files = list(self.file_args()).join(" "),
            xdc = self.constraints.display(),
            bit = bit.display(),
        );
        std::fs::write(&tcl, text).map_err(BoardError::io("cannot write", &tcl))?;
        let mut report = BitstreamReport {
            board: self.board,
            device: part.to_string(),
            top: top.clone(),
            status: FlowStatus::Built,
            bitstream: None,
            target_mhz: self.target_mhz,
            fmax_mhz: None,
            clocks: vec![],
            utilization: BTreeMap::new(),
            script: tcl.clone(),
            logs: vec![self.path("vivado.log")],
            how_to_run: None,
        };
        if VIVADO.locate().is_err() {
            report.status = FlowStatus::NotRun {
                missing: vec!["vivado".into()],
            };
            report.how_to_run = Some(format!(
                "on a machine with Vivado (free ML Standard edition covers the XC7A35T): \
                 cd {} && vivado -mode batch -nojournal -log vivado.log -source build.tcl",
                self.out_dir.display()
            ));
            return Ok(report);
        }
        let step = Step {
            name: "Vivado implementation".into(),
            tool: VIVADO,
            args: [
                "-mode",
                "batch",
                "-nojournal",
                "-log",
                &self.path("vivado.log").display().to_string(),
                "-source",
                &tcl.display().to_string(),
            ]
            .map(String::from)
            .to_vec(),
            log: self.path("vivado.log"),
        };
        step.run(&self.out_dir)?;
        let read = |name: &str| std::fs::read_to_string(self.path(name)).unwrap_or_default();
        if let Some(wns) = parse::vivado_wns(&read("timing_summary.rpt")) {
            let period = 1e3 / self.target_mhz;
            let fmax = 1e3 / (period - wns);
            report.clocks = vec![ClockTiming {
                clock: "clk".into(),
                fmax_mhz: fmax,
                target_mhz: self.target_mhz,
            }];
            report.fmax_mhz = Some(fmax);
        }
        report.utilization = parse::vivado_utilization(&read("utilization.rpt"));
        if bit.is_file() {
            report.bitstream = Some(bit);
        }
        self.write_timing(&report)?;
        Ok(report)
    }

    fn write_timing(&self, report: &BitstreamReport) -> Result<(), BoardError> {
        let path = self.path(TIMING_JSON);
        let json = serde_json::to_string_pretty(report).expect("plain data serializes");
        std::fs::write(&path, json).map_err(BoardError::io("cannot write", &path))
    }
}

/// Quote for `sh` when needed.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Generate the board design for `board` around `accel` (see `crate::board::accel_for`),
/// write it into `out_dir` and build it: what `shiftkit bitstream` does.
pub fn build_board(
    board: Board,
    accel: &crate::board::Accel,
    baud: u64,
    out_dir: &Path,
) -> Result<(crate::board::BoardDesign, BitstreamReport), BoardError> {
    let design = crate::board::generate_board(board, accel, baud)?;
    let files = crate::board::write_board(&design, out_dir)?;
    let report = bitstream(board, &files, &design.top, out_dir)?;
    Ok((design, report))
}
