//! `talosctl reboot` and `talosctl shutdown`: the node answers at once with an actor id and
//! runs the sequence on its own.

use clap::{Args, ValueEnum};
use proto::machine::{RebootRequest, ShutdownRequest, reboot_request};

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;

#[derive(Debug, Args)]
pub struct RebootArgs {
    /// Select the reboot mode
    #[arg(short = 'm', long, value_enum, default_value = "default")]
    pub mode: RebootMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RebootMode {
    Default,
    Powercycle,
    Force,
}

#[derive(Debug, Args)]
pub struct ShutdownArgs {
    /// If true, force a node to shutdown without a cordon/drain
    #[arg(long)]
    pub force: bool,
}

pub fn reboot(args: RebootArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let mode = match args.mode {
        RebootMode::Default => reboot_request::Mode::Default,
        RebootMode::Powercycle => reboot_request::Mode::Powercycle,
        RebootMode::Force => reboot_request::Mode::Force,
    };
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        for target in session.targets() {
            let request = RebootRequest { mode: mode as i32 };
            let reply = target.machine().reboot(target.request(request)?).await;
            for (node, reboot) in
                target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                println!("{node}: reboot requested (actor id {})", reboot.actor_id);
            }
        }
        failures.finish()
    })
}

pub fn shutdown(args: ShutdownArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        for target in session.targets() {
            let request = ShutdownRequest { force: args.force };
            let reply = target.machine().shutdown(target.request(request)?).await;
            for (node, shutdown) in
                target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                println!(
                    "{node}: shutdown requested (actor id {})",
                    shutdown.actor_id
                );
            }
        }
        failures.finish()
    })
}
