//! `talosctl docs DIR` (hidden, as upstream's): the CLI reference as one Markdown file,
//! `DIR/cli.md`, rendered from the clap definitions in the layout upstream's reference uses
//! (cobra's Markdown generator): per command its short help, synopsis, usage line, options,
//! inherited options and "SEE ALSO" links; children before their parent, hidden commands left
//! out.
//!
//! Limits: upstream's `--config` (the configuration schema reference) is refused: the config
//! types of talos-rs carry no documentation to render. Flag types are derived from clap's value
//! parsers (`string`, `int`, `uint`, …, or the possible values of an enum); a Go duration that
//! clap reads as a string shows as `string`.

use std::any::TypeId;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Arg, ArgAction, Args};

use crate::cli;

#[derive(Debug, Args)]
pub struct DocsArgs {
    /// The directory to write the reference to (created when missing)
    pub output: PathBuf,
    /// Generate documentation for the CLI
    #[arg(long)]
    pub cli: bool,
    /// Generate documentation for the default configuration schema (not available in talos-rs)
    #[arg(long)]
    pub config: bool,
}

/// The start of `cli.md`, as upstream's.
const FRONT_MATTER: &str = "---\ndescription: Talosctl CLI tool reference.\ntitle: CLI\n---\n\n\
                            <!-- markdownlint-disable -->\n\n";

