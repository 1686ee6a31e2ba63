//! etcd across three dev-mode control planes with the real etcd: bootstrap one, the others join
//! on their own; membership, etcdctl with the node-issued PKI, a stopped member, leave and
//! remove-member with rejoining, snapshots and who may take them.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::process::Command;
use std::time::{Duration, Instant};

use tests::{Cluster, Node, NodeKind, failure, success};

fn ip(node: &Node) -> String {
    node.address.to_string()
}

/// Retries for up to `seconds` until `attempt` holds.
fn within(seconds: u64, what: &str, mut attempt: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !attempt() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The `etcd members` rows seen through `via` (learners excluded).
fn voting_members(cluster: &Cluster, via: &Node) -> Vec<String> {
    let output = cluster.talosctl_via(via, &["-n", &ip(via), "etcd", "members"]);
    if !output.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .filter(|l| l.trim_end().ends_with("false"))
        .map(String::from)
        .collect()
}

/// etcdctl against `node`'s client URL with its admin certificate.
fn etcdctl(node: &Node, args: &[&str]) -> std::process::Output {
    let pki = node.state_dir.join("system/secrets/etcd");
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=https://{}:2379", node.address))
        .arg(format!("--cacert={}", pki.join("ca.crt").display()))
        .arg(format!("--cert={}", pki.join("admin.crt").display()))
        .arg(format!("--key={}", pki.join("admin.key").display()))
        .args(args)
        .output()
        .expect("etcdctl runs")
}

#[test]
fn three_control_planes_form_an_etcd_cluster_and_manage_it() {
    let mut cluster = Cluster::generate(37);
    for octet in 2..=4 {
        cluster.add_node(NodeKind::ControlPlane, octet, &[]);
    }
    for node in &cluster.nodes {
        cluster.wait_until_answering(node);
    }
    let first = &cluster.nodes[0];
    success(cluster.talosctl(&["-n", &ip(first), "bootstrap"]));
    within(90, "three voting members", || {
        voting_members(&cluster, first).len() == 3
    });

    // The Kubernetes side: manifests and kubelet configuration written, the kubelet waiting for
    // an image this machine cannot have, and saying so.
    let manifests = first.state_dir.join("etc/kubernetes/manifests");
    assert!(manifests.join("talos-kube-apiserver.yaml").exists());
    assert!(first.state_dir.join("etc/kubernetes/kubelet.yaml").exists());
    // The same as resources, written by their controller.
    let pods = success(cluster.talosctl(&["-n", &ip(first), "get", "staticpods"]));
    for pod in [
        "talos-kube-apiserver",
        "talos-kube-controller-manager",
        "talos-kube-scheduler",
    ] {
        assert!(pods.contains(pod), "{pods}");
    }
    let kubelet_spec = success(cluster.talosctl(&["-n", &ip(first), "get", "kubeletspec"]));
    assert!(
        kubelet_spec.contains("ghcr.io/siderolabs/kubelet"),
        "{kubelet_spec}"
    );
    let kubelet = success(cluster.talosctl(&["-n", &ip(first), "service", "kubelet"]));
    assert!(
        kubelet.contains("ghcr.io/siderolabs/kubelet") && kubelet.contains("is not available"),
        "{kubelet}"
    );

    // A second bootstrap is refused, on the bootstrapped node and on a joined one.
    for node in &cluster.nodes[..2] {
        let refused = failure(cluster.talosctl(&["-n", &ip(node), "bootstrap"]));
        assert!(refused.contains("AlreadyExists"), "{refused}");
    }

    // etcdctl with the node-issued client certificate reads what another member wrote.
    let (a, b) = (&cluster.nodes[1], &cluster.nodes[2]);
    success(etcdctl(a, &["put", "/talos-rs/test", "hello"]));
    let read = success(etcdctl(b, &["get", "/talos-rs/test", "--print-value-only"]));
    assert_eq!(read.trim(), "hello");

    // Snapshots: a file etcdctl accepts; a reader may not take one, os:etcd:backup may.
    let snapshot = cluster.dir.path().join("db.snapshot");
    let snapshot_arg = snapshot.to_string_lossy().into_owned();
    success(cluster.talosctl(&["-n", &ip(first), "etcd", "snapshot", &snapshot_arg]));
    let status = success(etcdctl(
        first,
        &["snapshot", "status", &snapshot_arg, "-w", "json"],
    ));
    assert!(status.contains("totalKey"), "{status}");
    for (role, allowed) in [("os:reader", false), ("os:etcd:backup", true)] {
        let config = cluster.dir.path().join(format!("{role}.talosconfig"));
        success(cluster.talosctl(&[
            "-n",
            &ip(first),
            "config",
            "new",
            "--roles",
            role,
            &config.to_string_lossy(),
        ]));
        let output = Command::new(tests::binary("talosctl"))
            .arg("--talosconfig")
            .arg(&config)
            .args(["-e", &ip(first), "-n", &ip(first), "etcd", "snapshot"])
            .arg(cluster.dir.path().join(format!("{role}.snapshot")))
            .output()
            .unwrap();
        if allowed {
            success(output);
        } else {
            assert!(failure(output).contains("PermissionDenied"));
        }
    }

    // The admin kubeconfig, signed by the cluster CA, written where asked.
    let kubeconfig = cluster.dir.path().join("kubeconfig");
    let kubeconfig_arg = kubeconfig.to_string_lossy().into_owned();
    success(cluster.talosctl(&["-n", &ip(first), "kubeconfig", &kubeconfig_arg]));
    let written = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        written.contains("server: https://127.37.0.2:6443"),
        "{written}"
    );
    assert!(written.contains("client-certificate-data"), "{written}");

    // One member stopped: writes still succeed, two members report status.
    cluster.nodes[2].stop();
    success(etcdctl(
        &cluster.nodes[0],
        &["put", "/talos-rs/quorum", "two of three"],
    ));
    let both = format!("{},{}", ip(&cluster.nodes[0]), ip(&cluster.nodes[1]));
    let status = success(cluster.talosctl(&["-n", &both, "etcd", "status"]));
    assert_eq!(status.lines().count(), 3, "{status}");
    // An upgrade of a control plane now could cost the quorum: MachineService.Upgrade (the
    // older API, `--legacy`; upstream's LifecycleService has no such check) refuses it unless
    // forced (a dev node then has no disk to upgrade).
    let upgrade = |flag: &str| {
        failure(cluster.talosctl(&[
            "-n",
            "127.37.0.2",
            "upgrade",
            "--image",
            "ghcr.io/siderolabs/installer:v1.12.0",
            flag,
        ]))
    };
    let refused = upgrade("--legacy");
    assert!(
        refused.contains("etcd is not healthy (etcd on 127.37.0.4") && refused.contains("--force"),
        "{refused}"
    );
    let forced = upgrade("--force");
    assert!(forced.contains("no system disk"), "{forced}");

    // remove-member of the stopped node; with its etcd data gone it joins again as new.
    let members = voting_members(&cluster, &cluster.nodes[0]);
    let gone = members.iter().find(|l| l.contains("127.37.0.4")).unwrap();
    let gone_id = gone.split_whitespace().nth(1).unwrap().to_string();
    success(cluster.talosctl(&[
        "-n",
        &ip(&cluster.nodes[0]),
        "etcd",
        "remove-member",
        &gone_id,
    ]));
    within(20, "two members", || {
        voting_members(&cluster, &cluster.nodes[0]).len() == 2
    });
    std::fs::remove_dir_all(cluster.nodes[2].state_dir.join("var/lib/etcd")).unwrap();
    cluster.nodes[2].boot();
    within(90, "the removed node to join again", || {
        voting_members(&cluster, &cluster.nodes[0]).len() == 3
    });

    // leave: the member goes; after a reboot the node joins again.
    // etcd refuses to reconfigure until the rejoined member has been connected a few seconds.
    let leaver = ip(&cluster.nodes[1]);
    let mut refusal = String::new();
    within(60, "leave to be accepted", || {
        let output = cluster.talosctl(&["-n", &leaver, "etcd", "leave"]);
        refusal = String::from_utf8_lossy(&output.stderr).into_owned();
        eprintln!("leave: {refusal}");
        output.status.success()
    });
    within(20, "two members after leave", || {
        voting_members(&cluster, &cluster.nodes[0]).len() == 2
    });
    success(cluster.talosctl(&["-n", &leaver, "reboot", "--wait=false"]));
    within(90, "the node that left to join again", || {
        voting_members(&cluster, &cluster.nodes[0]).len() == 3
    });

    // The whole cluster checks out: APIs, etcd, services.
    let all = format!(
        "{},{},{}",
        ip(&cluster.nodes[0]),
        leaver,
        ip(&cluster.nodes[2])
    );
    let health = success(cluster.talosctl(&[
        "health",
        "--control-plane-nodes",
        &all,
        "--wait-timeout",
        "60s",
    ]));
    assert!(
        health.contains("waiting for etcd members to be consistent across nodes: OK"),
        "{health}"
    );
}

