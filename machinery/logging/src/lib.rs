//! Tracing set-up shared by every talos-rs daemon, so that all of them log alike: one line per
//! event to stderr (machined captures it per service), level from `RUST_LOG` (default `info`),
//! and one start-up line naming the daemon and its version. Colour codes only when stderr is a
//! terminal: a service's stderr is a pipe to machined, whose logs `talosctl logs` shows as text. A panic is logged as an error
//! event before it unwinds: the daemons are built to unwind, so a panic in a request ends that
//! request's task and the daemon goes on, and the log says where it happened.

use std::io::{IsTerminal as _, Write};
use std::sync::Arc;

use tracing_subscriber::EnvFilter;

/// Initialises tracing for the daemon `name` (version `version`) and logs the start-up line.
/// Calling it twice is harmless (the second call keeps the first subscriber).
pub fn init(name: &str, version: &str) {
    init_with_tee(name, version, |_| {});
}

/// As [`init`], also handing every formatted event (one or more whole lines) to `tee`, which
/// must not block (machined ships its own log this way).
pub fn init_with_tee(name: &str, version: &str, tee: impl Fn(&[u8]) + Send + Sync + 'static) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let tee: Tee = Arc::new(tee);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || TeeWriter(Arc::clone(&tee)))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    std::panic::set_hook(Box::new(|panic| {
        let location = panic
            .location()
            .map(|at| format!("{}:{}", at.file(), at.line()))
            .unwrap_or_default();
        let payload = panic.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        tracing::error!(%location, "panic: {message}");
    }));
    tracing::info!(daemon = name, version, "starting");
}

/// What also receives the formatted events.
type Tee = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// stderr, with every write also handed to a tee.
struct TeeWriter(Tee);

impl Write for TeeWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().write_all(bytes)?;
        (self.0)(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
