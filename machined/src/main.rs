use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;

use clap::Parser;
use machined::{Exit, Options, Platform};

/// machined in dev mode: one talos-rs node as an ordinary process.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Root of the node's files (config, sockets, logs, apid's certificates)
    #[arg(long)]
    state_dir: PathBuf,
    /// Address apid listens on, e.g. 127.0.0.2:50000
    #[arg(long)]
    api_address: SocketAddr,
    /// Hostname used when the machine config sets none
    #[arg(long)]
    hostname: Option<String>,
    /// The apid binary (default: next to machined)
    #[arg(long)]
    apid: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    if std::process::id() == 1 {
        machined::os::boot();
    }
    let args = Args::parse();
    logging::init("machined", env!("CARGO_PKG_VERSION"));
    let own_path = std::env::current_exe()?;
    let options = Options {
        hostname: args
            .hostname
            .unwrap_or_else(|| format!("talos-{}", args.api_address.ip()).replace(['.', ':'], "-")),
        apid: args.apid.unwrap_or_else(|| own_path.with_file_name("apid")),
        state_dir: args.state_dir,
        api_address: args.api_address,
        platform: Platform {
            name: "dev".into(),
            mode: machineconfig::RuntimeMode::Cloud,
        },
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let exit = runtime.block_on(machined::run(options))?;
    drop(runtime);
    if exit == Exit::Reboot {
        tracing::info!("rebooting: starting machined again");
        let error = std::process::Command::new(own_path)
            .args(std::env::args_os().skip(1))
            .exec();
        anyhow::bail!("cannot restart machined: {error}");
    }
    Ok(())
}
