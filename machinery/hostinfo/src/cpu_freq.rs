//! `CPUFreqStats`: `/sys/devices/system/cpu/cpu*/cpufreq/`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use proto::machine::{CpUsFreqStats, CpuFreqStats};

use crate::procfile::ProcFile;
use crate::{Host, HostInfoError};

impl Host {
    /// Reads the frequency (kHz) and governor of every CPU that has a `cpufreq` directory, in CPU
    /// number order. Machines without cpufreq (most VMs) give an empty list.
    pub fn cpu_freq_stats(&self) -> Result<CpUsFreqStats, HostInfoError> {
        let cpu_dir = self.sys_path("devices/system/cpu");
        let entries = match fs::read_dir(&cpu_dir) {
            Ok(entries) => entries,
            Err(source) if source.kind() == io::ErrorKind::NotFound => {
                return Ok(CpUsFreqStats::default());
            }
            Err(source) => {
                return Err(HostInfoError::Read {
                    path: cpu_dir,
                    source,
                });
            }
        };
        let mut cpus: Vec<(u32, PathBuf)> = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| HostInfoError::Read {
                path: cpu_dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let number = name
                .to_str()
                .and_then(|name| name.strip_prefix("cpu"))
                .and_then(|number| number.parse().ok());
            if let Some(number) = number {
                cpus.push((number, entry.path().join("cpufreq")));
            }
        }
        cpus.sort_unstable_by_key(|(number, _)| *number);

        let mut stats = Vec::new();
        for (_, cpufreq) in cpus {
            if !cpufreq.is_dir() {
                continue;
            }
            let current = match read_optional_number(&cpufreq.join("cpuinfo_cur_freq"))? {
                Some(current) => current,
                None => read_optional_number(&cpufreq.join("scaling_cur_freq"))?.unwrap_or(0),
            };
            stats.push(CpuFreqStats {
                current_frequency: current,
                minimum_frequency: read_optional_number(&cpufreq.join("cpuinfo_min_freq"))?
                    .unwrap_or(0),
                maximum_frequency: read_optional_number(&cpufreq.join("cpuinfo_max_freq"))?
                    .unwrap_or(0),
                governor: read_optional_word(&cpufreq.join("scaling_governor"))?
                    .unwrap_or_default(),
            });
        }
        Ok(CpUsFreqStats {
            metadata: None,
            cpu_freq_stats: stats,
        })
    }
}

/// A sysfs attribute, `None` if it is absent or unreadable (some are root-only, some drivers do
/// not provide them).
fn read_optional(path: &Path) -> Result<Option<ProcFile>, HostInfoError> {
    match ProcFile::read(path.to_path_buf()) {
        Ok(file) => Ok(Some(file)),
        Err(HostInfoError::Read { source, .. })
            if matches!(
                source.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
            ) =>
        {
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// A textual sysfs attribute without its newline.
fn read_optional_word(path: &Path) -> Result<Option<String>, HostInfoError> {
    Ok(read_optional(path)?.map(|file| {
        file.lines()
            .next()
            .map(|line| line.text.trim().to_owned())
            .unwrap_or_default()
    }))
}

/// A numeric sysfs attribute.
fn read_optional_number(path: &Path) -> Result<Option<u64>, HostInfoError> {
    let Some(file) = read_optional(path)? else {
        return Ok(None);
    };
    let field = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    match file.lines().next() {
        Some(line) => line.parse(&field, line.text.trim()).map(Some),
        None => Ok(None),
    }
}