pub fn run(args: DocsArgs) -> anyhow::Result<()> {
    if args.config {
        anyhow::bail!(
            "the configuration schema reference (--config) cannot be generated: the config types \
             of talos-rs carry no documentation to render"
        );
    }
    if !args.cli {
        eprintln!("note: writing the CLI reference only (no configuration schema reference)");
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("failed to create output directory {:?}", args.output))?;
    let path = args.output.join("cli.md");
    let mut command = cli::command();
    command.build();
    let text = format!("{FRONT_MATTER}{}", reference(&command));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// The sections of `command` and all its visible descendants, children first.
fn reference(command: &clap::Command) -> String {
    let mut out = String::new();
    write_tree(command, &[], &mut out);
    out
}

fn write_tree(command: &clap::Command, parents: &[&clap::Command], out: &mut String) {
    let mut path = parents.to_vec();
    path.push(command);
    for child in visible_children(command) {
        write_tree(child, &path, out);
    }
    write_section(command, parents, out);
}

/// Subcommands a user sees, sorted by name (as cobra sorts them); not clap's `help`.
fn visible_children(command: &clap::Command) -> Vec<&clap::Command> {
    let mut children: Vec<&clap::Command> = command
        .get_subcommands()
        .filter(|child| !child.is_hide_set() && child.get_name() != "help")
        .collect();
    children.sort_by_key(|child| child.get_name());
    children
}

/// `talosctl etcd members`: the command's full name.
fn full_name(command: &clap::Command, parents: &[&clap::Command]) -> String {
    parents
        .iter()
        .map(|parent| parent.get_name())
        .chain([command.get_name()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Markdown anchor of a section heading.
fn anchor(name: &str) -> String {
    format!("#{}", name.to_lowercase().replace(' ', "-"))
}

fn short_help(command: &clap::Command) -> String {
    command
        .get_about()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn write_section(command: &clap::Command, parents: &[&clap::Command], out: &mut String) {
    let name = full_name(command, parents);
    let _ = write!(out, "## {name}\n\n{}\n\n", short_help(command));
    if let Some(long) = command.get_long_about() {
        let _ = write!(out, "### Synopsis\n\n{long}\n\n");
    }
    let runnable = !command.has_subcommands() || !command.is_subcommand_required_set();
    if runnable {
        let _ = write!(out, "```\n{}\n```\n\n", usage(command, &name));
    }
    // As upstream: the global flags are a top-level command's own options, and inherited
    // below it.
    let visible: Vec<&Arg> = command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && !arg.is_positional())
        .collect();
    let (own, inherited): (Vec<&Arg>, Vec<&Arg>) = visible
        .into_iter()
        .partition(|arg| !arg.is_global_set() || parents.len() <= 1);
    if !own.is_empty() {
        let _ = write!(out, "### Options\n\n```\n{}```\n\n", flag_table(&own));
    }
    if !inherited.is_empty() {
        let _ = write!(
            out,
            "### Options inherited from parent commands\n\n```\n{}```\n\n",
            flag_table(&inherited)
        );
    }
    let children = visible_children(command);
    if parents.is_empty() && children.is_empty() {
        return;
    }
    out.push_str("### SEE ALSO\n\n");
    if let Some((parent, grandparents)) = parents.split_last() {
        let parent_name = full_name(parent, grandparents);
        let _ = writeln!(
            out,
            "* [{parent_name}]({})\t - {}",
            anchor(&parent_name),
            short_help(parent)
        );
    }
    for child in children {
        let child_name = format!("{name} {}", child.get_name());
        let _ = writeln!(
            out,
            "* [{child_name}]({})\t - {}",
            anchor(&child_name),
            short_help(child)
        );
    }
    out.push('\n');
}

/// `talosctl gen config <cluster name> <cluster endpoint> [flags]`.
fn usage(command: &clap::Command, name: &str) -> String {
    let mut line = name.to_owned();
    for arg in command.get_positionals().filter(|arg| !arg.is_hide_set()) {
        let value = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| arg.get_id().to_string(), ToString::to_string)
            .to_lowercase()
            .replace('_', " ");
        let many = matches!(arg.get_action(), ArgAction::Append)
            || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        let dots = if many { "..." } else { "" };
        if arg.is_required_set() {
            let _ = write!(line, " <{value}>{dots}");
        } else {
            let _ = write!(line, " [{value}]{dots}");
        }
    }
    line.push_str(" [flags]");
    line
}

/// pflag's flag table: flags sorted by name, usage aligned three spaces after the longest
/// flag, non-zero defaults appended (strings quoted).
fn flag_table(args: &[&Arg]) -> String {
    let mut rows: Vec<(String, String, String)> = args
        .iter()
        .map(|arg| {
            let long = arg.get_long().unwrap_or_else(|| arg.get_id().as_str());
            let mut left = match arg.get_short() {
                Some(short) => format!("  -{short}, --{long}"),
                None => format!("      --{long}"),
            };
            let kind = value_kind(arg);
            if let Some(kind) = &kind {
                left.push(' ');
                left.push_str(kind);
            }
            let mut usage = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|value| value.to_string_lossy().into_owned())
                .collect();
            let default = defaults.join(",");
            let zero = default.is_empty() || (kind.is_none() && default == "false");
            if !zero {
                if kind.as_deref() == Some("string") {
                    let _ = write!(usage, " (default {default:?})");
                } else {
                    let _ = write!(usage, " (default {default})");
                }
            }
            (long.to_owned(), left, usage)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let width = rows
        .iter()
        .map(|(_, left, _)| left.len())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(_, left, usage)| format!("{left:<width$}   {usage}\n"))
        .collect()
}

/// The type word pflag prints after a flag (`None` for a switch).
fn value_kind(arg: &Arg) -> Option<String> {
    if !arg.get_action().takes_values() {
        return None;
    }
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| value.get_name().to_owned())
        .collect();
    if !possible.is_empty() {
        return Some(possible.join(", "));
    }
    let id = arg.get_value_parser().type_id();
    let is = |types: &[TypeId]| types.iter().any(|t| id == *t);
    let base = if is(&[
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<isize>(),
    ]) {
        "int"
    } else if is(&[
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
    ]) {
        "uint"
    } else if is(&[TypeId::of::<f32>(), TypeId::of::<f64>()]) {
        "float"
    } else {
        "string"
    };
    let many = matches!(arg.get_action(), ArgAction::Append) || arg.get_value_delimiter().is_some();
    Some(if many {
        format!("{base}s")
    } else {
        base.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Command, value_parser};

    /// A small tree in the shape of upstream's: a global flag, a parent without its own action,
    /// a child with an enum, a number, a default and a positional.
    fn tree() -> Command {
        let mut root = Command::new("talosctl")
            .about("A CLI")
            .arg(
                Arg::new("nodes")
                    .short('n')
                    .long("nodes")
                    .global(true)
                    .value_delimiter(',')
                    .action(ArgAction::Append)
                    .help("target the specified nodes"),
            )
            .subcommand(
                Command::new("etcd")
                    .about("Manage etcd")
                    .subcommand_required(true)
                    .subcommand(
                        Command::new("snapshot")
                            .about("Stream a snapshot")
                            .long_about("Stream a snapshot of the etcd database.\n\nSlowly.")
                            .arg(Arg::new("path").required(true).value_name("PATH"))
                            .arg(
                                Arg::new("mode")
                                    .short('m')
                                    .long("mode")
                                    .value_parser(["fast", "safe"])
                                    .default_value("fast")
                                    .help("how"),
                            )
                            .arg(
                                Arg::new("limit")
                                    .long("limit")
                                    .value_parser(value_parser!(u32))
                                    .help("at most"),
                            )
                            .arg(
                                Arg::new("name")
                                    .long("name")
                                    .default_value("db")
                                    .help("file name"),
                            )
                            .arg(
                                Arg::new("force")
                                    .long("force")
                                    .action(ArgAction::SetTrue)
                                    .help("overwrite"),
                            ),
                    ),
            )
            .subcommand(Command::new("secret").hide(true).about("Hidden"))
            .subcommand_required(true)
            .disable_help_flag(true)
            .disable_help_subcommand(true);
        root.build();
        root
    }

    #[test]
    fn reference_matches_its_golden_file() {
        let expected = include_str!("../../tests/fixtures/docs-reference.md");
        assert_eq!(reference(&tree()), expected);
    }
}