/// Runs `talosctl` with `cluster`'s talosconfig against its first node.
fn on_first(cluster: &Cluster, args: &[&str]) -> std::process::Output {
    let first = ip(&cluster.nodes[0]);
    let mut all = vec!["-n", first.as_str()];
    all.extend_from_slice(args);
    cluster.talosctl(&all)
}

/// The `etcd status` row of the first node, split into its columns.
fn status_row(cluster: &Cluster) -> Vec<String> {
    let table = success(on_first(cluster, &["etcd", "status"]));
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for column in [
        "NODE",
        "MEMBER",
        "DB SIZE",
        "IN USE",
        "LEADER",
        "RAFT INDEX",
        "RAFT TERM",
        "RAFT APPLIED INDEX",
        "LEARNER",
        "ERRORS",
    ] {
        assert!(header.contains(column), "{table}");
    }
    // Columns are at least three spaces apart; sizes hold one ("1.6 MB").
    let row: Vec<String> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .map(String::from)
        .collect();
    assert!(lines.next().is_none(), "{table}");
    row
}

/// Raises the NOSPACE alarm of `node`'s member the way etcd itself does (an Alarm ACTIVATE).
fn raise_nospace_alarm(node: &Node) {
    let pki = node.state_dir.join("system/secrets/etcd");
    let read = |name: &str| std::fs::read(pki.join(name)).unwrap();
    let tls = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(read("ca.crt")))
        .identity(etcd_client::Identity::from_pem(
            read("admin.crt"),
            read("admin.key"),
        ));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let endpoint = format!("https://{}:2379", node.address);
        let options = etcd_client::ConnectOptions::new().with_tls(tls);
        let mut client = etcd_client::Client::connect([endpoint], Some(options))
            .await
            .unwrap();
        let member = client.status().await.unwrap().header().unwrap().member_id();
        let mut options = etcd_client::AlarmOptions::new();
        options.with_member(member);
        client
            .alarm(
                etcd_client::AlarmAction::Activate,
                etcd_client::AlarmType::Nospace,
                Some(options),
            )
            .await
            .unwrap();
    });
}

