//! `NetworkDeviceStats`: `/proc/net/dev`.

use proto::machine::{NetDev, NetworkDeviceStats};

use crate::procfile::ProcFile;
use crate::{Host, HostInfoError};

impl Host {
    /// Reads `/proc/net/dev`: one [`NetDev`] per interface in the kernel's order and a `total`
    /// that sums them, named after all interfaces (sorted, joined with `", "`).
    pub fn network_device_stats(&self) -> Result<NetworkDeviceStats, HostInfoError> {
        let file = ProcFile::read(self.proc_path("net/dev"))?;
        let mut total = NetDev::default();
        let mut devices = Vec::new();
        for line in file.lines() {
            // The two header lines contain '|' and no "name:" prefix.
            let Some((name, counters)) = line.text.split_once(':') else {
                continue;
            };
            if name.contains('|') {
                continue;
            }
            let counters: Vec<&str> = counters.split_whitespace().collect();
            let column = |field: &str, index: usize| line.parse_column(field, &counters, index);
            let device = NetDev {
                name: name.trim().to_owned(),
                rx_bytes: column("rx bytes", 0)?,
                rx_packets: column("rx packets", 1)?,
                rx_errors: column("rx errs", 2)?,
                rx_dropped: column("rx drop", 3)?,
                rx_fifo: column("rx fifo", 4)?,
                rx_frame: column("rx frame", 5)?,
                rx_compressed: column("rx compressed", 6)?,
                rx_multicast: column("rx multicast", 7)?,
                tx_bytes: column("tx bytes", 8)?,
                tx_packets: column("tx packets", 9)?,
                tx_errors: column("tx errs", 10)?,
                tx_dropped: column("tx drop", 11)?,
                tx_fifo: column("tx fifo", 12)?,
                tx_collisions: column("tx colls", 13)?,
                tx_carrier: column("tx carrier", 14)?,
                tx_compressed: column("tx compressed", 15)?,
            };
            add(&mut total, &device);
            devices.push(device);
        }
        let mut names: Vec<&str> = devices.iter().map(|device| device.name.as_str()).collect();
        names.sort_unstable();
        total.name = names.join(", ");
        Ok(NetworkDeviceStats {
            metadata: None,
            total: Some(total),
            devices,
        })
    }
}

/// Adds every counter of `device` to `total`.
fn add(total: &mut NetDev, device: &NetDev) {
    total.rx_bytes += device.rx_bytes;
    total.rx_packets += device.rx_packets;
    total.rx_errors += device.rx_errors;
    total.rx_dropped += device.rx_dropped;
    total.rx_fifo += device.rx_fifo;
    total.rx_frame += device.rx_frame;
    total.rx_compressed += device.rx_compressed;
    total.rx_multicast += device.rx_multicast;
    total.tx_bytes += device.tx_bytes;
    total.tx_packets += device.tx_packets;
    total.tx_errors += device.tx_errors;
    total.tx_dropped += device.tx_dropped;
    total.tx_fifo += device.tx_fifo;
    total.tx_collisions += device.tx_collisions;
    total.tx_carrier += device.tx_carrier;
    total.tx_compressed += device.tx_compressed;
}
