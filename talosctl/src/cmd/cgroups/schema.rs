//! The columns of `talosctl cgroups`: upstream's presets, and schema files in the same terms.
//!
//! A column reads one value of a cgroup and formats it. Its `value` is written as
//! `SOURCE [/ SOURCE] [| FORMAT]`, where a source is a cgroup file (`memory.current`), a key
//! of a flat keyed file (`cpu.stat:user_usec`) or a key of a nested keyed file
//! (`io.pressure:some.avg10`); `A / B` is A as a percentage of B, and the formats are `bytes`
//! (IEC units), `usec` (a duration), `share` (a percentage of the parent's value), `count`
//! (lines of the file), `list` (the file's values, bracketed), `raw` (the file's text),
//! `names` (the processes of `cgroup.procs` by name), `io-bytes` and `io-ops` (`io.stat` per
//! device). Without a format, the value is printed as the kernel wrote it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;

use super::tree::Node;

/// Upstream's preset names, in its order.
pub const PRESETS: [&str; 7] = ["cpu", "cpuset", "io", "memory", "process", "psi", "swap"];

/// `(column name, value, width)` of each preset's columns.
fn preset_columns(name: &str) -> Option<&'static [(&'static str, &'static str, usize)]> {
    Some(match name {
        "cpu" => &[
            ("CpuWeight", "cpu.weight", 6),
            ("CpuNice", "cpu.weight.nice", 6),
            ("CpuMax", "cpu.max | list", 6),
            ("CpuUser", "cpu.stat:user_usec | usec", 12),
            ("User/%", "cpu.stat:user_usec | share", 6),
            ("CpuSystem", "cpu.stat:system_usec | usec", 12),
            ("System/%", "cpu.stat:system_usec | share", 6),
            ("Throttled", "cpu.stat:throttled_usec | usec", 12),
        ],
        "cpuset" => &[
            ("CpuSet", "cpuset.cpus | raw", 12),
            ("CpuSet(Eff)", "cpuset.cpus.effective | raw", 12),
            ("Mems", "cpuset.mems | raw", 12),
            ("Mems(Eff)", "cpuset.mems.effective | raw", 12),
        ],
        "io" => &[
            ("Bytes Read/Written", "io.stat | io-bytes", 0),
            ("ios Read/Write", "io.stat | io-ops", 0),
            ("PressAvg10", "io.pressure:some.avg10", 6),
            ("PressAvg60", "io.pressure:some.avg60", 6),
            ("PressTotal", "io.pressure:some.total | usec", 12),
        ],
        "memory" => &[
            ("MemCurrent", "memory.current | bytes", 8),
            ("MemPeak", "memory.peak | bytes", 8),
            ("MemLow", "memory.low | bytes", 8),
            ("Peak/Low", "memory.peak / memory.low", 6),
            ("MemHigh", "memory.high | bytes", 8),
            ("MemMin", "memory.min | bytes", 8),
            ("Current/Min", "memory.current / memory.min", 6),
            ("MemMax", "memory.max | bytes", 8),
        ],
        "process" => &[
            ("PidsCurrent", "pids.current", 8),
            ("PidsPeak", "pids.peak", 8),
            ("PidsMax", "pids.max", 8),
            ("Procs", "cgroup.procs | count", 7),
            ("Threads", "cgroup.threads | count", 7),
            ("Processes", "cgroup.procs | names", 0),
        ],
        "psi" => &[
            ("MemCurrent", "memory.current | bytes", 8),
            ("MemPsiSome10", "memory.pressure:some.avg10", 6),
            ("MemPsi10", "memory.pressure:full.avg10", 6),
            ("CpuPsi10", "cpu.pressure:full.avg10", 6),
            ("IoPsi10", "io.pressure:full.avg10", 6),
        ],
        "swap" => &[
            ("SwapCurrent", "memory.swap.current | bytes", 8),
            ("SwapPeak", "memory.swap.peak | bytes", 8),
            ("SwapHigh", "memory.swap.high | bytes", 8),
            ("SwapMax", "memory.swap.max | bytes", 8),
            ("ZswapCurrent", "memory.zswap.current | bytes", 8),
            ("ZswapMax", "memory.zswap.max | bytes", 8),
            ("ZswapWriteback", "memory.zswap.writeback", 0),
        ],
        _ => return None,
    })
}