/// Uploads `bytes` with `EtcdRecover` straight through the API (no talosctl checks first).
fn upload_raw(cluster: &Cluster, bytes: Vec<u8>) -> tonic::Status {
    let node = ip(&cluster.nodes[0]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = talosconfig::Talosconfig::load(&cluster.talosconfig()).unwrap();
        let (name, context) = config.context(None).unwrap();
        let client = apiclient::Client::from_context(name, context, std::slice::from_ref(&node))
            .await
            .unwrap();
        let target = apiclient::NodeTarget::for_nodes(std::slice::from_ref(&node));
        let chunks: Vec<proto::common::Data> = bytes
            .chunks(64 * 1024)
            .map(|chunk| proto::common::Data {
                metadata: None,
                bytes: chunk.to_vec(),
            })
            .collect();
        let request = target.request(tokio_stream::iter(chunks)).unwrap();
        match client.machine().etcd_recover(request).await {
            Ok(reply) => {
                // A node error travels in the reply's metadata.
                let messages = reply.into_inner().messages;
                let error = messages
                    .first()
                    .and_then(|m| m.metadata.as_ref())
                    .map(|m| m.error.clone())
                    .unwrap_or_default();
                tonic::Status::unknown(error)
            }
            Err(status) => status,
        }
    })
}

