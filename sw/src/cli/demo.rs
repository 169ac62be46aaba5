//! `shiftkit demo`: the README's main job, a tour in segments (see `crate::demo`).

use crate::demo::{run_tour, segments, Tour};
use crate::error::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory for README.md (the results page), demo.json and every segment's files.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// The long versions that reproduce the README's headline numbers (about half an hour).
    #[arg(long)]
    pub full: bool,
    /// Run only these segments (comma-separated names; default: all).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Size of the square sample GEMM of the gemm-formats segment.
    #[arg(long, default_value_t = 512)]
    pub size: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Cap the grokking segment's epochs (a smoke run: the ticket effect then need not show).
    #[arg(long)]
    pub grokking_epochs: Option<usize>,
}

pub fn run(args: &DemoArgs) -> Result<()> {
    let tour = Tour {
        out: args.out.clone(),
        full: args.full,
        seed: args.seed,
        gemm_size: args.size,
        grokking_epochs: args.grokking_epochs,
    };
    run_tour(&tour, segments(), &args.only)
}
