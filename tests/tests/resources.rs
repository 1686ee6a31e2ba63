//! The node's resources through apid: Watch follows a hostname changed by a config patch and a
//! service restart, `talosctl get -w` prints them, `inspect dependencies` draws the controllers,
//! and a reader can neither list nor watch the sensitive machine config; upstream's runtime,
//! hardware, cluster, time and network types answer `talosctl get` by their aliases, `get rd`
//! lists them (and shell completion offers them), and a reader can neither get, list nor
//! watch the sensitive secrets.
//! Loopback blocks 127.42.0.0/24, 127.43.0.0/24 and 127.55.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use apiclient::Client;
use proto::cosi::resource::{EventType, WatchOptions, WatchRequest, WatchResponse};
use tests::{Cluster, binary, eventually, failure, success};
use tonic::Streaming;

async fn watch(client: &Client, namespace: &str, resource_type: &str) -> Streaming<WatchResponse> {
    let request = WatchRequest {
        namespace: namespace.into(),
        r#type: resource_type.into(),
        id: None,
        options: Some(WatchOptions {
            bootstrap_contents: true,
            ..WatchOptions::default()
        }),
        api_version: 1,
    };
    proto::cosi::resource::state_client::StateClient::new(client.channel())
        .watch(request)
        .await
        .unwrap()
        .into_inner()
}

/// The next (event type, id, YAML spec), skipping nothing; fails after 30 s.
async fn next(stream: &mut Streaming<WatchResponse>) -> (EventType, String, String) {
    let reply = tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("an event within 30 s")
        .unwrap()
        .expect("the watch goes on");
    let event = reply.event.into_iter().next().unwrap();
    let kind = event.event_type();
    let resource = event.resource.unwrap_or_default();
    (
        kind,
        resource.metadata.unwrap_or_default().id,
        resource.spec.unwrap_or_default().yaml_spec,
    )
}

