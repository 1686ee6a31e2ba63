//! apid: the Talos API endpoint. See the library crate for what it does.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = apid::Config::parse();
    logging::init("apid", env!("CARGO_PKG_VERSION"));
    apid::run(config).await?;
    Ok(())
}
