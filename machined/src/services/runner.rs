//! How a service's program is run: the [`Runner`] seam and the child-process runner.
//!
//! The supervisor only needs to start a run, signal it, and hear when it ended; the
//! [`ContainerdRunner`](super::ContainerdRunner) runs containerd tasks behind the same trait.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::ServiceError;
use super::log::ServiceLog;
use super::reaper::{ChildExit, ChildReaper};
use super::spec::ServiceSpec;

/// Called exactly once when a run has ended.
pub type ExitNotifier = Box<dyn FnOnce(ChildExit) + Send>;

/// Starts runs of a service.
pub trait Runner: Send + Sync + fmt::Debug {
    /// Starts `spec` with its output going to `log`; `on_exit` must be called when the run ends.
    fn start(
        &self,
        spec: &ServiceSpec,
        log: &ServiceLog,
        on_exit: ExitNotifier,
    ) -> Result<Box<dyn RunHandle>, ServiceError>;
}

/// One started run.
pub trait RunHandle: Send + fmt::Debug {
    /// The history message for the start, e.g. `Process /usr/bin/apid started with PID 42`.
    fn started_message(&self) -> String;

    /// Sends `signal` to everything the run consists of. Succeeds when nothing is left.
    fn signal(&self, signal: Signal) -> io::Result<()>;

    /// The pid of the run's main process, if the run is one process machined knows.
    fn pid(&self) -> Option<u32> {
        None
    }
}

/// Runs the service as a child process of machined in its own process group, stdin from
/// `/dev/null`, stdout and stderr into the service log, exits reported by the [`ChildReaper`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessRunner;

impl Runner for ProcessRunner {
    fn start(
        &self,
        spec: &ServiceSpec,
        log: &ServiceLog,
        on_exit: ExitNotifier,
    ) -> Result<Box<dyn RunHandle>, ServiceError> {
        let spawn_error = |source| ServiceError::Spawn {
            id: spec.id.clone(),
            command: spec.command.clone(),
            source,
        };
        check_executable(spec).map_err(spawn_error)?;
        // stdout and stderr share one pipe so their lines interleave as written.
        let (output, writer) = io::pipe().map_err(spawn_error)?;
        let mut command = Command::new(&spec.command);
        command
            .args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(writer.try_clone().map_err(spawn_error)?)
            .stderr(writer)
            .process_group(0);
        if let Some(dir) = &spec.working_dir {
            command.current_dir(dir);
        }
        // The pump starts first: if the spawn fails, dropping `command` closes the pipe and the
        // pump ends.
        let pump_log = log.clone();
        std::thread::Builder::new()
            .name(format!("log-{}", spec.id))
            .spawn(move || pump(output, &pump_log))
            .map_err(spawn_error)?;
        let pid = ChildReaper::global()
            .spawn(&mut command, on_exit)
            .map_err(spawn_error)?;
        // Closes machined's copies of the pipe's write end, so the pump sees the end of output.
        drop(command);
        Ok(Box::new(ProcessRun {
            pid,
            command: spec.command.clone(),
        }))
    }
}

fn check_executable(spec: &ServiceSpec) -> io::Result<()> {
    // Checked before spawning so that an obvious mistake is a clear error (and std's fork-based
    // fallback never has to wait for a child whose exec failed).
    let metadata = std::fs::metadata(&spec.command)?;
    if !metadata.is_file() || metadata.permissions().mode() & 0o111 == 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "not an executable file",
        ));
    }
    Ok(())
}

/// Copies `output` into `log` until its end.
pub(super) fn pump(mut output: impl Read, log: &ServiceLog) {
    let mut buffer = vec![0u8; 16 << 10];
    loop {
        match output.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => log.append(&buffer[..read]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                tracing::warn!(path = %log.path().display(), %error, "reading service output failed");
                break;
            }
        }
    }
    log.finish_line();
}

#[derive(Debug)]
struct ProcessRun {
    pid: u32,
    command: PathBuf,
}

impl RunHandle for ProcessRun {
    fn started_message(&self) -> String {
        format!(
            "Process {} started with PID {}",
            self.command.display(),
            self.pid
        )
    }

    fn signal(&self, signal: Signal) -> io::Result<()> {
        match killpg(Pid::from_raw(self.pid as i32), signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    fn pid(&self) -> Option<u32> {
        Some(self.pid)
    }
}