#[test]
fn watches_follow_config_patches_and_service_restarts() {
    let cluster = Cluster::start(42, 1);
    let node = cluster.nodes[0].address.to_string();
    let talosconfig = talosconfig::Talosconfig::load(&cluster.talosconfig()).unwrap();
    let (name, context) = talosconfig.context(None).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = runtime
        .block_on(Client::from_context(
            name,
            context,
            std::slice::from_ref(&node),
        ))
        .unwrap();

    // talosctl get -w, as a person runs it.
    let mut watcher = Command::new(binary("talosctl"))
        .arg("--talosconfig")
        .arg(cluster.talosconfig())
        .args(["-e", &node, "-n", &node, "get", "hostnamespec", "-w"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watcher.stdout.take().unwrap()).lines();

    runtime.block_on(async {
        let mut hostnames = watch(&client, "network", "HostnameSpecs.net.talos.dev").await;
        let (kind, id, spec) = next(&mut hostnames).await;
        assert_eq!((kind, id.as_str()), (EventType::Created, "hostname"));
        assert!(spec.contains("hostname: node-2"), "{spec}");
        assert_eq!(next(&mut hostnames).await.0, EventType::Bootstrapped);

        success(cluster.talosctl(&[
            "-n",
            &node,
            "patch",
            "mc",
            "-p",
            "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: renamed.example.org",
        ]));
        let (kind, _, spec) = next(&mut hostnames).await;
        assert_eq!(kind, EventType::Updated);
        assert_eq!(
            spec,
            "hostname: renamed\ndomainname: example.org\nlayer: configuration\n"
        );

        let mut services = watch(&client, "runtime", "Services.v1alpha1.talos.dev").await;
        loop {
            if next(&mut services).await.0 == EventType::Bootstrapped {
                break;
            }
        }
        success(cluster.talosctl(&["-n", &node, "restart", "timed"]));
        let mut seen = Vec::new();
        while !seen
            .iter()
            .any(|(_, spec): &(String, String)| spec.contains("running: true"))
        {
            let (kind, id, spec) = next(&mut services).await;
            if id == "timed" {
                assert_eq!(kind, EventType::Updated);
                seen.push((id, spec));
            }
        }
        assert!(
            seen.iter().any(|(_, spec)| spec.contains("running: false")),
            "the restart shows the service stopping first: {seen:?}"
        );
    });

    // The controller graph, as `talosctl inspect dependencies` draws it.
    let graph = success(cluster.talosctl(&["-n", &node, "inspect", "dependencies"]));
    for edge in [
        "\"MachineConfigs.config.talos.dev\" -> \"network.HostnameConfigController\";",
        "\"network.HostnameConfigController\" -> \"HostnameSpecs.net.talos.dev\";",
        "\"ConfigController\" -> \"MachineConfigs.config.talos.dev\";",
        // The controllers that hand the config to the daemons read the services too.
        "\"MachineConfigs.config.talos.dev\" -> \"time.TimedConfigController\";",
        "\"Services.v1alpha1.talos.dev\" -> \"time.TimedConfigController\";",
        "\"MachineConfigs.config.talos.dev\" -> \"runtime.LogShippingController\";",
        "\"etcd.SpecController\" -> \"EtcdSpecs.etcd.talos.dev\";",
    ] {
        assert!(graph.contains(edge), "{edge} missing from\n{graph}");
    }

    // What talosctl printed: the header, the first hostname, then the renamed one.
    let printed: Vec<String> = (&mut lines).take(3).map(Result::unwrap).collect();
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(printed[0].starts_with("*   NODE"), "{printed:?}");
    assert!(
        printed[1].starts_with("+   ") && printed[1].contains("node-2"),
        "{printed:?}"
    );
    assert!(
        printed[2].starts_with("    ") && printed[2].contains("renamed"),
        "{printed:?}"
    );
}

#[test]
fn readers_cannot_list_or_watch_the_machine_config() {
    let cluster = Cluster::start(43, 1);
    let node = cluster.nodes[0].address.to_string();
    // Generate a reader's talosconfig the way users do.
    let reader_config = cluster.dir.path().join("reader-talosconfig");
    success(
        Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(cluster.talosconfig())
            .args([
                "-e",
                &node,
                "-n",
                &node,
                "config",
                "new",
                "--roles",
                "os:reader",
            ])
            .arg(&reader_config)
            .output()
            .unwrap(),
    );
    let reader = talosconfig::Talosconfig::load(&reader_config).unwrap();
    let (name, context) = reader.context(None).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = Client::from_context(name, context, std::slice::from_ref(&node))
            .await
            .unwrap();
        let mut state = proto::cosi::resource::state_client::StateClient::new(client.channel());
        let listed = state
            .list(proto::cosi::resource::ListRequest {
                namespace: "config".into(),
                r#type: "MachineConfigs.config.talos.dev".into(),
                options: None,
            })
            .await;
        let refused = match listed {
            Ok(mut stream) => stream.get_mut().message().await.map(drop).unwrap_err(),
            Err(status) => status,
        };
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        let watched = state
            .watch(WatchRequest {
                namespace: "config".into(),
                r#type: "MachineConfigs.config.talos.dev".into(),
                ..WatchRequest::default()
            })
            .await;
        let refused = match watched {
            Ok(mut stream) => stream.get_mut().message().await.map(drop).unwrap_err(),
            Err(status) => status,
        };
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        // Non-sensitive types are readable.
        let mut services = watch(&client, "runtime", "Services.v1alpha1.talos.dev").await;
        assert_eq!(next(&mut services).await.0, EventType::Created);
    });
}

/// The rows `talosctl get <alias>` prints (the header left out; none printed for no rows).
fn rows(cluster: &Cluster, node: &str, alias: &str) -> Vec<String> {
    let printed = success(cluster.talosctl(&["-n", node, "get", alias]));
    let mut lines = printed.lines();
    if let Some(header) = lines.next() {
        assert!(header.starts_with("NODE"), "get {alias}: {printed}");
    }
    lines.map(str::to_string).collect()
}

/// A reader's client of `node`, from a reader talosconfig generated the way users do.
fn reader_client(
    cluster: &Cluster,
    node: &str,
    runtime: &tokio::runtime::Runtime,
) -> proto::cosi::resource::state_client::StateClient<tonic::transport::Channel> {
    let reader_config = cluster.dir.path().join("reader-talosconfig");
    success(
        Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(cluster.talosconfig())
            .args([
                "-e",
                node,
                "-n",
                node,
                "config",
                "new",
                "--roles",
                "os:reader",
            ])
            .arg(&reader_config)
            .output()
            .unwrap(),
    );
    let reader = talosconfig::Talosconfig::load(&reader_config).unwrap();
    let (name, context) = reader.context(None).unwrap();
    let client = runtime
        .block_on(Client::from_context(name, context, &[node.to_string()]))
        .unwrap();
    proto::cosi::resource::state_client::StateClient::new(client.channel())
}