/// Longest text of the `names` column (upstream cuts it there too).
const NAMES_WIDTH: usize = 50;

/// A schema file: `columns: [{name, value, width}]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    columns: Vec<ColumnFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ColumnFile {
    name: String,
    value: String,
    #[serde(default)]
    width: usize,
}

/// The columns to print.
#[derive(Debug, PartialEq)]
pub struct Schema {
    pub columns: Vec<Column>,
}

#[derive(Debug, PartialEq)]
pub struct Column {
    pub name: String,
    value: Expression,
    /// The value is right-aligned to this many characters (as `printf "%6s"` does).
    width: usize,
}

#[derive(Debug, PartialEq)]
enum Expression {
    Value(Source, Format),
    Ratio(Source, Source),
}

/// Where a value comes from.
#[derive(Debug, PartialEq)]
struct Source {
    file: String,
    key: Option<String>,
    sub_key: Option<String>,
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Format {
    Plain,
    Bytes,
    Usec,
    Share,
    Count,
    List,
    Raw,
    Names,
    IoBytes,
    IoOps,
}

impl Schema {
    pub fn preset(name: &str) -> anyhow::Result<Schema> {
        let columns = preset_columns(name).ok_or_else(|| {
            anyhow::anyhow!("invalid preset name: {name} (valid {})", PRESETS.join(", "))
        })?;
        let columns = columns
            .iter()
            .map(|&(name, value, width)| Column::parse(name, value, width))
            .collect::<anyhow::Result<_>>()?;
        Ok(Schema { columns })
    }

    pub fn from_yaml(text: &str) -> anyhow::Result<Schema> {
        let file: SchemaFile = serde_norway::from_str(text)?;
        if file.columns.is_empty() {
            anyhow::bail!("the schema has no columns");
        }
        let columns = file
            .columns
            .into_iter()
            .map(|c| Column::parse(&c.name, &c.value, c.width))
            .collect::<anyhow::Result<_>>()?;
        Ok(Schema { columns })
    }

    /// The cgroup files the columns read.
    pub fn files(&self) -> BTreeSet<&str> {
        let mut files = BTreeSet::new();
        for column in &self.columns {
            match &column.value {
                Expression::Value(source, _) => files.insert(source.file.as_str()),
                Expression::Ratio(a, b) => {
                    files.insert(a.file.as_str());
                    files.insert(b.file.as_str())
                }
            };
        }
        files
    }

    /// Whether a column shows processes by name.
    pub fn names_processes(&self) -> bool {
        self.columns
            .iter()
            .any(|c| matches!(c.value, Expression::Value(_, Format::Names)))
    }

    /// Whether a column shows devices.
    pub fn names_devices(&self) -> bool {
        self.columns.iter().any(|c| {
            matches!(
                c.value,
                Expression::Value(_, Format::IoBytes | Format::IoOps)
            )
        })
    }

    pub fn header(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name.as_str()).collect()
    }

    /// The cells of `node`'s row.
    pub fn row(&self, node: &Node, parent: Option<&Node>, names: &Names) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| c.render(node, parent, names))
            .collect()
    }
}

/// Names of processes (by pid) and block devices (by `MAJOR:MINOR`).
#[derive(Debug, Default)]
pub struct Names {
    pub processes: BTreeMap<String, String>,
    pub devices: BTreeMap<String, String>,
}

