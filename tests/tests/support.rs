//! `talosctl support`: a bundle from two dev-mode control planes opens with `unzip`, holds
//! each node's logs, state, resources and redacted config in upstream's layout, and none of the
//! cluster's secrets. Loopback block 127.46.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::path::Path;
use std::process::Command;

use tests::{Cluster, failure, success};

/// Every secret value of a generated control plane config (tokens, secrets, private keys).
fn secrets(config: &str) -> Vec<String> {
    use serde::Deserialize as _;
    let mut found = Vec::new();
    for document in serde_norway::Deserializer::from_str(config) {
        collect(
            &serde_norway::Value::deserialize(document).unwrap(),
            &mut found,
        );
    }
    assert!(found.len() >= 8, "too few secrets found: {found:?}");
    found
}

fn collect(value: &serde_norway::Value, found: &mut Vec<String>) {
    match value {
        serde_norway::Value::Mapping(mapping) => {
            for (key, value) in mapping {
                let key = key.as_str().unwrap_or_default();
                match value.as_str() {
                    Some(secret)
                        if ["key", "token", "secret"].contains(&key)
                            || key.ends_with("EncryptionSecret") =>
                    {
                        found.push(secret.to_string());
                    }
                    _ => collect(value, found),
                }
            }
        }
        serde_norway::Value::Sequence(items) => items.iter().for_each(|v| collect(v, found)),
        _ => {}
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_bundle_holds_each_node_and_no_secret() {
    let cluster = Cluster::start(46, 2);
    let nodes = ["127.46.0.2", "127.46.0.3"];
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("bundle.zip");
    let bundle_arg = bundle.display().to_string();
    let printed =
        success(cluster.talosctl(&["-n", &nodes.join(","), "support", "-O", &bundle_arg]));
    assert!(printed.contains("support bundle written"), "{printed}");

    let extracted = out.path().join("extracted");
    success(
        Command::new("unzip")
            .arg("-q")
            .arg(&bundle)
            .arg("-d")
            .arg(&extracted)
            .output()
            .unwrap(),
    );
    for node in nodes {
        let dir = extracted.join(node);
        for file in [
            "dmesg.log",
            "apid.log",
            "apid.state",
            "timed.log",
            "dependencies.dot",
            "mounts",
            "processes",
            "summary",
            "machineconfig.yaml",
            "talosResources/MachineStatuses.runtime.talos.dev.yaml",
            "talosResources/MachineConfigs.config.talos.dev.yaml",
        ] {
            assert!(dir.join(file).exists(), "{node}/{file} missing");
        }
        let status = std::fs::read_to_string(
            dir.join("talosResources/MachineStatuses.runtime.talos.dev.yaml"),
        )
        .unwrap();
        assert!(status.contains("stage"), "{status}");
        let config = std::fs::read_to_string(dir.join("machineconfig.yaml")).unwrap();
        assert!(
            config.contains("<REDACTED>") && config.contains("controlplane"),
            "{config}"
        );
        let graph = std::fs::read_to_string(dir.join("dependencies.dot")).unwrap();
        assert!(graph.starts_with("digraph"), "{graph}");
    }

    let secrets = secrets(&cluster.controlplane_config());
    for file in files_under(&extracted) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{} holds a secret",
                file.display()
            );
        }
    }

    // An existing bundle is not overwritten without --force.
    let error = failure(cluster.talosctl(&["-n", nodes[0], "support", "-O", &bundle_arg]));
    assert!(error.contains("already exists"), "{error}");
}
