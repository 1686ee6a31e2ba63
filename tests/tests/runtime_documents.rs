//! `EtcFileConfig` documents applied on a dev-mode node: each file appears under the node's
//! `etc/` with its contents and mode, a changed document rewrites it live, a removed one takes
//! its file away, and names outside `/etc` or inside what Talos manages are refused with the
//! files and the config as they were. Loopback block 127.64.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use tests::{Cluster, Node, eventually, failure, success};

const BLOCK: u8 = 64;

const FILES: &str = "apiVersion: v1alpha1
kind: EtcFileConfig
name: motd
contents: |
  welcome
---
apiVersion: v1alpha1
kind: EtcFileConfig
name: app/settings.conf
mode: 0o600
contents: |
  level = 1
";

const CHANGED: &str = "apiVersion: v1alpha1
kind: EtcFileConfig
name: app/settings.conf
mode: 0o640
contents: |
  level = 2
";

fn config_with(cluster: &Cluster, documents: &str) -> String {
    format!(
        "{}\n---\n{documents}",
        cluster.controlplane_config().trim_end()
    )
}

/// The file's contents and permission bits, if it exists.
fn file(path: &Path) -> Option<(String, u32)> {
    let contents = std::fs::read_to_string(path).ok()?;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    Some((contents, mode))
}

#[test]
fn etc_file_documents_are_written_changed_and_removed_live() {
    let mut cluster = Cluster::generate(BLOCK);
    let state_dir = cluster.dir.path().join("node-2");
    let config = config_with(&cluster, FILES);
    let node = Node::start(
        Ipv4Addr::new(127, BLOCK, 0, 2),
        state_dir.clone(),
        Some(&config),
    );
    cluster.nodes.push(node);
    cluster.wait_until_answering(&cluster.nodes[0]);

    let etc = state_dir.join("etc");
    let motd = etc.join("motd");
    let settings = etc.join("app/settings.conf");
    eventually("the files written", || file(&settings).is_some());
    assert_eq!(file(&motd), Some(("welcome\n".to_string(), 0o644)));
    assert_eq!(file(&settings), Some(("level = 1\n".to_string(), 0o600)));

    let applied = cluster.apply_no_reboot("apply.yaml", &config_with(&cluster, CHANGED));
    let warnings = String::from_utf8_lossy(&applied.stderr).into_owned();
    success(applied);
    assert!(
        !warnings.contains("EtcFileConfig"),
        "reported as not applied: {warnings}"
    );
    eventually("the changed file", || {
        file(&settings) == Some(("level = 2\n".to_string(), 0o640))
    });
    eventually("the removed document's file gone", || !motd.exists());

    let persisted = cluster.nodes[0].persisted_config();
    for (name, named) in [
        ("../outside", "must be a relative path inside /etc"),
        ("hosts", "managed by Talos"),
        (
            "app/../kubernetes/kubelet.yaml",
            "/etc/kubernetes/kubelet.yaml is managed by Talos",
        ),
    ] {
        let document =
            format!("apiVersion: v1alpha1\nkind: EtcFileConfig\nname: {name}\ncontents: x\n");
        let config = config_with(&cluster, &format!("{CHANGED}---\n{document}"));
        let error = failure(cluster.apply_no_reboot("apply.yaml", &config));
        assert!(
            error.contains(&format!("EtcFileConfig {name:?}.name")) && error.contains(named),
            "{name}: {error}"
        );
    }
    assert_eq!(cluster.nodes[0].persisted_config(), persisted);
    assert_eq!(file(&settings), Some(("level = 2\n".to_string(), 0o640)));
    assert!(!state_dir.join("outside").exists());
}
