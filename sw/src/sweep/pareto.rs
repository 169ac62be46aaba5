//! Pareto fronts of a collected sweep. Training sweeps: final test accuracy and epochs to
//! generalize against modelled cycles and against the design's LUTs (looked up in synthesis
//! results); hardware sweeps: LUTs against Fmax (bitstream builds), or against the array's PEs
//! per target when only synthesis ran (yosys gives no Fmax).

use super::collect::{Results, Row};
use crate::error::{Error, Result};
use crate::workloads::report::plot_pareto;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// LUT counts by (design, rows, cols) for one target.
pub struct LutTable {
    pub target: String,
    pub luts: BTreeMap<(String, u64, u64), f64>,
}

impl LutTable {
    /// Search `dirs` for synthesis results on `target`: the synthesis cache of `shiftkit report`
    /// (`<design>_<R>x<C>/synth-<target>.json`) and `synth` outputs (`result.json` of a hardware
    /// sweep's jobs).
    pub fn load(dirs: &[PathBuf], target: &str) -> Result<LutTable> {
        let mut t = LutTable {
            target: target.to_string(),
            luts: BTreeMap::new(),
        };
        for d in dirs {
            if !d.is_dir() {
                return Err(Error::file(
                    d,
                    "--luts-from: not a directory (give a `shiftkit report --out` folder or a hardware sweep's DIR)",
                ));
            }
            t.scan(d, 0);
        }
        Ok(t)
    }

    fn scan(&mut self, dir: &Path, depth: usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if depth < 5 {
                    self.scan(&p, depth + 1);
                }
            } else if name == format!("synth-{}.json", self.target) {
                self.add_cache_entry(dir, &p);
            } else if name == "result.json" {
                self.add_synth_result(&p);
            }
        }
    }

    fn add_cache_entry(&mut self, dir: &Path, file: &Path) {
        let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some((design, size)) = folder.as_deref().and_then(|f| f.rsplit_once('_')) else {
            return;
        };
        let Some((r, c)) = size.split_once('x') else {
            return;
        };
        let (Ok(r), Ok(c)) = (r.parse(), c.parse()) else {
            return;
        };
        let lut = read_json(file).and_then(|v| v["resources"]["cells"]["lut"].as_f64());
        if let Some(lut) = lut {
            self.luts.insert((design.to_string(), r, c), lut);
        }
    }

    fn add_synth_result(&mut self, file: &Path) {
        let Some(v) = read_json(file) else { return };
        if v["target"].as_str() != Some(self.target.as_str()) {
            return;
        }
        if let (Some(d), Some(r), Some(c), Some(lut)) = (
            v["design"].as_str(),
            v["rows"].as_u64(),
            v["cols"].as_u64(),
            v["cells"]["lut"].as_f64(),
        ) {
            self.luts.insert((d.to_string(), r, c), lut);
        }
    }

    /// The LUTs of the array a training run modelled (its format's design at its array size).
    fn of_run(&self, row: &Row) -> Option<f64> {
        let format = row.results.get("summary.format")?.as_str()?;
        let r = row.results.get("summary.array.rows")?.as_u64()?;
        let c = row.results.get("summary.array.cols")?.as_u64()?;
        self.luts.get(&(format.to_string(), r, c)).copied()
    }
}

fn read_json(p: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// Whether larger `y` is better.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Goal {
    Max,
    Min,
}

/// One Pareto plot: `x` is always minimized.
struct Front {
    file: String,
    title: String,
    x_desc: String,
    y_desc: String,
    goal: Goal,
    /// (row index, x, y)
    points: Vec<(usize, f64, f64)>,
}

/// Which points no other point beats in both x (smaller) and y.
fn pareto_mask(points: &[(usize, f64, f64)], goal: Goal) -> Vec<bool> {
    let better = |a: f64, b: f64| match goal {
        Goal::Max => a >= b,
        Goal::Min => a <= b,
    };
    points
        .iter()
        .map(|&(_, x, y)| {
            !points
                .iter()
                .any(|&(_, qx, qy)| qx <= x && better(qy, y) && (qx < x || qy != y))
        })
        .collect()
}

fn num(row: &Row, key: &str) -> Option<f64> {
    row.results.get(key).and_then(Value::as_f64)
}

/// The x value of a training run (modelled cycles, or its design's LUTs).
type XOf<'a> = dyn Fn(&Row) -> Option<f64> + 'a;

fn training_fronts(res: &Results, luts: &LutTable) -> Vec<Front> {
    let done: Vec<(usize, &Row)> = res
        .rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == "done" && r.results.contains_key("summary.counters.cycles"))
        .collect();
    if done.is_empty() {
        return Vec::new();
    }
    let metrics = [
        (
            "accuracy",
            "final test accuracy",
            "summary.final_test_acc",
            Goal::Max,
        ),
        (
            "epochs",
            "epochs to generalize",
            "summary.generalized_epoch",
            Goal::Min,
        ),
    ];
    let lut_desc = format!("LUTs on {} (synthesis cache)", luts.target);
    let xs: [(&str, &str, &XOf); 2] = [
        ("cycles", "modelled cycles", &|r| {
            num(r, "summary.counters.cycles").filter(|&c| c > 0.0)
        }),
        ("luts", lut_desc.as_str(), &|r| luts.of_run(r)),
    ];
    let mut out = Vec::new();
    for (mname, mdesc, key, goal) in metrics {
        for (xname, xdesc, xf) in &xs {
            let points: Vec<(usize, f64, f64)> = done
                .iter()
                .filter_map(|&(i, r)| Some((i, xf(r)?, num(r, key)?)))
                .collect();
            if points.is_empty() {
                continue;
            }
            out.push(Front {
                file: format!("pareto-{mname}-vs-{xname}.png"),
                title: format!("{mdesc} vs {xdesc}"),
                x_desc: xdesc.to_string(),
                y_desc: mdesc.to_string(),
                goal,
                points,
            });
        }
    }
    out
}

