//! One module per command group; each exposes its clap arguments and a `run`.

pub mod apply;
pub mod cgroups;
pub mod cluster;
pub mod config;
pub mod containers;
pub mod copy;
pub mod dashboard;
pub mod debug;
pub mod diskfree;
pub mod docs;
pub mod edit;
pub mod etcd;
pub mod events;
pub mod r#gen;
pub mod get;
pub mod health;
pub mod image_bundle;
pub mod inject;
pub mod inspect;
pub mod kubeconfig;
pub mod kubernetes;
pub mod list;
pub mod logs;
pub mod machineconfig;
pub mod memory;
pub mod mounts;
pub mod netstat;
pub mod pcap;
pub mod power;
pub mod processes;
pub mod read;
pub mod rotate_ca;
pub mod service;
pub mod support;
pub mod time;
pub mod upgrade;
pub mod usage;
pub mod validate;
pub mod version;
pub mod wipe;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Gen(cmd) => r#gen::run(cmd),
        Command::Validate(args) => validate::run(args),
        Command::Machineconfig(cmd) => machineconfig::run(cmd),
        Command::Config(cmd) => config::run(cmd, &cli.global),
        Command::Completion { shell } => {
            crate::completion::write_script(shell, &mut std::io::stdout())
        }
        Command::Docs(args) => docs::run(args),
        Command::Version(args) => version::run(args, &cli.global),
        Command::Service(args) => service::run(args, &cli.global),
        Command::Logs(args) => logs::run_logs(args, &cli.global),
        Command::Dmesg(args) => logs::run_dmesg(args, &cli.global),
        Command::Events(args) => events::run(args, &cli.global),
        Command::Dashboard(args) => dashboard::run(args, &cli.global),
        Command::Memory(args) => memory::run(args, &cli.global),
        Command::Time(args) => time::run(args, &cli.global),
        Command::Get(args) => get::run(args, &cli.global),
        Command::Inspect(command) => inspect::run(command, &cli.global),
        Command::Cluster(args) => cluster::run(args, &cli.global),
        Command::Support(args) => support::run(args, &cli.global),
        Command::Pcap(args) => pcap::run(args, &cli.global),
        Command::Health(args) => health::run(args, &cli.global),
        Command::Bootstrap(args) => etcd::bootstrap(args, &cli.global),
        Command::Etcd(command) => etcd::run(command, &cli.global),
        Command::Cgroups(args) => cgroups::run(args, &cli.global),
        Command::Processes(args) => processes::run(args, &cli.global),
        Command::Diskfree(args) => diskfree::run(args, &cli.global),
        Command::Mounts(args) => mounts::run(args, &cli.global),
        Command::Stats(args) => containers::run_stats(args, &cli.global),
        Command::Containers(args) => containers::run_containers(args, &cli.global),
        Command::Restart(args) => containers::run_restart(args, &cli.global),
        Command::Netstat(args) => netstat::run(args, &cli.global),
        Command::List(args) => list::run(args, &cli.global),
        Command::Read(args) => read::run(args, &cli.global),
        Command::Kubeconfig(args) => kubeconfig::run(args, &cli.global),
        Command::Copy(args) => copy::run(args, &cli.global),
        Command::Usage(args) => usage::run(args, &cli.global),
        Command::ApplyConfig(args) => apply::run(args, &cli.global),
        Command::Patch(args) => edit::patch(args, &cli.global),
        Command::RotateCa(args) => rotate_ca::run(args, &cli.global),
        Command::Edit(args) => edit::edit(args, &cli.global),
        Command::Reboot(args) => power::reboot(args, &cli.global),
        Command::Shutdown(args) => power::shutdown(args, &cli.global),
        Command::Upgrade(args) => upgrade::upgrade(args, &cli.global),
        Command::Rollback => upgrade::rollback(&cli.global),
        Command::Reset(args) => power::reset(args, &cli.global),
        Command::Image(command) => upgrade::image(command, &cli.global),
        Command::Debug(args) => debug::debug(args, &cli.global),
        Command::Meta(command) => upgrade::meta(command, &cli.global),
        Command::Wipe(command) => wipe::run(command, &cli.global),
        Command::UpgradeK8s(args) => kubernetes::upgrade_k8s(&args),
        Command::Conformance(command) => kubernetes::conformance(&command),
        Command::Inject(command) => inject::run(command),
        // Commands upstream removed: its messages, naming what replaces them.
        Command::Disks => anyhow::bail!(
            "`talosctl disks` is deprecated, please use `talosctl get disks`, `talosctl get \
             systemdisk`, `talosctl get discoveredvolumes` instead"
        ),
        Command::Interfaces => anyhow::bail!(
            "`talosctl interfaces` is deprecated, please use `talosctl get addresses` and \
             `talosctl get links` instead"
        ),
        Command::Routes => {
            anyhow::bail!(
                "`talosctl routes` is deprecated, please use `talosctl get routes` instead"
            )
        }
        Command::Crashdump => {
            anyhow::bail!(
                "`talosctl crashdump` is deprecated, please use `talosctl support` instead"
            )
        }
    }
}
