//! A sweep plan (`PLAN.toml`): a base `shiftkit` command line and axes of flag values, expanded
//! into jobs (the cartesian product of the axes, with `zip` groups varying together and
//! `exclude` rules removing combinations). Every key is checked against the command's own flags
//! before anything is written, so a bad plan fails with one line that names the key.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Where a command writes its results, so the runner can point it into the job's folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// `--out JOBDIR` (training runs: summary.json; report, gen, bitstream).
    Dir,
    /// `--json JOBDIR/result.json` (sim, synth).
    Json,
    /// `gemm`: `--out JOBDIR/c.npy` (its product) and `--json JOBDIR/result.json`.
    GemmFiles,
}

/// Which output flags each top-level subcommand takes (checked against clap in the tests).
pub fn output_of(subcommand: &str) -> Option<Output> {
    match subcommand {
        "gemm" => Some(Output::GemmFiles),
        "sim" | "synth" => Some(Output::Json),
        "train" | "report" | "gen" | "bitstream" | "compare" => Some(Output::Dir),
        _ => None,
    }
}

impl Output {
    /// The flags that send a job's results into `job_dir`.
    pub fn flags(self, job_dir: &Path) -> Vec<String> {
        let p = |name: &str| job_dir.join(name).to_string_lossy().into_owned();
        match self {
            Output::Dir => vec!["--out".into(), job_dir.to_string_lossy().into_owned()],
            Output::Json => vec!["--json".into(), p("result.json")],
            Output::GemmFiles => vec![
                "--out".into(),
                p("c.npy"),
                "--json".into(),
                p("result.json"),
            ],
        }
    }
}

/// One axis: a flag and its values as they go on the command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub flag: String,
    pub values: Vec<Value>,
}

/// An axis value: `--flag VALUE`, or a switch (`true` gives `--flag`, `false` nothing).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Arg(String),
    Switch(bool),
}

impl Value {
    /// As shown in results.csv and job.json.
    pub fn text(&self) -> String {
        match self {
            Value::Arg(s) => s.clone(),
            Value::Switch(b) => b.to_string(),
        }
    }
}

/// One job: its stable id, its axis values (in the plan's axis order) and its command line
/// without the binary and without the output flags.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: String,
    pub axes: Vec<(String, Value)>,
    pub args: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub base: Vec<String>,
    /// The subcommand path of `base` (`["train", "grokking"]`).
    pub command: Vec<String>,
    pub output: Output,
    pub axes: Vec<Axis>,
    pub jobs: Vec<Job>,
}

impl Plan {
    pub fn axis_names(&self) -> Vec<String> {
        self.axes.iter().map(|a| a.flag.clone()).collect()
    }
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{}: {msg}", path.display()))
}

/// Read and expand a plan file; `cli` is the `shiftkit` command tree its flags are checked
/// against.
pub fn load(path: &Path, cli: &clap::Command) -> Result<Plan> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(path, format!("cannot read the plan: {e}")))?;
    parse(&text, cli).map_err(|msg| bad(path, msg))
}

/// A TOML error as one line: where, and what.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let src = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("TOML error on line {line} ({src}): {msg}")
        }
        None => format!("TOML error: {msg}"),
    }
}

