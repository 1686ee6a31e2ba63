//! One debug container's run: its root filesystem and FIFOs made, its task created, the
//! caller's stream relayed to it and its output back, and everything removed at the end.
//!
//! The runc shim copies between the task (or its terminal) and two FIFOs: machined writes the
//! caller's stdin into one (a thread, non-blocking writes, so a container that reads nothing
//! never stalls the relay: what does not fit is dropped after a while) and reads the output
//! from the other (a thread that ends when the shim closes it). The exit code is sent once the
//! output has ended (or [`OUTPUT_GRACE`] after the exit: a process left in the host's PID
//! namespace may hold it open). The caller closing its side closes the task's stdin; the
//! caller going away kills the task.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use proto::machine::debug_container_run_request::Request as Part;
use proto::machine::debug_container_run_response::Resp;
use proto::machine::{DebugContainerRunRequest, DebugContainerRunResponse};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::image::{self, DebugImage};
use super::spec;
use crate::error::MachinedError;
use crate::services::{Containerd, TaskIo};

/// How long the output may stay open after the task exited.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// How long stdin data waits for a container that does not read it.
const STDIN_PATIENCE: Duration = Duration::from_secs(5);
/// Stdin messages queued for the writer.
const STDIN_QUEUE: usize = 64;
/// The largest output message.
const OUTPUT_CHUNK: usize = 32 * 1024;

type Reply = Result<DebugContainerRunResponse, Status>;

/// What a run needs, checked by the handler.
#[derive(Debug)]
pub struct Prepared {
    pub client: Containerd,
    pub image: DebugImage,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub tty: bool,
    /// Where root filesystems are made.
    pub containers: PathBuf,
    /// Where FIFOs are made.
    pub fifos: PathBuf,
    pub host_root: PathBuf,
}

/// The files of one run.
#[derive(Clone, Debug)]
struct Files {
    rootfs: PathBuf,
    stdin: PathBuf,
    stdout: PathBuf,
}

impl Files {
    fn make(&self, image: &DebugImage) -> Result<(), MachinedError> {
        std::fs::create_dir_all(&self.rootfs)
            .map_err(MachinedError::io("creating", &self.rootfs))?;
        image::unpack(image, &self.rootfs)?;
        for fifo in [&self.stdin, &self.stdout] {
            if let Some(dir) = fifo.parent() {
                std::fs::create_dir_all(dir).map_err(MachinedError::io("creating", dir))?;
            }
            nix::unistd::mkfifo(fifo, Mode::from_bits_truncate(0o600))
                .map_err(|e| MachinedError::io("making the FIFO", fifo)(e.into()))?;
        }
        Ok(())
    }

    /// Removes the FIFOs and the root filesystem, unless something is still mounted in it
    /// (removing would reach through the mount).
    fn remove(&self) {
        let _ = std::fs::remove_file(&self.stdin);
        let _ = std::fs::remove_file(&self.stdout);
        if has_mounts_under(&self.rootfs) {
            tracing::warn!(rootfs = %self.rootfs.display(), "mounts remain in the debug container's root: left in place");
            return;
        }
        if let Err(error) = std::fs::remove_dir_all(&self.rootfs)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(rootfs = %self.rootfs.display(), %error, "cannot remove the debug container's root");
        }
    }
}

fn has_mounts_under(dir: &Path) -> bool {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return true;
    };
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|point| Path::new(point).starts_with(dir))
}

