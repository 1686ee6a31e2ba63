//! Logs, LogsContainers and Dmesg.
//!
//! `Logs` serves the logs the supervisor keeps for machined's services (namespace `system`);
//! container logs of other namespaces need a container runtime and are refused. `Dmesg` reads
//! the kernel ring buffer from `/dev/kmsg`, one record per `common.Data` message, formatted as
//! upstream: `<facility>: <priority, right-aligned to 7>: [<RFC 3339 time, ns>]: <text>`.
//! The records are read as `crate::kmsg` reads them.

use std::io;
use std::time::SystemTime;

use futures_util::StreamExt;
use proto::common::Data;
use proto::machine::{DmesgRequest, LogsContainer, LogsContainersResponse, LogsRequest};
use time::format_description::well_known::Rfc3339;
use tonic::Status;
use tonic::codegen::BoxStream;

use super::containers::{SYSTEM_NAMESPACE, require_system_namespace};
use crate::error::MachinedError;
use crate::kmsg::{KMSG, KernelLog, KernelRecord, UPTIME, boot_time};
use crate::machine::Machine;

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
    let log = KernelLog::open(request.tail, request.follow).map_err(unreadable)?;
    let boot_time = boot_time().map_err(|error| {
        MachinedError::FailedPrecondition(format!("reading kernel messages: {UPTIME}: {error}"))
    })?;
    Ok(Box::pin(futures_util::stream::unfold(
        log,
        move |mut log| async move {
            let item = match log.next().await? {
                Ok(record) => Ok(Data {
                    metadata: None,
                    bytes: format(&record, boot_time).into_bytes(),
                }),
                Err(error) => Err(Status::internal(format!(
                    "reading kernel messages: {KMSG}: {error}"
                ))),
            };
            Some((item, log))
        },
    )))
}

/// The upstream `Dmesg` line of a record, newline included.
fn format(record: &KernelRecord, boot_time: SystemTime) -> String {
    let logged = record.logged(boot_time);
    let time = logged
        .format(&Rfc3339)
        .unwrap_or_else(|_| logged.to_string());
    format!(
        "{}: {:>7}: [{time}]: {}\n",
        record.facility, record.priority, record.text
    )
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        OffsetDateTime::parse(rfc3339, &Rfc3339)
            .expect("valid time")
            .into()
    }

    #[test]
    fn records_are_formatted_as_upstream() {
        let boot = at("2024-01-02T03:04:05Z");
        let line = |raw: &[u8]| format(&KernelRecord::parse(raw).expect("well-formed"), boot);
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
