use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use timed::{Options, PollPolicy};

/// timed: the talos-rs SNTP client, serving its state on a Unix socket under the state dir.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Root of timed's files (socket: system/run/timed/timed.sock)
    #[arg(long)]
    state_dir: PathBuf,
    /// NTP server (host, host:port, IPv4/IPv6 literal, [v6]:port); repeatable; replaces the
    /// config's machine.time.servers
    #[arg(long = "server")]
    servers: Vec<String>,
    /// Machine config whose machine.time section to use
    #[arg(long)]
    config: Option<PathBuf>,
    /// Measure and report only: never change the system clock
    #[arg(long)]
    measure_only: bool,
    /// Start with sync off (no server is asked) until Configure or the config turns it on
    #[arg(long)]
    disabled: bool,
    /// Fixed poll interval in seconds (fractions allowed); default 32 s growing to 2048 s
    #[arg(long, value_parser = seconds)]
    poll_interval: Option<Duration>,
    /// How long one query waits for its reply, in seconds
    #[arg(long, value_parser = seconds, default_value = "5")]
    query_timeout: Duration,
}

fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{text:?} is not a positive number of seconds"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    logging::init("timed", env!("CARGO_PKG_VERSION"));
    let options = Options {
        state_dir: args.state_dir,
        servers: args.servers,
        config: args.config,
        measure_only: args.measure_only,
        disabled: args.disabled,
        poll: args
            .poll_interval
            .map_or(PollPolicy::DEFAULT, PollPolicy::fixed),
        query_timeout: args.query_timeout,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(timed::run(options))?;
    Ok(())
}