/// Makes the root filesystem and FIFOs, creates and starts the task, and relays on a task of
/// its own; returns the replies.
pub async fn start(
    prepared: Prepared,
    requests: Streaming<DebugContainerRunRequest>,
    permit: OwnedSemaphorePermit,
) -> Result<ReceiverStream<Reply>, MachinedError> {
    let Prepared {
        client,
        image,
        args,
        mut env,
        tty,
        containers,
        fifos,
        host_root,
    } = prepared;
    let args = if args.is_empty() {
        image.default_args()
    } else {
        args
    };
    if args.is_empty() {
        return Err(MachinedError::InvalidArgument(format!(
            "image {} names no command: pass one (talosctl debug --args)",
            image.name
        )));
    }
    let id = format!("debug-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let files = Files {
        rootfs: containers.join(&id),
        stdin: fifos.join(format!("{id}.stdin")),
        stdout: fifos.join(format!("{id}.stdout")),
    };
    let made = {
        let (files, image) = (files.clone(), image.clone());
        tokio::task::spawn_blocking(move || files.make(&image))
            .await
            .map_err(|e| MachinedError::Internal(e.to_string()))
            .and_then(|made| made)
    };
    if let Err(error) = made {
        files.remove();
        return Err(error);
    }
    let mut all_env = image.env.clone();
    all_env.append(&mut env);
    let runtime_spec = spec::runtime_spec(
        &spec::Process {
            id: &id,
            args: &args,
            env: &all_env,
            cwd: &image.working_dir,
            tty,
        },
        &files.rootfs,
        &host_root,
    );
    let (replies, receiver) = mpsc::channel(16);
    let stopped = Arc::new(AtomicBool::new(false));
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(&files.stdin)
        .map_err(MachinedError::io("opening", &files.stdin));
    let stdin = match opened.and_then(|file| stdin_writer(file, Arc::clone(&stopped))) {
        Ok(stdin) => stdin,
        Err(error) => {
            files.remove();
            return Err(error);
        }
    };
    let output = OutputPump::start(files.stdout.clone(), replies.clone());
    let io = TaskIo {
        stdin: Some(files.stdin.clone()),
        stdout: files.stdout.clone(),
        terminal: tty,
    };
    if let Err(error) = client.create(&id, &runtime_spec, &io).await {
        stopped.store(true, Ordering::Relaxed);
        client.remove(&id).await;
        output.release();
        files.remove();
        return Err(MachinedError::Containerd(error.to_string()));
    }
    tracing::info!(id, image = %image.name, tty, "debug container started");
    let run = Run {
        client,
        id,
        files,
        stopped,
    };
    tokio::spawn(run.relay(requests, stdin, output, replies, permit));
    Ok(ReceiverStream::new(receiver))
}

/// Starts the thread writing stdin data into the FIFO `file` (non-blocking).
fn stdin_writer(
    file: File,
    stopped: Arc<AtomicBool>,
) -> Result<mpsc::Sender<Vec<u8>>, MachinedError> {
    let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(STDIN_QUEUE);
    std::thread::Builder::new()
        .name("debug-stdin".into())
        .spawn(move || {
            let mut file = file;
            while let Some(data) = receiver.blocking_recv() {
                if !write_patiently(&mut file, &data, &stopped) {
                    break;
                }
            }
        })
        .map_err(|e| MachinedError::Internal(format!("starting the stdin writer: {e}")))?;
    Ok(sender)
}