/// Expand a plan from its text (errors are one line without the file name).
pub fn parse(text: &str, cli: &clap::Command) -> std::result::Result<Plan, String> {
    let table: toml::Table = text.parse().map_err(|e| toml_error(text, &e))?;
    for key in table.keys() {
        if !["base", "axes", "zip", "exclude"].contains(&key.as_str()) {
            return Err(format!(
                "unknown key '{key}': a plan has base, [axes], zip and exclude"
            ));
        }
    }
    let base: Vec<String> = match table.get("base") {
        Some(toml::Value::String(s)) => s.split_whitespace().map(String::from).collect(),
        Some(_) => return Err("base: must be a string (a shiftkit command line)".into()),
        None => {
            return Err(
                "base: missing: give the command, e.g. base = \"train grokking --epochs 300\""
                    .into(),
            )
        }
    };
    let (command, leaf) = subcommand_path(cli, &base)?;
    let output = output_of(&command[0]).ok_or_else(|| {
        format!(
            "base: `{}` cannot be swept: use train, gemm, sim, synth, report, gen or bitstream",
            command[0]
        )
    })?;
    for own in ["--out", "--json"] {
        if base
            .iter()
            .any(|t| t == own || t.starts_with(&format!("{own}=")))
        {
            return Err(format!(
                "base: remove {own}: the runner gives each job its own output in DIR/jobs/<id>/"
            ));
        }
    }
    let flags: Vec<&str> = leaf.get_arguments().filter_map(|a| a.get_long()).collect();
    let axes = read_axes(table.get("axes"), &flags, &command)?;
    let groups = read_zip(table.get("zip"), &axes)?;
    let excludes = read_excludes(table.get("exclude"), &axes)?;
    let mut jobs = expand(&base, &axes, &groups);
    for (i, rule) in excludes.iter().enumerate() {
        let before = jobs.len();
        jobs.retain(|j| !rule.matches(j));
        if jobs.len() == before {
            return Err(format!(
                "exclude[{i}]: matches no job ({})",
                rule.describe()
            ));
        }
    }
    if jobs.is_empty() {
        return Err("exclude: the rules remove every job".into());
    }
    let plan = Plan {
        base,
        command,
        output,
        axes,
        jobs,
    };
    check_command_lines(&plan, cli)?;
    Ok(plan)
}

/// The subcommands `base` starts with, and the clap command they lead to.
fn subcommand_path<'c>(
    cli: &'c clap::Command,
    base: &[String],
) -> std::result::Result<(Vec<String>, &'c clap::Command), String> {
    let mut cmd = cli;
    let mut path = Vec::new();
    for tok in base {
        if tok.starts_with('-') {
            break;
        }
        match cmd.find_subcommand(tok) {
            Some(sub) => {
                path.push(tok.clone());
                cmd = sub;
            }
            None if cmd.has_subcommands() => {
                let parent = std::iter::once("shiftkit")
                    .chain(path.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ");
                return Err(format!(
                    "base: `{parent}` has no subcommand '{tok}' (see {parent} --help)"
                ));
            }
            None => break,
        }
    }
    if path.is_empty() {
        return Err("base: must start with a shiftkit subcommand (train, gemm, synth, ...)".into());
    }
    if cmd.has_subcommands() {
        return Err(format!(
            "base: `{}` needs a subcommand (see shiftkit {} --help)",
            path.join(" "),
            path.join(" ")
        ));
    }
    Ok((path, cmd))
}

fn read_axes(
    v: Option<&toml::Value>,
    flags: &[&str],
    command: &[String],
) -> std::result::Result<Vec<Axis>, String> {
    let table = match v {
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err("axes: must be a table ([axes] with flag = [values])".into()),
        None => return Err("axes: missing: add [axes] with at least one flag = [values]".into()),
    };
    if table.is_empty() {
        return Err("axes: empty: add at least one flag = [values]".into());
    }
    let mut axes = Vec::new();
    for (key, list) in table {
        let flag = key.trim_start_matches('-').to_string();
        if flag == "out" || flag == "json" {
            return Err(format!(
                "axes.{key}: the runner sets --{flag} (each job writes into DIR/jobs/<id>/)"
            ));
        }
        if !flags.contains(&flag.as_str()) {
            return Err(format!(
                "axes.{key}: `{}` has no flag --{flag} (see shiftkit {} --help)",
                command.join(" "),
                command.join(" ")
            ));
        }
        let items = match list {
            toml::Value::Array(a) => a,
            _ => return Err(format!("axes.{key}: must be a list of values, e.g. [1, 2]")),
        };
        if items.is_empty() {
            return Err(format!("axes.{key}: empty list: give at least one value"));
        }
        let values = items
            .iter()
            .map(|v| value_of(v).map_err(|m| format!("axes.{key}: {m}")))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        for (i, v) in values.iter().enumerate() {
            if values[..i].contains(v) {
                return Err(format!("axes.{key}: value {} is listed twice", v.text()));
            }
        }
        axes.push(Axis { flag, values });
    }
    Ok(axes)
}

fn value_of(v: &toml::Value) -> std::result::Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::Arg(s.clone()),
        toml::Value::Integer(i) => Value::Arg(i.to_string()),
        toml::Value::Float(f) => Value::Arg(f.to_string()),
        toml::Value::Boolean(b) => Value::Switch(*b),
        // A list value of a comma-separated flag (`fp32_gemms = [["forward", "weight-grad"]]`).
        toml::Value::Array(a) => Value::Arg(
            a.iter()
                .map(|x| match value_of(x)? {
                    Value::Arg(s) => Ok(s),
                    Value::Switch(_) => Err("a list value cannot hold booleans".to_string()),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?
                .join(","),
        ),
        other => {
            return Err(format!(
                "unsupported value {other}: use strings, numbers or booleans"
            ))
        }
    })
}

