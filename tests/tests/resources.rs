//! The node's resources through apid: Watch follows a hostname changed by a config patch and a
//! service restart, `talosctl get -w` prints them, `inspect dependencies` draws the controllers,
//! and a reader can neither list nor watch the sensitive machine config. Loopback blocks 127.42.0.0/24 and 127.43.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use apiclient::Client;
use proto::cosi::resource::{EventType, WatchOptions, WatchRequest, WatchResponse};
use tests::{Cluster, binary, success};
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
