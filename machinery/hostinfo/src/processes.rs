//! `Processes`: every `/proc/[pid]`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::unistd::{SysconfVar, sysconf};
use proto::machine::{Process, ProcessInfo};

use crate::procfile::ProcFile;
use crate::{Host, HostInfoError, USER_HZ};

/// Used when `sysconf` cannot tell the page size (it always can on Linux).
const FALLBACK_PAGE_SIZE: u64 = 4096;

impl Host {
    /// Lists every process in pid order. Processes that exit while the scan runs are left out;
    /// an unreadable executable link gives an empty `executable`.
    pub fn processes(&self) -> Result<Process, HostInfoError> {
        let page_size = sysconf(SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|size| u64::try_from(size).ok())
            .unwrap_or(FALLBACK_PAGE_SIZE);
        let mut processes = Vec::new();
        for (pid, dir) in self.pid_dirs()? {
            if let Some(process) = process_info(&dir, pid, page_size)? {
                processes.push(process);
            }
        }
        Ok(Process {
            metadata: None,
            processes,
        })
    }

    /// Every `/proc/[pid]` directory, in pid order.
    pub(crate) fn pid_dirs(&self) -> Result<Vec<(i32, PathBuf)>, HostInfoError> {
        let proc = self.proc_root();
        let read_error = |source| HostInfoError::Read {
            path: proc.to_path_buf(),
            source,
        };
        let mut pids = Vec::new();
        for entry in fs::read_dir(proc).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let pid = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse().ok());
            if let Some(pid) = pid {
                pids.push((pid, entry.path()));
            }
        }
        pids.sort_unstable_by_key(|(pid, _)| *pid);
        Ok(pids)
    }
}

/// One process, or `None` if it has gone away.
fn process_info(
    dir: &Path,
    pid: i32,
    page_size: u64,
) -> Result<Option<ProcessInfo>, HostInfoError> {
    let Some(stat_file) = read_unless_gone(dir.join("stat"))? else {
        return Ok(None);
    };
    let Some(cmdline) = read_unless_gone(dir.join("cmdline"))? else {
        return Ok(None);
    };
    let Some(line) = stat_file.lines().next() else {
        return Ok(None);
    };
    let (Some(open), Some(close)) = (line.text.find('('), line.text.rfind(')')) else {
        return Err(line.malformed("no (comm) field"));
    };
    let command = line
        .text
        .get(open + 1..close)
        .unwrap_or_default()
        .to_owned();
    let fields: Vec<&str> = line
        .text
        .get(close + 1..)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // Field numbers as in proc(5), counted from 1 with pid and comm as fields 1 and 2.
    let field = |number: usize| {
        fields
            .get(number - 3)
            .copied()
            .ok_or_else(|| line.malformed(format!("field {number} is missing")))
    };
    let user_ticks: u64 = line.parse("utime", field(14)?)?;
    let system_ticks: u64 = line.parse("stime", field(15)?)?;
    let resident_pages: u64 = line.parse("rss", field(24)?)?;
    // Tick counters stay far below 2^53, so the conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let cpu_time = (user_ticks + system_ticks) as f64 / USER_HZ;

    let executable = fs::read_link(dir.join("exe"))
        .map(|target| target.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args = cmdline
        .text()
        .split('\0')
        .filter(|arg| !arg.is_empty())
        .collect::<Vec<_>>()
        .join(" ");

    Ok(Some(ProcessInfo {
        pid,
        ppid: line.parse("ppid", field(4)?)?,
        state: field(3)?.to_owned(),
        threads: line.parse("num_threads", field(20)?)?,
        cpu_time,
        virtual_memory: line.parse("vsize", field(23)?)?,
        resident_memory: resident_pages * page_size,
        command,
        executable,
        args,
        label: String::new(),
    }))
}

/// Reads a file of a process; `None` if the process exited meanwhile.
pub(crate) fn read_unless_gone(path: PathBuf) -> Result<Option<ProcFile>, HostInfoError> {
    match ProcFile::read(path) {
        Ok(file) => Ok(Some(file)),
        Err(HostInfoError::Read { source, .. }) if is_gone(&source) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Whether an error means "the process no longer exists".
pub(crate) fn is_gone(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound || error.raw_os_error() == Some(Errno::ESRCH as i32)
}