/// Indices into `axes`: groups of axes that vary together. Every axis is in exactly one group.
fn read_zip(
    v: Option<&toml::Value>,
    axes: &[Axis],
) -> std::result::Result<Vec<Vec<usize>>, String> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    if let Some(v) = v {
        let list = v
            .as_array()
            .ok_or("zip: must be a list of axis groups, e.g. zip = [[\"rows\", \"cols\"]]")?;
        for (gi, g) in list.iter().enumerate() {
            let names = g
                .as_array()
                .ok_or(format!("zip[{gi}]: must be a list of axis names"))?;
            let mut group = Vec::new();
            for n in names {
                let name = n
                    .as_str()
                    .ok_or(format!("zip[{gi}]: axis names must be strings"))?;
                let name = name.trim_start_matches('-');
                let i = axes
                    .iter()
                    .position(|a| a.flag == name)
                    .ok_or(format!("zip[{gi}]: '{name}' is not an axis of [axes]"))?;
                if groups.iter().flatten().chain(&group).any(|&j| j == i) {
                    return Err(format!(
                        "zip[{gi}]: axis '{name}' is in more than one group"
                    ));
                }
                group.push(i);
            }
            if group.len() < 2 {
                return Err(format!("zip[{gi}]: a group needs at least two axes"));
            }
            let len = axes[group[0]].values.len();
            if let Some(&j) = group.iter().find(|&&j| axes[j].values.len() != len) {
                return Err(format!(
                    "zip[{gi}]: axes of a group need as many values each ('{}' has {len}, '{}' has {})",
                    axes[group[0]].flag,
                    axes[j].flag,
                    axes[j].values.len()
                ));
            }
            groups.push(group);
        }
    }
    for i in 0..axes.len() {
        if !groups.iter().flatten().any(|&j| j == i) {
            groups.push(vec![i]);
        }
    }
    // The product runs over the groups in the order of their first axis in [axes].
    groups.sort_by_key(|g| g.iter().copied().min());
    Ok(groups)
}

/// An exclude rule: a job is removed when each named axis has one of the listed values.
struct Exclude {
    when: Vec<(String, Vec<Value>)>,
}

