//! Durations written in Go's `time.Duration` syntax (`"2m0s"`, `"87600h"`, `"1.5s"`), as the
//! upstream config format uses them.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ConfigError;

/// A non-negative duration kept in the Go syntax it was written in, so that a config is written
/// back exactly as it was read. Decoding rejects text that is not a Go duration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GoDuration {
    text: String,
    value: Duration,
}

impl GoDuration {
    /// Parses Go duration syntax: an optional `+`, then one or more decimal numbers (with an
    /// optional fraction) each followed by a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`); or `0`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let value = parse_go_duration(text).map_err(|reason| ConfigError::InvalidDuration {
            value: text.to_string(),
            reason,
        })?;
        Ok(GoDuration {
            text: text.to_string(),
            value,
        })
    }

    /// The duration as written by Go's `Duration.String` (`2m0s`, `87600h0m0s`, `500ms`).
    pub fn from_duration(value: Duration) -> Self {
        GoDuration {
            text: format_go_duration(value),
            value,
        }
    }

    /// The parsed value.
    pub fn as_duration(&self) -> Duration {
        self.value
    }

    /// The text as written in the config.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let value = parse_go_duration(&text).map_err(|reason| {
            serde::de::Error::custom(format!("invalid duration {text:?}: {reason}"))
        })?;
        Ok(GoDuration { text, value })
    }
}

const NANOS_PER_UNIT: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses Go duration syntax into a [`Duration`]; the error says what is wrong.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if text.starts_with('-') {
        return Err("negative durations are not allowed".to_string());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        rest = &rest[number_len..];
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(format!("expected a number before {rest:?}"));
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(format!("missing unit after {number:?}"));
        }
        let Some(&(_, nanos_per_unit)) = NANOS_PER_UNIT.iter().find(|(name, _)| *name == unit)
        else {
            return Err(format!("unknown unit {unit:?} (use ns, us, ms, s, m or h)"));
        };
        let whole_value: u128 = if whole.is_empty() {
            0
        } else {
            whole
                .parse()
                .map_err(|_| format!("number {whole:?} is too large"))?
        };
        let mut fraction_nanos: u128 = 0;
        let mut scale = nanos_per_unit;
        for digit in fraction.chars().filter_map(|c| c.to_digit(10)) {
            scale /= 10;
            fraction_nanos += u128::from(digit) * scale;
        }
        total_nanos = whole_value
            .checked_mul(nanos_per_unit)
            .and_then(|n| n.checked_add(fraction_nanos))
            .and_then(|n| n.checked_add(total_nanos))
            .filter(|n| *n <= i64::MAX as u128)
            .ok_or_else(|| "duration is too large".to_string())?;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000)
        .map_err(|_| "duration is too large".to_string())?;
    let nanos = u32::try_from(total_nanos % 1_000_000_000)
        .map_err(|_| "duration is too large".to_string())?;
    Ok(Duration::new(secs, nanos))
}

/// Formats like Go's `Duration.String`.
pub fn format_go_duration(value: Duration) -> String {
    let nanos = value.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 1_000_000));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = nanos / 60_000_000_000 % 60;
    let seconds = decimal(nanos % 60_000_000_000, 1_000_000_000);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// `value / unit` as a decimal number without trailing zeros.
fn decimal(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_syntax() {
        assert_eq!(parse_go_duration("2m0s"), Ok(Duration::from_secs(120)));
        assert_eq!(
            parse_go_duration("87600h"),
            Ok(Duration::from_secs(87600 * 3600))
        );
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_go_duration(".5m"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_syntax() {
        for bad in ["", "5", "2 m", "1d", "-1s", "s", "1..5s", "m5"] {
            assert!(
                parse_go_duration(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(
            parse_go_duration("1d")
                .unwrap_err()
                .contains("unknown unit")
        );
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_secs(120)), "2m0s");
        assert_eq!(
            format_go_duration(Duration::from_secs(87600 * 3600)),
            "87600h0m0s"
        );
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_go_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn keeps_the_written_text() {
        let d: GoDuration = serde_norway::from_str("\"87600h\"").unwrap();
        assert_eq!(d.as_str(), "87600h");
        assert_eq!(serde_norway::to_string(&d).unwrap().trim(), "87600h");
        let err = serde_norway::from_str::<GoDuration>("2 days").unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
    }
}
