//! Tracing set-up shared by every talos-rs daemon, so that all of them log alike: one line per
//! event to stderr (machined captures it per service), level from `RUST_LOG` (default `info`),
//! and one start-up line naming the daemon and its version. Colour codes only when stderr is a
//! terminal: a service's stderr is a pipe to machined, whose logs `talosctl logs` shows as text;
//! the tee (machined's shipped log) always gets plain text, even when PID 1 writes colour to
//! the console. A panic is logged as an error
//! event before it unwinds: the daemons are built to unwind, so a panic in a request ends that
//! request's task and the daemon goes on, and the log says where it happened.

use std::borrow::Cow;
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
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || TeeWriter {
            tee: Arc::clone(&tee),
            ansi,
        })
        .with_target(false)
        .with_ansi(ansi)
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

/// stderr, with every write also handed to a tee (as plain text when stderr gets colour).
struct TeeWriter {
    tee: Tee,
    ansi: bool,
}

impl Write for TeeWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().write_all(bytes)?;
        if self.ansi {
            (self.tee)(&without_escapes(bytes));
        } else {
            (self.tee)(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `bytes` without terminal control sequences (CSI: ESC `[`, parameters, one final byte in
/// `@`..=`~`), which is all the formatter writes for colour and style.
fn without_escapes(bytes: &[u8]) -> Cow<'_, [u8]> {
    if !bytes.contains(&0x1b) {
        return Cow::Borrowed(bytes);
    }
    let mut plain = Vec::with_capacity(bytes.len());
    let mut rest = bytes.iter();
    while let Some(&byte) = rest.next() {
        if byte != 0x1b {
            plain.push(byte);
            continue;
        }
        let mut sequence = rest.clone();
        if sequence.next() == Some(&b'[') {
            // Skip to the final byte; an unfinished sequence drops the rest.
            let _ = sequence.find(|b| (0x40..=0x7e).contains(*b));
            rest = sequence;
        }
    }
    Cow::Owned(plain)
}

#[cfg(test)]
mod tests {
    use super::without_escapes;

    #[test]
    fn colour_and_style_sequences_are_removed_and_plain_text_kept() {
        let coloured = b"2026-12-05T03:00:00Z \x1b[32m INFO\x1b[0m service: \x1b[3mat_ms\x1b[0m\x1b[2m=\x1b[0m12.5\n";
        assert_eq!(
            &*without_escapes(coloured),
            b"2026-12-05T03:00:00Z  INFO service: at_ms=12.5\n"
        );
        let plain = b"no colour here\n";
        assert!(matches!(
            without_escapes(plain),
            std::borrow::Cow::Borrowed(_)
        ));
        // A lone ESC is dropped; an unfinished sequence ends the text.
        assert_eq!(&*without_escapes(b"a\x1bb"), b"ab");
        assert_eq!(&*without_escapes(b"a\x1b[3"), b"a");
    }
}
