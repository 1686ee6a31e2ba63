//! `talosctl debug [IMAGE]`: a debug container on one node, attached to this terminal, as
//! upstream's.
//!
//! A path to an image tarball (an OCI image layout or `docker save` archive) is imported with
//! `ImageService.Import` first; anything else is a reference the node must already hold
//! (`ImageService.Pull` finds it; talos-rs nodes reach no registry). Then
//! `DebugService.ContainerRun` runs it with `PROFILE_PRIVILEGED`: the spec first, then stdin,
//! forwarded signals (INT, TERM, QUIT, HUP) and terminal sizes; the container's output goes to
//! stdout. When stdin is a terminal it is put in raw mode (restored at the end) and the
//! container gets a terminal too; otherwise stdin and stdout are plain pipes, and the end of
//! stdin closes the container's. A non-zero exit code of the container is talosctl's too.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use clap::Args;
use nix::sys::signal::Signal;
use proto::common::{ContainerDriver, ContainerdInstance, ContainerdNamespace};
use proto::machine::debug_container_run_request::Request as Part;
use proto::machine::debug_container_run_request_spec::Profile;
use proto::machine::debug_container_run_response::Resp;
use proto::machine::debug_service_client::DebugServiceClient;
use proto::machine::image_service_client::ImageServiceClient;
use proto::machine::image_service_pull_response::Response as Pulled;
use proto::machine::{
    DebugContainerRunRequest, DebugContainerRunRequestSpec, DebugContainerTerminalResize,
    ImageServicePullRequest,
};
use ratatui::crossterm::terminal;
use tokio::signal::unix::{Signal as UnixSignal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use crate::cli::GlobalArgs;
use crate::cmd::upgrade::import_into;
use crate::connection::{Session, Target, block_on};

/// The largest message either way, as upstream's client.
const MAX_MESSAGE: usize = 4 << 20;
/// Requests queued for the node.
const QUEUE: usize = 100;

#[derive(Debug, Args)]
pub struct DebugArgs {
    /// An image tarball to import, or the reference of an image on the node
    #[arg(value_name = "image-tar-path|image ref")]
    image: Option<String>,
    /// arguments to pass to the container
    #[arg(long, value_delimiter = ',')]
    args: Vec<String>,
    /// namespace to use: `system` (CRI containerd) or `inmem` for in-memory containerd instance
    #[arg(long, default_value = "inmem")]
    namespace: String,
}

/// The container ended with a non-zero code, which talosctl exits with.
#[derive(Debug)]
pub struct ContainerExit {
    pub code: i32,
}

impl std::fmt::Display for ContainerExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "container exited with code {}", self.code)
    }
}

impl std::error::Error for ContainerExit {}

/// The containerd instance upstream's `--namespace` names.
fn instance(namespace: &str) -> anyhow::Result<ContainerdInstance> {
    let (driver, namespace) = match namespace {
        "cri" => (ContainerDriver::Cri, ContainerdNamespace::NsCri),
        "system" => (ContainerDriver::Cri, ContainerdNamespace::NsSystem),
        "inmem" => (ContainerDriver::Containerd, ContainerdNamespace::NsSystem),
        other => anyhow::bail!("unsupported namespace {other:?}"),
    };
    Ok(ContainerdInstance {
        driver: driver as i32,
        namespace: namespace as i32,
    })
}

pub fn debug(args: DebugArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let image = args
        .image
        .clone()
        .context("an image tar path or reference is required")?;
    let instance = instance(&args.namespace)?;
    block_on(async {
        let session = Session::open(global).await?;
        session.require_one_node("debug")?;
        let target = session
            .targets()
            .first()
            .context("no node to run the debug container on")?;
        let name = if Path::new(&image).exists() {
            import_into(target, Path::new(&image), instance)
                .await
                .context("failed to import image")?
        } else {
            pull(target, &image, instance)
                .await
                .context("failed to pull image")?
        };
        run(target, name, args.args, instance).await
    })
}

/// Finds `image` on the node (talos-rs nodes reach no registry); returns its name.
async fn pull(
    target: &Target,
    image: &str,
    instance: ContainerdInstance,
) -> anyhow::Result<String> {
    let request = target.request(ImageServicePullRequest {
        containerd: Some(instance),
        image_ref: image.to_string(),
    })?;
    let mut replies = ImageServiceClient::new(target.channel())
        .pull(request)
        .await
        .map_err(apiclient::ApiClientError::from)?
        .into_inner();
    while let Some(reply) = replies.next().await {
        if let Some(Pulled::Name(name)) = reply.map_err(apiclient::ApiClientError::from)?.response {
            return Ok(name);
        }
    }
    anyhow::bail!("the node did not name the pulled image")
}

