//! Upstream talosctl's conventions that scripts and habits rely on, checked on the built
//! binary without any node: `--help` shape, the `apply` alias forms, `version`'s client block,
//! talosconfig files from newer clients, accepted upstream-only global flags.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::Path;
use std::process::Output;

fn talosctl(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_talosctl"))
        .args(args)
        .env_remove("TALOSCONFIG")
        .env("HOME", "/nonexistent")
        .output()
        .expect("talosctl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

fn help(command: &[&str]) -> String {
    let mut args = command.to_vec();
    args.push("--help");
    let output = talosctl(&args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    stdout(&output)
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn version_help_matches_its_golden_file() {
    assert_eq!(help(&["version"]), fixture("version-help.txt"));
}

#[test]
fn global_flags_have_their_own_section_on_node_commands_only() {
    const GLOBAL: [&str; 6] = [
        "--nodes",
        "--endpoints",
        "--talosconfig",
        "--context",
        "--cluster",
        "--siderov1-keys-dir",
    ];
    for command in [
        &["version"][..],
        &["get"],
        &["etcd", "members"],
        &["apply-config"],
        &["config", "contexts"],
        &["service"],
    ] {
        let text = help(command);
        let (local, global) = text
            .split_once("\nGlobal Flags:\n")
            .unwrap_or_else(|| panic!("{command:?} has no Global Flags section:\n{text}"));
        for flag in GLOBAL {
            assert!(global.contains(flag), "{command:?}: {flag} missing\n{text}");
            assert!(
                !local.contains(flag),
                "{command:?}: {flag} not global\n{text}"
            );
        }
    }
    for command in [
        &[][..],
        &["gen"],
        &["gen", "secrets"],
        &["validate"],
        &["machineconfig", "patch"],
        &["completion"],
        &["cluster", "create"],
    ] {
        let text = help(command);
        assert!(!text.contains("Global Flags"), "{command:?}:\n{text}");
        assert!(!text.contains("--nodes"), "{command:?}:\n{text}");
    }
}

#[test]
fn commands_are_listed_by_name_as_cobra_lists_them() {
    let text = help(&[]);
    let commands: Vec<&str> = text
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|line| line.starts_with("  "))
        .map(|line| line.split_whitespace().next().unwrap())
        .collect();
    let mut sorted = commands.clone();
    sorted.sort_unstable();
    // clap's own `help` comes last.
    assert_eq!(commands.last(), Some(&"help"));
    sorted.retain(|name| *name != "help");
    assert_eq!(&commands[..commands.len() - 1], &sorted[..]);
    assert!(commands.len() > 40, "{text}");
}

#[test]
fn hidden_global_flags_are_still_accepted() {
    let output = talosctl(&["-n", "10.5.0.2", "version", "--client"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = talosctl(&[
        "--siderov1-keys-dir",
        "/keys",
        "version",
        "--client",
        "--short",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "note: --siderov1-keys-dir is ignored: talos-rs has no SideroV1 authentication\n"
    );
}

#[test]
fn version_client_block_is_upstreams() {
    let tag = concat!("v", env!("CARGO_PKG_VERSION"));
    let output = talosctl(&["version", "--client"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(
        stdout(&output),
        format!(
            "Client:\n\tTag:         {tag}\n\tSHA:         talos-rs {tag}\n\tBuilt:       \n\
             \tGo version:  \n\tOS/Arch:     linux/{arch}\n"
        )
    );
    let output = talosctl(&["version", "--client", "--short"]);
    assert_eq!(stdout(&output), format!("Client:\ntalos-rs {tag}\n"));
}

#[test]
fn apply_takes_config_or_machineconfig_after_its_alias_only() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let missing = missing.to_str().unwrap();
    // The object is accepted: the command gets as far as reading the file.
    for object in ["config", "machineconfig", "MachineConfig"] {
        let output = talosctl(&["apply", object, "-f", missing]);
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains("reading") && stderr(&output).contains("missing.yaml"),
            "{object}: {}",
            stderr(&output)
        );
    }
    let output = talosctl(&["apply-config", "config", "-f", missing]);
    assert_eq!(stderr(&output), "error: expected no positional arguments\n");
    let output = talosctl(&["apply", "cfg", "-f", missing]);
    assert_eq!(stderr(&output), "error: unknown positional argument cfg\n");
}

#[test]
fn a_talosconfig_from_a_newer_client_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("talosconfig");
    std::fs::write(
        &path,
        "context: prod\nsomeNewTopLevel: true\ncontexts:\n  prod:\n    endpoints: [10.5.0.2]\n    \
         nodes: [10.5.0.3]\n    ca: Q0E=\n    crt: Q1JU\n    key: S0VZ\n    \
         newAuthScheme:\n      kind: future\n",
    )
    .unwrap();
    let output = talosctl(&[
        "--talosconfig",
        path.to_str().unwrap(),
        "config",
        "contexts",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("prod"), "{}", stdout(&output));
    assert!(stdout(&output).contains("10.5.0.2"), "{}", stdout(&output));
}

#[test]
fn an_unreachable_endpoint_reads_as_upstreams_unavailable_error() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.yaml");
    let talosconfig = dir.path().join("talosconfig");
    for args in [
        &["gen", "secrets", "-o", secrets.to_str().unwrap()][..],
        &[
            "gen",
            "config",
            "demo",
            "https://127.0.58.1:6443",
            "--with-secrets",
            secrets.to_str().unwrap(),
            "-t",
            "talosconfig",
            "-o",
            talosconfig.to_str().unwrap(),
        ],
    ] {
        let output = talosctl(args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    // Nothing listens on port 1 of the test block's loopback address.
    let output = talosctl(&[
        "--talosconfig",
        talosconfig.to_str().unwrap(),
        "-e",
        "127.0.58.1:1",
        "-n",
        "127.0.58.1",
        "memory",
    ]);
    assert!(!output.status.success());
    assert_eq!(
        stderr(&output),
        "error: rpc error: code = Unavailable desc = connection error: desc = \"transport: Error \
         while dialing: dial tcp 127.0.58.1:1: connect: connection refused\"\n"
    );
}

#[test]
fn docs_writes_the_cli_reference_as_upstreams_cli_md() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reference");
    let output = talosctl(&["docs", out.to_str().unwrap(), "--cli"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(out.join("cli.md")).unwrap();
    assert!(
        text.starts_with(
            "---\ndescription: Talosctl CLI tool reference.\ntitle: CLI\n---\n\n\
             <!-- markdownlint-disable -->\n\n## talosctl apply-config\n\n\
             Apply a new configuration to a node\n\n```\ntalosctl apply-config [flags]\n```\n\n\
             ### Options\n\n```\n"
        ),
        "{text}"
    );
    let at = |heading: &str| {
        text.find(&format!("\n{heading}\n"))
            .unwrap_or_else(|| panic!("{heading} missing"))
    };
    // Children come before their parent; the root is last; hidden commands are left out.
    assert!(at("## talosctl etcd members") < at("## talosctl etcd"));
    assert!(
        text.ends_with("* [talosctl wipe](#talosctl-wipe)\t - Wipe block device or volumes\n\n")
    );
    assert!(!text.contains("## talosctl docs"));
    let members = &text[at("## talosctl etcd members")..at("## talosctl etcd")];
    let inherited = members
        .split("### Options inherited from parent commands\n")
        .nth(1)
        .expect("inherited options");
    assert!(inherited.contains("  -n, --nodes strings "), "{members}");
    assert!(text.contains("talosctl gen config <cluster name> <cluster endpoint> [flags]"));

    let output = talosctl(&["docs", out.to_str().unwrap(), "--config"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("configuration schema"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn commands_upstream_removed_say_what_replaces_them() {
    for (args, replacement) in [
        (&["disks"][..], "`talosctl get disks`"),
        (&["interfaces"], "`talosctl get links`"),
        (&["routes"], "`talosctl get routes`"),
        (&["route"], "`talosctl get routes`"),
        (&["crashdump"], "`talosctl support`"),
    ] {
        let output = talosctl(args);
        assert!(!output.status.success(), "{args:?}");
        let text = stderr(&output);
        assert!(
            text.starts_with(&format!("error: `talosctl {}` is deprecated", args[0]))
                || text.starts_with("error: `talosctl routes` is deprecated"),
            "{text}"
        );
        assert!(text.contains(replacement), "{text}");
    }
    assert!(!help(&[]).contains("disks"));
}

#[test]
fn config_proxy_url_sets_shows_and_clears_the_contexts_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("talosconfig");
    std::fs::write(
        &path,
        "context: a\ncontexts:\n  a:\n    endpoints: [10.5.0.2]\n",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--talosconfig", path, "config", "proxy-url"];
        all.extend_from_slice(args);
        let output = talosctl(&all);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        output
    };
    let set = run(&[" socks5://127.0.58.1:1080 "]);
    assert!(
        stderr(&set).contains("does not dial through a proxy"),
        "{}",
        stderr(&set)
    );
    assert!(
        std::fs::read_to_string(path)
            .unwrap()
            .contains("proxy-url: socks5://127.0.58.1:1080")
    );
    assert_eq!(stdout(&run(&[])), "socks5://127.0.58.1:1080\n");
    run(&[""]);
    assert!(!std::fs::read_to_string(path).unwrap().contains("proxy-url"));
    assert_eq!(stdout(&run(&[])), "\n");
}

#[test]
fn kubernetes_commands_say_that_no_kubernetes_runs_here() {
    for args in [
        &["upgrade-k8s", "--to", "1.34.0"][..],
        &["conformance", "kubernetes", "--mode", "certified"],
        &["conformance", "k8s"],
    ] {
        let output = talosctl(args);
        assert!(!output.status.success(), "{args:?} passed");
        let error = stderr(&output);
        assert!(
            error.contains("do not run kube-apiserver") && error.contains("no Kubernetes API"),
            "{args:?}: {error}"
        );
    }
    // Upstream's flags parse.
    assert!(help(&["upgrade-k8s"]).contains("--upgrade-kubelet"));
    assert!(help(&["conformance", "kubernetes"]).contains("--mode"));
}

#[test]
fn rotate_ca_help_matches_its_golden_file() {
    assert_eq!(help(&["rotate-ca"]), fixture("rotate-ca-help.txt"));
}

#[test]
fn rotate_ca_takes_upstreams_boolean_flags_with_equals() {
    // Upstream's `--dry-run=false` form parses; a bad value is refused before any node is read.
    let output = talosctl(&["rotate-ca", "--dry-run=maybe"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("invalid value 'maybe' for '--dry-run"),
        "{}",
        stderr(&output)
    );
    let output = talosctl(&["rotate-ca", "--dry-run=false", "--kubernetes=false"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("talosconfig"),
        "{}",
        stderr(&output)
    );
}