/// Writes `data`, waiting while the FIFO is full, at most [`STDIN_PATIENCE`] without progress;
/// false once the run is over or the FIFO broke.
fn write_patiently(file: &mut File, mut data: &[u8], stopped: &AtomicBool) -> bool {
    let mut waited = Duration::ZERO;
    let pause = Duration::from_millis(10);
    while !data.is_empty() {
        if stopped.load(Ordering::Relaxed) {
            return false;
        }
        match file.write(data) {
            Ok(written) => {
                data = &data[written..];
                waited = Duration::ZERO;
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                if waited >= STDIN_PATIENCE {
                    tracing::warn!("the debug container reads no stdin: data dropped");
                    return true;
                }
                std::thread::sleep(pause);
                waited += pause;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Copies the task's output into replies, on a thread: the FIFO's open blocks until the shim
/// opens it for writing, and the read ends when the shim closes it.
struct OutputPump {
    fifo: PathBuf,
    done: oneshot::Receiver<()>,
}

impl OutputPump {
    fn start(fifo: PathBuf, replies: mpsc::Sender<Reply>) -> Self {
        let (done_sender, done) = oneshot::channel();
        let path = fifo.clone();
        let spawned = std::thread::Builder::new()
            .name("debug-output".into())
            .spawn(move || {
                if let Ok(mut output) = File::open(&path) {
                    let mut buffer = vec![0u8; OUTPUT_CHUNK];
                    loop {
                        match output.read(&mut buffer) {
                            Ok(0) => break,
                            Ok(read) => {
                                let reply = DebugContainerRunResponse {
                                    resp: Some(Resp::StdoutData(buffer[..read].to_vec())),
                                };
                                if replies.blocking_send(Ok(reply)).is_err() {
                                    break;
                                }
                            }
                            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => break,
                        }
                    }
                }
                let _ = done_sender.send(());
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start copying the debug container's output");
        }
        OutputPump { fifo, done }
    }

    /// Ends a pump still waiting for a writer: opening the FIFO for writing and closing it
    /// lets its open return and its read see the end.
    fn release(&self) {
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(&self.fifo);
    }
}

struct Run {
    client: Containerd,
    id: String,
    files: Files,
    stopped: Arc<AtomicBool>,
}

impl Run {
    async fn relay(
        self,
        mut requests: Streaming<DebugContainerRunRequest>,
        stdin: mpsc::Sender<Vec<u8>>,
        mut output: OutputPump,
        replies: mpsc::Sender<Reply>,
        _permit: OwnedSemaphorePermit,
    ) {
        let id = self.id.as_str();
        let mut stdin = Some(stdin);
        let mut caller_sends = true;
        let mut caller_gone = false;
        let wait = self.client.wait_status(id);
        tokio::pin!(wait);
        let status = loop {
            tokio::select! {
                status = &mut wait => break status,
                message = requests.next(), if caller_sends => match message {
                    Some(Ok(DebugContainerRunRequest { request: Some(part) })) => {
                        self.handle(part, stdin.as_ref()).await;
                    }
                    Some(Ok(_)) => {}
                    None => {
                        // The caller's stdin ended: so does the task's.
                        caller_sends = false;
                        stdin = None;
                        if let Err(status) = self.client.close_stdin(id).await {
                            tracing::warn!(id, error = %status.message(), "cannot close the debug container's stdin");
                        }
                    }
                    Some(Err(_)) => {
                        caller_sends = false;
                        caller_gone = true;
                        self.kill().await;
                    }
                },
                () = replies.closed(), if !caller_gone => {
                    caller_gone = true;
                    self.kill().await;
                }
            }
        };
        drop(stdin);
        if tokio::time::timeout(OUTPUT_GRACE, &mut output.done)
            .await
            .is_err()
        {
            tracing::warn!(
                id,
                "the debug container's output is still open after its exit"
            );
        }
        let reply = match status {
            Some(code) => Ok(DebugContainerRunResponse {
                resp: Some(Resp::ExitCode(code as i32)),
            }),
            None => Err(Status::internal("the debug container's task disappeared")),
        };
        let _ = replies.send(reply).await;
        self.stopped.store(true, Ordering::Relaxed);
        self.client.remove(id).await;
        output.release();
        let files = self.files.clone();
        let _ = tokio::task::spawn_blocking(move || files.remove()).await;
        tracing::info!(id, exit = ?status, "debug container removed");
    }

    async fn handle(&self, part: Part, stdin: Option<&mpsc::Sender<Vec<u8>>>) {
        let id = self.id.as_str();
        match part {
            Part::StdinData(data) => {
                if let Some(stdin) = stdin
                    && stdin.try_send(data).is_err()
                {
                    tracing::warn!(
                        id,
                        "the debug container's stdin queue is full: data dropped"
                    );
                }
            }
            Part::Signal(number) => match Signal::try_from(number) {
                Ok(signal) => {
                    if let Err(status) = self.client.kill(id, signal).await {
                        tracing::warn!(id, error = %status.message(), "cannot signal the debug container");
                    }
                }
                Err(_) => tracing::warn!(id, number, "not a signal: ignored"),
            },
            Part::TermResize(size) => {
                let width = u32::try_from(size.width).unwrap_or(0);
                let height = u32::try_from(size.height).unwrap_or(0);
                if let Err(status) = self.client.resize(id, width, height).await {
                    tracing::debug!(id, error = %status.message(), "cannot resize the debug container's terminal");
                }
            }
            Part::Spec(_) => tracing::warn!(id, "a second spec: ignored"),
        }
    }

    async fn kill(&self) {
        if let Err(status) = self.client.kill(&self.id, Signal::SIGKILL).await {
            tracing::warn!(id = self.id, error = %status.message(), "cannot kill the debug container");
        }
    }
}
