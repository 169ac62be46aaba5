//! The `shiftkit` command line: a thin layer over the library. Every command returns a
//! `Result`; `main` prints an error as one line and exits non-zero.

mod clip;
mod compare;
mod demo;
mod gemm;
mod hw;
mod report;
mod sim;
mod sweep;
mod train;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "shiftkit",
    version,
    about = "Co-design FPGA accelerators that train neural networks in sub-8-bit integers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// C = A x B from NPY files in one number format, on one engine (SPEC §7).
    Gemm(gemm::GemmArgs),
    /// Train a workload with every GEMM on the chosen engine and format (SPEC §7).
    Train {
        #[command(subcommand)]
        workload: train::Workload,
    },
    /// Hugging Face CLIP vision towers on the accelerator: `clip embed` (SPEC §7).
    Clip {
        #[command(subcommand)]
        command: clip::ClipCommand,
    },
    /// Finished training runs side by side (epochs to generalize, accuracy, cycles) and a plot.
    Compare(compare::CompareArgs),
    /// Generate a design's Verilog and manifest.json.
    Gen(hw::GenArgs),
    /// Run a random GEMM on the Verilated accelerator top and check it against golden.
    Sim(sim::SimArgs),
    /// Synthesize a design with yosys and report its resources as JSON.
    Synth(hw::SynthArgs),
    /// Build a board bitstream (iCE40: yosys, nextpnr, icepack; Vivado / ECP5 scripts otherwise).
    Bitstream(hw::BitstreamArgs),
    /// Resources of sq4, sq6 and fp16 arrays on every target, ratios against fp16, Fmax.
    Report(report::ReportArgs),
    /// The showcase: every format on sample tensors, errors, speed and modelled cost.
    Demo(demo::DemoArgs),
    /// Design-space sweeps: many jobs from a plan, locally or on Slurm, merged with Pareto plots.
    Sweep {
        #[command(subcommand)]
        command: sweep::SweepCommand,
    },
}

/// The command tree (sweep plans check their flags against it).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Run the CLI with the process arguments; returns the exit code.
pub fn main() -> i32 {
    run(std::env::args_os())
}

/// Run the CLI with explicit arguments (the first is the program name); returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Gemm(args) => gemm::run(&args),
        Command::Train { workload } => train::run(&workload),
        Command::Clip { command } => clip::run(&command),
        Command::Compare(args) => compare::run(&args),
        Command::Gen(args) => hw::gen(&args),
        Command::Sim(args) => sim::run(&args),
        Command::Synth(args) => hw::synth(&args),
        Command::Bitstream(args) => hw::bitstream(&args),
        Command::Report(args) => report::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Sweep { command } => sweep::run(&command),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// clap's usage errors folded into one line (help and version print as usual).
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            2
        } else {
            0
        };
    }
    let text = e.render().to_string();
    let line: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("For more information") && !l.starts_with("Usage:")
        })
        .collect();
    eprintln!("{} (see shiftkit --help)", line.join(" "));
    2
}
