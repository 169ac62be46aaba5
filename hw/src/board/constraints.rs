//! Reading the port names out of the constraint files (`.pcf`, `.xdc`, `.lpf`), so tests and the
//! flow can check that a board top and its constraints agree.

use std::collections::BTreeMap;

/// The ports a constraint file assigns to pins, with the pin (site) of each, by file kind
/// (`pcf`, `xdc` or `lpf`, from the file name's extension). Comments are ignored.
pub fn pinned_ports(file_name: &str, text: &str) -> BTreeMap<String, String> {
    let ext = file_name.rsplit('.').next().unwrap_or("");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match ext {
            // set_io [-nowarn] [-pullup yes|no] [-pullup_resistor ...] PORT PIN
            "pcf" => {
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.first() != Some(&"set_io") {
                    continue;
                }
                let mut rest = vec![];
                let mut i = 1;
                while i < words.len() {
                    if words[i] == "-nowarn" {
                        i += 1;
                    } else if words[i].starts_with('-') {
                        i += 2;
                    } else {
                        rest.push(words[i]);
                        i += 1;
                    }
                }
                if let [port, pin] = rest[..] {
                    out.insert(port.to_string(), pin.to_string());
                }
            }
            // set_property -dict { PACKAGE_PIN E3 ... } [get_ports { clk }]
            "xdc" => {
                if !line.starts_with("set_property") {
                    continue;
                }
                let pin = between(line, "PACKAGE_PIN", "").and_then(|r| {
                    r.split_whitespace()
                        .next()
                        .map(|p| p.trim_matches(['{', '}']).to_string())
                });
                let port = between(line, "get_ports", "]")
                    .map(|r| r.trim().trim_matches(['{', '}']).trim().to_string());
                if let (Some(pin), Some(port)) = (pin, port) {
                    out.insert(port, pin);
                }
            }
            // LOCATE COMP "clk" SITE "G2";
            "lpf" => {
                if !line.starts_with("LOCATE") {
                    continue;
                }
                let quoted: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
                if let [port, pin, ..] = quoted[..] {
                    out.insert(port.to_string(), pin.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

/// The text after `start` (up to `end`, if not empty).
fn between<'a>(line: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = line.find(start)? + start.len();
    let rest = &line[from..];
    if end.is_empty() {
        return Some(rest);
    }
    Some(&rest[..rest.find(end)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_constraint_parsers_read_each_format() {
        let pcf = "set_io -nowarn clk 35  # clock\nset_io -nowarn -pullup yes btn 10\n\
                   set_frequency clk 12\n# set_io x 1\n";
        let got = pinned_ports("a.pcf", pcf);
        assert_eq!(got.len(), 2);
        assert_eq!(got["btn"], "10");
        let xdc =
            "set_property -dict { PACKAGE_PIN E3 IOSTANDARD LVCMOS33 } [get_ports { clk }]; # x\n\
                   create_clock -period 10.00 [get_ports { clk }];\n\
                   set_property CFGBVS VCCO [current_design]\n";
        let got = pinned_ports("a.xdc", xdc);
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            vec![("clk".into(), "E3".into())]
        );
        let lpf = "LOCATE COMP \"clk\" SITE \"G2\";\nIOBUF PORT \"clk\" IO_TYPE=LVCMOS33;\n";
        assert_eq!(pinned_ports("a.lpf", lpf)["clk"], "G2");
    }
}
