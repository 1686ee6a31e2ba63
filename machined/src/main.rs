use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;

use clap::Parser;
use std::time::Duration;

use machined::api_services::ApiServices;
use machined::{Exit, Options, Platform, ResetPlan};

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
    /// The trustd binary (default: next to machined)
    #[arg(long)]
    trustd: Option<PathBuf>,
    /// The timed binary (default: next to machined)
    #[arg(long)]
    timed: Option<PathBuf>,
    /// Run networkd and let it configure the network from the machine config: only for a
    /// machined started in a network namespace of its own, never on the host's
    #[arg(long)]
    manage_network: bool,
    /// The networkd binary (default: next to machined)
    #[arg(long)]
    networkd: Option<PathBuf>,
    /// The etcd binary, run on control planes
    #[arg(long, default_value = "/usr/bin/etcd")]
    etcd: PathBuf,
    /// Lifetime of the apid and trustd serving certificates, renewed at half-life
    #[arg(long, default_value_t = 24 * 3600)]
    certificate_ttl_seconds: u64,
    /// Where the kernel log (`/dev/kmsg`, when readable) is shipped, `tcp://HOST:PORT` or
    /// `udp://HOST:PORT`: what `talos.logging.kernel=` on the kernel command line says in OS mode
    #[arg(long, value_parser = machined::log_shipping::check_endpoint)]
    kernel_log_destination: Option<String>,
    /// `HOST:PORT` of a gRPC event sink (`events.EventSinkService`) to stream machined's events
    /// to: what `talos.events.sink=` on the kernel command line says in OS mode
    #[arg(long, value_parser = machined::event_sink_endpoint)]
    events_sink: Option<String>,
}

/// Dev mode's reset: the node's folders stand for its volumes (STATE `system/state`, EPHEMERAL
/// `var`); the secrets derived from the config go too.
fn reset_state(state_dir: &std::path::Path, plan: ResetPlan) -> anyhow::Result<()> {
    let mut wiped = vec![state_dir.join("system/secrets")];
    if plan.state {
        wiped.push(state_dir.join("system/state"));
    }
    if plan.ephemeral {
        wiped.push(state_dir.join("var"));
    }
    for dir in wiped {
        match std::fs::remove_dir_all(&dir) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                anyhow::bail!("reset: removing {}: {error}", dir.display())
            }
            _ => tracing::info!("reset: removed {}", dir.display()),
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    machined::boot_clock::mark_start();
    if std::process::id() == 1 {
        machined::os::boot();
    }
    let args = Args::parse();
    logging::init_with_tee(
        "machined",
        env!("CARGO_PKG_VERSION"),
        machined::log_shipping::machined_log_tee(),
    );
    let own_path = std::env::current_exe()?;
    let beside = |name: &str| own_path.with_file_name(name);
    let options = Options {
        hostname: args
            .hostname
            .unwrap_or_else(|| format!("talos-{}", args.api_address.ip()).replace(['.', ':'], "-")),
        api_services: ApiServices {
            apid: args.apid.unwrap_or_else(|| beside("apid")),
            trustd: args.trustd.unwrap_or_else(|| beside("trustd")),
            certificate_ttl: Duration::from_secs(args.certificate_ttl_seconds),
        },
        timed: args.timed.unwrap_or_else(|| beside("timed")),
        networkd: args
            .manage_network
            .then(|| args.networkd.unwrap_or_else(|| beside("networkd"))),
        etcd: args.etcd,
        containerd: None,
        // Relative paths would change meaning for the services machined starts.
        state_dir: std::path::absolute(&args.state_dir)?,
        api_address: args.api_address,
        platform: Platform {
            name: "dev".into(),
            mode: machineconfig::RuntimeMode::Cloud,
            metadata: None,
            user_data_problem: None,
            network_yaml: None,
        },
        release: machined::BUILD_RELEASE.into(),
        system_disk: None,
        boot_artifacts: None,
        kernel_log_destination: args.kernel_log_destination,
        events_sink: args.events_sink,
        kernel_environment: Vec::new(),
        install_media: None,
        ending: None,
    };
    let state_dir = options.state_dir.clone();
    let runtime = tokio::runtime::Runtime::new()?;
    let exit = runtime.block_on(machined::run(options))?;
    drop(runtime);
    let reboot = match exit {
        Exit::Reboot | Exit::PowerCycle => true,
        Exit::Shutdown => false,
        Exit::Reset(plan) => {
            reset_state(&state_dir, plan)?;
            plan.reboot
        }
    };
    if reboot {
        tracing::info!("rebooting: starting machined again");
        let error = std::process::Command::new(own_path)
            .args(std::env::args_os().skip(1))
            .exec();
        anyhow::bail!("cannot restart machined: {error}");
    }
    Ok(())
}
