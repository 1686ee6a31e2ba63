use std::path::PathBuf;

use clap::Parser;

/// networkd: links, addresses, routes, hostname and resolvers from machine.network.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Root of networkd's files: socket, ownership record, resolv.conf, hosts
    #[arg(long)]
    state_dir: PathBuf,
    /// A machine config whose machine.network is applied at start
    #[arg(long)]
    config: Option<PathBuf>,
    /// The kernel ip= argument (client-ip:server-ip:gw-ip:netmask:hostname:device:autoconf:dns0:dns1:ntp0)
    #[arg(long)]
    kernel_ip: Option<String>,
    /// Set the kernel hostname even without a UTS namespace of networkd's own
    #[arg(long)]
    set_hostname: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init("networkd", env!("CARGO_PKG_VERSION"));
    let options = networkd::Options {
        state_dir: args.state_dir,
        config: args.config,
        kernel_ip: args.kernel_ip,
        set_hostname: args.set_hostname,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(networkd::run(options, async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("stopping");
    }))?;
    Ok(())
}
