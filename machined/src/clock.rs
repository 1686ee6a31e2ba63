//! Jumps of the wall clock: anything that sets `CLOCK_REALTIME` (timed stepping it, the RTC
//! read at boot, an administrator's `date -s` in a debug container) moves it discontinuously,
//! and certificates issued before a jump back are not valid yet afterwards. Whoever holds
//! such certificates watches [`jumps`] and issues them anew.
//!
//! One thread waits on a timer file armed far in the future with `TFD_TIMER_CANCEL_ON_SET`:
//! the kernel cancels it whenever the clock is set, and the thread publishes the jump.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::sync::watch;

/// How far ahead the watching timer is armed: it never fires, it is only cancelled.
const FAR_AHEAD: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The jumps seen so far: how many, and the size of the last one in seconds (positive when the
/// clock moved forward).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Jumps {
    pub count: u64,
    pub last_seconds: i64,
}

/// Follows the clock's jumps; the first call starts the watching thread. Without a timer file
/// (an old kernel, a seccomp filter) the receiver never changes, and that is logged.
pub fn jumps() -> watch::Receiver<Jumps> {
    static JUMPS: OnceLock<watch::Sender<Jumps>> = OnceLock::new();
    JUMPS
        .get_or_init(|| {
            let (sender, _) = watch::channel(Jumps::default());
            let publisher = sender.clone();
            let spawned = std::thread::Builder::new()
                .name("clock-jumps".into())
                .spawn(move || {
                    if let Err(error) = watch_jumps(&publisher) {
                        tracing::warn!(%error, "clock jumps are not followed");
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "clock jumps are not followed");
            }
            sender
        })
        .subscribe()
}

fn watch_jumps(publisher: &watch::Sender<Jumps>) -> Result<(), Errno> {
    let timer = TimerFd::new(ClockId::CLOCK_REALTIME, TimerFlags::TFD_CLOEXEC)?;
    loop {
        let offset = realtime_minus_monotonic();
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            + FAR_AHEAD;
        timer.set(
            Expiration::OneShot(TimeSpec::from_duration(at)),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
        )?;
        // A read of the timer file fails with ECANCELED when the clock was set.
        match nix::unistd::read(&timer, &mut [0u8; 8]) {
            Err(Errno::ECANCELED) => {
                let moved = realtime_minus_monotonic() - offset;
                tracing::warn!(seconds = moved, "the clock was set");
                publisher.send_modify(|jumps| {
                    jumps.count += 1;
                    jumps.last_seconds = moved;
                });
            }
            Err(Errno::EINTR) | Ok(_) => {}
            Err(error) => return Err(error),
        }
    }
}

/// The wall clock less the monotonic clock, in seconds: it changes only when the wall clock is
/// set (or slewed, slowly).
fn realtime_minus_monotonic() -> i64 {
    let seconds = |clock| {
        nix::time::clock_gettime(clock)
            .map(|t| t.tv_sec())
            .unwrap_or_default()
    };
    seconds(nix::time::ClockId::CLOCK_REALTIME) - seconds(nix::time::ClockId::CLOCK_MONOTONIC)
}
