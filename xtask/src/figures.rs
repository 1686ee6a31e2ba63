//! The figures every benchmark returns and the one table `cargo xtask bench` makes of them:
//! metric, value, goal, pass or miss, upstream's figure where one is published. The table is
//! printed and written into `docs/benchmarks.md` between [`BEGIN`] and [`END`]; the rows of
//! benches not run this time (`--quick`, `--only`) are kept as they were.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};

/// The line before the table in `docs/benchmarks.md`.
pub const BEGIN: &str = "<!-- bench table: written by `cargo xtask bench`, edits are lost -->";
/// The line after it.
pub const END: &str = "<!-- end of bench table -->";
const HEADER: &str = "| bench | metric | value | goal | pass/miss | upstream | measured |";
const RULE: &str = "|---|---|---|---|---|---|---|";

/// What a value counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unit {
    Micros,
    Millis,
    Seconds,
    /// Percent of one core.
    Percent,
    /// A ratio of two measurements (×).
    Ratio,
    MiB,
    /// Megabytes per second.
    MegabytesPerSecond,
    /// Things per second, named (`calls`, `lines`).
    PerSecond(&'static str),
}

/// Where a value must be to pass (every goal so far is a bound from above).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    AtMost(f64),
}

/// One measured figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// The bench that measured it (`cargo xtask bench --only` takes these names).
    pub bench: &'static str,
    /// What was measured, unique in the table.
    pub metric: String,
    pub value: f64,
    pub unit: Unit,
    pub goal: Option<Goal>,
    /// Upstream Talos's figure for the same thing, where one is published.
    pub upstream: Option<&'static str>,
}

impl Figure {
    pub fn new(bench: &'static str, metric: impl Into<String>, value: f64, unit: Unit) -> Self {
        Self {
            bench,
            metric: metric.into(),
            value,
            unit,
            goal: None,
            upstream: None,
        }
    }

    pub fn at_most(mut self, goal: f64) -> Self {
        self.goal = Some(Goal::AtMost(goal));
        self
    }

    pub fn upstream(mut self, figure: &'static str) -> Self {
        self.upstream = Some(figure);
        self
    }

    /// `pass`, `miss`, or nothing without a goal.
    pub fn verdict(&self) -> &'static str {
        match self.goal {
            Some(Goal::AtMost(goal)) if self.value <= goal => "pass",
            Some(Goal::AtMost(_)) => "**miss**",
            None => "",
        }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Some(Goal::AtMost(goal)) => format!("≤ {}", format(goal, self.unit)),
            None => String::new(),
        }
    }

    fn row(&self, date: &str) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {date} |",
            self.bench,
            self.metric,
            format(self.value, self.unit),
            self.goal_text(),
            self.verdict(),
            self.upstream.unwrap_or(""),
        )
    }
}

/// `value` in `unit`, with as many digits as the size calls for.
pub fn format(value: f64, unit: Unit) -> String {
    let digits = |v: f64| {
        if v.abs() >= 100.0 {
            0
        } else if v.abs() >= 10.0 {
            1
        } else {
            2
        }
    };
    let number = |v: f64| format!("{v:.*}", digits(v));
    match unit {
        Unit::Micros => format!("{} µs", number(value)),
        Unit::Millis => format!("{} ms", number(value)),
        Unit::Seconds => format!("{} s", number(value)),
        Unit::Percent => format!("{value:.2} %"),
        Unit::Ratio => format!("×{value:.2}"),
        Unit::MiB => format!("{value:.1} MiB"),
        Unit::MegabytesPerSecond => format!("{} MB/s", number(value)),
        Unit::PerSecond(what) => format!("{value:.0} {what}/s"),
    }
}

/// The table of `figures` alone, measured on `date`.
pub fn table(figures: &[Figure], date: &str) -> String {
    let mut text = format!("{HEADER}\n{RULE}\n");
    for figure in figures {
        let _ = writeln!(text, "{}", figure.row(date));
    }
    text
}