/// VmRSS of `pid` in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn upstream_types_answer_get_by_their_aliases() {
    let mut cluster = Cluster::start(55, 1);
    let node = cluster.nodes[0].address.to_string();

    // Types whose source every dev-mode node has: rows, with upstream's ids.
    eventually("the time status from timed", || {
        !rows(&cluster, &node, "timestatuses").is_empty()
    });
    for (alias, id) in [
        ("cmdline", "cmdline"),
        ("bootids", "boot-id"),
        ("securitystates", "securitystate"),
        ("cpus", "CPU-"),
        ("mounts", "/proc"),
        ("identities", "local"),
        ("info", "current"),
        ("versions", "version"),
        ("affiliates", ""),
        ("members", "node-2"),
        ("resolverspecs", "resolvers"),
        ("timeserverspecs", "timeservers"),
        ("timeservers", "timeservers"),
        ("timestatuses", "node"),
        ("acquireconfigstatuses", "machine-config"),
    ] {
        let found = rows(&cluster, &node, alias);
        assert!(
            found.iter().any(|row| row.contains(id)),
            "get {alias}: no row with {id:?}: {found:?}"
        );
    }
    // The member is the node itself, as a control plane with its address.
    let members = rows(&cluster, &node, "members");
    assert!(
        members[0].contains("controlplane") && members[0].contains(&node),
        "{members:?}"
    );
    let identity = success(cluster.talosctl(&["-n", &node, "get", "identities", "-o", "yaml"]));
    assert!(identity.contains("nodeId: "), "{identity}");

    // Shell completion asks the current context's node for its resource types (`get memb`)
    // and, for `list`, `read` and `copy`, for its paths.
    let talosconfig = cluster.talosconfig().with_extension("completion");
    std::fs::copy(cluster.talosconfig(), &talosconfig).unwrap();
    for what in ["endpoint", "node"] {
        success(
            Command::new(binary("talosctl"))
                .arg("--talosconfig")
                .arg(&talosconfig)
                .args(["config", what, &node])
                .output()
                .unwrap(),
        );
    }
    for (command, typed, expected) in [
        ("get", "memb", "members"),
        ("list", "/pr", "/proc/"),
        ("read", "/proc/upt", "/proc/uptime"),
        ("copy", "/proc/sys/kernel/host", "/proc/sys/kernel/hostname"),
    ] {
        let completed = success(
            Command::new(binary("talosctl"))
                .args(["--", "talosctl", command, typed])
                .env("COMPLETE", "bash")
                .env("_CLAP_COMPLETE_INDEX", "2")
                .env("_CLAP_IFS", "\n")
                .env("TALOSCONFIG", &talosconfig)
                .output()
                .unwrap(),
        );
        assert!(
            completed.lines().any(|l| l == expected),
            "{command} {typed}: {completed}"
        );
        assert!(
            completed.lines().all(|l| l.starts_with(typed)),
            "{command} {typed}: {completed}"
        );
    }

    // Types the host may or may not give: rows exactly when it does.
    for (alias, source) in [
        ("loadedkernelmodules", "/proc/modules"),
        ("devices", "/sys/bus/pci/devices"),
        ("systeminformation", "/sys/class/dmi/id/sys_vendor"),
    ] {
        let present = std::path::Path::new(source).exists();
        assert_eq!(
            !rows(&cluster, &node, alias).is_empty(),
            present,
            "get {alias} against {source}"
        );
    }
    // Types with nothing to show on a dev-mode node answer with no rows: no extensions, no
    // configured kernel modules, no sysctls set by a machined that is not PID 1.
    for alias in ["extensions", "kernelmodulespecs", "sysctls"] {
        assert_eq!(
            rows(&cluster, &node, alias),
            Vec::<String>::new(),
            "{alias}"
        );
    }

    // etcd's member answers when etcd runs, and no rows before.
    let members = rows(&cluster, &node, "etcdmembers");
    assert!(
        members.is_empty() || members[0].contains("local"),
        "{members:?}"
    );

    // get rd lists every type, the sensitive ones too.
    let definitions = success(cluster.talosctl(&["-n", &node, "get", "rd"]));
    for resource_type in [
        "processors.hardware.talos.dev",
        "pcidevices.hardware.talos.dev",
        "systeminformations.hardware.talos.dev",
        "kernelparamstatuses.runtime.talos.dev",
        "loadedkernelmodules.runtime.talos.dev",
        "mountstatuses.runtime.talos.dev",
        "securitystates.talos.dev",
        "extensionstatuses.runtime.talos.dev",
        "identities.cluster.talos.dev",
        "members.cluster.talos.dev",
        "affiliates.cluster.talos.dev",
        "infos.cluster.talos.dev",
        "timestatuses.v1alpha1.talos.dev",
        "timeserverstatuses.net.talos.dev",
        "resolverspecs.net.talos.dev",
        "osrootsecrets.secrets.talos.dev",
        "kubernetesrootsecrets.secrets.talos.dev",
        "etcdrootsecrets.secrets.talos.dev",
        "versions.runtime.talos.dev",
        "nodeaddresses.net.talos.dev",
        "etcdmembers.etcd.talos.dev",
    ] {
        assert!(
            definitions.contains(resource_type),
            "{resource_type} missing from get rd:\n{definitions}"
        );
    }

    // An admin reads the secrets; a reader can neither get, list nor watch them.
    let os = success(cluster.talosctl(&["-n", &node, "get", "osrootsecrets", "-o", "yaml"]));
    assert!(os.contains("issuingCA:") && os.contains("token:"), "{os}");
    let api = success(cluster.talosctl(&["-n", &node, "get", "apicertificates", "-o", "yaml"]));
    assert!(
        api.contains("id: api")
            && api.contains("owner: secrets.APIController")
            && api.contains("acceptedCAs:")
            && api.contains("server:"),
        "{api}"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut reader = reader_client(&cluster, &node, &runtime);
    let secret_types = [
        "OSRootSecrets.secrets.talos.dev",
        "EtcdRootSecrets.secrets.talos.dev",
        "KubernetesRootSecrets.secrets.talos.dev",
        "ApiCertificates.secrets.talos.dev",
    ];
    runtime.block_on(async {
        for resource_type in secret_types {
            let got = reader
                .get(proto::cosi::resource::GetRequest {
                    namespace: "secrets".into(),
                    r#type: resource_type.into(),
                    id: "os".into(),
                    options: None,
                })
                .await;
            assert_eq!(
                got.map(drop).unwrap_err().code(),
                tonic::Code::PermissionDenied,
                "get {resource_type}"
            );
            let listed = reader
                .list(proto::cosi::resource::ListRequest {
                    namespace: "secrets".into(),
                    r#type: resource_type.into(),
                    options: None,
                })
                .await;
            let refused = match listed {
                Ok(mut stream) => stream.get_mut().message().await.map(drop).unwrap_err(),
                Err(status) => status,
            };
            assert_eq!(
                refused.code(),
                tonic::Code::PermissionDenied,
                "list {resource_type}"
            );
            let watched = reader
                .watch(WatchRequest {
                    namespace: "secrets".into(),
                    r#type: resource_type.into(),
                    ..WatchRequest::default()
                })
                .await;
            let refused = match watched {
                Ok(mut stream) => stream.get_mut().message().await.map(drop).unwrap_err(),
                Err(status) => status,
            };
            assert_eq!(
                refused.code(),
                tonic::Code::PermissionDenied,
                "watch {resource_type}"
            );
        }
    });
    // talosctl as a reader: refused too.
    let reader_config = cluster.dir.path().join("reader-talosconfig");
    let refused = failure(
        Command::new(binary("talosctl"))
            .arg("--talosconfig")
            .arg(&reader_config)
            .args(["-e", &node, "-n", &node, "get", "osrootsecrets"])
            .output()
            .unwrap(),
    );
    assert!(
        refused.contains("PermissionDenied") || refused.contains("not authorized"),
        "{refused}"
    );

    // machined's memory with the store filled.
    let pid = cluster.nodes[0].machined_pid().unwrap();
    let resources = success(cluster.talosctl(&["-n", &node, "get", "mounts", "-o", "json"]));
    eprintln!(
        "machined VmRSS with the store filled: {} KiB ({} bytes of mount statuses as JSON)",
        resident_kib(pid),
        resources.len()
    );

    // The node id survives a restart of machined (kept on STATE).
    let node_id = |yaml: &str| {
        yaml.lines()
            .find_map(|line| line.trim().strip_prefix("nodeId: "))
            .map(str::to_string)
    };
    cluster.nodes[0].stop();
    cluster.nodes[0].boot();
    cluster.wait_until_answering(&cluster.nodes[0]);
    let again = success(cluster.talosctl(&["-n", &node, "get", "identities", "-o", "yaml"]));
    assert_eq!(node_id(&again), node_id(&identity));
    assert!(node_id(&again).is_some());
}
