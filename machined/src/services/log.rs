//! Per-service log capture: an in-memory ring of the latest lines plus an append-only file.
//!
//! The writer (a runner's output pump) appends bytes; complete lines go to the ring and to
//! `<log dir>/<service>.log`. When the file passes its size limit it is renamed to
//! `<service>.log.1` (replacing the previous one) and a new file is started. Readers take the
//! last N lines and may then follow new output as line-aligned byte chunks; they never hold up
//! the writer (a follower that falls behind the ring skips the lines it lost). Readers of a
//! stopped service still get what the ring holds. Every complete line is also handed to log
//! shipping ([`crate::log_shipping`]), which never makes the writer wait.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::sync::watch;

/// Size limits of one service log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Bytes of complete lines kept in memory (the newest line is always kept).
    pub ring_bytes: usize,
    /// Size past which the file is rotated to `.1`.
    pub file_bytes: u64,
    /// Longer lines are split at this length.
    pub max_line: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            ring_bytes: 1 << 20,
            file_bytes: 10 << 20,
            max_line: 64 << 10,
        }
    }
}

/// Most bytes a follower receives in one chunk (more when a single line is longer).
const CHUNK_BYTES: usize = 64 << 10;

/// One service's log; cheap to clone.
#[derive(Debug, Clone)]
pub struct ServiceLog {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    /// The service, named by the file (`<service>.log`), for log shipping.
    service: Arc<str>,
    limits: LogLimits,
    state: Mutex<State>,
    /// The sequence number after the newest line; followers wait on it.
    next_seq: watch::Sender<u64>,
}

#[derive(Debug)]
struct State {
    lines: VecDeque<Bytes>,
    ring_bytes: usize,
    first_seq: u64,
    /// The unfinished last line.
    partial: Vec<u8>,
    file: Option<File>,
    file_bytes: u64,
}

impl State {
    fn end_seq(&self) -> u64 {
        self.first_seq + self.lines.len() as u64
    }
}

