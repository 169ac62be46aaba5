//! `shiftkit sweep collect DIR`: every finished job's JSON outputs (`summary.json`,
//! `result.json`, `timing.json`) merged into `DIR/results.json` and `DIR/results.csv` (one row per
//! finished job: the axes, `status`, then the result fields flattened with dotted names), the
//! failed jobs with the last line of their log, and the Pareto plots with `DIR/pareto.md`.

use super::job::{self, Status};
use super::{pareto, read_index};
use crate::error::{Error, Result};
use crate::npy::write_bytes;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The JSON files a job's command writes, by the prefix their fields get.
const RESULT_FILES: [&str; 3] = ["summary", "result", "timing"];

#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub id: String,
    pub status: String,
    pub exit_code: Option<i32>,
    pub axes: BTreeMap<String, String>,
    /// Flattened result fields (`summary.generalized_epoch`, `result.cells.lut`, ...).
    pub results: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Failed {
    pub id: String,
    pub axes: BTreeMap<String, String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub last_log_line: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub base: String,
    pub axes: Vec<String>,
    pub jobs: usize,
    pub pending: usize,
    pub rows: Vec<Row>,
    pub failed: Vec<Failed>,
}

/// `{"a": {"b": 1}, "c": [2, 3]}` as `a.b = 1, c.0 = 2, c.1 = 3`.
pub fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                flatten(&format!("{prefix}.{k}"), x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flatten(&format!("{prefix}.{i}"), x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn read_results(dir: &Path) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for name in RESULT_FILES {
        let path = dir.join(format!("{name}.json"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::file(&path, format!("not valid JSON: {e}")))?;
        flatten(name, &v, &mut out);
    }
    Ok(out)
}

/// Read every job folder of the sweep in `dir`.
pub fn gather(dir: &Path) -> Result<Results> {
    let index = read_index(dir)?;
    let mut res = Results {
        base: index.base.clone(),
        axes: index.axes.clone(),
        jobs: index.jobs.len(),
        pending: 0,
        rows: Vec::new(),
        failed: Vec::new(),
    };
    for id in &index.jobs {
        let jd = job::job_dir(dir, id);
        let status = job::status(&jd);
        if status == Status::Pending {
            res.pending += 1;
            continue;
        }
        let axes = job::read_spec(&jd)?.axes;
        let exit_code = match &status {
            Status::Failed(d) => {
                res.failed.push(Failed {
                    id: id.clone(),
                    axes: axes.clone(),
                    exit_code: d.exit_code,
                    signal: d.signal,
                    last_log_line: job::last_log_line(&jd),
                });
                d.exit_code
            }
            _ => Some(0),
        };
        res.rows.push(Row {
            id: id.clone(),
            status: if status == Status::Done {
                "done"
            } else {
                "failed"
            }
            .into(),
            exit_code,
            axes,
            results: read_results(&jd)?,
        });
    }
    Ok(res)
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `results.csv`: a column per axis (named as the flag), `status`, every result field, and last
/// the job's `id` (its folder under `DIR/jobs/`).
pub fn csv(res: &Results) -> String {
    let mut fields: Vec<&String> = res.rows.iter().flat_map(|r| r.results.keys()).collect();
    fields.sort();
    fields.dedup();
    let mut header: Vec<String> = res.axes.clone();
    header.push("status".to_string());
    header.extend(fields.iter().map(|f| f.to_string()));
    header.push("id".to_string());
    let mut s = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    for r in &res.rows {
        let mut line: Vec<String> = res
            .axes
            .iter()
            .map(|a| r.axes.get(a).cloned().unwrap_or_default())
            .collect();
        line.push(r.status.clone());
        line.extend(fields.iter().map(|f| cell(r.results.get(*f))));
        line.push(r.id.clone());
        s.push_str(
            &line
                .iter()
                .map(|x| csv_field(x))
                .collect::<Vec<_>>()
                .join(","),
        );
        s.push('\n');
    }
    s
}

/// What `collect` wrote.
pub struct Collected {
    pub results: Results,
    pub plots: Vec<PathBuf>,
}

/// Write results.json, results.csv, the Pareto plots and pareto.md. `luts_from` are folders
/// searched for synthesis results (a `shiftkit report --out` folder's cache, a hardware sweep).
pub fn collect(dir: &Path, luts_from: &[PathBuf], lut_target: &str) -> Result<Collected> {
    let res = gather(dir)?;
    let json = serde_json::to_string_pretty(&res).map_err(|e| Error::Usage(e.to_string()))?;
    write_bytes(&dir.join("results.json"), json.as_bytes())?;
    write_bytes(&dir.join("results.csv"), csv(&res).as_bytes())?;
    let luts = pareto::LutTable::load(luts_from, lut_target)?;
    let (plots, md) = pareto::write(dir, &res, &luts)?;
    write_bytes(&dir.join("pareto.md"), md.as_bytes())?;
    Ok(Collected {
        results: res,
        plots,
    })
}