fn hardware_fronts(res: &Results) -> Vec<Front> {
    let done = || {
        res.rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status == "done")
    };
    // Bitstream builds: placed-and-routed logic cells against Fmax.
    let built: Vec<(usize, f64, f64)> = done()
        .filter_map(|(i, r)| {
            let lut = num(r, "timing.utilization.ICESTORM_LC.used")
                .or_else(|| num(r, "timing.utilization.Slice LUTs.used"))?;
            Some((i, lut, num(r, "timing.fmax_mhz")?))
        })
        .collect();
    let mut out = Vec::new();
    if !built.is_empty() {
        out.push(Front {
            file: "pareto-luts-vs-fmax.png".into(),
            title: "Fmax vs logic cells (place and route)".into(),
            x_desc: "logic cells / LUTs".into(),
            y_desc: "Fmax (MHz)".into(),
            goal: Goal::Max,
            points: built,
        });
    }
    // Synthesis only: LUTs against the PEs they buy, one plot per target (LUT4 and LUT6 counts
    // do not compare).
    let mut by_target: BTreeMap<String, Vec<(usize, f64, f64)>> = BTreeMap::new();
    for (i, r) in done() {
        let (Some(t), Some(lut), Some(rows), Some(cols)) = (
            r.results.get("result.target").and_then(Value::as_str),
            num(r, "result.cells.lut"),
            num(r, "result.rows"),
            num(r, "result.cols"),
        ) else {
            continue;
        };
        by_target
            .entry(t.to_string())
            .or_default()
            .push((i, lut, rows * cols));
    }
    for (t, points) in by_target {
        out.push(Front {
            file: format!("pareto-pes-vs-luts-{t}.png"),
            title: format!("PEs vs LUTs on {t} (yosys)"),
            x_desc: format!("LUTs on {t}"),
            y_desc: "PEs (rows x cols)".into(),
            goal: Goal::Max,
            points,
        });
    }
    out
}

fn axes_text(res: &Results, row: &Row) -> Vec<String> {
    res.axes
        .iter()
        .map(|a| row.axes.get(a).cloned().unwrap_or_default())
        .collect()
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.4}")
    }
}

/// Draw every front that the results support into `dir`; return the plots and pareto.md.
pub fn write(dir: &Path, res: &Results, luts: &LutTable) -> Result<(Vec<PathBuf>, String)> {
    let mut fronts = training_fronts(res, luts);
    fronts.extend(hardware_fronts(res));
    let mut md = format!(
        "# Pareto-optimal jobs of `shiftkit {}`\n\n{} jobs: {} finished ({} failed), {} not finished.\n",
        res.base,
        res.jobs,
        res.rows.len(),
        res.failed.len(),
        res.pending
    );
    if fronts.is_empty() {
        md.push_str("\nNo Pareto plot: the results have neither training summaries (accuracy, cycles) nor resource counts.\n");
    }
    let mut plots = Vec::new();
    for f in &fronts {
        let mask = pareto_mask(&f.points, f.goal);
        let xy: Vec<(f64, f64)> = f.points.iter().map(|&(_, x, y)| (x, y)).collect();
        let path = dir.join(&f.file);
        plot_pareto(&path, &f.title, &f.x_desc, &f.y_desc, &xy, &mask)?;
        plots.push(path);
        let better = match f.goal {
            Goal::Max => "higher",
            Goal::Min => "lower",
        };
        md.push_str(&format!(
            "\n## {}\n\n![{}]({})\n\nLower {} and {better} {} is better; {} of {} jobs are Pareto-optimal:\n\n",
            f.title,
            f.title,
            f.file,
            f.x_desc,
            f.y_desc,
            mask.iter().filter(|&&m| m).count(),
            f.points.len()
        ));
        md.push_str(&format!(
            "| {} | {} | {} | job |\n|{}\n",
            res.axes.join(" | "),
            f.x_desc,
            f.y_desc,
            " --- |".repeat(res.axes.len() + 3)
        ));
        let mut front: Vec<&(usize, f64, f64)> = f
            .points
            .iter()
            .zip(&mask)
            .filter(|(_, &m)| m)
            .map(|(p, _)| p)
            .collect();
        front.sort_by(|a, b| a.1.total_cmp(&b.1));
        for &&(i, x, y) in &front {
            let row = &res.rows[i];
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                axes_text(res, row).join(" | "),
                fmt(x),
                fmt(y),
                row.id
            ));
        }
    }
    if !res.failed.is_empty() {
        md.push_str("\n## Failed jobs\n\n");
        for f in &res.failed {
            let axes: Vec<String> = f.axes.iter().map(|(k, v)| format!("{k}={v}")).collect();
            md.push_str(&format!(
                "- `{}` ({}), exit {}: {}\n",
                f.id,
                axes.join(" "),
                f.exit_code.map_or("by signal".into(), |c| c.to_string()),
                f.last_log_line
            ));
        }
    }
    Ok((plots, md))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_mask_keeps_the_non_dominated_points() {
        let pts = vec![(0, 1.0, 0.5), (1, 2.0, 0.9), (2, 3.0, 0.8), (3, 2.0, 0.9)];
        assert_eq!(pareto_mask(&pts, Goal::Max), vec![true, true, false, true]);
        let pts = vec![(0, 1.0, 300.0), (1, 2.0, 100.0), (2, 3.0, 200.0)];
        assert_eq!(pareto_mask(&pts, Goal::Min), vec![true, true, false]);
    }
}
