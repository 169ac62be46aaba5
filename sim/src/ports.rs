//! The port table of a Verilated top module, from two views of Verilator's own output:
//!
//! - `--xml-only` gives the Verilog names, directions and pin order of the top's ports (the
//!   `<var dir=...>` children of the `<module topModule="1">` element) and, as `origName`, the
//!   name Verilator encodes for C++ (`a$b` -> `a__024b`).
//! - the generated model header `Vskm.h` declares each port as a C++ member with its storage
//!   (`VL_IN8(&clk,0,0);`, `VL_OUTW(&sum,100,0,4);`), in an order of its own (grouped by type).
//!
//! The generated wrapper must name those members exactly, so every XML port is matched to a
//! header declaration by its encoded name; anything that cannot be matched or is not supported
//! (unpacked array ports) is an error naming the port, never a silently missing port.

/// Direction of a port as Verilog declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortDir {
    Input,
    Output,
    Inout,
}

impl PortDir {
    /// Whether the host may drive it.
    pub fn is_input(self) -> bool {
        matches!(self, PortDir::Input | PortDir::Inout)
    }
}

/// One port of the top module as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// The Verilog name.
    pub name: String,
    pub width: u32,
    pub dir: PortDir,
}

impl PortInfo {
    /// Number of 32-bit words of a value of this port (Verilator's `VlWide` layout, LSW first).
    pub fn words(&self) -> usize {
        words_for(self.width)
    }
}

pub(crate) fn words_for(width: u32) -> usize {
    (width as usize).div_ceil(32).max(1)
}

/// How Verilator stores a port in C++: `CData`/`SData`/`IData`/`QData` or `VlWide<words>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Storage {
    U8,
    U16,
    U32,
    U64,
    Wide(usize),
}

/// A port plus what the wrapper generator needs: the C++ member and its storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CPort {
    pub info: PortInfo,
    pub cname: String,
    pub storage: Storage,
}

/// A port as the XML lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct XmlPort {
    pub name: String,
    pub cname: String,
    pub dir: PortDir,
    pub pin: u32,
}

/// A port member as the header declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeaderPort {
    pub cname: String,
    pub dir: PortDir,
    pub storage: Storage,
    pub msb: i64,
    pub lsb: i64,
    /// Declared as an unpacked array (`VL_IN8((&arr)[2],7,0)`): not supported.
    pub array: bool,
}

/// One tag of an XML text: name, attributes, and whether it opens, closes or is self-contained.
struct Tag<'a> {
    name: &'a str,
    body: &'a str,
    kind: TagKind,
}

#[derive(PartialEq)]
enum TagKind {
    Open,
    Close,
    Empty,
}