/// Puts the terminal in raw mode until dropped.
struct RawMode;

impl RawMode {
    fn enable() -> anyhow::Result<Self> {
        terminal::enable_raw_mode().context("failed to set terminal to raw mode")?;
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
    }
}

fn request(part: Part) -> DebugContainerRunRequest {
    DebugContainerRunRequest {
        request: Some(part),
    }
}

fn resize() -> Option<DebugContainerRunRequest> {
    let (width, height) = terminal::size().ok()?;
    Some(request(Part::TermResize(DebugContainerTerminalResize {
        width: i32::from(width),
        height: i32::from(height),
    })))
}

async fn run(
    target: &Target,
    image_name: String,
    args: Vec<String>,
    instance: ContainerdInstance,
) -> anyhow::Result<()> {
    let tty = std::io::stdin().is_terminal();
    let (sender, receiver) = mpsc::channel(QUEUE);
    let spec = DebugContainerRunRequestSpec {
        containerd: Some(instance),
        image_name,
        args,
        env: Default::default(),
        profile: Profile::Privileged as i32,
        tty,
    };
    sender
        .send(request(Part::Spec(spec)))
        .await
        .context("failed to send container spec")?;
    let _raw = tty.then(RawMode::enable).transpose()?;
    if tty && let Some(size) = resize() {
        let _ = sender.send(size).await;
    }
    let stdin_ended = read_stdin(sender.clone());
    let signals = tokio::spawn(forward_signals(sender, tty, stdin_ended));
    let mut client = DebugServiceClient::new(target.channel())
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let outcome = async {
        let mut replies = client
            .container_run(target.request(ReceiverStream::new(receiver))?)
            .await
            .map_err(apiclient::ApiClientError::from)
            .context("failed to create debug container stream")?
            .into_inner();
        let mut stdout = std::io::stdout();
        while let Some(reply) = replies.next().await {
            match reply.map_err(apiclient::ApiClientError::from)?.resp {
                Some(Resp::StdoutData(data)) => {
                    stdout.write_all(&data).context("writing to stdout")?;
                    stdout.flush().context("writing to stdout")?;
                }
                Some(Resp::ExitCode(code)) => return Ok(code),
                None => {}
            }
        }
        anyhow::bail!("the debug container's stream ended without its exit code")
    }
    .await;
    signals.abort();
    match outcome? {
        0 => Ok(()),
        code => Err(ContainerExit { code }.into()),
    }
}

/// Sends stdin to the node from a thread of its own (reads block); the returned receiver
/// fires when stdin ends.
fn read_stdin(
    sender: mpsc::Sender<DebugContainerRunRequest>,
) -> tokio::sync::oneshot::Receiver<()> {
    let (ended, stdin_ended) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        let data = request(Part::StdinData(buffer[..read].to_vec()));
                        if sender.blocking_send(data).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = ended.send(());
        });
    if spawned.is_err() {
        eprintln!("cannot read stdin: the container gets none");
    }
    stdin_ended
}

/// Forwards INT, TERM, QUIT and HUP, and terminal sizes on WINCH, until stdin ends: then the
/// last sender goes and the request stream ends, as upstream's client closes its side.
async fn forward_signals(
    sender: mpsc::Sender<DebugContainerRunRequest>,
    tty: bool,
    mut stdin_ended: tokio::sync::oneshot::Receiver<()>,
) {
    let forwarded = [
        (SignalKind::interrupt(), Signal::SIGINT),
        (SignalKind::terminate(), Signal::SIGTERM),
        (SignalKind::quit(), Signal::SIGQUIT),
        (SignalKind::hangup(), Signal::SIGHUP),
    ];
    let mut listeners: Vec<(UnixSignal, i32)> = forwarded
        .into_iter()
        .filter_map(|(kind, number)| Some((signal(kind).ok()?, number as i32)))
        .collect();
    let mut winch = signal(SignalKind::window_change()).ok();
    loop {
        tokio::select! {
            _ = &mut stdin_ended => return,
            number = std::future::poll_fn(|cx| next_signal(&mut listeners, cx)) => {
                if sender.send(request(Part::Signal(number))).await.is_err() {
                    return;
                }
            }
            Some(()) = async { winch.as_mut()?.recv().await } => {
                if tty && let Some(size) = resize() && sender.send(size).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The number of the first forwarded signal that arrived.
fn next_signal(
    listeners: &mut [(UnixSignal, i32)],
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<i32> {
    for (listener, number) in listeners {
        if let std::task::Poll::Ready(Some(())) = listener.poll_recv(cx) {
            return std::task::Poll::Ready(*number);
        }
    }
    std::task::Poll::Pending
}
