//! The one place in machined that waits for child processes.
//!
//! A dedicated thread runs a small tokio runtime that listens for SIGCHLD and then reaps every
//! exited child with `waitpid(-1, WNOHANG)`. Exits of children started through
//! [`ChildReaper::spawn`] are handed to the callback given there; any other child (orphans
//! re-parented to PID 1) is reaped and forgotten. Nothing else in the process may wait for
//! children (no `tokio::process`, no `Command::output`/`status`/`wait`): the reaper would take
//! their exit statuses.
//!
//! Limits: std's fork-based spawn path (used when `pre_exec`, uid/gid changes or a PATH lookup are
//! configured) waits for a child whose exec failed and panics if the reaper got there first; the
//! runners here use absolute paths and none of those options, so std takes the `posix_spawn`
//! path. An exit by a signal nix cannot name is reaped but not reported.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::sync::oneshot;

/// How a child process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildExit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(Signal),
    /// It never started (a containerd task that could not be created): why.
    NotStarted(String),
}

impl ChildExit {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        *self == Self::Code(0)
    }
}

impl fmt::Display for ChildExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit code {code}"),
            Self::Signal(signal) => write!(f, "signal {}", signal.as_str()),
            Self::NotStarted(reason) => write!(f, "it never started: {reason}"),
        }
    }
}

type ExitCallback = Box<dyn FnOnce(ChildExit) + Send>;

/// The process-wide child reaper (see the module docs).
pub struct ChildReaper {
    waiting: Mutex<HashMap<i32, ExitCallback>>,
}

impl fmt::Debug for ChildReaper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildReaper")
            .field("waiting", &self.lock().len())
            .finish()
    }
}

/// How often the reaper sweeps when SIGCHLD cannot be watched (a fallback that should not run).
const FALLBACK_SWEEP: Duration = Duration::from_millis(100);

impl ChildReaper {
    /// The reaper of this process, started on first use.
    pub fn global() -> &'static ChildReaper {
        static REAPER: OnceLock<&'static ChildReaper> = OnceLock::new();
        REAPER.get_or_init(|| {
            let reaper: &'static ChildReaper = Box::leak(Box::new(ChildReaper {
                waiting: Mutex::new(HashMap::new()),
            }));
            let started = std::thread::Builder::new()
                .name("child-reaper".into())
                .spawn(move || reaper.run());
            if let Err(error) = started {
                // Without the thread no child exit is ever reported; PID 1 cannot go on.
                panic!("cannot start the child reaper thread: {error}");
            }
            reaper
        })
    }

    /// Spawns `command` and calls `on_exit` (on the reaper thread: keep it short) once the child
    /// has exited and been reaped. Returns the child's pid.
    pub fn spawn(
        &self,
        command: &mut Command,
        on_exit: impl FnOnce(ChildExit) + Send + 'static,
    ) -> io::Result<u32> {
        // Holding the lock across the spawn makes an early exit wait in `route` until the
        // callback is registered.
        let mut waiting = self.lock();
        let child = command.spawn()?;
        let pid = child.id();
        waiting.insert(pid as i32, Box::new(on_exit));
        Ok(pid)
    }

    /// Spawns `command` and returns its pid and a receiver for its exit (for one-shot commands).
    pub fn spawn_waitable(
        &self,
        command: &mut Command,
    ) -> io::Result<(u32, oneshot::Receiver<ChildExit>)> {
        let (sender, receiver) = oneshot::channel();
        let pid = self.spawn(command, move |exit| {
            // The receiver may have been dropped by a caller that lost interest.
            let _ = sender.send(exit);
        })?;
        Ok((pid, receiver))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, ExitCallback>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run(&'static self) {
        let watched = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .and_then(|runtime| {
                let sigchld = {
                    let _entered = runtime.enter();
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?
                };
                Ok((runtime, sigchld))
            });
        match watched {
            Ok((runtime, mut sigchld)) => runtime.block_on(async move {
                loop {
                    // Children that exited before the handler was installed are reaped by the
                    // first sweep.
                    self.sweep();
                    if sigchld.recv().await.is_none() {
                        break;
                    }
                }
            }),
            Err(error) => {
                tracing::error!(%error, "cannot watch SIGCHLD; reaping children by polling");
                loop {
                    self.sweep();
                    std::thread::sleep(FALLBACK_SWEEP);
                }
            }
        }
    }

    fn sweep(&self) {
        loop {
            let exit = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ChildExit::Code(code)),
                Ok(WaitStatus::Signaled(pid, signal, _core_dumped)) => {
                    (pid, ChildExit::Signal(signal))
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                // EINVAL: a child died of a signal nix cannot name; it is reaped all the same.
                Ok(_) | Err(Errno::EINTR | Errno::EINVAL) => continue,
                Err(error) => {
                    tracing::warn!(%error, "waitpid failed while reaping children");
                    return;
                }
            };
            self.route(exit.0, exit.1);
        }
    }

    fn route(&self, pid: Pid, exit: ChildExit) {
        let callback = self.lock().remove(&pid.as_raw());
        match callback {
            Some(on_exit) => on_exit(exit),
            None => tracing::debug!(pid = pid.as_raw(), %exit, "reaped an unowned child"),
        }
    }
}
