//! `DiskStats`: `/proc/diskstats`.

use proto::machine::{DiskStat, DiskStats};

use crate::procfile::ProcFile;
use crate::{Host, HostInfoError};

impl Host {
    /// Reads `/proc/diskstats`: one [`DiskStat`] per block device (partitions included, in the
    /// kernel's order) and a `total` named `total` that sums them all. Counters that older
    /// kernels do not print (discards) are 0.
    pub fn disk_stats(&self) -> Result<DiskStats, HostInfoError> {
        let file = ProcFile::read(self.proc_path("diskstats"))?;
        let mut total = DiskStat {
            name: "total".to_owned(),
            ..DiskStat::default()
        };
        let mut devices = Vec::new();
        for line in file.lines() {
            let words: Vec<&str> = line.text.split_whitespace().collect();
            // major, minor, name, then at least the 11 classic counters.
            if words.len() < 14 {
                continue;
            }
            let counters = &words[3..];
            let column = |field: &str, index: usize| line.parse_column(field, counters, index);
            let device = DiskStat {
                name: words[2].to_owned(),
                read_completed: column("reads completed", 0)?,
                read_merged: column("reads merged", 1)?,
                read_sectors: column("sectors read", 2)?,
                read_time_ms: column("time reading", 3)?,
                write_completed: column("writes completed", 4)?,
                write_merged: column("writes merged", 5)?,
                write_sectors: column("sectors written", 6)?,
                write_time_ms: column("time writing", 7)?,
                io_in_progress: column("I/Os in progress", 8)?,
                io_time_ms: column("time doing I/O", 9)?,
                io_time_weighted_ms: column("weighted time doing I/O", 10)?,
                discard_completed: column("discards completed", 11)?,
                discard_merged: column("discards merged", 12)?,
                discard_sectors: column("sectors discarded", 13)?,
                discard_time_ms: column("time discarding", 14)?,
            };
            add(&mut total, &device);
            devices.push(device);
        }
        Ok(DiskStats {
            metadata: None,
            total: Some(total),
            devices,
        })
    }
}

/// Adds every counter of `device` to `total`.
fn add(total: &mut DiskStat, device: &DiskStat) {
    total.read_completed += device.read_completed;
    total.read_merged += device.read_merged;
    total.read_sectors += device.read_sectors;
    total.read_time_ms += device.read_time_ms;
    total.write_completed += device.write_completed;
    total.write_merged += device.write_merged;
    total.write_sectors += device.write_sectors;
    total.write_time_ms += device.write_time_ms;
    total.io_in_progress += device.io_in_progress;
    total.io_time_ms += device.io_time_ms;
    total.io_time_weighted_ms += device.io_time_weighted_ms;
    total.discard_completed += device.discard_completed;
    total.discard_merged += device.discard_merged;
    total.discard_sectors += device.discard_sectors;
    total.discard_time_ms += device.discard_time_ms;
}