/// Nothing of a recovery is left on `node`: no stored snapshot, no etcd data.
fn assert_untouched(node: &Node) {
    let lib = node.state_dir.join("var/lib");
    assert!(!lib.join("etcd.snapshot").exists());
    assert!(!lib.join("etcd/member").exists());
    let stray: Vec<_> = std::fs::read_dir(&lib)
        .map(|dir| dir.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        stray.iter().all(|name| name == "etcd"),
        "left behind in var/lib: {stray:?}"
    );
}

#[test]
fn a_snapshot_recovers_the_keys_on_a_fresh_node_and_bad_input_changes_nothing() {
    // The source: one bootstrapped control plane with keys written into its etcd.
    let mut source = Cluster::generate(49);
    source.add_node(NodeKind::ControlPlane, 2, &[]);
    source.wait_until_answering(&source.nodes[0]);
    success(on_first(&source, &["bootstrap"]));
    let node = &source.nodes[0];
    within(60, "etcd to answer", || {
        etcdctl(node, &["endpoint", "health"]).status.success()
    });
    for i in 0..20 {
        let key = format!("/recovery/key{i}");
        success(etcdctl(node, &["put", &key, &format!("value {i}")]));
    }

    // status, alarms and defrag against the real etcd.
    let before = status_row(&source);
    assert_eq!(before[0], ip(node), "{before:?}");
    assert_eq!(before[1], before[4], "a single member leads: {before:?}");
    assert_eq!(
        before.last().unwrap(),
        "false",
        "not a learner, no errors: {before:?}"
    );
    let alarms = success(on_first(&source, &["etcd", "alarm", "list"]));
    assert_eq!(alarms.lines().count(), 1, "only the header: {alarms}");
    raise_nospace_alarm(node);
    let alarms = success(on_first(&source, &["etcd", "alarm", "list"]));
    assert!(
        alarms.contains("NOSPACE") && alarms.contains(&before[1]),
        "{alarms}"
    );
    let refused = etcdctl(node, &["put", "/recovery/while-alarmed", "x"]);
    assert!(!refused.status.success(), "a write under NOSPACE succeeded");
    let disarmed = success(on_first(&source, &["etcd", "alarm", "disarm"]));
    assert!(disarmed.contains("NOSPACE"), "{disarmed}");
    let alarms = success(on_first(&source, &["etcd", "alarm", "list"]));
    assert_eq!(alarms.lines().count(), 1, "{alarms}");
    success(etcdctl(node, &["put", "/recovery/after-alarm", "written"]));
    // Deleting most keys leaves free pages that defragmenting gives back.
    for i in 0..400 {
        let key = format!("/filler/{i:04}");
        success(etcdctl(node, &["put", &key, &"x".repeat(4096)]));
    }
    success(etcdctl(node, &["del", "/filler/", "--prefix"]));
    success(etcdctl(
        node,
        &["compaction", &etcd_revision(node).to_string()],
    ));
    let fragmented = status_row(&source);
    success(on_first(&source, &["etcd", "defrag"]));
    let defragmented = status_row(&source);
    assert!(
        parse_size(&defragmented[2]) < parse_size(&fragmented[2]),
        "defrag did not shrink the database: {fragmented:?} → {defragmented:?}"
    );

    // The snapshot: saved atomically with etcd's own status of it.
    let snapshot = source.dir.path().join("backup.db");
    let snapshot_arg = snapshot.to_string_lossy().into_owned();
    let saved = success(on_first(&source, &["etcd", "snapshot", &snapshot_arg]));
    assert!(saved.contains("etcd snapshot saved to"), "{saved}");
    assert!(!source.dir.path().join("backup.db.part").exists());
    let etcd_status = success(etcdctl(
        node,
        &["snapshot", "status", &snapshot_arg, "-w", "json"],
    ));
    let etcd_status: serde_json::Value = serde_json::from_str(&etcd_status).unwrap();
    let expected = format!(
        "snapshot info: hash {:08x}, revision {}, total keys {}, total size {}",
        etcd_status["hash"].as_u64().unwrap(),
        etcd_status["revision"],
        etcd_status["totalKey"],
        etcd_status["totalSize"]
    );
    assert!(saved.contains(&expected), "{saved}\nexpected: {expected}");

    // A fresh control plane of another cluster, never bootstrapped, and a worker.
    let mut fresh = Cluster::generate(50);
    fresh.add_node(NodeKind::ControlPlane, 2, &[]);
    fresh.add_node(NodeKind::Worker, 3, &[]);
    for node in &fresh.nodes {
        fresh.wait_until_answering(node);
    }
    let target = &fresh.nodes[0];

    // Bad input changes nothing: garbage (talosctl refuses it; so does the node when sent
    // anyway), a data directory copy without the skip flag, a worker.
    let garbage = fresh.dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 3 * 4096 + 32]).unwrap();
    let garbage_arg = garbage.to_string_lossy().into_owned();
    let refused = failure(on_first(
        &fresh,
        &["bootstrap", "--recover-from", &garbage_arg],
    ));
    assert!(refused.contains("is not an etcd snapshot"), "{refused}");
    assert_untouched(target);
    let status = upload_raw(&fresh, std::fs::read(&garbage).unwrap());
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("not an etcd snapshot"),
        "{status:?}"
    );
    assert_untouched(target);

    let bytes = std::fs::read(&snapshot).unwrap();
    let copy = fresh.dir.path().join("db");
    std::fs::write(&copy, &bytes[..bytes.len() - 32]).unwrap();
    let copy_arg = copy.to_string_lossy().into_owned();
    let refused = failure(on_first(
        &fresh,
        &["bootstrap", "--recover-from", &copy_arg],
    ));
    assert!(refused.contains("no integrity hash"), "{refused}");
    assert_untouched(target);

    let worker = ip(&fresh.nodes[1]);
    let worker_snapshot = fresh.dir.path().join("worker.db");
    let refused = failure(fresh.talosctl(&[
        "-n",
        &worker,
        "etcd",
        "snapshot",
        &worker_snapshot.to_string_lossy(),
    ]));
    assert!(refused.contains("FailedPrecondition"), "{refused}");
    assert!(!worker_snapshot.exists());
    assert!(!fresh.dir.path().join("worker.db.part").exists());
    let refused =
        failure(fresh.talosctl(&["-n", &worker, "bootstrap", "--recover-from", &snapshot_arg]));
    assert!(
        refused.contains("FailedPrecondition") && refused.contains("control plane"),
        "{refused}"
    );

    // The recovery: the keys are there, in a cluster of one member.
    let recovered = success(on_first(
        &fresh,
        &["bootstrap", "--recover-from", &snapshot_arg],
    ));
    assert!(
        recovered.contains("recovering from snapshot"),
        "{recovered}"
    );
    within(60, "the recovered etcd to answer", || {
        etcdctl(target, &["endpoint", "health"]).status.success()
    });
    for (key, value) in [
        ("/recovery/key0", "value 0"),
        ("/recovery/key19", "value 19"),
        ("/recovery/after-alarm", "written"),
    ] {
        let read = success(etcdctl(target, &["get", key, "--print-value-only"]));
        assert_eq!(read.trim(), value, "{key}");
    }
    let members = success(on_first(&fresh, &["etcd", "members"]));
    assert_eq!(members.lines().count(), 2, "{members}");
    assert!(members.contains("127.50.0.2:2380"), "{members}");
    assert!(!target.state_dir.join("var/lib/etcd.snapshot").exists());

    // Recovering onto the bootstrapped node is refused and changes nothing.
    let refused = failure(on_first(
        &fresh,
        &["bootstrap", "--recover-from", &snapshot_arg],
    ));
    assert!(refused.contains("AlreadyExists"), "{refused}");
    assert!(!target.state_dir.join("var/lib/etcd.snapshot").exists());
    let read = success(etcdctl(
        target,
        &["get", "/recovery/key0", "--print-value-only"],
    ));
    assert_eq!(read.trim(), "value 0");
}

