//! Tracing set-up shared by every talos-rs daemon, so that all of them log alike: one line per
//! event to stderr (machined captures it per service), level from `RUST_LOG` (default `info`),
//! and one start-up line naming the daemon and its version.

use tracing_subscriber::EnvFilter;

/// Initialises tracing for the daemon `name` (version `version`) and logs the start-up line.
/// Calling it twice is harmless (the second call keeps the first subscriber).
pub fn init(name: &str, version: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
    tracing::info!(daemon = name, version, "starting");
}
