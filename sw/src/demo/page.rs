//! The tour's outputs: `demo.json` (every segment's results) and `README.md` (one page with
//! every table and plot of the run; GitHub and any Markdown viewer render it).

use super::{relative, Outcome, Tour};
use crate::error::Result;
use crate::npy::write_bytes;
use crate::progress::format_duration;
use std::time::Duration;

/// A small table: printed aligned in the terminal, as Markdown on the page.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: impl Into<String>, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Columns padded to their widest cell; the first column left-aligned, the others right.
    pub fn text(&self) -> String {
        let cols = self.header.len();
        let width = |c: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        let line = |r: &Vec<String>| {
            let cells: Vec<String> = (0..cols)
                .map(|c| {
                    let v = r.get(c).map_or("", String::as_str);
                    if c == 0 {
                        format!("{v:<w$}", w = widths[c])
                    } else {
                        format!("{v:>w$}", w = widths[c])
                    }
                })
                .collect();
            format!("  {}\n", cells.join("  ").trim_end())
        };
        let mut s = format!("{}\n", self.title);
        s.push_str(&line(&self.header));
        for r in &self.rows {
            s.push_str(&line(r));
        }
        s
    }

    pub fn markdown(&self) -> String {
        let cols = self.header.len();
        let mut s = format!("**{}**\n\n| {} |\n|", self.title, self.header.join(" | "));
        for c in 0..cols {
            s.push_str(if c == 0 { " --- |" } else { " ---: |" });
        }
        s.push('\n');
        for r in &self.rows {
            s.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        s
    }
}

pub fn write_json(tour: &Tour, outcomes: &[Outcome], wall: Duration) -> Result<()> {
    let segments: serde_json::Map<String, serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            let mut v = serde_json::json!({
                "shows": o.shows,
                "lane": o.lane,
                "estimate_s": o.estimate.as_secs_f64(),
                "wall_s": o.wall.as_secs_f64(),
            });
            match &o.result {
                Ok(r) => {
                    v["ok"] = true.into();
                    v["results"] = r.results.clone();
                    v["tables"] = serde_json::to_value(&r.tables).unwrap_or_default();
                    v["notes"] = serde_json::to_value(&r.notes).unwrap_or_default();
                    v["images"] = r
                        .images
                        .iter()
                        .map(|(_, p)| relative(tour, p))
                        .collect::<Vec<_>>()
                        .into();
                }
                Err(e) => {
                    v["ok"] = false.into();
                    v["error"] = e.to_string().into();
                }
            }
            (o.name.to_string(), v)
        })
        .collect();
    let doc = serde_json::json!({
        "full": tour.full,
        "seed": tour.seed,
        "wall_s": wall.as_secs_f64(),
        "segments": segments,
    });
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    write_bytes(&tour.out.join("demo.json"), text.as_bytes())
}

pub fn write_page(tour: &Tour, outcomes: &[Outcome], wall: Duration) -> Result<()> {
    let mut s = String::from("# shiftkit demo\n\n");
    s.push_str(&format!(
        "`shiftkit demo{}` ran {} segment(s) in {} (wall, segments on the host engines and on the \
         external tools side by side). Every number and plot below was computed in this run; \
         `demo.json` holds them all.\n\n",
        if tour.full { " --full" } else { "" },
        outcomes.len(),
        format_duration(wall)
    ));
    for o in outcomes {
        s.push_str(&format!(
            "- **{}** ({}): {}\n",
            o.name,
            format_duration(o.wall),
            o.shows
        ));
    }
    for o in outcomes {
        s.push_str(&format!("\n## {}\n\n{}\n\n", o.name, o.shows));
        s.push_str(&format!(
            "Took {} (estimated {}).\n\n",
            format_duration(o.wall),
            format_duration(o.estimate)
        ));
        match &o.result {
            Ok(r) => {
                for t in &r.tables {
                    s.push_str(&t.markdown());
                    s.push('\n');
                }
                for n in &r.notes {
                    s.push_str(&format!("- {n}\n"));
                }
                if !r.notes.is_empty() {
                    s.push('\n');
                }
                for (what, p) in &r.images {
                    s.push_str(&format!("![{what}]({})\n\n", relative(tour, p)));
                }
            }
            Err(e) => s.push_str(&format!("**Failed:** {e}\n")),
        }
    }
    write_bytes(&tour.out.join("README.md"), s.as_bytes())
}
