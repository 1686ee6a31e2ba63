//! One module per command group; each exposes its clap arguments and a `run`.

pub mod config;
pub mod r#gen;
pub mod machineconfig;
pub mod validate;
pub mod version;

use clap::CommandFactory as _;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Gen(cmd) => r#gen::run(cmd),
        Command::Validate(args) => validate::run(args),
        Command::Machineconfig(cmd) => machineconfig::run(cmd),
        Command::Config(cmd) => config::run(cmd, &cli.global),
        Command::Completion { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "talosctl", &mut std::io::stdout());
            Ok(())
        }
        Command::Version(args) => version::run(args),
    }
}