/// The current revision of `node`'s etcd.
fn etcd_revision(node: &Node) -> u64 {
    let output = success(etcdctl(node, &["endpoint", "status", "-w", "json"]));
    let status: serde_json::Value = serde_json::from_str(&output).unwrap();
    status[0]["Status"]["header"]["revision"].as_u64().unwrap()
}

/// Bytes of a `humanize::si_bytes` size ("1.2 MB", "98 kB", "512 B").
fn parse_size(text: &str) -> f64 {
    let digits: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let number: f64 = digits.parse().unwrap();
    let unit = text.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let scale = match unit.trim() {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unknown unit {other:?} in {text:?}"),
    };
    number * scale
}

/// Figures, not a check: snapshot throughput and recovery time for a database filled with
/// `BENCH_MB` MB (default 50) of 64 KiB values. Run alone (it reuses blocks 49 and 50):
/// `cargo test -p tests --test etcd bench_snapshot -- --ignored --nocapture` (the binaries of
/// the same profile as the test: debug unless built with `--release`).
#[test]
#[ignore = "a measurement; prints figures"]
fn bench_snapshot_and_recovery() {
    let megabytes: usize = std::env::var("BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut source = Cluster::generate(49);
    source.add_node(NodeKind::ControlPlane, 2, &[]);
    source.wait_until_answering(&source.nodes[0]);
    success(on_first(&source, &["bootstrap"]));
    let node = &source.nodes[0];
    within(60, "etcd to answer", || {
        etcdctl(node, &["endpoint", "health"]).status.success()
    });
    // 16 values of 64 KiB per MiB, written by etcdctl in transactions of 16 puts.
    let value = "v".repeat(64 * 1024);
    for batch in 0..megabytes {
        let mut script = String::new();
        for i in 0..16 {
            script.push_str(&format!("put /bench/{batch:05}-{i:02} {value}\n"));
        }
        let pki = node.state_dir.join("system/secrets/etcd");
        let mut child = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints=https://{}:2379", node.address))
            .arg(format!("--cacert={}", pki.join("ca.crt").display()))
            .arg(format!("--cert={}", pki.join("admin.crt").display()))
            .arg(format!("--key={}", pki.join("admin.key").display()))
            .arg("txn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        // An empty compare section, the puts, an empty failure section.
        let input = format!("\n{script}\n\n");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }

    let snapshot = source.dir.path().join("bench.db");
    let snapshot_arg = snapshot.to_string_lossy().into_owned();
    let started = Instant::now();
    success(on_first(&source, &["etcd", "snapshot", &snapshot_arg]));
    let snapshot_time = started.elapsed();
    let bytes = std::fs::metadata(&snapshot).unwrap().len();

    let mut fresh = Cluster::generate(50);
    fresh.add_node(NodeKind::ControlPlane, 2, &[]);
    fresh.wait_until_answering(&fresh.nodes[0]);
    let target = &fresh.nodes[0];
    let started = Instant::now();
    success(on_first(
        &fresh,
        &["bootstrap", "--recover-from", &snapshot_arg],
    ));
    let bootstrap_time = started.elapsed();
    within(120, "the recovered etcd to answer", || {
        etcdctl(target, &["get", "/bench/00000-00", "--keys-only"])
            .stdout
            .starts_with(b"/bench")
    });
    let recovery_time = started.elapsed();
    let mb = bytes as f64 / 1e6;
    println!(
        "snapshot: {mb:.1} MB in {:.2} s ({:.1} MB/s); recovery: upload + restore {:.2} s, \
         keys readable after {:.2} s",
        snapshot_time.as_secs_f64(),
        mb / snapshot_time.as_secs_f64(),
        bootstrap_time.as_secs_f64(),
        recovery_time.as_secs_f64()
    );
}
