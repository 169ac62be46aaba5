//! What every training run writes (SPEC §7): `metrics.csv` (one row per evaluation),
//! `summary.json`, and PNG plots of accuracy against epoch.

use crate::engine::Counters;
use crate::error::{Error, Result};
use crate::npy::write_bytes;
use plotters::prelude::*;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::sync::Once;

#[derive(Clone, Debug, Serialize)]
pub struct MetricsRow {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub test_loss: f64,
    pub test_acc: f64,
    pub macs: u64,
    pub cycles: u64,
    pub wall_s: f64,
}

/// `(epoch, test accuracy)` of every row of a run's `metrics.csv`.
pub fn read_test_curve(dir: &Path) -> Result<Vec<(f64, f64)>> {
    let path = dir.join("metrics.csv");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f.first()?.parse().ok()?, f.get(4)?.parse().ok()?))
        })
        .collect())
}

pub fn write_metrics_csv(path: &Path, rows: &[MetricsRow]) -> Result<()> {
    let mut text =
        String::from("epoch,train_loss,train_acc,test_loss,test_acc,macs,cycles,wall_s\n");
    for r in rows {
        text.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.6},{},{},{:.3}\n",
            r.epoch, r.train_loss, r.train_acc, r.test_loss, r.test_acc, r.macs, r.cycles, r.wall_s
        ));
    }
    write_bytes(path, text.as_bytes())
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Usage(format!("cannot encode JSON: {e}")))?;
    write_bytes(path, text.as_bytes())
}

/// The `summary.json` of a finished run in `dir` (a dense run reused for a ticket, runs being
/// compared, the demo's table).
pub fn read_summary(dir: &Path) -> Result<serde_json::Value> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::file(
            &path,
            format!("cannot read ({e}): give the directory of a finished `shiftkit train` run"),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| Error::file(&path, format!("not a summary.json ({e})")))
}

/// Counters in a summary, with utilization against the modelled array.
#[derive(Clone, Debug, Serialize)]
pub struct CounterSummary {
    #[serde(flatten)]
    pub counters: Counters,
    pub utilization: f64,
}

impl CounterSummary {
    pub fn new(counters: Counters, pes: usize) -> Self {
        CounterSummary {
            counters,
            utilization: counters.utilization(pes),
        }
    }
}

/// Store `plan` as `out/experiment.json`, or refuse (one line naming the differing keys) when
/// the directory holds an experiment made with other settings.
pub fn check_experiment<T: Serialize>(out: &Path, plan: &T) -> Result<()> {
    let path = out.join("experiment.json");
    // Through text, as the file holds it (f32 fields print shorter than their f64 values).
    let want: Value = serde_json::to_string(plan)
        .and_then(|t| serde_json::from_str(&t))
        .map_err(|e| Error::Usage(e.to_string()))?;
    if path.is_file() {
        let have: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_default())
            .unwrap_or(Value::Null);
        if have != want {
            let differs: Vec<String> = want
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| have.get(k.as_str()) != Some(v))
                .map(|(k, _)| k.clone())
                .collect();
            return Err(Error::file(
                out,
                format!(
                    "holds an experiment made with other settings ({}): use another --out, or delete it",
                    differs.join(", ")
                ),
            ));
        }
        return Ok(());
    }
    write_json(&path, plan)
}

static FONT: Once = Once::new();

/// The embedded DejaVu Sans, registered once, so plots need no system font libraries.
fn register_font() {
    FONT.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
        // Registration only fails on a corrupt font, which the tests would catch.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, bytes);
    });
}

/// Where a plot is drawn before it is renamed into place. The backend picks the encoder from the
/// extension, so the temporary name ends in .png.
fn png_temp(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.png"))
}

/// Rename a drawn plot into place, or remove the partial file of a failed drawing.
fn finish_png(
    tmp: &Path,
    path: &Path,
    drawn: std::result::Result<(), Box<dyn std::error::Error>>,
) -> Result<()> {
    match drawn {
        Ok(()) => {
            std::fs::rename(tmp, path).map_err(|e| Error::file(path, format!("cannot write: {e}")))
        }
        Err(e) => {
            let _ = std::fs::remove_file(tmp);
            Err(Error::file(path, format!("cannot draw the plot: {e}")))
        }
    }
}

