//! `talosctl config …` against real talosconfig files.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::Path;
use std::process::{Command, Output};

fn talosctl(talosconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talosctl"))
        .arg("--talosconfig")
        .arg(talosconfig)
        .args(args)
        .env_remove("TALOSCONFIG")
        .output()
        .expect("talosctl runs")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "talosctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn failed(output: Output) -> String {
    assert!(!output.status.success(), "talosctl unexpectedly succeeded");
    String::from_utf8(output.stderr).unwrap()
}

/// A directory with a talosconfig holding context `one` (current) and CA/crt/key files.
fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["ca.crt", "admin.crt", "admin.key"] {
        std::fs::write(dir.path().join(name), format!("PEM of {name}")).unwrap();
    }
    let talosconfig = dir.path().join("talosconfig");
    let d = dir.path();
    for ctx in ["one", "two"] {
        ok(talosctl(
            &talosconfig,
            &[
                "config",
                "add",
                ctx,
                "--ca",
                d.join("ca.crt").to_str().unwrap(),
                "--crt",
                d.join("admin.crt").to_str().unwrap(),
                "--key",
                d.join("admin.key").to_str().unwrap(),
            ],
        ));
    }
    ok(talosctl(&talosconfig, &["config", "context", "one"]));
    (dir, talosconfig)
}

#[test]
fn add_context_endpoint_node_and_contexts_table() {
    let (_dir, cfg) = fixture();
    ok(talosctl(
        &cfg,
        &["config", "endpoint", "10.5.0.2", "10.5.0.3"],
    ));
    ok(talosctl(&cfg, &["config", "nodes", "10.5.0.4"]));
    let table = ok(talosctl(&cfg, &["config", "contexts"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("CURRENT") && lines[0].contains("ENDPOINTS"),
        "{table}"
    );
    assert!(
        lines[1].starts_with('*')
            && lines[1].contains("one")
            && lines[1].contains("10.5.0.2,10.5.0.3"),
        "{table}"
    );
    assert!(lines[1].trim_end().ends_with("10.5.0.4"), "{table}");
    assert!(
        !lines[2].starts_with('*') && lines[2].contains("two"),
        "{table}"
    );

    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("context: one"), "{text}");
    let parsed = talosconfig::Talosconfig::load(&cfg).unwrap();
    let creds = parsed.contexts["one"].credentials("one").unwrap();
    assert_eq!(creds.key_pem, "PEM of admin.key");
}

#[test]
fn unknown_context_and_duplicate_add_are_errors_and_change_nothing() {
    let (dir, cfg) = fixture();
    let before = std::fs::read(&cfg).unwrap();
    let err = failed(talosctl(&cfg, &["config", "context", "nope"]));
    assert!(err.contains("\"nope\" is not defined"), "{err}");
    let d = dir.path();
    let err = failed(talosctl(
        &cfg,
        &[
            "config",
            "add",
            "two",
            "--ca",
            d.join("ca.crt").to_str().unwrap(),
            "--crt",
            d.join("admin.crt").to_str().unwrap(),
            "--key",
            d.join("missing.key").to_str().unwrap(),
        ],
    ));
    assert!(err.contains("missing.key"), "{err}");
    assert_eq!(std::fs::read(&cfg).unwrap(), before);
}

#[test]
fn merge_renames_and_remove_refuses_current() {
    let (dir, cfg) = fixture();
    let other = dir.path().join("other");
    std::fs::copy(&cfg, &other).unwrap();
    let out = ok(talosctl(
        &cfg,
        &["config", "merge", other.to_str().unwrap()],
    ));
    assert!(
        out.contains("renamed talosconfig context \"one\" -> \"one-1\""),
        "{out}"
    );
    let table = ok(talosctl(&cfg, &["config", "contexts"]));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with('*') && l.contains("one-1")),
        "{table}"
    );

    let err = failed(talosctl(&cfg, &["config", "remove", "one-1", "-y"]));
    assert!(err.contains("current context"), "{err}");
    let has_two = || {
        ok(talosctl(&cfg, &["config", "contexts"]))
            .lines()
            .any(|l| l.split_whitespace().any(|w| w == "two"))
    };
    ok(talosctl(&cfg, &["config", "remove", "two", "--dry-run"]));
    assert!(has_two());
    ok(talosctl(&cfg, &["config", "remove", "two", "-y"]));
    assert!(!has_two());
}

#[test]
fn malformed_talosconfig_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("broken");
    std::fs::write(&cfg, "contexts: [").unwrap();
    let err = failed(talosctl(&cfg, &["config", "contexts"]));
    assert!(err.contains("broken"), "{err}");
}
