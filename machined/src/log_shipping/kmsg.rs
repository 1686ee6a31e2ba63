//! The kernel log as upstream's JSON lines for kernel messages: `msg`, `talos-level` (from
//! the priority), `talos-time` (boot time plus the record's clock), `facility`, `priority`,
//! `seq` and `clock` (µs since boot); no service.
//!
//! The reader ([`crate::kmsg`]) starts at the oldest record the kernel still holds and follows
//! new ones. When `/dev/kmsg` cannot be read (a dev-mode node without the right), it says so
//! once and ships nothing.

use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::kmsg::{KMSG, KernelLog, KernelRecord, boot_time};

/// Reads the kernel log and hands each record, encoded, to `lines`; runs until aborted or
/// until the device fails.
pub(super) async fn follow(lines: broadcast::Sender<Bytes>) {
    let opened = KernelLog::open(false, true).and_then(|log| Ok((log, boot_time()?)));
    let (mut log, boot) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            tracing::warn!(%error, "cannot read {KMSG}: the kernel log is not shipped");
            return;
        }
    };
    while let Some(record) = log.next().await {
        // A burst of records must not starve the destinations' tasks (the tap would drop).
        tokio::task::consume_budget().await;
        match record {
            Ok(record) => {
                let _ = lines.send(encode(&record, boot));
            }
            Err(error) => {
                tracing::warn!(%error, "reading {KMSG} failed: the kernel log is not shipped");
                return;
            }
        }
    }
}

/// One record as a JSON line.
fn encode(record: &KernelRecord, boot: SystemTime) -> Bytes {
    let at = record
        .logged(boot)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let line = serde_json::json!({
        "clock": u64::try_from(record.since_boot.as_micros()).unwrap_or(u64::MAX),
        "facility": record.facility.to_string(),
        "msg": record.text,
        "priority": record.priority.to_string(),
        "seq": record.sequence,
        "talos-level": record.priority.level(),
        "talos-time": at,
    });
    let mut encoded = serde_json::to_vec(&line).unwrap_or_default();
    encoded.push(b'\n');
    Bytes::from(encoded)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn decoded(raw: &str) -> serde_json::Value {
        let boot = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let record = KernelRecord::parse(raw.as_bytes()).unwrap();
        let line = encode(&record, boot);
        assert!(line.ends_with(b"\n"));
        serde_json::from_slice(&line).unwrap()
    }

    #[test]
    fn records_become_upstreams_kernel_json_lines() {
        let line = decoded("14,398,4663984492,-;talos-rs probe\n");
        assert_eq!(line["msg"], "talos-rs probe");
        assert_eq!(line["facility"], "user");
        assert_eq!(line["priority"], "info");
        assert_eq!(line["talos-level"], "info");
        assert_eq!(line["seq"], 398);
        assert_eq!(line["clock"], 4_663_984_492i64);
        assert_eq!(line["talos-time"], "2027-01-15T09:17:43.984492Z");
        assert!(line.get("talos-service").is_none());
    }

    #[test]
    fn priorities_map_to_levels_and_dictionaries_are_left_out() {
        let line = decoded("3,5,10,-;disk error\n SUBSYSTEM=block\n DEVICE=b8:0\n");
        assert_eq!(line["msg"], "disk error");
        assert_eq!(line["facility"], "kern");
        assert_eq!(line["priority"], "err");
        assert_eq!(line["talos-level"], "error");
        assert_eq!(decoded("4,1,0,-;x")["talos-level"], "warn");
        assert_eq!(decoded("134,1,0,-;x")["facility"], "local0");
    }
}
