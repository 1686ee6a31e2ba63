//! The kernel log (`/dev/kmsg`): its records parsed, read non-blocking through the runtime's
//! reactor rather than on a blocking thread, so a reader that goes away leaves nothing behind.
//! `Dmesg` (`api/logs.rs`) formats the records for talosctl; log shipping (`log_shipping.rs`)
//! sends them to `talos.logging.kernel` destinations as JSON lines.
//!
//! Record times are the boot time (now − `/proc/uptime`) plus the record's microseconds since
//! boot, so they drift from the wall clock by the time the machine spent suspended, like
//! `dmesg -T`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use time::OffsetDateTime;
use tokio::io::unix::AsyncFd;

/// The kernel's record device.
pub const KMSG: &str = "/dev/kmsg";

/// Where the time since boot is read from.
pub const UPTIME: &str = "/proc/uptime";

/// Room for one `/dev/kmsg` record (a read with less room than the record fails with EINVAL);
/// the kernel's limit for a record with its dictionary is 8 KiB.
const KMSG_RECORD_BYTES: usize = 8192;

/// An open `/dev/kmsg`.
pub struct KernelLog {
    kmsg: AsyncFd<File>,
    follow: bool,
    buffer: Vec<u8>,
}

impl KernelLog {
    /// Opens the kernel log at its oldest record (only new ones with `from_end`); with
    /// `follow` reading waits for new records instead of ending.
    pub fn open(from_end: bool, follow: bool) -> io::Result<KernelLog> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(KMSG)?;
        if from_end {
            // On /dev/kmsg this moves to just after the newest record.
            file.seek(SeekFrom::End(0))?;
        }
        Ok(KernelLog {
            kmsg: register(file)?,
            follow,
            buffer: vec![0; KMSG_RECORD_BYTES],
        })
    }

    /// The next record, `None` at the end (without `follow`: when no record is left to read).
    /// Records of unknown shape are skipped.
    pub async fn next(&mut self) -> Option<io::Result<KernelRecord>> {
        loop {
            let mut kmsg: &File = self.kmsg.get_ref();
            match kmsg.read(&mut self.buffer) {
                Ok(0) => return None,
                Ok(read) => {
                    let raw = &self.buffer[..read];
                    match KernelRecord::parse(raw) {
                        Some(record) => return Some(Ok(record)),
                        None => tracing::debug!(
                            record = %String::from_utf8_lossy(raw),
                            "skipping a kernel record of unknown shape"
                        ),
                    }
                }
                // Records were overwritten before they were read: go on with the oldest left.
                Err(error) if error.raw_os_error() == Some(Errno::EPIPE as i32) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if !self.follow {
                        return None;
                    }
                    // Clearing the readiness before the next read cannot lose a record: one
                    // logged after the clear marks the file readable again.
                    match self.kmsg.readable().await {
                        Ok(mut guard) => guard.clear_ready(),
                        Err(error) => return Some(Err(error)),
                    }
                }
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

/// Registers the open `/dev/kmsg` with the runtime's reactor. `AsyncFd::new` is deprecated
/// because a generic `AsRawFd` value could swap its descriptor behind the registration; a `File`
/// cannot, and the replacement (`AsyncFd::register`) is `unsafe`, which this crate does not use.
#[allow(deprecated)]
fn register(file: File) -> io::Result<AsyncFd<File>> {
    AsyncFd::new(file)
}

/// The wall-clock time the kernel booted: now − `/proc/uptime`.
pub fn boot_time() -> io::Result<SystemTime> {
    let uptime = std::fs::read_to_string(UPTIME)?;
    let booted = uptime
        .split_whitespace()
        .next()
        .and_then(|first| first.parse::<f64>().ok())
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .and_then(|uptime| SystemTime::now().checked_sub(uptime))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no uptime in {uptime:?}"),
            )
        })?;
    Ok(booted)
}