/// One line of a plot.
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub dashed: bool,
}

impl Curve {
    pub fn new(
        label: impl Into<String>,
        points: Vec<(f64, f64)>,
        color: RGBColor,
        dashed: bool,
    ) -> Self {
        Curve {
            label: label.into(),
            points,
            color,
            dashed,
        }
    }
}

/// Ten distinct colours (matplotlib's tab10), so a compare of up to ten runs repeats none.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Accuracy (0..1) against epoch, written atomically as a PNG.
pub fn plot_accuracy(path: &Path, title: &str, curves: &[Curve]) -> Result<()> {
    plot_curves(
        path,
        title,
        ("epoch", "accuracy"),
        Some((0.0, 1.02)),
        curves,
    )
}

/// Lines against a shared x axis, written atomically as a PNG; the y range is `y_range` or, when
/// `None`, the data's range with a margin.
pub fn plot_curves(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    y_range: Option<(f64, f64)>,
    curves: &[Curve],
) -> Result<()> {
    register_font();
    let tmp = png_temp(path);
    let x_max = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let (y_lo, y_hi) = y_range.unwrap_or_else(|| {
        let ys = curves.iter().flat_map(|c| c.points.iter().map(|p| p.1));
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        let pad = ((hi - lo) * 0.08).max(1e-3 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    });
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(&tmp, (900, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, y_lo..y_hi)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style(("sans-serif", 14))
            .draw()?;
        for c in curves {
            let style = ShapeStyle::from(&c.color).stroke_width(2);
            let series = if c.dashed {
                chart.draw_series(DashedLineSeries::new(c.points.iter().copied(), 6, 4, style))?
            } else {
                chart.draw_series(LineSeries::new(c.points.iter().copied(), style))?
            };
            let color = c.color;
            series.label(c.label.as_str()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present()?;
        Ok(())
    };
    finish_png(&tmp, path, draw())
}

/// One bar of a grouped bar chart.
pub struct Bar {
    pub group: String,
    pub series: String,
    pub value: f64,
}

/// Grouped bars (one group per `group`, one colour per `series`), written atomically as a PNG.
pub fn plot_bars(path: &Path, title: &str, y_desc: &str, bars: &[Bar]) -> Result<()> {
    register_font();
    let mut groups: Vec<&str> = Vec::new();
    let mut series: Vec<&str> = Vec::new();
    for b in bars {
        if !groups.contains(&b.group.as_str()) {
            groups.push(&b.group);
        }
        if !series.contains(&b.series.as_str()) {
            series.push(&b.series);
        }
    }
    let tmp = png_temp(path);
    let y_max = bars.iter().map(|b| b.value).fold(1.0, f64::max) * 1.1;
    let slots = (series.len() + 1) as f64;
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(&tmp, (900, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..groups.len() as f64, 0.0..y_max)?;
        let labels = groups.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 1e-6 && i < labels.len() {
                    labels[i].to_string()
                } else {
                    String::new()
                }
            })
            .y_desc(y_desc)
            .label_style(("sans-serif", 14))
            .draw()?;
        for (si, s) in series.iter().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            let rects = bars.iter().filter(|b| b.series == *s).filter_map(|b| {
                let g = groups.iter().position(|g| *g == b.group)? as f64;
                let x0 = g + (si as f64 + 0.5) / slots;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + 1.0 / slots, b.value)],
                    color.filled(),
                ))
            });
            chart.draw_series(rects)?.label(*s).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
            });
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        root.present()?;
        Ok(())
    };
    finish_png(&tmp, path, draw())
}

