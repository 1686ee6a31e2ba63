//! apid: the Talos API endpoint. See the library crate for what it does.

use clap::Parser;

// One thread: apid only relays, and keeping every hop of a call on one thread avoids
// cross-thread wake-ups (measured: about half the added latency of the multi-threaded runtime).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let config = apid::Config::parse();
    logging::init("apid", env!("CARGO_PKG_VERSION"));
    apid::run(config).await?;
    Ok(())
}