impl Column {
    fn parse(name: &str, value: &str, width: usize) -> anyhow::Result<Column> {
        let bad = |why: &str| anyhow::anyhow!("column {name:?}: {why} in {value:?}");
        let (sources, format) = match value.split_once('|') {
            Some((sources, format)) => (sources, Some(format.trim())),
            None => (value, None),
        };
        let expression = match sources.split_once('/') {
            Some((a, b)) => {
                if format.is_some() {
                    return Err(bad("a ratio takes no format"));
                }
                Expression::Ratio(
                    Source::parse(a).ok_or_else(|| bad("bad source"))?,
                    Source::parse(b).ok_or_else(|| bad("bad source"))?,
                )
            }
            None => {
                let source = Source::parse(sources).ok_or_else(|| bad("bad source"))?;
                let format = match format {
                    None => Format::Plain,
                    Some("bytes") => Format::Bytes,
                    Some("usec") => Format::Usec,
                    Some("share") => Format::Share,
                    Some("count") => Format::Count,
                    Some("list") => Format::List,
                    Some("raw") => Format::Raw,
                    Some("names") => Format::Names,
                    Some("io-bytes") => Format::IoBytes,
                    Some("io-ops") => Format::IoOps,
                    Some(_) => return Err(bad("unknown format")),
                };
                let whole_file = matches!(
                    format,
                    Format::Count
                        | Format::List
                        | Format::Raw
                        | Format::Names
                        | Format::IoBytes
                        | Format::IoOps
                );
                if whole_file && source.key.is_some() {
                    return Err(bad("this format reads a whole file, not a key"));
                }
                Expression::Value(source, format)
            }
        };
        Ok(Column {
            name: name.to_string(),
            value: expression,
            width,
        })
    }

    fn render(&self, node: &Node, parent: Option<&Node>, names: &Names) -> String {
        let pad = |text: String| format!("{text:>width$}", width = self.width);
        match &self.value {
            Expression::Ratio(a, b) => format!(
                "{}%",
                pad(a.value(node).percent_of(b.value(node)).to_string())
            ),
            Expression::Value(source, format) => match format {
                Format::Plain => pad(source.value(node).to_string()),
                Format::Bytes => pad(source.value(node).iec_bytes()),
                Format::Usec => pad(source.value(node).usec_duration()),
                Format::Share => match parent {
                    None => "-".to_string(),
                    Some(parent) => format!(
                        "{}%",
                        pad(source
                            .value(node)
                            .percent_of(source.value(parent))
                            .to_string())
                    ),
                },
                Format::Count => pad(lines(node.file(&source.file)).count().to_string()),
                Format::List => pad(format!(
                    "[{}]",
                    node.file(&source.file)
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(|v| Value::parse(v).to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
                Format::Raw => pad(node
                    .file(&source.file)
                    .unwrap_or_default()
                    .trim()
                    .to_string()),
                Format::Names => {
                    if parent.is_none() {
                        return String::new();
                    }
                    let resolved: Vec<&str> = lines(node.file(&source.file))
                        .map(|pid| names.processes.get(pid).map_or(pid, String::as_str))
                        .collect();
                    format!("[{}]", resolved.join(" "))
                        .chars()
                        .take(NAMES_WIDTH)
                        .collect()
                }
                Format::IoBytes => io_stat(node.file(&source.file), names)
                    .map(|(device, stat)| {
                        let get =
                            |key: &str| stat.get(key).copied().unwrap_or(Value::Unset).iec_bytes();
                        format!("{device}: {}/{} ", get("rbytes"), get("wbytes"))
                    })
                    .collect(),
                Format::IoOps => {
                    if parent.is_none() {
                        return String::new();
                    }
                    io_stat(node.file(&source.file), names)
                        .map(|(device, stat)| {
                            let get = |key: &str| stat.get(key).copied().unwrap_or(Value::Unset);
                            format!("{device}: {}/{} ", get("rios"), get("wios"))
                        })
                        .collect()
                }
            },
        }
    }
}

fn lines(text: Option<&str>) -> impl Iterator<Item = &str> {
    text.unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
}

/// `io.stat` (`MAJOR:MINOR rbytes=… wbytes=…` per line) by device name, in name order.
fn io_stat<'a>(
    text: Option<&'a str>,
    names: &'a Names,
) -> impl Iterator<Item = (String, BTreeMap<&'a str, Value>)> + 'a {
    let mut devices: BTreeMap<String, BTreeMap<&str, Value>> = BTreeMap::new();
    for line in lines(text) {
        let mut fields = line.split_whitespace();
        let Some(device) = fields.next() else {
            continue;
        };
        let name = names
            .devices
            .get(device)
            .cloned()
            .unwrap_or_else(|| device.to_string());
        let stat: BTreeMap<&str, Value> = fields
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| (k, Value::parse(v)))
            .collect();
        if !stat.is_empty() {
            devices.insert(name, stat);
        }
    }
    devices.into_iter()
}

impl Source {
    fn parse(text: &str) -> Option<Source> {
        let text = text.trim();
        let (file, key) = match text.split_once(':') {
            Some((file, key)) => (file, Some(key)),
            None => (text, None),
        };
        let (key, sub_key) =
            match key.map(|k| k.split_once('.').map_or((k, None), |(k, s)| (k, Some(s)))) {
                Some((key, sub_key)) => (Some(key), sub_key),
                None => (None, None),
            };
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        };
        if !plain(file)
            || file.starts_with('.')
            || key.is_some_and(|k| !plain(k))
            || sub_key.is_some_and(|k| !plain(k))
        {
            return None;
        }
        Some(Source {
            file: file.to_string(),
            key: key.map(str::to_string),
            sub_key: sub_key.map(str::to_string),
        })
    }

    fn value(&self, node: &Node) -> Value {
        let Some(text) = node.file(&self.file) else {
            return Value::Unset;
        };
        let Some(key) = &self.key else {
            return lines(Some(text)).next().map_or(Value::Unset, Value::parse);
        };
        let Some(rest) = lines(Some(text)).find_map(|line| {
            let (k, rest) = line.split_once(' ')?;
            (k == key).then_some(rest)
        }) else {
            return Value::Unset;
        };
        match &self.sub_key {
            None => Value::parse(rest.trim()),
            Some(sub_key) => rest
                .split_whitespace()
                .filter_map(|f| f.split_once('='))
                .find(|(k, _)| k == sub_key)
                .map_or(Value::Unset, |(_, v)| Value::parse(v)),
        }
    }
}

/// A cgroup value: a number (with `frac` decimal digits, as the kernel wrote it), `max`, or
/// nothing (a missing file or key, or text that is not a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    Unset,
    Max,
    Number { digits: i64, frac: u32 },
}

