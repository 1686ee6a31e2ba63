//! `LoadAvg`: `/proc/loadavg`.

use proto::machine::LoadAvg;

use crate::procfile::ProcFile;
use crate::{Host, HostInfoError};

impl Host {
    /// Reads the 1, 5 and 15 minute load averages from `/proc/loadavg`.
    pub fn load_avg(&self) -> Result<LoadAvg, HostInfoError> {
        let file = ProcFile::read(self.proc_path("loadavg"))?;
        let line = file
            .lines()
            .next()
            .ok_or_else(|| HostInfoError::Malformed {
                path: self.proc_path("loadavg"),
                line: 1,
                reason: "the file is empty".to_owned(),
            })?;
        let values: Vec<&str> = line.text.split_whitespace().collect();
        if values.len() < 3 {
            return Err(line.malformed("expected three load averages"));
        }
        Ok(LoadAvg {
            metadata: None,
            load1: line.parse("load1", values[0])?,
            load5: line.parse("load5", values[1])?,
            load15: line.parse("load15", values[2])?,
        })
    }
}