/// Axis tick labels that stay short for counts such as 1.2e11 cycles.
fn tick(v: &f64) -> String {
    if v.abs() >= 1e6 {
        return format!("{v:.2e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// A scatter of `points` with the Pareto-optimal ones (`front[i]`) marked in red and joined by
/// a line, written atomically as a PNG.
pub fn plot_pareto(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[(f64, f64)],
    front: &[bool],
) -> Result<()> {
    register_font();
    let tmp = png_temp(path);
    let span = |f: fn(&(f64, f64)) -> f64| {
        let lo = points.iter().map(f).fold(f64::INFINITY, f64::min);
        let hi = points.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        let pad = if hi > lo {
            (hi - lo) * 0.08
        } else {
            lo.abs().max(1.0) * 0.1
        };
        (lo - pad)..(hi + pad)
    };
    let (xr, yr) = (span(|p| p.0), span(|p| p.1));
    let mut line: Vec<(f64, f64)> = points
        .iter()
        .zip(front)
        .filter(|(_, &f)| f)
        .map(|(p, _)| *p)
        .collect();
    line.sort_by(|a, b| a.0.total_cmp(&b.0));
    let red = PALETTE[1];
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::new(&tmp, (900, 540)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(xr.clone(), yr.clone())?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style(("sans-serif", 14))
            .draw()?;
        let grey = PALETTE[7];
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, 4, grey.stroke_width(1))),
            )?
            .label("job")
            .legend(move |(x, y)| Circle::new((x + 9, y), 4, grey.stroke_width(1)));
        chart.draw_series(LineSeries::new(line.iter().copied(), red.stroke_width(1)))?;
        chart
            .draw_series(line.iter().map(|&p| Circle::new(p, 6, red.filled())))?
            .label("Pareto-optimal")
            .legend(move |(x, y)| Circle::new((x + 9, y), 6, red.filled()));
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present()?;
        Ok(())
    };
    finish_png(&tmp, path, draw())
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Every plot's legend: a white, framed box at `at`.
fn draw_legend<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
    at: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}

/// Draw a `size` PNG with `draw` and write it atomically (temporary file, then rename).
fn render_png(path: &Path, size: (u32, u32), draw: impl FnOnce(&Area) -> DrawResult) -> Result<()> {
    register_font();
    let tmp = png_temp(path);
    let result = (|| -> DrawResult {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
        Ok(())
    })();
    finish_png(&tmp, path, result)
}

/// One line with error bars: (x, mean, half-height of the bar).
pub struct ErrorSeries {
    pub label: String,
    pub points: Vec<(f64, f64, f64)>,
    pub color: RGBColor,
}

/// Lines of means with vertical error bars (e.g. accuracy against the fraction kept).
pub fn plot_error_bars(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[ErrorSeries],
) -> Result<()> {
    let pts = || series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = pts().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = pts().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.1 - p.2), b.max(p.1 + p.2))
    });
    let (x0, x1) = if x0 < x1 {
        (x0, x1)
    } else {
        (x0 - 0.5, x0 + 0.5)
    };
    let pad_x = (x1 - x0) * 0.05;
    let pad_y = ((y1 - y0) * 0.1).max(1e-3);
    render_png(path, (900, 540), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0 - pad_x..x1 + pad_x, y0 - pad_y..y1 + pad_y)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style(("sans-serif", 14))
            .draw()?;
        for s in series {
            let style = ShapeStyle::from(&s.color).stroke_width(2);
            chart
                .draw_series(LineSeries::new(s.points.iter().map(|p| (p.0, p.1)), style))?
                .label(s.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            // Each bar: the vertical span and its two caps.
            let cap = (x1 - x0 + 2.0 * pad_x) * 0.008;
            chart.draw_series(s.points.iter().flat_map(|&(x, m, e)| {
                [
                    vec![(x, m - e), (x, m + e)],
                    vec![(x - cap, m - e), (x + cap, m - e)],
                    vec![(x - cap, m + e), (x + cap, m + e)],
                ]
                .map(|p| PathElement::new(p, style))
            }))?;
            chart.draw_series(
                s.points
                    .iter()
                    .map(|&(x, m, _)| Circle::new((x, m), 3, s.color.filled())),
            )?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    })
}