impl Value {
    pub fn parse(text: &str) -> Value {
        if text == "max" {
            return Value::Max;
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Value::Unset;
        }
        let Ok(frac) = u32::try_from(fraction.len()) else {
            return Value::Unset;
        };
        if fraction.starts_with(['-', '+']) {
            return Value::Unset;
        }
        match format!("{whole}{fraction}").parse::<i64>() {
            Ok(digits) if frac <= 18 => Value::Number { digits, frac },
            _ => Value::Unset,
        }
    }

    /// Upstream's humanized IEC bytes (`512 B`, `1.5 KiB`, `15 MiB`); `max` and unset as such.
    pub fn iec_bytes(self) -> String {
        let Value::Number { digits, frac: 0 } = self else {
            return self.to_string();
        };
        let Ok(bytes) = u64::try_from(digits) else {
            return self.to_string();
        };
        if bytes < 10 {
            return format!("{bytes} B");
        }
        const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let mut exponent = 0;
        while exponent + 1 < UNITS.len() && bytes >= 1u64 << (10 * (exponent + 1)) {
            exponent += 1;
        }
        let scaled = bytes as f64 / (1u64 << (10 * exponent)) as f64;
        let rounded = (scaled * 10.0 + 0.5).floor() / 10.0;
        if rounded < 10.0 {
            format!("{rounded:.1} {}", UNITS[exponent])
        } else {
            format!("{rounded:.0} {}", UNITS[exponent])
        }
    }

    /// Microseconds as a Go duration (`0s`, `750µs`, `1.5ms`, `2m3.000004s`).
    pub fn usec_duration(self) -> String {
        let Value::Number { digits, frac: 0 } = self else {
            return self.to_string();
        };
        let sign = if digits < 0 { "-" } else { "" };
        let usec = Duration::from_micros(digits.unsigned_abs());
        format!("{sign}{}", machineconfig::format_go_duration(usec))
    }

