//! trustd: see the library crate for what it does.

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let config = trustd::Config::parse();
    logging::init("trustd", env!("CARGO_PKG_VERSION"));
    trustd::run(config).await?;
    Ok(())
}