/// One set of points of a scatter plot.
pub struct Scatter {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

/// Points in a square plot with equal axis scales (e.g. features projected on a plane), each
/// series in its colour, the first drawn first.
pub fn plot_scatter(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[Scatter],
) -> Result<()> {
    let r = series
        .iter()
        .flat_map(|s| s.points.iter())
        .fold(1e-6f64, |m, p| m.max(p.0.abs()).max(p.1.abs()))
        * 1.08;
    render_png(path, (760, 720), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-r..r, -r..r)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style(("sans-serif", 14))
            .draw()?;
        for s in series {
            let color = s.color;
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(move |&p| Circle::new(p, 2, color.mix(0.55).filled())),
                )?
                .label(format!("{} ({})", s.label, s.points.len()))
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

/// One histogram panel per series (each on its own x range), stacked vertically.
pub fn plot_histograms(
    path: &Path,
    title: &str,
    series: &[(String, Vec<f64>)],
    bins: usize,
) -> Result<()> {
    let panels = series.len().max(1);
    let bins = bins.max(1);
    render_png(path, (900, 220 * panels as u32 + 40), |root| {
        let root = root.titled(title, ("sans-serif", 22))?;
        for (i, (area, (label, values))) in root
            .split_evenly((panels, 1))
            .iter()
            .zip(series)
            .enumerate()
        {
            let (lo, hi) = values
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            let hi = if hi > lo { hi } else { lo + 1.0 };
            let width = (hi - lo) / bins as f64;
            let mut counts = vec![0usize; bins];
            for &v in values {
                counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
            }
            let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.05;
            let mut chart = ChartBuilder::on(area)
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(60)
                .build_cartesian_2d(lo..hi, 0.0..top)?;
            chart
                .configure_mesh()
                .x_desc(label.as_str())
                .y_desc("examples")
                .label_style(("sans-serif", 12))
                .draw()?;
            let color = PALETTE[i % PALETTE.len()];
            chart.draw_series(counts.iter().enumerate().map(|(b, &c)| {
                let x = lo + b as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, c as f64)], color.filled())
            }))?;
        }
        Ok(())
    })
}

/// One tile of an image grid: grey pixels in [0, 1] (row-major) and a caption.
pub struct Tile<'a> {
    pub pixels: &'a [f32],
    pub caption: String,
    /// Drawn with a red frame and caption (e.g. a flipped label).
    pub highlight: bool,
}

/// Images in a grid of `per_row` columns, each `rows x cols` pixels scaled by `scale`, with
/// its caption underneath (black ink on white, so digits read as on paper).
pub fn plot_image_grid(
    path: &Path,
    title: &str,
    tiles: &[Tile],
    (rows, cols): (usize, usize),
    per_row: usize,
) -> Result<()> {
    let scale = 3i32;
    let (tw, th) = (cols as i32 * scale + 12, rows as i32 * scale + 30);
    let per_row = per_row.max(1);
    let grid_rows = tiles.len().div_ceil(per_row).max(1);
    let size = (
        (tw * per_row as i32 + 10) as u32,
        (th * grid_rows as i32 + 50) as u32,
    );
    render_png(path, size, |root| {
        root.draw(&Text::new(title, (10, 10), ("sans-serif", 20).into_font()))?;
        for (t, tile) in tiles.iter().enumerate() {
            let (gx, gy) = ((t % per_row) as i32, (t / per_row) as i32);
            let (x0, y0) = (5 + gx * tw + 6, 45 + gy * th);
            let red = RGBColor(214, 39, 40);
            if tile.highlight {
                root.draw(&Rectangle::new(
                    [
                        (x0 - 3, y0 - 3),
                        (x0 + cols as i32 * scale + 2, y0 + rows as i32 * scale + 2),
                    ],
                    red.stroke_width(2),
                ))?;
            }
            for (i, &v) in tile.pixels.iter().enumerate() {
                if v <= 0.0 {
                    continue; // the white background
                }
                let ink = (255.0 * (1.0 - v.clamp(0.0, 1.0))) as u8;
                let (px, py) = (
                    x0 + (i % cols) as i32 * scale,
                    y0 + (i / cols) as i32 * scale,
                );
                root.draw(&Rectangle::new(
                    [(px, py), (px + scale, py + scale)],
                    RGBColor(ink, ink, ink).filled(),
                ))?;
            }
            let color = if tile.highlight { red } else { BLACK };
            root.draw(&Text::new(
                tile.caption.clone(),
                (x0, y0 + rows as i32 * scale + 4),
                ("sans-serif", 13).into_font().color(&color),
            ))?;
        }
        Ok(())
    })
}
