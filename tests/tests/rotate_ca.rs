//! `talosctl rotate-ca` on three dev-mode control planes and a worker (block 73): with a node
//! down it names the node and changes nothing; a dry run changes nothing; the rotation moves
//! every node to a new Talos API CA without a restart (the worker's certificate comes from a
//! control plane's trustd, signed by the new CA), the new talosconfig reaches every node (also
//! through another node's apid) and the old one is refused (its CA no longer matches the nodes',
//! and its client certificate is refused by the nodes themselves); the Kubernetes CA is swapped
//! in the configs with the old one still accepted.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use machineconfig::Config;
use tests::{Cluster, NodeKind, binary, failure, success};

fn talosctl_with(talosconfig: &Path, endpoint: &str, args: &[&str]) -> Output {
    Command::new(binary("talosctl"))
        .arg("--talosconfig")
        .arg(talosconfig)
        .args(["-e", endpoint])
        .args(args)
        .env_remove("TALOSCONFIG")
        .output()
        .unwrap()
}

fn persisted(cluster: &Cluster) -> Vec<String> {
    cluster.nodes.iter().map(|n| n.persisted_config()).collect()
}

fn machine_cas(config: &str) -> (String, Vec<String>) {
    let config = Config::from_yaml(config).unwrap();
    let machine = config.v1alpha1.unwrap().machine.unwrap();
    let accepted = machine
        .accepted_cas
        .into_iter()
        .filter_map(|c| c.crt)
        .collect();
    (machine.ca.unwrap().crt.unwrap(), accepted)
}

fn cluster_cas(config: &str) -> (String, Vec<String>) {
    let config = Config::from_yaml(config).unwrap();
    let cluster = config.v1alpha1.unwrap().cluster.unwrap();
    let accepted = cluster
        .accepted_cas
        .into_iter()
        .filter_map(|c| c.crt)
        .collect();
    (cluster.ca.unwrap().crt.unwrap(), accepted)
}

