//! `Hostname`: `/proc/sys/kernel/hostname`.

use proto::machine::Hostname;

use crate::procfile::ProcFile;
use crate::{Host, HostInfoError};

impl Host {
    /// Reads the kernel's host name from `/proc/sys/kernel/hostname`.
    pub fn hostname(&self) -> Result<Hostname, HostInfoError> {
        let file = ProcFile::read(self.proc_path("sys/kernel/hostname"))?;
        let hostname = file
            .lines()
            .next()
            .map(|line| line.text.trim().to_owned())
            .unwrap_or_default();
        Ok(Hostname {
            metadata: None,
            hostname,
        })
    }
}