/// All element tags in document order (comments, `<?...?>` and `<!...>` skipped). Quoted
/// attribute values are skipped as a whole, so a `>` inside one cannot end a tag early.
fn tags(xml: &str) -> Vec<Tag<'_>> {
    let b = xml.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while let Some(off) = xml[i..].find('<') {
        let start = i + off + 1;
        let mut j = start;
        let mut quote = None;
        while j < b.len() {
            match (quote, b[j]) {
                (None, b'"' | b'\'') => quote = Some(b[j]),
                (Some(q), c) if c == q => quote = None,
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        let inner = &xml[start..j.min(b.len())];
        i = (j + 1).min(b.len());
        if inner.starts_with('?') || inner.starts_with('!') {
            continue;
        }
        let (kind, inner) = if let Some(rest) = inner.strip_prefix('/') {
            (TagKind::Close, rest)
        } else if let Some(rest) = inner.strip_suffix('/') {
            (TagKind::Empty, rest)
        } else {
            (TagKind::Open, inner)
        };
        let name_end = inner
            .find(|c: char| c.is_whitespace())
            .unwrap_or(inner.len());
        out.push(Tag {
            name: &inner[..name_end],
            body: &inner[name_end..],
            kind,
        });
    }
    out
}

/// The value of attribute `key` in a tag body, entities decoded.
fn attr(body: &str, key: &str) -> Option<String> {
    let mut rest = body;
    while let Some(pos) = rest.find(key) {
        let before_ok = pos == 0 || rest.as_bytes()[pos - 1].is_ascii_whitespace();
        let after = &rest[pos + key.len()..];
        if before_ok {
            if let Some(v) = after.strip_prefix("=\"") {
                let end = v.find('"')?;
                return Some(unescape(&v[..end]));
            }
        }
        rest = after;
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The ports of the top module in Verilator's `--xml-only` output, in pin order.
pub(crate) fn parse_xml_ports(xml: &str, top: &str) -> Result<Vec<XmlPort>, String> {
    let all = tags(xml);
    let start = all
        .iter()
        .position(|t| {
            t.name == "module"
                && t.kind == TagKind::Open
                && attr(t.body, "topModule").as_deref() == Some("1")
        })
        .ok_or_else(|| "the XML has no top module".to_string())?;
    let found = attr(all[start].body, "name").unwrap_or_default();
    if found != top {
        return Err(format!("the XML's top module is `{found}`, not `{top}`"));
    }
    // Only direct children of the module are its ports (function arguments also carry `dir`).
    let mut depth = 0usize;
    let mut ports = vec![];
    for t in &all[start + 1..] {
        match t.kind {
            TagKind::Close if depth == 0 => break,
            TagKind::Close => depth -= 1,
            TagKind::Open | TagKind::Empty => {
                if depth == 0 && t.name == "var" {
                    if let Some(dir) = attr(t.body, "dir") {
                        ports.push(xml_port(t.body, &dir)?);
                    }
                }
                if t.kind == TagKind::Open {
                    depth += 1;
                }
            }
        }
    }
    ports.sort_by_key(|p| p.pin);
    Ok(ports)
}

fn xml_port(body: &str, dir: &str) -> Result<XmlPort, String> {
    let name = attr(body, "name").ok_or("a port <var> without a name")?;
    let dir = match dir {
        "input" => PortDir::Input,
        "output" => PortDir::Output,
        "inout" => PortDir::Inout,
        d => return Err(format!("port `{name}` has unsupported direction `{d}`")),
    };
    let cname = attr(body, "origName").unwrap_or_else(|| name.clone());
    let pin = attr(body, "pinIndex")
        .and_then(|p| p.parse().ok())
        .unwrap_or(u32::MAX);
    Ok(XmlPort {
        name,
        cname,
        dir,
        pin,
    })
}

/// The port members declared in the model header (`VL_IN8(&x,7,0);` ...).
pub(crate) fn parse_header_ports(header: &str) -> Vec<HeaderPort> {
    header.lines().filter_map(header_port).collect()
}

fn header_port(line: &str) -> Option<HeaderPort> {
    let line = line.trim().strip_prefix("VL_")?;
    let open = line.find('(')?;
    let (mac, rest) = (&line[..open], &line[open + 1..]);
    let (dir, ty) = if let Some(t) = mac.strip_prefix("INOUT") {
        (PortDir::Inout, t)
    } else if let Some(t) = mac.strip_prefix("IN") {
        (PortDir::Input, t)
    } else if let Some(t) = mac.strip_prefix("OUT") {
        (PortDir::Output, t)
    } else {
        return None;
    };
    let args = rest.strip_suffix(");")?;
    // An unpacked array is declared `(&name)[N]`: split after the closing bracket.
    let (target, nums) = match args.find("],").or_else(|| args.find(',')) {
        Some(p) if args[p..].starts_with("],") => (&args[..p + 1], &args[p + 2..]),
        Some(p) => (&args[..p], &args[p + 1..]),
        None => return None,
    };
    let array = target.starts_with("(&");
    let cname = target
        .trim_start_matches("(&")
        .trim_start_matches('&')
        .split(')')
        .next()?
        .to_string();
    let nums: Vec<i64> = nums
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect::<Option<_>>()?;
    let (msb, lsb) = (*nums.first()?, *nums.get(1)?);
    let storage = match ty {
        "8" => Storage::U8,
        "16" => Storage::U16,
        "" => Storage::U32,
        "64" => Storage::U64,
        "W" => Storage::Wide(usize::try_from(*nums.get(2)?).ok()?),
        _ => return None,
    };
    Some(HeaderPort {
        cname,
        dir,
        storage,
        msb,
        lsb,
        array,
    })
}

/// Pair every XML port with its header member (by encoded name; Verilator prefixes C++ keywords
/// with `__SYM__`) and check that the two views agree.
pub(crate) fn match_ports(xml: &[XmlPort], header: &[HeaderPort]) -> Result<Vec<CPort>, String> {
    let mut out = Vec::with_capacity(xml.len());
    for p in xml {
        let h = header
            .iter()
            .find(|h| h.cname == p.cname)
            .or_else(|| {
                let sym = format!("__SYM__{}", p.cname);
                header.iter().find(|h| h.cname == sym)
            })
            .ok_or_else(|| {
                format!(
                    "port `{}` (C++ `{}`) is not declared in the model header",
                    p.name, p.cname
                )
            })?;
        if h.array {
            return Err(format!(
                "port `{}` is an unpacked array: only packed ports are supported",
                p.name
            ));
        }
        if h.dir != p.dir {
            return Err(format!(
                "port `{}`: direction {:?} in the XML but {:?} in the header",
                p.name, p.dir, h.dir
            ));
        }
        let width = u32::try_from(h.msb - h.lsb + 1)
            .ok()
            .filter(|&w| w >= 1)
            .ok_or_else(|| format!("port `{}` has range [{}:{}]", p.name, h.msb, h.lsb))?;
        let expect = match width {
            1..=8 => Storage::U8,
            9..=16 => Storage::U16,
            17..=32 => Storage::U32,
            33..=64 => Storage::U64,
            w => Storage::Wide(words_for(w)),
        };
        if expect != h.storage {
            return Err(format!(
                "port `{}`: {width} bits stored as {:?}, expected {expect:?}",
                p.name, h.storage
            ));
        }
        out.push(CPort {
            info: PortInfo {
                name: p.name.clone(),
                width,
                dir: p.dir,
            },
            cname: h.cname.clone(),
            storage: h.storage,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shapes taken from Verilator 5.006's output for a module with odd port names.
    const XML: &str = r#"<?xml version="1.0" ?>
<verilator_xml>
  <netlist>
    <module loc="c,1,8,1,10" name="t2" origName="t2" topModule="1">
      <var loc="a" name="clk" dtype_id="1" dir="input" pinIndex="1" vartype="logic" origName="clk"/>
      <var loc="a" name="a$b" dtype_id="1" dir="input" pinIndex="2" vartype="logic" origName="a__024b"/>
      <var loc="a" name="q33" dtype_id="6" dir="output" pinIndex="4" vartype="logic" origName="q33">
        <const loc="c" name="33&apos;h0" dtype_id="6"/>
      </var>
      <var loc="a" name="delete" dtype_id="1" dir="input" pinIndex="3" vartype="logic" origName="delete"/>
      <func loc="c" name="f" dtype_id="3">
        <var loc="c" name="z" dtype_id="3" dir="input" vartype="logic" origName="z"/>
      </func>
      <var loc="a" name="internal" dtype_id="1" vartype="logic" origName="internal"/>
    </module>
    <module loc="c" name="sub" origName="sub">
      <var loc="a" name="x" dtype_id="1" dir="input" pinIndex="1" origName="x"/>
    </module>
  </netlist>
</verilator_xml>"#;

    const HEADER: &str = "
    VL_IN8(&clk,0,0);
    VL_IN8(&a__024b,0,0);
    VL_IN8(&__SYM__delete,0,0);
    VL_OUT64(&q33,32,0);
    VL_OUTW(&sum,100,0,4);
    VL_IN8((&arr)[2],7,0);
";

    #[test]
    fn reads_top_ports_in_pin_order_and_matches_the_header() {
        let x = parse_xml_ports(XML, "t2").expect("parses");
        let names: Vec<_> = x
            .iter()
            .map(|p| (p.name.as_str(), p.cname.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("clk", "clk"),
                ("a$b", "a__024b"),
                ("delete", "delete"),
                ("q33", "q33")
            ]
        );
        let h = parse_header_ports(HEADER);
        assert_eq!(h.len(), 6);
        assert_eq!(h[4].storage, Storage::Wide(4));
        assert!(h[5].array && h[5].cname == "arr");
        let m = match_ports(&x, &h).expect("matches");
        assert_eq!(m[2].cname, "__SYM__delete");
        assert_eq!(m[3].info.width, 33);
        assert_eq!(m[3].storage, Storage::U64);
        assert!(parse_xml_ports(XML, "other").is_err());
    }

    #[test]
    fn rejects_arrays_and_unknown_members() {
        let arr = XmlPort {
            name: "arr".into(),
            cname: "arr".into(),
            dir: PortDir::Input,
            pin: 1,
        };
        let h = parse_header_ports(HEADER);
        assert!(match_ports(std::slice::from_ref(&arr), &h)
            .unwrap_err()
            .contains("unpacked array"));
        let ghost = XmlPort {
            name: "ghost".into(),
            cname: "ghost".into(),
            ..arr
        };
        assert!(match_ports(&[ghost], &h).unwrap_err().contains("ghost"));
    }
}
