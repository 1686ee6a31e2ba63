//! Numbers and times written the way upstream talosctl (Go) writes them.

use std::time::{Duration, SystemTime};

/// Bytes in SI units as go-humanize's `Bytes` writes them: `9 B`, `1.2 kB`, `83 MB`.
pub fn si_bytes(bytes: u64) -> String {
    humanate(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB", "EB"])
}

/// Bytes in IEC units as go-humanize's `IBytes` writes them: `9 B`, `1.2 KiB`, `960 MiB`.
pub fn iec_bytes(bytes: u64) -> String {
    humanate(
        bytes,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
    )
}

/// go-humanize's `humanateBytes`: one decimal below 10, none from 10 on.
fn humanate(bytes: u64, base: f64, units: &[&str]) -> String {
    if bytes < 10 {
        return format!("{bytes} B");
    }
    let exponent = (bytes as f64).log(base).floor() as usize;
    let exponent = exponent.min(units.len() - 1);
    let value = (bytes as f64 / base.powi(exponent as i32) * 10.0 + 0.5).floor() / 10.0;
    if value < 10.0 {
        format!("{value:.1} {}", units[exponent])
    } else {
        format!("{value:.0} {}", units[exponent])
    }
}

/// A whole number of seconds as Go's `Duration.String()` writes it: `0s`, `45s`, `5m16s`,
/// `2h0m5s`; negative values get a leading `-`.
pub fn go_seconds(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    format!("{sign}{}", machineconfig::format_go_duration(magnitude))
}

/// Time elapsed from `timestamp` to `now`, rounded to the second, as Go writes it.
pub fn since(timestamp: &prost_types::Timestamp, now: SystemTime) -> String {
    let now = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let then = i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos);
    let elapsed = now - then;
    // Round half away from zero, as Go's Duration.Round does.
    let seconds = (elapsed + elapsed.signum() * 500_000_000) / 1_000_000_000;
    go_seconds(seconds as i64)
}

/// Parses a Go duration such as `90s`, `1h30m`, `1.5h` or `500ms` (the config's parser).
pub fn parse_go_duration(text: &str) -> anyhow::Result<Duration> {
    machineconfig::parse_go_duration(text.trim()).map_err(|reason| {
        anyhow::anyhow!("invalid duration {text:?}: {reason} (examples: 30s, 5m, 1h30m)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_bytes_match_go_humanize() {
        assert_eq!(iec_bytes(9), "9 B");
        assert_eq!(iec_bytes(1536), "1.5 KiB");
        assert_eq!(iec_bytes(960 * 1024 * 1024), "960 MiB");
        assert_eq!(iec_bytes(10 * 1024 * 1024 * 1024), "10 GiB");
        assert_eq!(si_bytes(0), "0 B");
        assert_eq!(si_bytes(9), "9 B");
        assert_eq!(si_bytes(10), "10 B");
        assert_eq!(si_bytes(999), "999 B");
        assert_eq!(si_bytes(1000), "1.0 kB");
        assert_eq!(si_bytes(1234), "1.2 kB");
        assert_eq!(si_bytes(1_234_567), "1.2 MB");
        assert_eq!(si_bytes(82_854_982), "83 MB");
        assert_eq!(si_bytes(4_096_000_000), "4.1 GB");
    }

    #[test]
    fn durations_match_go() {
        assert_eq!(go_seconds(0), "0s");
        assert_eq!(go_seconds(45), "45s");
        assert_eq!(go_seconds(316), "5m16s");
        assert_eq!(go_seconds(60), "1m0s");
        assert_eq!(go_seconds(7205), "2h0m5s");
        assert_eq!(go_seconds(-3), "-3s");
    }

    #[test]
    fn since_rounds_to_the_second() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_316_600);
        let then = prost_types::Timestamp {
            seconds: 1_000_000,
            nanos: 0,
        };
        assert_eq!(since(&then, now), "5m17s");
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(
            parse_go_duration("90s").expect("90s"),
            Duration::from_secs(90)
        );
        assert_eq!(
            parse_go_duration("1h30m").expect("1h30m"),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("1.5h").expect("1.5h"),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_go_duration("500ms").expect("ms"),
            Duration::from_millis(500)
        );
        assert_eq!(parse_go_duration("0").expect("0"), Duration::ZERO);
        for bad in ["", "5", "5x", "m", "1h-5m"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?}");
        }
    }
}
