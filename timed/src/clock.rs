//! The syscall seam: the only place timed changes (or reads the discipline of) the system clock.
//!
//! Steps use `clock_settime(CLOCK_REALTIME)` through nix's safe wrapper, or `adjtimex` with
//! `ADJ_SETOFFSET` (which moves the clock by an offset atomically in the kernel); slews hand the
//! offset to the kernel's PLL with `ADJ_OFFSET`. `adjtimex` has no safe wrapper in nix, so this
//! module calls libc directly; each `unsafe` block says why it is sound.
#![allow(unsafe_code)]

use std::time::Duration;

use nix::sys::time::{TimeSpec, TimeValLike as _};
use nix::time::{ClockId, clock_gettime, clock_settime};

use crate::TimedError;

/// Offsets up to this size are slewed; larger ones are stepped (ntpd's step threshold, well
/// inside the kernel's ±0.5 s limit for `ADJ_OFFSET`).
pub const SLEW_LIMIT_NANOS: i64 = 128_000_000;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// What to do with a measured offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adjustment {
    /// Set the clock to now + offset (`clock_settime`): the first sync.
    Set,
    /// Move the clock by the offset at once (`adjtimex` `ADJ_SETOFFSET`): a large offset later.
    Jump,
    /// Let the kernel PLL absorb the offset gradually (`adjtimex` `ADJ_OFFSET`).
    Slew,
}

impl Adjustment {
    /// The first accepted sample sets the clock; afterwards small offsets are slewed and large
    /// ones jumped.
    pub fn choose(first_sync: bool, offset_nanos: i64) -> Self {
        if first_sync {
            Adjustment::Set
        } else if offset_nanos.abs() > SLEW_LIMIT_NANOS {
            Adjustment::Jump
        } else {
            Adjustment::Slew
        }
    }

    /// Applies the adjustment for `offset_nanos` to the system clock. `poll` sets the PLL time
    /// constant for slews.
    pub fn apply(self, offset_nanos: i64, poll: Duration) -> Result<(), TimedError> {
        match self {
            Adjustment::Set => set(offset_nanos),
            Adjustment::Jump => jump(offset_nanos),
            Adjustment::Slew => slew(offset_nanos, poll),
        }
    }
}

fn clock_error(operation: &'static str) -> impl FnOnce(nix::Error) -> TimedError {
    move |errno| TimedError::Clock {
        operation,
        source: errno,
    }
}

/// `clock_settime(CLOCK_REALTIME, now + offset)`.
fn set(offset_nanos: i64) -> Result<(), TimedError> {
    let now = clock_gettime(ClockId::CLOCK_REALTIME).map_err(clock_error("reading"))?;
    let target = now + TimeSpec::nanoseconds(offset_nanos);
    clock_settime(ClockId::CLOCK_REALTIME, target).map_err(clock_error("setting"))
}

/// A timex with every field zero: no modes, a pure read.
fn empty_timex() -> libc::timex {
    // SAFETY: `timex` is a plain C struct of integers (and padding); all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Calls `adjtimex` with `request`; returns the clock state the kernel reports.
fn adjtimex(request: &mut libc::timex, operation: &'static str) -> Result<i32, TimedError> {
    // SAFETY: `request` is a valid, exclusive pointer to an initialised `timex` for the duration
    // of the call; the kernel only reads and writes within that struct.
    let state = unsafe { libc::adjtimex(request) };
    if state < 0 {
        return Err(clock_error(operation)(nix::Error::last()));
    }
    Ok(state)
}

/// `ADJ_SETOFFSET`: add `offset_nanos` to the clock in the kernel (no read-modify-write race).
fn jump(offset_nanos: i64) -> Result<(), TimedError> {
    let mut request = empty_timex();
    request.modes = libc::ADJ_SETOFFSET | libc::ADJ_NANO | libc::ADJ_MAXERROR | libc::ADJ_ESTERROR;
    // With ADJ_NANO the `tv_usec` field carries nanoseconds, and must not be negative.
    request.time.tv_sec = offset_nanos.div_euclid(NANOS_PER_SECOND) as _;
    request.time.tv_usec = offset_nanos.rem_euclid(NANOS_PER_SECOND) as _;
    adjtimex(&mut request, "stepping").map(drop)
}

/// `ADJ_OFFSET` with the PLL on: the kernel slews the clock towards the offset; this also clears
/// `STA_UNSYNC`, so the kernel treats the clock as synchronised (and keeps the RTC in step).
fn slew(offset_nanos: i64, poll: Duration) -> Result<(), TimedError> {
    let mut request = empty_timex();
    request.modes = libc::ADJ_OFFSET
        | libc::ADJ_NANO
        | libc::ADJ_STATUS
        | libc::ADJ_TIMECONST
        | libc::ADJ_MAXERROR
        | libc::ADJ_ESTERROR;
    request.offset = offset_nanos as libc::c_long;
    request.status = libc::STA_PLL;
    request.constant = time_constant(poll);
    adjtimex(&mut request, "slewing").map(drop)
}

/// The PLL time constant for a poll interval: log2 of the interval in seconds, 0..=10.
fn time_constant(poll: Duration) -> libc::c_long {
    let seconds = poll.as_secs().max(1);
    libc::c_long::from((u64::BITS - 1 - seconds.leading_zeros()).min(10) as u16)
}

/// Whether the kernel considers the clock unsynchronised (`STA_UNSYNC`); reads only.
pub fn kernel_unsynchronised() -> Result<bool, TimedError> {
    let mut request = empty_timex();
    adjtimex(&mut request, "reading")?;
    Ok(request.status & libc::STA_UNSYNC != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sync_sets_then_slew_or_jump() {
        assert_eq!(Adjustment::choose(true, 5), Adjustment::Set);
        assert_eq!(Adjustment::choose(true, -50_000_000_000), Adjustment::Set);
        assert_eq!(Adjustment::choose(false, 5_000_000), Adjustment::Slew);
        assert_eq!(
            Adjustment::choose(false, -SLEW_LIMIT_NANOS),
            Adjustment::Slew
        );
        assert_eq!(
            Adjustment::choose(false, SLEW_LIMIT_NANOS + 1),
            Adjustment::Jump
        );
        assert_eq!(Adjustment::choose(false, -2_000_000_000), Adjustment::Jump);
    }

    #[test]
    fn time_constant_is_log2_of_the_poll() {
        assert_eq!(time_constant(Duration::from_millis(200)), 0);
        assert_eq!(time_constant(Duration::from_secs(32)), 5);
        assert_eq!(time_constant(Duration::from_secs(100)), 6);
        assert_eq!(time_constant(Duration::from_secs(1 << 14)), 10);
    }

    #[test]
    fn reading_the_kernel_clock_state_works_without_changing_it() {
        // A read-only adjtimex (modes 0) is allowed for every user and changes nothing.
        kernel_unsynchronised().unwrap();
    }
}
