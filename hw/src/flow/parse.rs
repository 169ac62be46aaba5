//! Reading results out of the tools' logs and reports.

use super::{ClockTiming, Utilization};
use std::collections::BTreeMap;

/// The first line that reports an error (`ERROR:` from yosys / nextpnr / Vivado, `%Error`),
/// trimmed of nextpnr's `Info:`-style prefixes.
pub fn first_error(log: &str) -> Option<String> {
    log.lines()
        .map(str::trim)
        .find(|l| l.starts_with("ERROR") || l.starts_with("%Error") || l.contains("ERROR:"))
        .map(|l| l.to_string())
}

/// nextpnr's achieved frequencies: the last "Max frequency for clock 'NAME': X MHz" line of
/// each clock (post-route; the earlier ones are placement estimates).
pub fn nextpnr_fmax(log: &str, target_mhz: f64) -> Vec<ClockTiming> {
    let mut clocks: Vec<ClockTiming> = vec![];
    for line in log.lines() {
        let Some(at) = line.find("Max frequency for clock") else {
            continue;
        };
        let rest = &line[at + "Max frequency for clock".len()..];
        let name = rest
            .split('\'')
            .nth(1)
            .unwrap_or(rest.split(':').next().unwrap_or("").trim())
            .to_string();
        let Some(colon) = rest
            .rfind("': ")
            .map(|i| i + 3)
            .or_else(|| rest.find(": ").map(|i| i + 2))
        else {
            continue;
        };
        let Some(mhz) = rest[colon..]
            .split_whitespace()
            .next()
            .and_then(|x| x.parse::<f64>().ok())
        else {
            continue;
        };
        match clocks.iter_mut().find(|c| c.clock == name) {
            Some(c) => c.fmax_mhz = mhz,
            None => clocks.push(ClockTiming {
                clock: name,
                fmax_mhz: mhz,
                target_mhz,
            }),
        }
    }
    clocks
}

/// nextpnr's "Device utilisation" block: `NAME: used/ available  pct%`.
pub fn nextpnr_utilization(log: &str) -> BTreeMap<String, Utilization> {
    let mut out = BTreeMap::new();
    let mut inside = false;
    for line in log.lines() {
        let l = line.trim_start_matches("Info:").trim();
        if l.starts_with("Device utilisation") {
            inside = true;
            out.clear();
            continue;
        }
        if !inside {
            continue;
        }
        let parsed = l.split_once(':').and_then(|(name, rest)| {
            let (used, rest) = rest.split_once('/')?;
            let available = rest.split_whitespace().next()?;
            Some((
                name.trim().to_string(),
                Utilization {
                    used: used.trim().parse().ok()?,
                    available: available.parse().ok()?,
                },
            ))
        });
        match parsed {
            Some((name, u)) => {
                out.insert(name, u);
            }
            None if l.is_empty() => {}
            None => inside = false,
        }
    }
    out
}

/// WNS (ns) from Vivado's `report_timing_summary` ("Design Timing Summary" table).
pub fn vivado_wns(report: &str) -> Option<f64> {
    let mut lines = report.lines();
    while let Some(l) = lines.next() {
        if l.trim_start().starts_with("WNS(ns)") {
            // A dashes line, then the values.
            let values = lines.find(|l| !l.trim().is_empty() && !l.trim().starts_with('-'))?;
            return values.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

/// The main rows of Vivado's `report_utilization` tables: `| Name | Used | Fixed | ... |
/// Available | Util% |`.
pub fn vivado_utilization(report: &str) -> BTreeMap<String, Utilization> {
    const KEEP: [&str; 4] = ["Slice LUTs", "Slice Registers", "Block RAM Tile", "DSPs"];
    let mut out = BTreeMap::new();
    for line in report.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 || !KEEP.contains(&cells[1]) || out.contains_key(cells[1]) {
            continue;
        }
        let n = cells.len();
        // ["", name, used, fixed, (prohibited,) available, util%, ""]
        if let (Ok(used), Ok(available)) = (cells[2].parse::<f64>(), cells[n - 3].parse::<f64>()) {
            out.insert(
                cells[1].to_string(),
                Utilization {
                    used: used as u64,
                    available: available as u64,
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEXTPNR: &str = "\
Info: Device utilisation:
Info: \t         ICESTORM_LC:   512/ 5280     9%
Info: \t        ICESTORM_RAM:     0/   30     0%
Info: \t               SB_IO:     7/   96     7%
Info: \t               SB_GB:     2/    8    25%
Info: Placed 7 cells based on constraints.
Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 61.50 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 55.12 MHz (PASS at 12.00 MHz)
ERROR: Max frequency for clock 'x': 10.00 MHz (FAIL at 12.00 MHz)
";

    #[test]
    fn board_flow_parses_nextpnr_logs() {
        let clocks = nextpnr_fmax(NEXTPNR, 12.0);
        assert_eq!(clocks.len(), 2);
        assert_eq!(clocks[0].clock, "clk$SB_IO_IN_$glb_clk");
        assert_eq!(clocks[0].fmax_mhz, 55.12, "the post-route value");
        let u = nextpnr_utilization(NEXTPNR);
        assert_eq!(
            u["ICESTORM_LC"],
            Utilization {
                used: 512,
                available: 5280
            }
        );
        assert_eq!(u.len(), 4);
        assert_eq!(
            first_error(NEXTPNR).unwrap(),
            "ERROR: Max frequency for clock 'x': 10.00 MHz (FAIL at 12.00 MHz)"
        );
    }

    #[test]
    fn board_flow_parses_vivado_reports() {
        let timing = "\
| Design Timing Summary
| ---------------------
------------------------------------------------------------------------

    WNS(ns)      TNS(ns)  TNS Failing Endpoints  TNS Total Endpoints      WHS(ns)
    -------      -------  ---------------------  -------------------      -------
      6.250        0.000                      0                  310        0.081
";
        assert_eq!(vivado_wns(timing), Some(6.25));
        let util = "\
+-------------------------+------+-------+------------+-----------+-------+
|        Site Type        | Used | Fixed | Prohibited | Available | Util% |
+-------------------------+------+-------+------------+-----------+-------+
| Slice LUTs              |  412 |     0 |          0 |     20800 |  1.98 |
|   LUT as Logic          |  412 |     0 |          0 |     20800 |  1.98 |
| Slice Registers         |  530 |     0 |          0 |     41600 |  1.27 |
";
        let u = vivado_utilization(util);
        assert_eq!(
            u["Slice LUTs"],
            Utilization {
                used: 412,
                available: 20800
            }
        );
        assert_eq!(u["Slice Registers"].used, 530);
    }
}
