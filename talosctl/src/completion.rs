//! Shell completion that asks talosctl itself, as upstream's cobra completion does:
//! `talosctl completion SHELL` prints a small script that runs `talosctl` with `COMPLETE=SHELL`
//! for every completion, so besides subcommands and flags the candidates include what is known
//! only then: the contexts, nodes and endpoints of the talosconfig, the resource types the
//! current context's node serves and the paths on it for `list`, `read` and `copy` (asked with a
//! short deadline; nothing when it does not answer), and the system services' IDs.

use std::ffi::OsStr;
use std::time::Duration;

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{CompleteEnv, Shells};

use crate::cli::{self, GlobalArgs};
use crate::connection::{Session, block_on};

/// The environment variable the registration script sets for talosctl.
const VARIABLE: &str = "COMPLETE";
/// How long completing a resource type waits for the node.
const NODE_DEADLINE: Duration = Duration::from_secs(3);
/// The services a talos-rs node runs (`talosctl services` on a control plane).
const SERVICES: [&str; 8] = [
    "apid",
    "containerd",
    "etcd",
    "kubelet",
    "machined",
    "networkd",
    "timed",
    "trustd",
];

/// Answers a completion request and exits when the shell asked for one; returns otherwise.
pub fn answer_if_asked() {
    CompleteEnv::with_factory(|| with_candidates(cli::command()))
        .var(VARIABLE)
        .complete();
}

/// Writes `shell`'s registration script.
pub fn write_script(
    shell: clap_complete::Shell,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<()> {
    let name = shell.to_string();
    let shells = Shells::builtins();
    let completer = shells
        .completer(&name)
        .ok_or_else(|| anyhow::anyhow!("no completion for shell {name}"))?;
    completer.write_registration(VARIABLE, "talosctl", "talosctl", "talosctl", out)?;
    Ok(())
}

/// `command` with the value completers of its arguments.
fn with_candidates(command: clap::Command) -> clap::Command {
    let command = command.mut_args(global_completer);
    command.mut_subcommands(|sub| {
        let name = sub.get_name().to_owned();
        let sub = sub.mut_args(|arg| {
            let arg = global_completer(arg);
            match (name.as_str(), arg.get_id().as_str()) {
                ("get", "resource_type") => arg.add(ArgValueCompleter::new(resource_types)),
                ("logs" | "service" | "restart", "id") => arg.add(ArgValueCompleter::new(services)),
                ("list" | "read", "path") | ("copy", "source") => {
                    arg.add(ArgValueCompleter::new(remote_paths))
                }
                _ => arg,
            }
        });
        // Nested subcommands (`etcd members`, `config context` …) take the flags too.
        sub.mut_subcommands(|nested| nested.mut_args(global_completer))
    })
}

fn global_completer(arg: clap::Arg) -> clap::Arg {
    match arg.get_id().as_str() {
        "context" => arg.add(ArgValueCompleter::new(contexts)),
        "nodes" | "endpoints" => arg.add(ArgValueCompleter::new(addresses)),
        _ => arg,
    }
}

fn matching(current: &OsStr, values: impl IntoIterator<Item = String>) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let mut values: Vec<String> = values
        .into_iter()
        .filter(|value| value.starts_with(current.as_ref()))
        .collect();
    values.sort();
    values.dedup();
    values.into_iter().map(CompletionCandidate::new).collect()
}

fn talosconfig() -> Option<talosconfig::Talosconfig> {
    talosconfig::Talosconfig::load(&talosconfig::default_path()).ok()
}

fn contexts(current: &OsStr) -> Vec<CompletionCandidate> {
    let names = talosconfig().map(|config| config.contexts.into_keys().collect::<Vec<_>>());
    matching(current, names.unwrap_or_default())
}

/// The nodes and endpoints of the current context.
fn addresses(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(config) = talosconfig() else {
        return Vec::new();
    };
    let Ok((_, context)) = config.context(None) else {
        return Vec::new();
    };
    let all = context.nodes.iter().chain(&context.endpoints).cloned();
    matching(current, all.collect::<Vec<_>>())
}

fn services(current: &OsStr) -> Vec<CompletionCandidate> {
    matching(current, SERVICES.map(str::to_owned))
}

/// Runs `ask` against the current context's first node, within [`NODE_DEADLINE`] for the
/// connection and again for the answer.
fn ask_node<T, F, Fut>(ask: F) -> anyhow::Result<T>
where
    F: FnOnce(crate::connection::Target) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let global = GlobalArgs {
        nodes: Vec::new(),
        endpoints: Vec::new(),
        talosconfig: None,
        context: None,
        cluster: None,
        siderov1_keys_dir: None,
    };
    block_on(async {
        let session = tokio::time::timeout(NODE_DEADLINE, Session::open(&global)).await??;
        let target = session
            .targets()
            .first()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no node"))?;
        tokio::time::timeout(NODE_DEADLINE, ask(target)).await?
    })
}

/// The resource types and aliases the current context's node serves.
fn resource_types(current: &OsStr) -> Vec<CompletionCandidate> {
    let definitions = ask_node(|target| async move { crate::cmd::get::definitions(&target).await });
    // Every alias but the dotted full type names (those are typed out, not completed).
    let names = definitions
        .unwrap_or_default()
        .into_iter()
        .flat_map(|d| d.all_aliases)
        .filter(|alias| !alias.contains('.'));
    matching(current, names.collect::<Vec<_>>())
}

/// The entries on the node of the directory `current` is in, as upstream completes remote
/// paths: absolute, directories ending in `/`.
fn remote_paths(current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    let directory = match current.rfind('/') {
        Some(end) => current[..=end].to_string(),
        None => "/".to_string(),
    };
    let root = directory.clone();
    let entries = ask_node(|target| async move {
        let request = proto::machine::ListRequest {
            root,
            ..Default::default()
        };
        let reply = target.machine().list(target.request(request)?).await;
        let mut failures = crate::failures::Failures::default();
        let mut entries = Vec::new();
        target
            .stream(reply, &mut failures, |_, info| {
                if info.error.is_empty() && !info.relative_name.is_empty() {
                    entries.push((info.relative_name, info.is_dir));
                }
                Ok(())
            })
            .await?;
        Ok(entries)
    });
    let paths = entries
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, _)| name != ".")
        .map(|(name, is_dir)| {
            let slash = if is_dir { "/" } else { "" };
            format!("{directory}{name}{slash}")
        });
    let typed = if current.starts_with('/') {
        current.into_owned()
    } else {
        format!("/{current}")
    };
    matching(OsStr::new(&typed), paths.collect::<Vec<_>>())
}
