//! The CRI documents (`RegistryMirrorConfig`, `RegistryAuthConfig`, `RegistryTLSConfig`,
//! `CRICustomizationConfig`) and `machine.registries` applied as upstream's containerd files in
//! a dev-mode node's root: each registry's `hosts.toml` (read with a TOML parser) with its CA
//! and client files, and the merged `cri.toml`. A changed config rewrites them live, a removed
//! registry takes its directory with it, and bad documents are refused with the files and the
//! config as they were. Loopback block 127.63.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Output;

use pki::{CaKind, Validity, generate_ca};
use serde::Deserialize as _;
use tests::{Cluster, Node, eventually, failure, success};
use toml::Table;

const BLOCK: u8 = 63;
const IMAGES_PLUGIN: &str = "io.containerd.cri.v1.images";

/// The generated control-plane config with `machine.registries` set (ghcr.io mirrored, with
/// credentials for its mirror), followed by `documents`.
fn config_with(cluster: &Cluster, documents: &str) -> String {
    let mut out = Vec::new();
    for document in serde_norway::Deserializer::from_str(&cluster.controlplane_config()) {
        let mut value = serde_norway::Value::deserialize(document).unwrap();
        if value["version"] == "v1alpha1" {
            let registries: serde_norway::Value = serde_norway::from_str(
                "mirrors: {ghcr.io: {endpoints: ['https://ghcr.mirror.local']}}\n\
                 config: {ghcr.mirror.local: {auth: {username: ghcr-user, password: secret}}}\n",
            )
            .unwrap();
            value["machine"]["registries"] = registries;
        }
        out.push(serde_norway::to_string(&value).unwrap());
    }
    format!("{}---\n{documents}", out.join("---\n"))
}

/// A documents block in YAML with `pem` as a literal block at `indent` spaces.
fn block(pem: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    pem.lines().map(|line| format!("{pad}{line}\n")).collect()
}

fn documents(ca: &str, client_cert: &str, client_key: &str) -> String {
    format!(
        "apiVersion: v1alpha1
kind: RegistryMirrorConfig
name: docker.io
endpoints:
  - url: https://mirror.local:5000
  - url: http://last.local/v2
    overridePath: true
skipFallback: true
---
apiVersion: v1alpha1
kind: RegistryAuthConfig
name: docker.io
username: puller
password: pull-secret
---
apiVersion: v1alpha1
kind: RegistryTLSConfig
name: mirror.local:5000
insecureSkipVerify: true
ca: |
{}clientIdentity:
  cert: |
{}  key: |
{}---
apiVersion: v1alpha1
kind: RegistryTLSConfig
name: tls-only.local
insecureSkipVerify: true
---
apiVersion: v1alpha1
kind: CRICustomizationConfig
name: snapshots
content: |
  [plugins.\"{IMAGES_PLUGIN}\"]
    snapshotter = \"overlayfs\"
",
        block(ca, 2),
        block(client_cert, 4),
        block(client_key, 4),
    )
}

/// After the change: one mirror, fallback allowed, no TLS-only registry.
const CHANGED: &str = "apiVersion: v1alpha1
kind: RegistryMirrorConfig
name: docker.io
endpoints:
  - url: https://only.local
";

fn talosctl(cluster: &Cluster, args: &[&str]) -> Output {
    let node = cluster.nodes[0].address.to_string();
    let mut all = vec!["-n", node.as_str()];
    all.extend_from_slice(args);
    cluster.talosctl(&all)
}

fn read_toml(path: &Path) -> Option<Table> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.parse()
            .unwrap_or_else(|e| panic!("{} is not TOML: {e}\n{text}", path.display())),
    )
}