impl Exclude {
    fn matches(&self, job: &Job) -> bool {
        self.when
            .iter()
            .all(|(flag, vals)| job.axes.iter().any(|(f, v)| f == flag && vals.contains(v)))
    }
    fn describe(&self) -> String {
        self.when
            .iter()
            .map(|(f, vs)| {
                let v: Vec<String> = vs.iter().map(Value::text).collect();
                format!("{f} = {}", v.join(" | "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn read_excludes(
    v: Option<&toml::Value>,
    axes: &[Axis],
) -> std::result::Result<Vec<Exclude>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let list = v.as_array().ok_or(
        "exclude: must be a list of tables, e.g. exclude = [{ format = \"sq4\", seed = 2 }]",
    )?;
    let mut rules = Vec::new();
    for (i, rule) in list.iter().enumerate() {
        let t = rule
            .as_table()
            .ok_or(format!("exclude[{i}]: must be a table of axis = value"))?;
        if t.is_empty() {
            return Err(format!("exclude[{i}]: empty: name at least one axis"));
        }
        let mut when = Vec::new();
        for (key, val) in t {
            let flag = key.trim_start_matches('-').to_string();
            let axis = axes
                .iter()
                .find(|a| a.flag == flag)
                .ok_or(format!("exclude[{i}].{key}: not an axis of [axes]"))?;
            let vals = match val {
                toml::Value::Array(a) => a
                    .iter()
                    .map(value_of)
                    .collect::<std::result::Result<Vec<_>, _>>(),
                other => value_of(other).map(|v| vec![v]),
            }
            .map_err(|m| format!("exclude[{i}].{key}: {m}"))?;
            if let Some(v) = vals.iter().find(|v| !axis.values.contains(v)) {
                return Err(format!(
                    "exclude[{i}].{key}: matches no job: {} is not a value of axes.{flag}",
                    v.text()
                ));
            }
            when.push((flag, vals));
        }
        rules.push(Exclude { when });
    }
    Ok(rules)
}

/// The cartesian product over the groups (the first group outermost), each job with its id.
fn expand(base: &[String], axes: &[Axis], groups: &[Vec<usize>]) -> Vec<Job> {
    let mut combos: Vec<Vec<(usize, usize)>> = vec![Vec::new()]; // (axis, value index)
    for g in groups {
        let n = axes[g[0]].values.len();
        combos = combos
            .into_iter()
            .flat_map(|c| {
                (0..n).map(move |vi| {
                    let mut c = c.clone();
                    c.extend(g.iter().map(|&a| (a, vi)));
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|mut c| {
            c.sort_by_key(|&(a, _)| a);
            let job_axes: Vec<(String, Value)> = c
                .iter()
                .map(|&(a, vi)| (axes[a].flag.clone(), axes[a].values[vi].clone()))
                .collect();
            let mut args = base.to_vec();
            for (flag, v) in &job_axes {
                match v {
                    Value::Arg(s) => {
                        args.push(format!("--{flag}"));
                        args.push(s.clone());
                    }
                    Value::Switch(true) => args.push(format!("--{flag}")),
                    Value::Switch(false) => {}
                }
            }
            Job {
                id: job_id(base, &job_axes),
                axes: job_axes,
                args,
            }
        })
        .collect()
}

/// A stable id from the job's flags only (the base command and its own axis values, sorted by
/// flag), so adding values to an axis keeps the ids of the jobs that were already there.
/// FNV-1a, 64 bits: stable across Rust versions and platforms, unlike `DefaultHasher`.
pub fn job_id(base: &[String], axes: &[(String, Value)]) -> String {
    let mut sorted: BTreeMap<&str, String> = BTreeMap::new();
    for (f, v) in axes {
        sorted.insert(f, v.text());
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |s: &str| {
        for b in s.bytes().chain([0u8]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for t in base {
        feed(t);
    }
    for (f, v) in sorted {
        feed(f);
        feed(&v);
    }
    format!("{h:016x}")
}

/// Every job's command line must parse (a bad value such as `format = ["sq9"]` fails here,
/// before any job folder exists).
fn check_command_lines(plan: &Plan, cli: &clap::Command) -> std::result::Result<(), String> {
    let out = plan.output.flags(Path::new("DIR/jobs/ID"));
    let mut seen = std::collections::HashSet::new();
    for job in &plan.jobs {
        if !seen.insert(&job.id) {
            return Err(format!(
                "two jobs have the same flags ({})",
                describe(&job.axes)
            ));
        }
        let argv = std::iter::once("shiftkit".to_string())
            .chain(job.args.iter().cloned())
            .chain(out.iter().cloned());
        if let Err(e) = cli.clone().try_get_matches_from(argv) {
            let text = e.render().to_string();
            // clap's message up to its usage hint, as one line.
            let first = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
                .trim_start_matches("error: ")
                .to_string();
            return Err(format!("job {}: {first}", describe(&job.axes)));
        }
    }
    Ok(())
}

/// `format=sq4 seed=0`.
pub fn describe(axes: &[(String, Value)]) -> String {
    axes.iter()
        .map(|(f, v)| format!("{f}={}", v.text()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Plan {
        parse(text, &crate::cli::command()).unwrap()
    }

    #[test]
    fn every_subcommand_has_its_output_flags() {
        let cli = crate::cli::command();
        for sub in cli.get_subcommands() {
            let name = sub.get_name();
            let leaves: Vec<&clap::Command> = if sub.has_subcommands() {
                sub.get_subcommands().collect()
            } else {
                vec![sub]
            };
            for leaf in leaves {
                let longs: Vec<&str> = leaf.get_arguments().filter_map(|a| a.get_long()).collect();
                match output_of(name) {
                    Some(Output::Dir) => assert!(longs.contains(&"out"), "{name}"),
                    Some(Output::Json) => assert!(longs.contains(&"json"), "{name}"),
                    Some(Output::GemmFiles) => {
                        assert!(longs.contains(&"out") && longs.contains(&"json"), "{name}")
                    }
                    // `clip` mixes output kinds (`embed --out Y.npy`, `init --out DIR`): not
                    // sweepable yet.
                    None => assert!(
                        ["demo", "sweep", "clip"].contains(&name),
                        "add `{name}` to output_of"
                    ),
                }
            }
        }
    }

    #[test]
    fn ids_depend_only_on_the_jobs_own_flags() {
        let small = plan("base = \"train grokking --epochs 5\"\n[axes]\nformat = [\"sq4\", \"sq6\"]\nseed = [0, 1]\n");
        let big = plan("base = \"train grokking --epochs 5\"\n[axes]\nformat = [\"sq4\", \"fp16\", \"sq6\"]\nseed = [0, 1, 2]\n");
        assert_eq!(small.jobs.len(), 4);
        for j in &small.jobs {
            let same = big.jobs.iter().find(|b| b.axes == j.axes).unwrap();
            assert_eq!(same.id, j.id);
        }
        let mut ids: Vec<&str> = big.jobs.iter().map(|j| j.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 9);
        // Axis order in the file does not change an id; the base command does.
        let swapped =
            plan("base = \"train grokking --epochs 5\"\n[axes]\nseed = [0]\nformat = [\"sq4\"]\n");
        assert_eq!(swapped.jobs[0].id, small.jobs[0].id);
        let other =
            plan("base = \"train grokking --epochs 6\"\n[axes]\nformat = [\"sq4\"]\nseed = [0]\n");
        assert_ne!(other.jobs[0].id, small.jobs[0].id);
    }

    #[test]
    fn zip_groups_vary_together_and_excludes_remove_jobs() {
        let p = plan(
            "base = \"synth\"\nzip = [[\"rows\", \"cols\"]]\n[axes]\ndesign = [\"sq4\", \"fp16\"]\nrows = [2, 3]\ncols = [2, 3]\ntarget = [\"ice40\", \"xc7-nodsp\"]\n[[exclude]]\ndesign = \"fp16\"\ntarget = [\"ice40\"]\n",
        );
        let got: Vec<String> = p.jobs.iter().map(|j| describe(&j.axes)).collect();
        assert_eq!(
            got,
            [
                "design=sq4 rows=2 cols=2 target=ice40",
                "design=sq4 rows=2 cols=2 target=xc7-nodsp",
                "design=sq4 rows=3 cols=3 target=ice40",
                "design=sq4 rows=3 cols=3 target=xc7-nodsp",
                "design=fp16 rows=2 cols=2 target=xc7-nodsp",
                "design=fp16 rows=3 cols=3 target=xc7-nodsp",
            ]
        );
        assert_eq!(p.output, Output::Json);
        assert_eq!(
            &p.jobs[0].args,
            &["synth", "--design", "sq4", "--rows", "2", "--cols", "2", "--target", "ice40"]
        );
    }

    #[test]
    fn switch_axes_add_or_omit_the_flag() {
        let p = plan("base = \"train grokking --format sq4\"\n[axes]\nticket = [false, true]\n");
        assert_eq!(p.jobs[0].args, ["train", "grokking", "--format", "sq4"]);
        assert_eq!(
            p.jobs[1].args,
            ["train", "grokking", "--format", "sq4", "--ticket"]
        );
    }

    #[test]
    fn the_example_plans_expand() {
        let grok = plan(include_str!(
            "../../../examples/sweeps/grokking-formats.toml"
        ));
        assert_eq!(grok.jobs.len(), 32);
        assert_eq!(grok.output, Output::Dir);
        let hw = plan(include_str!("../../../examples/sweeps/hardware.toml"));
        assert_eq!(hw.jobs.len(), 7 * 3 * 2);
        assert_eq!(hw.output, Output::Json);
    }
}
