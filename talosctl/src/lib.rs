//! talosctl: the command-line client of talos-rs, compatible with upstream Talos's `talosctl`.
//!
//! Implemented so far: offline commands — `gen` (secrets, cluster configs, raw PKI), `validate`,
//! `machineconfig patch`, `config` (talosconfig editing), `completion` and `version --client`.
//! Commands that talk to nodes arrive with the node API.

mod cli;
mod cmd;
mod output;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser as _;

pub use cli::Cli;

/// Parses `args` (program name first), runs the command and returns the process exit code.
/// Errors are printed to stderr as `error: …`.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cmd::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
