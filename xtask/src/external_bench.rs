//! The benches that are programs of their crates (networkd's `examples/bench.rs`, timed's
//! `benches/sync.rs`): run with cargo, their lines printed as they are, their `p50` figures and
//! RSS lines read back into [`Figure`]s.

use std::process::Command;

use anyhow::bail;

use crate::bench::Setup;
use crate::figures::{Figure, Unit};

/// `cargo run --release -p networkd --example bench` (root: it makes a network namespace).
pub fn networkd(setup: &Setup) -> anyhow::Result<Vec<Figure>> {
    let text = cargo_output(
        setup,
        &[
            "run",
            "-q",
            "--release",
            "-p",
            "networkd",
            "--example",
            "bench",
        ],
    )?;
    figures("networkd", &text)
}

/// `cargo bench -p timed --bench sync` (a chronyd on loopback, started by the bench).
pub fn timed(setup: &Setup) -> anyhow::Result<Vec<Figure>> {
    let text = cargo_output(setup, &["bench", "-q", "-p", "timed", "--bench", "sync"])?;
    figures("timed", &text)
}

fn cargo_output(setup: &Setup, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(&setup.root)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    print!("{text}");
    if !output.status.success() {
        bail!(
            "cargo {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(text)
}

/// Each `LABEL: … p50 N ms …` line as `LABEL, p50`, and each line naming an RSS in MiB or KiB
/// (`LABEL: N MiB`, `LABEL: N KiB …`) as `LABEL`.
fn figures(bench: &'static str, text: &str) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for line in text.lines() {
        let Some((label, rest)) = line.split_once(": ") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let number = |at: usize| words.get(at).and_then(|w| w.parse::<f64>().ok());
        if let Some(at) = words.iter().position(|w| *w == "p50")
            && let Some(value) = number(at + 1)
            && words
                .get(at + 2)
                .is_some_and(|u| u.trim_end_matches(',') == "ms")
        {
            figures.push(Figure::new(
                bench,
                format!("{label}, p50"),
                value,
                Unit::Millis,
            ));
        } else if label.contains("RSS")
            && let Some(value) = number(0)
        {
            let mib = match words.get(1).copied() {
                Some("MiB") => value,
                Some("KiB") => value / 1024.0,
                _ => continue,
            };
            figures.push(Figure::new(bench, label.to_string(), mib, Unit::MiB));
        }
    }
    if figures.is_empty() {
        bail!("no figures in the {bench} bench's output");
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p50_and_rss_lines_become_figures() {
        let text = "networkd bench: 50 runs per figure, release build\n\
            apply → applied, 1 address(es) + 1 route(s) swapped: p50 2.60 ms, p90 5.60 ms, max 6.00 ms\n\
            networkd RSS idle after configuring (21 addresses, 20 routes): 8.7 MiB\n\
            SNTP query (socket, send, recv, checks), 200 queries: p50 0.02 ms  p99 0.11 ms\n\
            timed idle RSS: 5632 KiB (peak 6000 KiB)\n";
        let figures = figures("x", text).unwrap();
        let found: Vec<(&str, f64)> = figures
            .iter()
            .map(|f| (f.metric.as_str(), f.value))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "apply → applied, 1 address(es) + 1 route(s) swapped, p50",
                    2.6
                ),
                (
                    "networkd RSS idle after configuring (21 addresses, 20 routes)",
                    8.7
                ),
                (
                    "SNTP query (socket, send, recv, checks), 200 queries, p50",
                    0.02
                ),
                ("timed idle RSS", 5.5),
            ]
        );
        assert!(super::figures("x", "nothing here\n").is_err());
    }
}