/// One `/dev/kmsg` record: `<prefix>,<sequence>,<µs since boot>,<flags>[,…];<text>\n` followed
/// by ` KEY=value` dictionary lines, which are left out.
#[derive(Debug, PartialEq, Eq)]
pub struct KernelRecord {
    pub facility: Facility,
    pub priority: Priority,
    pub sequence: u64,
    pub since_boot: Duration,
    pub text: String,
}

impl KernelRecord {
    /// When the record was logged, for a kernel that booted at `boot_time` (the boot time for
    /// a clock beyond the calendar).
    pub fn logged(&self, boot_time: SystemTime) -> OffsetDateTime {
        let boot = OffsetDateTime::from(boot_time);
        time::Duration::try_from(self.since_boot)
            .ok()
            .and_then(|since_boot| boot.checked_add(since_boot))
            .unwrap_or(boot)
    }

    pub fn parse(raw: &[u8]) -> Option<Self> {
        let raw = String::from_utf8_lossy(raw);
        let (header, body) = raw.split_once(';')?;
        let mut fields = header.split(',');
        let prefix: u32 = fields.next()?.parse().ok()?;
        let sequence: u64 = fields.next()?.parse().ok()?;
        let micros: u64 = fields.next()?.parse().ok()?;
        let text = body.split('\n').next().unwrap_or_default();
        Some(Self {
            facility: Facility(prefix >> 3),
            priority: Priority(prefix & 7),
            sequence,
            since_boot: Duration::from_micros(micros),
            text: text.to_owned(),
        })
    }
}

/// A syslog facility code, shown by its Linux name (the number where there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(pub u32);

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 12] = [
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
            "authpriv", "ftp",
        ];
        match self.0 {
            code @ 16..=23 => write!(f, "local{}", code - 16),
            code => match NAMES.get(code as usize) {
                Some(name) => f.pad(name),
                None => write!(f, "{code}"),
            },
        }
    }
}

/// A syslog priority (0–7), shown by its Linux name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority(pub u32);

impl Priority {
    /// The log level upstream gives a kernel record of this priority.
    pub fn level(self) -> &'static str {
        match self.0 & 7 {
            4 => "warn",
            5 | 6 => "info",
            7 => "debug",
            _ => "error",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = [
            "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
        ];
        f.pad(NAMES[(self.0 & 7) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_parsed_without_its_dictionary() {
        let record = KernelRecord::parse(
            b"6,1234,5678901,-;usb 1-1: new device\n SUBSYSTEM=usb\n DEVICE=c189:1\n",
        )
        .expect("well-formed record");
        assert_eq!(
            record,
            KernelRecord {
                facility: Facility(0),
                priority: Priority(6),
                sequence: 1234,
                since_boot: Duration::from_micros(5_678_901),
                text: "usb 1-1: new device".to_owned(),
            }
        );
    }

    #[test]
    fn newer_header_fields_and_semicolons_in_the_text_are_kept_apart() {
        let record = KernelRecord::parse(b"14,7,100,-,caller=T1;a; b\n").expect("well-formed");
        assert_eq!(
            (record.facility, record.priority),
            (Facility(1), Priority(6))
        );
        assert_eq!(record.text, "a; b");
    }

    #[test]
    fn malformed_records_are_rejected() {
        for raw in [
            &b"no header"[..],
            b"x,1,2,-;text",
            b"6,1;text",
            b"6,1,-5,-;text",
        ] {
            assert_eq!(KernelRecord::parse(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn an_absurd_clock_does_not_overflow_the_time() {
        let record = KernelRecord::parse(b"6,1,18446744073709551615,-;x").expect("well-formed");
        let boot = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(record.logged(boot), boot);
        assert_eq!(
            KernelRecord::parse(b"6,1,1500000,-;x")
                .unwrap()
                .logged(boot),
            boot + Duration::from_millis(1500)
        );
    }

    #[test]
    fn priorities_have_upstreams_levels() {
        let levels: Vec<&str> = (0..8).map(|p| Priority(p).level()).collect();
        assert_eq!(
            levels,
            [
                "error", "error", "error", "error", "warn", "info", "info", "debug"
            ]
        );
    }
}