#[test]
fn rotate_ca_moves_every_node_to_a_new_ca_and_refuses_the_old_talosconfig() {
    let mut cluster = Cluster::generate(73);
    for last_octet in 2..5 {
        cluster.add_node(NodeKind::ControlPlane, last_octet, &[]);
    }
    for node in &cluster.nodes {
        cluster.wait_until_answering(node);
    }
    let worker = cluster.add_node(NodeKind::Worker, 5, &[]);
    cluster.wait_until_answering(&cluster.nodes[worker]);
    let names: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| n.address.to_string())
        .collect();
    let control_planes = names[..3].join(",");
    let output = cluster.dir.path().join("rotated-talosconfig");
    let output_arg = output.to_str().unwrap();
    let rotate = |cluster: &Cluster, extra: &[&str]| {
        let mut args = vec![
            "rotate-ca",
            "--control-plane-nodes",
            &control_planes,
            "--worker-nodes",
            &names[3],
            "-o",
            output_arg,
        ];
        args.extend_from_slice(extra);
        cluster.talosctl(&args)
    };
    let before = persisted(&cluster);

    // A node down: the rotation stops before any change and says which node.
    cluster.nodes[2].stop();
    let error = failure(rotate(&cluster, &["--dry-run=false"]));
    assert!(
        error.contains("not every node is reachable, nothing was changed"),
        "{error}"
    );
    assert!(error.contains(&format!("node {}", names[2])), "{error}");
    assert!(!error.contains(&format!("node {}:", names[0])), "{error}");
    assert_eq!(persisted(&cluster)[..2], before[..2]);
    assert_eq!(persisted(&cluster)[3], before[3]);
    assert!(!output.exists());
    cluster.nodes[2].boot();
    cluster.wait_until_answering(&cluster.nodes[2]);

    // The default is a dry run: each step's diff per node, nothing changed or written.
    let dry = success(rotate(&cluster, &[]));
    assert!(
        dry.contains("> Starting CA rotation, dry-run mode true"),
        "{dry}"
    );
    for name in &names {
        assert!(dry.contains(&format!("  - {name}: would apply")), "{dry}");
    }
    assert!(dry.contains("+  acceptedCAs:"), "{dry}");
    assert!(dry.contains("> Dry-run mode: nothing was changed"), "{dry}");
    // Private keys are left out of the printed diffs.
    assert!(dry.contains("key: (redacted)"), "{dry}");
    let key_line = |l: &str| {
        l.trim_start_matches(['+', '-', ' '])
            .starts_with("key: LS0t")
    };
    assert!(!dry.lines().any(key_line), "{dry}");
    assert_eq!(persisted(&cluster), before);
    assert!(!output.exists());

    let pids: Vec<_> = cluster.nodes.iter().map(|n| n.machined_pid()).collect();
    let started = Instant::now();
    let report = success(rotate(&cluster, &["--dry-run=false"]));
    let took = started.elapsed();
    println!(
        "rotate-ca, 3 dev-mode control planes and a worker (Talos + Kubernetes CAs): {:.2} s",
        took.as_secs_f64()
    );
    assert!(
        report.contains("> Every node serves certificates of the new CA"),
        "{report}"
    );
    assert!(
        report.contains("Skipped (they need the Kubernetes API server"),
        "{report}"
    );

    // No node restarted, every config moved to the new CAs.
    let pids_after: Vec<_> = cluster.nodes.iter().map(|n| n.machined_pid()).collect();
    assert_eq!(pids, pids_after);
    let new_talosconfig = talosconfig::Talosconfig::load(&output).unwrap();
    let (_, context) = new_talosconfig.context(None).unwrap();
    let new_ca = context.credentials("test").unwrap().ca_pem;
    let (old_talos_ca, _) = machine_cas(&before[0]);
    let (old_k8s_ca, _) = cluster_cas(&before[0]);
    for config in persisted(&cluster) {
        let (ca, accepted) = machine_cas(&config);
        assert_eq!(ca.trim(), new_ca.trim());
        assert!(accepted.is_empty(), "{accepted:?}");
        let (k8s_ca, k8s_accepted) = cluster_cas(&config);
        assert_ne!(k8s_ca, old_k8s_ca);
        assert_eq!(k8s_accepted, std::slice::from_ref(&old_k8s_ca));
    }
    assert_ne!(old_talos_ca.trim(), new_ca.trim());

    // The new talosconfig reaches every node directly and through another node's apid; the
    // old one is refused everywhere.
    for name in &names {
        success(talosctl_with(&output, name, &["-n", name, "version"]));
        let refused = failure(talosctl_with(
            &cluster.talosconfig(),
            name,
            &["-n", name, "version"],
        ));
        assert!(
            refused.contains("certificate") || refused.contains("handshake"),
            "{refused}"
        );
    }
    // The old client certificate is refused by the nodes themselves, even by a client that
    // trusts the new CA.
    let mut leaked = talosconfig::Talosconfig::load(&cluster.talosconfig()).unwrap();
    let old_credentials = leaked.context(None).unwrap().1.credentials("test").unwrap();
    let trusting_new = talosconfig::Credentials {
        ca_pem: new_ca.clone(),
        ..old_credentials
    };
    let leaked_context = leaked
        .context(None)
        .unwrap()
        .1
        .with_credentials(&trusting_new);
    *leaked.context_mut(None).unwrap() = leaked_context;
    let leaked_path = cluster.dir.path().join("leaked-talosconfig");
    leaked
        .save(&leaked_path, atomicfile::Overwrite::Allow)
        .unwrap();
    for name in &names {
        let refused = failure(talosctl_with(&leaked_path, name, &["-n", name, "version"]));
        assert!(refused.contains(&format!("node {name}")), "{refused}");
    }

    // The worker's serving certificate came from a control plane's trustd, signed by the new CA.
    let worker_crt = std::fs::read_to_string(
        cluster.nodes[worker]
            .state_dir
            .join("system/secrets/apid/server.crt"),
    )
    .unwrap();
    pki::verify_signed_by(&worker_crt, &new_ca).unwrap();

    let others = names[1..].join(",");
    let version = success(talosctl_with(
        &output,
        &names[0],
        &["-n", &others, "version"],
    ));
    for name in &names[1..] {
        assert!(
            version.contains(&format!("NODE:        {name}")),
            "{version}"
        );
    }
}