    /// `self` as a percentage of `other`, two decimals (upstream's rules for `max` and 0).
    pub fn percent_of(self, other: Value) -> Value {
        let as_float = |digits: i64, frac: u32| digits as f64 / 10f64.powi(frac as i32);
        match (self, other) {
            (Value::Unset, _) | (_, Value::Unset) => Value::Unset,
            (Value::Number { .. }, Value::Max) => Value::Number { digits: 0, frac: 2 },
            (Value::Max, Value::Max) => Value::Number {
                digits: 10_000,
                frac: 2,
            },
            (Value::Max, _) => Value::Max,
            (Value::Number { .. }, Value::Number { digits: 0, .. }) => Value::Max,
            (
                Value::Number {
                    digits: a,
                    frac: fa,
                },
                Value::Number {
                    digits: b,
                    frac: fb,
                },
            ) => {
                let percent = as_float(a, fa) / as_float(b, fb) * 100.0;
                Value::Number {
                    digits: (percent * 100.0).round() as i64,
                    frac: 2,
                }
            }
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Unset => f.write_str("unset"),
            Value::Max => f.write_str("max"),
            Value::Number { digits, frac: 0 } => write!(f, "{digits}"),
            Value::Number { digits, frac } => {
                let sign = if digits < 0 { "-" } else { "" };
                let frac = frac as usize;
                let text = format!("{:0width$}", digits.unsigned_abs(), width = frac + 1);
                let (whole, fraction) = text.split_at(text.len() - frac);
                write!(f, "{sign}{whole}.{fraction}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_print_as_upstream() {
        assert_eq!(Value::parse("max"), Value::Max);
        assert_eq!(Value::parse("0.05").to_string(), "0.05");
        assert_eq!(Value::parse("12").to_string(), "12");
        assert_eq!(Value::parse("x1"), Value::Unset);
        assert_eq!(Value::parse(""), Value::Unset);
        assert_eq!(Value::parse("1.-2"), Value::Unset);
        assert_eq!(Value::Unset.to_string(), "unset");
    }

    #[test]
    fn bytes_are_humanized_in_iec_units() {
        let bytes = |n: &str| Value::parse(n).iec_bytes();
        assert_eq!(bytes("9"), "9 B");
        assert_eq!(bytes("100"), "100 B");
        assert_eq!(bytes("1024"), "1.0 KiB");
        assert_eq!(bytes("1536"), "1.5 KiB");
        assert_eq!(bytes("15728640"), "15 MiB");
        assert_eq!(bytes("max"), "max");
        assert_eq!(Value::Unset.iec_bytes(), "unset");
    }

    #[test]
    fn microseconds_are_go_durations() {
        let usec = |n: &str| Value::parse(n).usec_duration();
        assert_eq!(usec("0"), "0s");
        assert_eq!(usec("750"), "750µs");
        assert_eq!(usec("1500"), "1.5ms");
        assert_eq!(usec("2000000"), "2s");
        assert_eq!(usec("123000004"), "2m3.000004s");
        assert_eq!(usec("3600000000"), "1h0m0s");
        assert_eq!(usec("-1500"), "-1.5ms");
    }

    #[test]
    fn percentages_follow_upstream_rules() {
        let p = |a: &str, b: &str| Value::parse(a).percent_of(Value::parse(b)).to_string();
        assert_eq!(p("1", "3"), "33.33");
        assert_eq!(p("5", "max"), "0.00");
        assert_eq!(p("max", "max"), "100.00");
        assert_eq!(p("5", "0"), "max");
        assert_eq!(p("5", "x"), "unset");
    }

    #[test]
    fn every_preset_compiles_and_bad_schemas_are_refused() {
        for preset in PRESETS {
            assert!(
                !Schema::preset(preset).unwrap().columns.is_empty(),
                "{preset}"
            );
        }
        assert!(Schema::preset("disk").is_err());
        let schema = Schema::from_yaml(
            "columns:\n  - name: Cur\n    value: memory.current | bytes\n    width: 8\n",
        )
        .unwrap();
        assert_eq!(schema.header(), ["Cur"]);
        assert_eq!(schema.files(), BTreeSet::from(["memory.current"]));
        for bad in [
            "columns: []",
            "columns:\n  - name: A\n    value: memory.current | nope\n",
            "columns:\n  - name: A\n    value: ../etc/passwd\n",
            "columns:\n  - name: A\n    value: a / b | bytes\n",
            "columns:\n  - name: A\n    value: cpu.stat:x | count\n",
            "columns:\n  - name: A\n    template: '{{ .X }}'\n",
        ] {
            assert!(Schema::from_yaml(bad).is_err(), "{bad}");
        }
    }
}
