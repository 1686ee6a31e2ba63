//! The origin of the boot timeline: time since machined started (PID 1 in OS mode), read from
//! the kernel's monotonic clock (`Instant`). Boot phases, the runtime's steps ([`stamp`]),
//! service transitions and apid's first answer are stamped with it on the console, which is
//! what `cargo xtask bench-boot` prints as the boot's timeline.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Marks machined's start; only the first call counts (`main` makes it first thing).
pub fn mark_start() {
    STARTED.get_or_init(Instant::now);
}

/// Time since [`mark_start`]; from the first call of this function when nothing marked it.
pub fn since_start() -> Duration {
    STARTED.get_or_init(Instant::now).elapsed()
}

/// [`since_start`] in milliseconds, as the timeline prints it.
pub fn since_start_ms() -> f64 {
    since_start().as_secs_f64() * 1000.0
}

/// Puts a step of the runtime's start on the timeline: `boot step: STEP at_ms=T` (the same
/// `at_ms` field as the service transitions).
pub fn stamp(step: &str) {
    tracing::info!(
        at_ms = %format_args!("{:.1}", since_start_ms()),
        "boot step: {step}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_counts_from_the_first_mark() {
        mark_start();
        let first = since_start();
        std::thread::sleep(Duration::from_millis(5));
        mark_start();
        assert!(since_start() >= first + Duration::from_millis(5));
    }
}
