//! talosctl: the command-line client of talos-rs, compatible with upstream Talos's `talosctl`.
//!
//! Offline commands: `gen` (secrets, cluster configs, raw PKI), `validate`, `machineconfig
//! patch`, `config` (talosconfig editing), `completion`, `docs` (the CLI reference).
//!
//! Node commands (through apid, see the `apiclient` crate): `version`, `service`, `logs`,
//! `dmesg`, `events`, `memory`, `processes`, `mounts`, `diskfree`, `stats`, `containers`,
//! `netstat`, `list`, `read`, `copy`, `usage`. They address all nodes in one call
//! (`node`/`nodes` metadata) and print a NODE column first. A node's failure is printed to
//! stderr as `error from node X: …`; the other nodes' output is still printed and the exit
//! code is 1. gRPC failures read as upstream's (`rpc error: code = … desc = …`): worded by
//! `apiclient::ApiClientError`, and by [`run`] for a status anywhere in an error's chain.
//!
//! The command tree (`cli::command`) follows upstream's conventions: the global flags are
//! accepted everywhere but listed, under "Global Flags", only by the commands that talk to
//! nodes.
//!
//! Commands that can reach a node in maintenance mode take `-i/--insecure` and
//! `--cert-fingerprint` (pins the server key). Streams of several nodes are interleaved as their
//! messages arrive, so `logs -f` and `dmesg -f` follow every node.
//!
//! `dashboard` is a terminal UI (ratatui): per node a header, the Summary, Monitor and Network
//! screens and a live log, fed by fetchers on tokio tasks (see `cmd::dashboard`).
//!
//! `reboot` and `shutdown` wait by default (`--wait`, `--debug`, `--timeout`): each node is
//! tracked through its `Events` stream until the action is done, and a reboot until the node
//! answers again from a new boot (see the `action` module for how a dev-mode node, whose boot id
//! does not change, is recognised).
//!
//! Limits: `-o json|yaml` only on `config info` (no other implemented command has an output
//! flag upstream); `reboot`/`shutdown` print plain progress lines, not upstream's live
//! terminal table.

mod action;
mod bpf;
mod cli;
mod cmd;
mod completion;
mod connection;
mod failures;
mod file_mode;
mod humanize;
mod node_lines;
mod output;
mod zip_archive;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::FromArgMatches as _;

pub use cli::Cli;

/// Parses `args` (program name first), runs the command and returns the process exit code.
/// Errors are printed to stderr as `error: …`.
pub fn run(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    completion::answer_if_asked();
    let args: Vec<OsString> = args.into_iter().collect();
    let mut cli = match cli::command()
        .try_get_matches_from(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
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
    if let cli::Command::ApplyConfig(apply) = &mut cli.command {
        apply.called_as_alias = cli::called_as_alias(&args);
    }
    if cli.global.siderov1_keys_dir.is_some() {
        eprintln!("note: --siderov1-keys-dir is ignored: talos-rs has no SideroV1 authentication");
    }
    match cmd::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<failures::AlreadyReported>() => ExitCode::FAILURE,
        Err(ref e) if let Some(exit) = e.downcast_ref::<cmd::debug::ContainerExit>() => {
            eprintln!("error: {exit}");
            // Codes outside 1..=255 (a signal's negative number) read as a plain failure.
            u8::try_from(exit.code)
                .ok()
                .filter(|code| *code != 0)
                .map_or(ExitCode::FAILURE, ExitCode::from)
        }
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined with `: ` (as anyhow's `{:#}`), with a gRPC status worded as
/// upstream's talosctl words it (`rpc error: code = … desc = …`) and a cause left out when the
/// message before it already says it.
fn error_text(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = match cause.downcast_ref::<tonic::Status>() {
            Some(status) => apiclient::ApiClientError::from(status.clone()).to_string(),
            None => cause.to_string(),
        };
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_statuses_read_as_upstreams_wherever_they_are_in_the_chain() {
        let bare = anyhow::Error::from(tonic::Status::unavailable("node is down"));
        assert_eq!(
            error_text(&bare),
            "rpc error: code = Unavailable desc = node is down"
        );
        let wrapped = bare.context("reading the config");
        assert_eq!(
            error_text(&wrapped),
            "reading the config: rpc error: code = Unavailable desc = node is down"
        );
        let ours = anyhow::Error::from(apiclient::ApiClientError::from(tonic::Status::cancelled(
            "stop",
        )));
        assert_eq!(error_text(&ours), "rpc error: code = Canceled desc = stop");
    }
}