/// Every file under `dir` with its contents, for before/after comparisons.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn registry_and_cri_documents_become_containerd_files_and_follow_changes() {
    let ca = generate_ca(CaKind::Talos, Validity::from_now(time::Duration::days(1))).unwrap();
    let client = generate_ca(CaKind::Talos, Validity::from_now(time::Duration::days(1))).unwrap();
    let (ca_pem, client_cert, client_key) = (
        ca.crt.clone().unwrap(),
        client.crt.clone().unwrap(),
        client.key.clone().unwrap(),
    );
    let mut cluster = Cluster::generate(BLOCK);
    let config = config_with(&cluster, &documents(&ca_pem, &client_cert, &client_key));
    let state_dir = cluster.dir.path().join("node-2");
    let node = Node::start(
        Ipv4Addr::new(127, BLOCK, 0, 2),
        state_dir.clone(),
        Some(&config),
    );
    cluster.nodes.push(node);
    cluster.wait_until_answering(&cluster.nodes[0]);

    let conf_d = state_dir.join("etc/cri/conf.d");
    let hosts = conf_d.join("hosts");
    let docker = hosts.join("docker.io");
    // cri.toml is written last.
    eventually("docker.io's hosts.toml and cri.toml", || {
        docker.join("hosts.toml").exists() && conf_d.join("cri.toml").exists()
    });

    // docker.io: the first mirror as a host with the TLS of mirror.local:5000, the last as the
    // server (skipFallback).
    let toml = read_toml(&docker.join("hosts.toml")).unwrap();
    assert_eq!(
        toml["server"].as_str(),
        Some("http://last.local/v2"),
        "{toml}"
    );
    assert_eq!(toml["override_path"].as_bool(), Some(true), "{toml}");
    let mirror = &toml["host"]["https://mirror.local:5000"];
    assert_eq!(
        mirror["capabilities"],
        toml::Value::Array(vec!["pull".into(), "resolve".into()]),
        "{toml}"
    );
    assert_eq!(mirror["skip_verify"].as_bool(), Some(true), "{toml}");
    let ca_file = docker.join("mirror.local:5000-ca.crt");
    assert_eq!(mirror["ca"].as_str(), Some(ca_file.to_str().unwrap()));
    assert_eq!(std::fs::read_to_string(&ca_file).unwrap(), ca_pem);
    let pair = mirror["client"].as_array().unwrap()[0].as_array().unwrap();
    assert_eq!(
        std::fs::read_to_string(pair[0].as_str().unwrap()).unwrap(),
        client_cert
    );
    assert_eq!(
        std::fs::read_to_string(pair[1].as_str().unwrap()).unwrap(),
        client_key
    );
    // ghcr.io from machine.registries; tls-only.local from its TLS document alone.
    let ghcr = read_toml(&hosts.join("ghcr.io/hosts.toml")).unwrap();
    assert!(
        ghcr["host"].get("https://ghcr.mirror.local").is_some(),
        "{ghcr}"
    );
    let tls_only = read_toml(&hosts.join("tls-only.local/hosts.toml")).unwrap();
    assert_eq!(tls_only["server"].as_str(), Some("https://tls-only.local"));
    assert_eq!(tls_only["skip_verify"].as_bool(), Some(true));

    // cri.toml: where the host files are, the credentials, the customization.
    let cri = read_toml(&conf_d.join("cri.toml")).unwrap();
    let images = &cri["plugins"][IMAGES_PLUGIN];
    assert_eq!(images["registry"]["config_path"].as_str(), hosts.to_str());
    let configs = &images["registry"]["configs"];
    assert_eq!(
        configs["registry-1.docker.io"]["auth"]["username"].as_str(),
        Some("puller")
    );
    assert_eq!(
        configs["ghcr.mirror.local"]["auth"]["password"].as_str(),
        Some("secret")
    );
    assert_eq!(images["snapshotter"].as_str(), Some("overlayfs"));

    // The same as a resource (sensitive: the generated admin talosconfig reads it).
    let resource = success(talosctl(
        &cluster,
        &["get", "registryconfigs", "-o", "yaml"],
    ));
    for expected in ["https://mirror.local:5000", "skipFallback: true", "puller"] {
        assert!(resource.contains(expected), "{expected} not in {resource}");
    }

    // A change applies live: one mirror with fallback, the TLS-only registry gone.
    let applied = cluster.apply_no_reboot("changed.yaml", &config_with(&cluster, CHANGED));
    let warnings = String::from_utf8_lossy(&applied.stderr).into_owned();
    success(applied);
    assert!(
        !warnings.contains("RegistryMirrorConfig"),
        "reported as not applied: {warnings}"
    );
    eventually("the TLS-only registry's directory removed", || {
        !hosts.join("tls-only.local").exists()
    });
    eventually("docker.io's new mirror", || {
        read_toml(&docker.join("hosts.toml")).is_some_and(|t| {
            t.get("server").is_none() && t["host"].get("https://only.local").is_some()
        })
    });
    assert!(!ca_file.exists(), "the CA of a removed TLS config is left");
    // cri.toml is written after the hosts files.
    eventually("cri.toml without the dropped snapshotter and auth", || {
        read_toml(&conf_d.join("cri.toml")).is_some_and(|cri| {
            let images = cri.get("plugins").and_then(|p| p.get(IMAGES_PLUGIN));
            images.is_some_and(|images| {
                images.get("snapshotter").is_none()
                    && images
                        .get("registry")
                        .and_then(|r| r.get("configs"))
                        .and_then(|c| c.get("registry-1.docker.io"))
                        .is_none()
            })
        })
    });

    // Bad documents: refused with the document and field named; nothing changes.
    let before = snapshot(&conf_d);
    let persisted = cluster.nodes[0].persisted_config();
    let bad_documents = [
        (
            "apiVersion: v1alpha1\nkind: RegistryAuthConfig\nname: docker.io\n\
             username: u\npassword: p\nidentityToken: t\n",
            "identityToken",
        ),
        (
            "apiVersion: v1alpha1\nkind: RegistryTLSConfig\nname: bad.local\nca: not a certificate\n",
            "RegistryTLSConfig \"bad.local\".ca",
        ),
        (
            "apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: quay.io\n\
             endpoints: [{url: 'ftp://quay.mirror'}]\n",
            "RegistryMirrorConfig \"quay.io\".endpoints[0].url",
        ),
        (
            "apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: ../../../system/state\n\
             endpoints: [{url: 'https://mirror.local'}]\n",
            "RegistryMirrorConfig.name",
        ),
        (
            "apiVersion: v1alpha1\nkind: CRICustomizationConfig\nname: broken\ncontent: '[unclosed'\n",
            "CRICustomizationConfig \"broken\".content",
        ),
    ];
    for (document, named) in bad_documents {
        let config = config_with(&cluster, &format!("{CHANGED}---\n{document}"));
        let error = failure(cluster.apply_no_reboot("bad.yaml", &config));
        assert!(error.contains(named), "{named:?} not in: {error}");
    }
    assert_eq!(cluster.nodes[0].persisted_config(), persisted);
    assert_eq!(
        snapshot(&conf_d),
        before,
        "a refused config changed the CRI files"
    );
}
