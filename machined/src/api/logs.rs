//! Logs, LogsContainers and Dmesg.
//!
//! `Logs` serves the logs the supervisor keeps for machined's services (namespace `system`);
//! container logs of other namespaces need a container runtime and are refused. `Dmesg` reads
//! the kernel ring buffer from `/dev/kmsg`, one record per `common.Data` message, formatted as
//! upstream: `<facility>: <priority, right-aligned to 7>: [<RFC 3339 time, ns>]: <text>`.
//!
//! `/dev/kmsg` is read non-blocking through the runtime's reactor rather than on a blocking
//! thread, so a follower that goes away leaves nothing behind. Record times are the boot time
//! (now − `/proc/uptime`) plus the record's microseconds since boot, so they drift from the
//! wall clock by the time the machine spent suspended, like `dmesg -T`.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use proto::common::Data;
use proto::machine::{DmesgRequest, LogsContainer, LogsContainersResponse, LogsRequest};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::unix::AsyncFd;
use tonic::Status;
use tonic::codegen::BoxStream;

use super::containers::{SYSTEM_NAMESPACE, require_system_namespace};
use crate::error::MachinedError;
use crate::machine::Machine;

/// The kernel's record device.
const KMSG: &str = "/dev/kmsg";

/// Where the time since boot is read from.
const UPTIME: &str = "/proc/uptime";

/// Room for one `/dev/kmsg` record (a read with less room than the record fails with EINVAL);
/// the kernel's limit for a record with its dictionary is 8 KiB.
const KMSG_RECORD_BYTES: usize = 8192;

/// `Logs`: the log of the service `request.id`. `tail_lines` < 0 starts at the oldest line kept,
/// N ≥ 0 at the N-th line from the end; with `follow` the stream then waits for new lines.
pub(super) async fn logs(
    machine: &Machine,
    request: LogsRequest,
) -> Result<BoxStream<Data>, MachinedError> {
    // talosctl always names the namespace; an empty one means the system services too.
    let namespace = match request.namespace.as_str() {
        "" => SYSTEM_NAMESPACE,
        named => named,
    };
    require_system_namespace(namespace, request.driver)?;
    let log = machine.services.log(&request.id).await?;
    let reader = log.reader(tail_lines(request.tail_lines), request.follow);
    Ok(Box::pin(reader.into_stream().map(|chunk| {
        Ok(Data {
            metadata: None,
            bytes: chunk.to_vec(),
        })
    })))
}

/// The reader position for a `tail_lines` request value (`None`: everything kept).
fn tail_lines(requested: i32) -> Option<usize> {
    usize::try_from(requested).ok()
}

/// `LogsContainers`: the ids `Logs` serves, the registered services.
pub(super) async fn logs_containers(
    machine: &Machine,
) -> Result<LogsContainersResponse, MachinedError> {
    let ids = machine
        .services
        .list()
        .await?
        .into_iter()
        .map(|service| service.id)
        .collect();
    Ok(LogsContainersResponse {
        messages: vec![LogsContainer {
            metadata: None,
            ids,
        }],
    })
}

/// `Dmesg`: every record in the kernel ring buffer (only new ones with `tail`), then, with
/// `follow`, new records as they are logged.
pub(super) fn dmesg(request: DmesgRequest) -> Result<BoxStream<Data>, MachinedError> {
    let unreadable = |error: io::Error| {
        let message = format!("reading kernel messages: {KMSG}: {error}");
        match error.kind() {
            io::ErrorKind::PermissionDenied => MachinedError::PermissionDenied(message),
            _ => MachinedError::FailedPrecondition(message),
        }
    };
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(KMSG)
        .map_err(unreadable)?;
    if request.tail {
        // On /dev/kmsg this moves to just after the newest record.
        file.seek(SeekFrom::End(0)).map_err(unreadable)?;
    }
    let boot_time = boot_time()?;
    let records = KernelRecords {
        kmsg: register(file).map_err(unreadable)?,
        follow: request.follow,
        boot_time,
        buffer: vec![0; KMSG_RECORD_BYTES],
    };
    Ok(Box::pin(futures_util::stream::unfold(
        records,
        |mut records| async move {
            let item = records.next().await?;
            Some((item, records))
        },
    )))
}

