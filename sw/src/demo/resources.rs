//! Segment: FPGA resources of the sq4 and sq6 MAC arrays against the FP16 reference array,
//! synthesized by yosys in this run (no DSPs, so multipliers count as LUTs).

use super::page::Table;
use super::{Lane, Segment, SegmentReport, Tour};
use crate::design::{self, Design};
use crate::error::{Error, Result};
use crate::workloads::report::{plot_bars, Bar};
use shiftkit_hw::synth::{synthesize, Target};
use std::time::Duration;

pub struct Resources;

const TARGETS: [Target; 2] = [Target::Xc7Nodsp, Target::Ice40];
const DESIGNS: [Design; 3] = [Design::Fp16, Design::Sq4, Design::Sq6];

fn sizes(full: bool) -> &'static [usize] {
    if full {
        &[4, 8]
    } else {
        &[4]
    }
}

impl Segment for Resources {
    fn name(&self) -> &'static str {
        "resources"
    }

    fn shows(&self, tour: &Tour) -> String {
        let s: Vec<String> = sizes(tour.full)
            .iter()
            .map(|n| format!("{n}x{n}"))
            .collect();
        format!(
            "LUTs of the {} sq4 and sq6 arrays against the FP16 reference array (yosys, \
             xc7 and iCE40 without DSPs)",
            s.join(" and ")
        )
    }

    fn lane(&self) -> Lane {
        Lane::Tools
    }

    fn estimate(&self, tour: &Tour) -> Duration {
        Duration::from_secs(if tour.full { 900 } else { 150 })
    }

    fn run(&self, tour: &Tour) -> Result<SegmentReport> {
        let hw = |e: shiftkit_hw::HwError| Error::Usage(e.to_string());
        let dir = tour.dir(self)?;
        let mut tables = Vec::new();
        let mut images = Vec::new();
        let mut results = Vec::new();
        for &n in sizes(tour.full) {
            let mut table = Table::new(
                format!("{n}x{n} arrays, LUTs (ratio to fp16)"),
                &["target", "fp16", "sq4", "sq6"],
            );
            let mut bars = Vec::new();
            for target in TARGETS {
                let mut luts = Vec::new();
                for d in DESIGNS {
                    let cfg = design::config(d, n, n, shiftkit_hw::config::DEFAULT_WINDOW, None)?;
                    let g = design::generate(d, &cfg, &dir.join(format!("{}-{n}x{n}", d.name())))?;
                    let files: Vec<&std::path::Path> =
                        g.files.iter().map(|p| p.as_path()).collect();
                    luts.push(synthesize(&files, &g.top, target).map_err(hw)?.cells.lut);
                }
                let fp16 = luts[0].max(1) as f64;
                let mut row = vec![target.name().to_string(), luts[0].to_string()];
                for (d, &l) in DESIGNS.iter().zip(&luts).skip(1) {
                    row.push(format!("{l} ({:.3}x)", l as f64 / fp16));
                    bars.push(Bar {
                        group: target.name().to_string(),
                        series: d.name().to_string(),
                        value: l as f64 / fp16,
                    });
                }
                table.row(row);
                results.push(serde_json::json!({
                    "size": n,
                    "target": target.name(),
                    "luts": DESIGNS.iter().zip(&luts).map(|(d, l)| (d.name(), *l))
                        .collect::<std::collections::BTreeMap<_, _>>(),
                }));
            }
            let png = dir.join(format!("lut-ratio-{n}x{n}.png"));
            plot_bars(
                &png,
                &format!("{n}x{n} arrays: LUTs relative to the FP16 reference"),
                "LUTs / fp16 LUTs",
                &bars,
            )?;
            tables.push(table);
            images.push((format!("{n}x{n} LUT ratios"), png));
        }
        Ok(SegmentReport {
            tables,
            images,
            notes: Vec::new(),
            results: serde_json::Value::Array(results),
        })
    }
}
