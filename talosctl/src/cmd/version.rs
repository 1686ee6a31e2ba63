//! `talosctl version`.

use clap::Args;

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print client version only
    #[arg(long)]
    pub client: bool,
    /// Print the short version
    #[arg(long)]
    pub short: bool,
}

pub fn run(args: VersionArgs) -> anyhow::Result<()> {
    let tag = concat!("v", env!("CARGO_PKG_VERSION"));
    if args.short {
        println!("Client talos-rs {tag}");
    } else {
        println!("Client:");
        println!("\tTag:         {tag}");
        println!("\tOS/Arch:     {}/{}", std::env::consts::OS, go_arch());
    }
    if !args.client {
        anyhow::bail!("server version: talking to nodes is not implemented yet; use --client");
    }
    Ok(())
}

/// Architecture names as Talos reports them (Go's naming).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
