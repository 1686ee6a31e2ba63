//! List, Read, Copy and DiskUsage over the node's allowed roots ([`filebrowse`]).
//!
//! A request path is resolved before the call returns, so a missing or forbidden path is the
//! call's own error (NotFound, PermissionDenied, InvalidArgument). The walk itself runs on a
//! blocking thread that feeds a bounded channel: it goes only as fast as the client reads, and it
//! stops when the client goes away. A failure in the middle of a stream ends it with an error.
//! At most [`MAX_FILE_WALKS`] walks run at once (they share tokio's blocking pool with DNS and
//! host queries); a request beyond that waits for one to end, up to [`WALK_WAIT`], then is
//! refused with ResourceExhausted.

use std::io::{self, Write};
use std::sync::Arc;

use filebrowse::Roots;
use proto::common::Data;
use proto::machine::{
    CopyRequest, DiskUsageInfo, DiskUsageRequest, FileInfo, ListRequest, ReadRequest,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::codegen::BoxStream;

use crate::error::MachinedError;
use crate::machine::Machine;

/// Messages a walk may run ahead of the client.
const STREAM_DEPTH: usize = 8;

/// Size of the `Copy` archive chunks (the last one is shorter).
const COPY_CHUNK_BYTES: usize = 64 * 1024;

/// File walks (List, Read, Copy, DiskUsage streams) that may run at once.
pub const MAX_FILE_WALKS: usize = 8;

/// How long a request waits for a file walk to end before it is refused.
const WALK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The permits for file walks, shared by every request of the node, and how long a request
/// waits for one.
#[derive(Clone, Debug)]
pub struct FileWalks {
    permits: Arc<Semaphore>,
    wait: std::time::Duration,
}

impl Default for FileWalks {
    fn default() -> Self {
        FileWalks {
            permits: Arc::new(Semaphore::new(MAX_FILE_WALKS)),
            wait: WALK_WAIT,
        }
    }
}

impl FileWalks {
    async fn start(&self) -> Result<OwnedSemaphorePermit, MachinedError> {
        let busy = || {
            MachinedError::ResourceExhausted(format!(
                "{MAX_FILE_WALKS} file walks are running already; try again later"
            ))
        };
        match tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

pub(super) async fn list(
    machine: &Machine,
    request: ListRequest,
) -> Result<BoxStream<FileInfo>, MachinedError> {
    let walk = machine.file_walks.start().await?;
    let entries = machine.files.list(&request)?;
    Ok(stream_blocking(walk, |_| entries.map(Ok)))
}

pub(super) async fn read(
    machine: &Machine,
    request: ReadRequest,
) -> Result<BoxStream<Data>, MachinedError> {
    let walk = machine.file_walks.start().await?;
    let chunks = machine.files.read(&request.path)?.into_chunks();
    Ok(stream_blocking(walk, |_| {
        chunks.map(|chunk| {
            chunk
                .map(|bytes| Data {
                    metadata: None,
                    bytes,
                })
                .map_err(|error| Status::from(MachinedError::from(error)))
        })
    }))
}

pub(super) async fn copy(
    machine: &Machine,
    request: CopyRequest,
) -> Result<BoxStream<Data>, MachinedError> {
    let walk = machine.file_walks.start().await?;
    tar_gz_stream(walk, &machine.files, request.root_path)
}

pub(super) async fn disk_usage(
    machine: &Machine,
    request: DiskUsageRequest,
) -> Result<BoxStream<DiskUsageInfo>, MachinedError> {
    let walk = machine.file_walks.start().await?;
    let entries = machine.files.disk_usage(&request)?;
    Ok(stream_blocking(walk, |client_gone| {
        entries.stop_when(client_gone).map(Ok)
    }))
}

/// Streams the items `make_items` returns from a blocking thread, holding `walk` until it ends;
/// the thread stops when the stream is dropped. `make_items` gets a check that tells whether
/// the client went away, for walks that can run long between two items.
fn stream_blocking<T, I>(
    walk: OwnedSemaphorePermit,
    make_items: impl FnOnce(Box<dyn Fn() -> bool + Send>) -> I,
) -> BoxStream<T>
where
    T: Send + 'static,
    I: Iterator<Item = Result<T, Status>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(STREAM_DEPTH);
    let probe = sender.clone();
    let items = make_items(Box::new(move || probe.is_closed()));
    tokio::task::spawn_blocking(move || {
        let _walk = walk;
        for item in items {
            if sender.blocking_send(item).is_err() {
                // The client went away.
                break;
            }
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}

/// The gzip-compressed tar of `root_path`, written on a blocking thread in chunks of
/// [`COPY_CHUNK_BYTES`]. Entries the archive leaves out are logged.
fn tar_gz_stream(
    walk: OwnedSemaphorePermit,
    roots: &Roots,
    root_path: String,
) -> Result<BoxStream<Data>, MachinedError> {
    if root_path.is_empty() {
        return Err(MachinedError::InvalidArgument(
            "copy: root_path is empty (an absolute path is needed)".to_owned(),
        ));
    }
    // The archive resolves its path on the blocking thread; resolving it here first (a listing
    // is lazy: this only resolves the root) makes a bad path the call's error.
    roots.list(&ListRequest {
        root: root_path.clone(),
        ..ListRequest::default()
    })?;
    let roots = roots.clone();
    let (sender, receiver) = mpsc::channel(STREAM_DEPTH);
    tokio::task::spawn_blocking(move || {
        let _walk = walk;
        let mut chunks = ChunkSender::new(sender.clone(), COPY_CHUNK_BYTES);
        match roots.copy_tar_gz(&root_path, &mut chunks) {
            Ok(report) => {
                for skipped in report.skipped {
                    tracing::warn!(
                        root = %root_path,
                        path = %skipped.path,
                        reason = %skipped.reason,
                        "copy: entry left out of the archive"
                    );
                }
            }
            Err(error) => {
                // Nobody hears it if the failure was the client going away.
                let _ = sender.blocking_send(Err(MachinedError::from(error).into()));
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(receiver)))
}

/// A [`Write`] that sends what is written through a channel as `common.Data` messages of
/// `chunk_bytes` bytes; [`flush`](Write::flush) sends what is left. Once the receiver is gone,
/// writes fail with [`io::ErrorKind::BrokenPipe`], which stops whatever is writing.
#[derive(Debug)]
struct ChunkSender {
    sender: mpsc::Sender<Result<Data, Status>>,
    buffer: Vec<u8>,
    chunk_bytes: usize,
}

impl ChunkSender {
    fn new(sender: mpsc::Sender<Result<Data, Status>>, chunk_bytes: usize) -> Self {
        Self {
            sender,
            buffer: Vec::with_capacity(chunk_bytes),
            chunk_bytes: chunk_bytes.max(1),
        }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        let bytes = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.chunk_bytes));
        self.sender
            .blocking_send(Ok(Data {
                metadata: None,
                bytes,
            }))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client stopped reading"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let taken = bytes.len().min(self.chunk_bytes - self.buffer.len());
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == self.chunk_bytes {
            self.send_buffer()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send_buffer()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tonic::Code;

    use super::*;

    fn received(receiver: &mut mpsc::Receiver<Result<Data, Status>>) -> Vec<usize> {
        let mut sizes = Vec::new();
        while let Ok(chunk) = receiver.try_recv() {
            sizes.push(chunk.expect("only data is sent").bytes.len());
        }
        sizes
    }

    #[test]
    fn written_bytes_leave_in_full_chunks_and_the_rest_on_flush() {
        let (sender, mut receiver) = mpsc::channel(8);
        let mut chunks = ChunkSender::new(sender, 4);
        chunks.write_all(b"abcdefghij").expect("receiver alive");
        assert_eq!(received(&mut receiver), [4, 4]);
        chunks.flush().expect("receiver alive");
        assert_eq!(received(&mut receiver), [2]);
        chunks.flush().expect("nothing to send");
        assert_eq!(received(&mut receiver), [0usize; 0]);
    }

    #[test]
    fn writing_fails_with_broken_pipe_once_the_client_is_gone() {
        let (sender, receiver) = mpsc::channel(8);
        let mut chunks = ChunkSender::new(sender, 4);
        drop(receiver);
        let error = chunks.write_all(b"abcdefgh").expect_err("nobody receives");
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }

    fn walk(walks: &FileWalks) -> OwnedSemaphorePermit {
        Arc::clone(&walks.permits)
            .try_acquire_owned()
            .expect("a free walk")
    }

    #[tokio::test]
    async fn walks_are_bounded_and_a_silent_walk_ends_with_its_client() {
        let walks = FileWalks {
            wait: std::time::Duration::from_millis(100),
            ..FileWalks::default()
        };
        let mut streams = Vec::new();
        for _ in 0..MAX_FILE_WALKS {
            // A walk that yields nothing until its client has gone, like `du` of a large tree
            // whose entries are all filtered out.
            streams.push(stream_blocking(walk(&walks), |client_gone| {
                std::iter::from_fn(move || {
                    while !client_gone() {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    None::<Result<(), Status>>
                })
            }));
        }
        let refused = walks.start().await.expect_err("all walks busy");
        assert_eq!(Status::from(refused).code(), Code::ResourceExhausted);
        drop(streams);
        // Every walk notices its client left and gives its permit back.
        let permits = Arc::clone(&walks.permits);
        let all = permits
            .acquire_many(MAX_FILE_WALKS as u32)
            .await
            .expect("open");
        drop(all);
    }

    fn roots(dir: &std::path::Path) -> Roots {
        Roots::new([("/var", dir)]).expect("valid mount")
    }

    #[tokio::test]
    async fn copy_of_a_bad_path_fails_before_streaming() {
        let dir = tempfile::tempdir().expect("temp dir");
        let roots = roots(dir.path());
        let walks = FileWalks::default();
        let status = |path: &str| match tar_gz_stream(walk(&walks), &roots, path.to_owned()) {
            Ok(_) => panic!("{path}: expected an error"),
            Err(error) => Status::from(error).code(),
        };
        assert_eq!(status("/var/missing"), Code::NotFound);
        assert_eq!(status("/etc"), Code::PermissionDenied);
        assert_eq!(status(""), Code::InvalidArgument);
    }

    #[tokio::test]
    async fn copy_streams_a_gzip_archive_in_bounded_chunks() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Incompressible content, so the archive spans several chunks.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let content: Vec<u8> = (0..200_000)
            .map(|_| {
                // xorshift64
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(dir.path().join("blob"), &content).expect("write fixture");
        let walks = FileWalks::default();
        let stream =
            tar_gz_stream(walk(&walks), &roots(dir.path()), "/var".to_owned()).expect("valid path");
        let chunks: Vec<Data> = stream.map(|item| item.expect("no error")).collect().await;
        assert!(chunks.len() >= 3, "{} chunks", chunks.len());
        assert!(
            chunks
                .iter()
                .all(|chunk| chunk.bytes.len() <= COPY_CHUNK_BYTES)
        );
        assert!(
            chunks[..chunks.len() - 1]
                .iter()
                .all(|chunk| chunk.bytes.len() == COPY_CHUNK_BYTES)
        );
        assert_eq!(chunks[0].bytes[..2], [0x1f, 0x8b], "gzip magic");
        let total: usize = chunks.iter().map(|chunk| chunk.bytes.len()).sum();
        assert!(
            total > content.len(),
            "{total} bytes for {} of content",
            content.len()
        );
    }

    #[tokio::test]
    async fn a_streamed_walk_stops_when_the_client_goes_away() {
        let (progress, mut seen) = mpsc::unbounded_channel();
        let items = (0..).map(move |i| {
            let _ = progress.send(i);
            Ok(i)
        });
        let walks = FileWalks::default();
        let mut stream = stream_blocking(walk(&walks), |_| items);
        assert_eq!(stream.next().await.map(|item| item.expect("ok")), Some(0));
        drop(stream);
        // The walk can run at most the channel's depth (plus the item in hand) ahead.
        let mut last = 0;
        while let Some(i) = seen.recv().await {
            last = i;
        }
        assert!(last <= STREAM_DEPTH + 2, "walk ran on to item {last}");
    }
}
