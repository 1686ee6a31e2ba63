//! The node's environment on a dev-mode node: `machine.env` and an `EnvironmentConfig` document
//! reach the environment of the running trustd and apid (apid without the proxy variables), a
//! change restarts them with the new values, a removed document takes its variables away, and a
//! bad variable name is refused with the config and the services as they were;
//! `Environments.runtime.talos.dev/machined` follows. Loopback block
//! 127.82.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::net::Ipv4Addr;

use tests::{Cluster, Node, eventually, failure, success};

const BLOCK: u8 = 82;

const ENVIRONMENT: &str = "apiVersion: v1alpha1
kind: EnvironmentConfig
variables:
  TALOS_RS_TEST: from-document
  https_proxy: http://127.82.0.9:3128
";

/// The control plane config with `machine.env` set to `TALOS_RS_MACHINE=1` and `documents`
/// appended.
fn config_with(cluster: &Cluster, documents: &str) -> String {
    let base = cluster.controlplane_config();
    let with_env = base.replacen(
        "\nmachine:\n",
        "\nmachine:\n  env:\n    TALOS_RS_MACHINE: \"1\"\n",
        1,
    );
    assert_ne!(with_env, base, "no machine section in the generated config");
    if documents.is_empty() {
        with_env
    } else {
        format!("{}\n---\n{documents}", with_env.trim_end())
    }
}

/// `talosctl get environments` of the node, as YAML.
fn environment_resource(cluster: &Cluster) -> String {
    success(cluster.talosctl(&[
        "-n",
        "127.82.0.2",
        "get",
        "environments",
        "machined",
        "-o",
        "yaml",
    ]))
}

/// The environment of `program` on `node` now, with its PID.
fn environment(node: &Node, program: &str) -> Option<(u32, Vec<String>)> {
    let pid = node.api_service_pid(program)?;
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let variables = environ
        .split(|byte| *byte == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect();
    Some((pid, variables))
}

fn has(variables: &[String], entry: &str) -> bool {
    variables.iter().any(|variable| variable == entry)
}

fn without(variables: &[String], name: &str) -> bool {
    !variables
        .iter()
        .any(|variable| variable.starts_with(&format!("{name}=")))
}

#[test]
fn environment_reaches_services_changes_and_goes() {
    let mut cluster = Cluster::generate(BLOCK);
    let state_dir = cluster.dir.path().join("node-2");
    let config = config_with(&cluster, ENVIRONMENT);
    let node = Node::start(Ipv4Addr::new(127, BLOCK, 0, 2), state_dir, Some(&config));
    cluster.nodes.push(node);
    cluster.wait_until_answering(&cluster.nodes[0]);
    let node = &cluster.nodes[0];

    eventually("trustd with the node's environment", || {
        environment(node, "trustd").is_some_and(|(_, env)| {
            has(&env, "TALOS_RS_MACHINE=1")
                && has(&env, "TALOS_RS_TEST=from-document")
                && has(&env, "https_proxy=http://127.82.0.9:3128")
        })
    });
    let (_, apid) = environment(node, "apid").unwrap();
    assert!(
        has(&apid, "TALOS_RS_TEST=from-document") && has(&apid, "TALOS_RS_MACHINE=1"),
        "{apid:?}"
    );
    assert!(without(&apid, "https_proxy"), "apid got a proxy: {apid:?}");
    let resource = environment_resource(&cluster);
    assert!(
        resource.contains("- TALOS_RS_MACHINE=1")
            && resource.contains("- TALOS_RS_TEST=from-document"),
        "{resource}"
    );

    // A changed value restarts both with it.
    let (trustd_pid, _) = environment(node, "trustd").unwrap();
    let changed = ENVIRONMENT.replace("from-document", "changed");
    let applied = cluster.apply_no_reboot("changed.yaml", &config_with(&cluster, &changed));
    let warnings = String::from_utf8_lossy(&applied.stderr).into_owned();
    success(applied);
    assert!(
        !warnings.contains("EnvironmentConfig"),
        "reported as not applied: {warnings}"
    );
    eventually("trustd restarted with the new value", || {
        environment(node, "trustd")
            .is_some_and(|(pid, env)| pid != trustd_pid && has(&env, "TALOS_RS_TEST=changed"))
    });
    cluster.wait_until_answering(node);
    eventually("apid restarted with the new value", || {
        environment(node, "apid").is_some_and(|(_, env)| has(&env, "TALOS_RS_TEST=changed"))
    });

    // A bad name is refused; nothing changes.
    let persisted = node.persisted_config();
    let (trustd_pid, _) = environment(node, "trustd").unwrap();
    let bad = format!("{changed}  BAD-NAME: x\n");
    let error = failure(cluster.apply_no_reboot("bad.yaml", &config_with(&cluster, &bad)));
    assert!(
        error.contains("EnvironmentConfig.variables.BAD-NAME")
            && error.contains("invalid environment variable name"),
        "{error}"
    );
    assert_eq!(node.persisted_config(), persisted);
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(environment(node, "trustd").unwrap().0, trustd_pid);

    // The document removed: its variables go, machine.env stays.
    success(cluster.apply_no_reboot("removed.yaml", &config_with(&cluster, "")));
    eventually("trustd restarted without the document's variables", || {
        environment(node, "trustd").is_some_and(|(pid, env)| {
            pid != trustd_pid
                && without(&env, "TALOS_RS_TEST")
                && without(&env, "https_proxy")
                && has(&env, "TALOS_RS_MACHINE=1")
        })
    });
    cluster.wait_until_answering(node);
    eventually("apid restarted without the document's variables", || {
        environment(node, "apid").is_some_and(|(_, env)| without(&env, "TALOS_RS_TEST"))
    });
    let resource = environment_resource(&cluster);
    assert!(
        resource.contains("- TALOS_RS_MACHINE=1") && !resource.contains("TALOS_RS_TEST"),
        "{resource}"
    );
}