impl ServiceLog {
    /// Opens (appending to) the log file at `path`.
    pub fn open(path: impl Into<PathBuf>, limits: LogLimits) -> io::Result<Self> {
        let path = path.into();
        let file = open_append(&path)?;
        let file_bytes = file.metadata()?.len();
        let service = Arc::from(
            path.file_stem()
                .map(|stem| stem.to_string_lossy())
                .unwrap_or_default()
                .as_ref(),
        );
        Ok(Self {
            shared: Arc::new(Shared {
                service,
                path,
                limits,
                state: Mutex::new(State {
                    lines: VecDeque::new(),
                    ring_bytes: 0,
                    first_seq: 0,
                    partial: Vec::new(),
                    file: Some(file),
                    file_bytes,
                }),
                next_seq: watch::Sender::new(0),
            }),
        })
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Appends output; complete lines become visible to readers at once.
    pub fn append(&self, mut bytes: &[u8]) {
        let mut state = self.lock();
        let max_line = self.shared.limits.max_line.max(1);
        while !bytes.is_empty() {
            let room = max_line - state.partial.len().min(max_line - 1);
            let take = match bytes.iter().take(room).position(|&byte| byte == b'\n') {
                Some(newline) => newline + 1,
                None => room.min(bytes.len()),
            };
            state.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if state.partial.ends_with(b"\n") {
                self.commit_partial(&mut state);
            } else if state.partial.len() >= max_line {
                state.partial.push(b'\n');
                self.commit_partial(&mut state);
            }
        }
        self.publish(&state);
    }

    /// Ends an unfinished last line (the writer's output ended without a newline).
    pub fn finish_line(&self) {
        let mut state = self.lock();
        if !state.partial.is_empty() {
            state.partial.push(b'\n');
            self.commit_partial(&mut state);
            self.publish(&state);
        }
    }

    /// A reader starting `tail_lines` lines back (`None`: everything in the ring). With
    /// `follow`, it then waits for new lines; without, it ends at the end of what exists now.
    pub fn reader(&self, tail_lines: Option<usize>, follow: bool) -> LogReader {
        let changes = self.shared.next_seq.subscribe();
        let state = self.lock();
        let end = state.end_seq();
        let cursor = match tail_lines {
            None => state.first_seq,
            Some(count) => end.saturating_sub(count as u64).max(state.first_seq),
        };
        LogReader {
            log: self.clone(),
            cursor,
            end: (!follow).then_some(end),
            changes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publish(&self, state: &State) {
        let end = state.end_seq();
        self.shared.next_seq.send_if_modified(|seq| {
            let changed = *seq != end;
            *seq = end;
            changed
        });
    }

    fn commit_partial(&self, state: &mut State) {
        let line = Bytes::from(std::mem::take(&mut state.partial));
        self.write_file(state, &line);
        crate::log_shipping::publish(&self.shared.service, &line);
        state.ring_bytes += line.len();
        state.lines.push_back(line);
        while state.ring_bytes > self.shared.limits.ring_bytes && state.lines.len() > 1 {
            if let Some(oldest) = state.lines.pop_front() {
                state.ring_bytes -= oldest.len();
                state.first_seq += 1;
            }
        }
    }

    fn write_file(&self, state: &mut State, line: &[u8]) {
        if state.file_bytes >= self.shared.limits.file_bytes {
            state.file = None;
            match self.rotate() {
                Ok(file) => {
                    state.file = Some(file);
                    state.file_bytes = 0;
                }
                Err(error) => tracing::warn!(
                    path = %self.shared.path.display(),
                    %error,
                    "cannot rotate service log; keeping it in memory only"
                ),
            }
        }
        let Some(file) = state.file.as_mut() else {
            return;
        };
        if let Err(error) = file.write_all(line) {
            tracing::warn!(
                path = %self.shared.path.display(),
                %error,
                "cannot write service log; keeping it in memory only"
            );
            state.file = None;
            return;
        }
        state.file_bytes += line.len() as u64;
    }

    fn rotate(&self) -> io::Result<File> {
        let mut rotated = self.shared.path.clone().into_os_string();
        rotated.push(".1");
        std::fs::rename(&self.shared.path, rotated)?;
        open_append(&self.shared.path)
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// A position in a [`ServiceLog`].
#[derive(Debug)]
pub struct LogReader {
    log: ServiceLog,
    cursor: u64,
    /// Where a non-following reader stops.
    end: Option<u64>,
    changes: watch::Receiver<u64>,
}

impl LogReader {
    /// The next chunk of whole lines, or `None` when a non-following reader is done. A following
    /// reader waits for new output and never ends.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            self.changes.borrow_and_update();
            if let Some(chunk) = self.take_buffered() {
                return Some(chunk);
            }
            if self.end.is_some_and(|end| self.cursor >= end) {
                return None;
            }
            if self.changes.changed().await.is_err() {
                // The sender lives in the log this reader holds: cannot happen.
                return None;
            }
        }
    }

    fn take_buffered(&mut self) -> Option<Bytes> {
        let state = self.log.lock();
        // Lines that left the ring while this reader was behind are skipped.
        self.cursor = self.cursor.max(state.first_seq);
        let stop = self.end.unwrap_or(u64::MAX).min(state.end_seq());
        let mut chunk = BytesMut::new();
        while self.cursor < stop && (chunk.is_empty() || chunk.len() < CHUNK_BYTES) {
            let index = (self.cursor - state.first_seq) as usize;
            let line = &state.lines[index];
            if !chunk.is_empty() && chunk.len() + line.len() > CHUNK_BYTES {
                break;
            }
            chunk.extend_from_slice(line);
            self.cursor += 1;
        }
        (!chunk.is_empty()).then(|| chunk.freeze())
    }

    /// The reader as a stream of chunks (for a gRPC `common.Data` stream).
    pub fn into_stream(self) -> impl Stream<Item = Bytes> + Send + 'static {
        futures_util::stream::unfold(self, |mut reader| async move {
            let chunk = reader.next_chunk().await?;
            Some((chunk, reader))
        })
    }
}