/// Registers the open `/dev/kmsg` with the runtime's reactor. `AsyncFd::new` is deprecated
/// because a generic `AsRawFd` value could swap its descriptor behind the registration; a `File`
/// cannot, and the replacement (`AsyncFd::register`) is `unsafe`, which this crate does not use.
#[allow(deprecated)]
fn register(file: File) -> io::Result<AsyncFd<File>> {
    AsyncFd::new(file)
}

/// The wall-clock time the kernel booted: now − `/proc/uptime`.
fn boot_time() -> Result<SystemTime, MachinedError> {
    let uptime = std::fs::read_to_string(UPTIME).map_err(MachinedError::io("reading", UPTIME))?;
    let seconds = uptime
        .split_whitespace()
        .next()
        .and_then(|first| first.parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .ok_or_else(|| {
            MachinedError::FailedPrecondition(format!(
                "reading kernel messages: {UPTIME}: no uptime in {uptime:?}"
            ))
        })?;
    Ok(SystemTime::now() - Duration::from_secs_f64(seconds))
}

/// The formatted records read from an open `/dev/kmsg`.
struct KernelRecords {
    kmsg: AsyncFd<File>,
    follow: bool,
    boot_time: SystemTime,
    buffer: Vec<u8>,
}

impl KernelRecords {
    /// The next record, `None` at the end (without `follow`: when no record is left to read).
    async fn next(&mut self) -> Option<Result<Data, Status>> {
        loop {
            let mut kmsg: &File = self.kmsg.get_ref();
            match kmsg.read(&mut self.buffer) {
                Ok(0) => return None,
                Ok(read) => {
                    let raw = &self.buffer[..read];
                    match KernelRecord::parse(raw) {
                        Some(record) => {
                            return Some(Ok(Data {
                                metadata: None,
                                bytes: record.format(self.boot_time).into_bytes(),
                            }));
                        }
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
                        Err(error) => return Some(Err(read_failed(&error))),
                    }
                }
                Err(error) => return Some(Err(read_failed(&error))),
            }
        }
    }
}

fn read_failed(error: &io::Error) -> Status {
    Status::internal(format!("reading kernel messages: {KMSG}: {error}"))
}

/// One `/dev/kmsg` record: `<prefix>,<sequence>,<µs since boot>,<flags>[,…];<text>\n` followed
/// by ` KEY=value` dictionary lines, which are left out.
#[derive(Debug, PartialEq, Eq)]
struct KernelRecord {
    facility: Facility,
    priority: Priority,
    since_boot: Duration,
    text: String,
}

impl KernelRecord {
    fn parse(raw: &[u8]) -> Option<Self> {
        let raw = String::from_utf8_lossy(raw);
        let (header, body) = raw.split_once(';')?;
        let mut fields = header.split(',');
        let prefix: u32 = fields.next()?.parse().ok()?;
        let _sequence: u64 = fields.next()?.parse().ok()?;
        let micros: u64 = fields.next()?.parse().ok()?;
        let text = body.split('\n').next().unwrap_or_default();
        Some(Self {
            facility: Facility(prefix >> 3),
            priority: Priority(prefix & 7),
            since_boot: Duration::from_micros(micros),
            text: text.to_owned(),
        })
    }

    /// The upstream `Dmesg` line, newline included.
    fn format(&self, boot_time: SystemTime) -> String {
        let logged = OffsetDateTime::from(boot_time + self.since_boot);
        let time = logged
            .format(&Rfc3339)
            .unwrap_or_else(|_| logged.to_string());
        format!(
            "{}: {:>7}: [{time}]: {}\n",
            self.facility, self.priority, self.text
        )
    }
}

/// A syslog facility code, shown by its Linux name (the number where there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Facility(u32);

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
struct Priority(u32);

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
    use std::io::Write;

    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        OffsetDateTime::parse(rfc3339, &Rfc3339)
            .expect("valid time")
            .into()
    }

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
    fn records_are_formatted_as_upstream() {
        let boot = at("2024-01-02T03:04:05Z");
        let line = |raw: &[u8]| KernelRecord::parse(raw).expect("well-formed").format(boot);
        assert_eq!(
            line(b"6,1,5678901,-;hello\n"),
            "kern:    info: [2024-01-02T03:04:10.678901Z]: hello\n"
        );
        assert_eq!(
            line(b"12,2,0,-;careful\n"),
            "user: warning: [2024-01-02T03:04:05Z]: careful\n"
        );
        assert_eq!(
            line(b"187,3,1500000,-;x\n"),
            "local7:     err: [2024-01-02T03:04:06.5Z]: x\n"
        );
        assert_eq!(
            line(b"111,4,1,-;y\n"),
            "13:   debug: [2024-01-02T03:04:05.000001Z]: y\n"
        );
    }

    #[test]
    fn negative_tail_lines_mean_everything() {
        assert_eq!(tail_lines(-1), None);
        assert_eq!(tail_lines(0), Some(0));
        assert_eq!(tail_lines(25), Some(25));
    }

    /// A unique record text.
    fn marker(what: &str) -> String {
        format!("machined dmesg test {what} {}", std::process::id())
    }

    /// Logs `text` as a user.info record (needs root, like reading `/dev/kmsg`).
    fn log(text: &str) {
        let mut kmsg = OpenOptions::new()
            .write(true)
            .open(KMSG)
            .expect("writing /dev/kmsg needs root");
        kmsg.write_all(format!("<14>{text}\n").as_bytes())
            .expect("write a kernel record");
    }

    async fn collect_until_end(stream: BoxStream<Data>) -> Vec<String> {
        let lines = stream
            .map(|item| String::from_utf8(item.expect("record").bytes).expect("utf-8 line"))
            .collect();
        tokio::time::timeout(Duration::from_secs(10), lines)
            .await
            .expect("a non-following dmesg ends")
    }

    #[tokio::test]
    async fn dmesg_without_follow_returns_the_buffer_and_ends() {
        let marker = marker("buffered");
        log(&marker);
        let request = DmesgRequest {
            follow: false,
            tail: false,
        };
        let lines = collect_until_end(dmesg(request).expect("/dev/kmsg readable")).await;
        let ours = lines
            .iter()
            .find(|line| line.contains(&marker))
            .unwrap_or_else(|| panic!("marker missing from {} records", lines.len()));
        assert!(ours.starts_with("user:    info: ["), "{ours}");
        assert!(ours.ends_with(&format!("Z]: {marker}\n")), "{ours}");
        assert!(lines.iter().all(|line| line.ends_with('\n')));
    }

    #[tokio::test]
    async fn dmesg_with_tail_skips_old_records_and_follows_new_ones() {
        let old = marker("old");
        log(&old);
        let request = DmesgRequest {
            follow: false,
            tail: true,
        };
        let lines = collect_until_end(dmesg(request).expect("/dev/kmsg readable")).await;
        assert!(!lines.iter().any(|line| line.contains(&old)), "{lines:?}");

        let request = DmesgRequest {
            follow: true,
            tail: true,
        };
        let mut stream = dmesg(request).expect("/dev/kmsg readable");
        let new = marker("new");
        let wanted = new.clone();
        let follower = tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                let line = String::from_utf8(item.expect("record").bytes).expect("utf-8");
                assert!(!line.contains(&old), "{line}");
                if line.contains(&wanted) {
                    return line;
                }
            }
            panic!("the following stream ended");
        });
        // The follower is waiting for the kernel by now.
        tokio::time::sleep(Duration::from_millis(200)).await;
        log(&new);
        let found = tokio::time::timeout(Duration::from_secs(10), follower)
            .await
            .expect("the new record arrives")
            .expect("the follower does not panic");
        assert!(found.starts_with("user:    info: ["), "{found}");
    }
}