/// `doc` with its table (between [`BEGIN`] and [`END`]) holding `figures`, measured on `date`:
/// the rows of each bench that gave figures are replaced by its new ones, where its first row
/// was (or at the end); the rows of other benches are kept.
pub fn merge_into(doc: &str, figures: &[Figure], date: &str) -> anyhow::Result<String> {
    let (before, rest) = doc
        .split_once(&format!("{BEGIN}\n"))
        .with_context(|| format!("no line `{BEGIN}`"))?;
    let (old, after) = rest
        .split_once(&format!("{END}\n"))
        .with_context(|| format!("no line `{END}` after `{BEGIN}`"))?;
    let mut rows: Vec<String> = old
        .lines()
        .filter(|line| line.starts_with("| ") && *line != HEADER)
        .map(str::to_string)
        .collect();
    let mut benches: Vec<&str> = Vec::new();
    for figure in figures {
        if !benches.contains(&figure.bench) {
            benches.push(figure.bench);
        }
    }
    for bench in benches {
        let key = format!("| {bench} |");
        let at = rows
            .iter()
            .position(|r| r.starts_with(&key))
            .unwrap_or(rows.len());
        rows.retain(|r| !r.starts_with(&key));
        let new = figures
            .iter()
            .filter(|f| f.bench == bench)
            .map(|f| f.row(date));
        rows.splice(at..at, new);
    }
    let mut text = format!("{before}{BEGIN}\n{HEADER}\n{RULE}\n");
    for row in rows {
        let _ = writeln!(text, "{row}");
    }
    let _ = write!(text, "{END}\n{after}");
    Ok(text)
}

/// Writes `figures` into the table of the file `doc`.
pub fn write_into(doc: &Path, figures: &[Figure], date: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
    let merged = merge_into(&text, figures, date)?;
    if merged.matches(BEGIN).count() != 1 {
        bail!("{} must hold one bench table", doc.display());
    }
    std::fs::write(doc, merged).with_context(|| format!("writing {}", doc.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_goals() {
        let figure = |value| Figure::new("node", "idle", value, Unit::Percent);
        assert_eq!(figure(0.9).at_most(1.0).verdict(), "pass");
        assert_eq!(figure(1.1).at_most(1.0).verdict(), "**miss**");
        assert_eq!(figure(1.0).at_most(1.0).verdict(), "pass");
        assert_eq!(figure(0.9).verdict(), "");
        assert_eq!(
            figure(1.234).at_most(1.0).upstream("2 %").row("2026-12-05"),
            "| node | idle | 1.23 % | ≤ 1.00 % | **miss** | 2 % | 2026-12-05 |"
        );
    }

    #[test]
    fn values_keep_the_digits_their_size_calls_for() {
        assert_eq!(format(1234.5, Unit::Micros), "1234 µs");
        assert_eq!(format(16.34, Unit::Seconds), "16.3 s");
        assert_eq!(format(0.692, Unit::Seconds), "0.69 s");
        assert_eq!(format(1.2449, Unit::Ratio), "×1.24");
        assert_eq!(format(3055.4, Unit::PerSecond("calls")), "3055 calls/s");
    }

    #[test]
    fn a_run_replaces_its_benches_rows_and_keeps_the_others() {
        let doc = format!(
            "# Benchmarks\n\nintro\n\n{BEGIN}\n{HEADER}\n{RULE}\n\
             | cli | version | 6.00 ms | ≤ 30.0 ms | pass |  | 2026-12-01 |\n\
             | node | idle | 1.83 % | ≤ 1.00 % | **miss** |  | 2026-12-01 |\n\
             | node | renamed since | 1.0 MiB |  |  |  | 2026-12-01 |\n\
             | pcap | TCP | 1557 MB/s |  |  |  | 2026-12-01 |\n\
             {END}\n\n## More\n"
        );
        let figures = [
            Figure::new("node", "idle", 0.5, Unit::Percent).at_most(1.0),
            Figure::new("node", "new", 2.0, Unit::MiB),
            Figure::new("boot", "first", 5.0, Unit::Seconds),
        ];
        let merged = merge_into(&doc, &figures, "2026-12-05").unwrap();
        assert_eq!(
            merged,
            format!(
                "# Benchmarks\n\nintro\n\n{BEGIN}\n{HEADER}\n{RULE}\n\
                 | cli | version | 6.00 ms | ≤ 30.0 ms | pass |  | 2026-12-01 |\n\
                 | node | idle | 0.50 % | ≤ 1.00 % | pass |  | 2026-12-05 |\n\
                 | node | new | 2.0 MiB |  |  |  | 2026-12-05 |\n\
                 | pcap | TCP | 1557 MB/s |  |  |  | 2026-12-01 |\n\
                 | boot | first | 5.00 s |  |  |  | 2026-12-05 |\n\
                 {END}\n\n## More\n"
            )
        );
        // Merging the same figures again changes nothing.
        assert_eq!(merge_into(&merged, &figures, "2026-12-05").unwrap(), merged);
        assert!(merge_into("# no table\n", &figures, "2026-12-05").is_err());
    }
}
