//! machined's events streamed to a gRPC event sink (siderolink's `events.EventSinkService`):
//! an `EventSinkConfig` document applied to a dev node names a sink the test serves on
//! loopback; the events the node already had arrive first, in order, then live ones; the sink
//! goes away while a service restarts and comes back on the same address: the node connects
//! again and sends what happened meanwhile, nothing lost or repeated. Loopback block
//! 127.76.0.0/24.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use prost::Message as _;
use proto::events::event_sink_service_server::{EventSinkService, EventSinkServiceServer};
use proto::events::{EventRequest, EventResponse};
use proto::machine::ServiceStateEvent;
use tests::{Cluster, NodeKind, eventually, success};

const SINK: &str = "127.76.0.1";
const SERVICE_EVENT: &str = "talos/runtime/machine.ServiceStateEvent";

type Received = Arc<Mutex<Vec<EventRequest>>>;

struct Sink {
    received: Received,
}

#[tonic::async_trait]
impl EventSinkService for Sink {
    async fn publish(
        &self,
        request: tonic::Request<EventRequest>,
    ) -> Result<tonic::Response<EventResponse>, tonic::Status> {
        self.received.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(EventResponse {}))
    }
}

/// A sink being served, and how to stop it.
struct Serving {
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Serving {
    /// Stops accepting and closes every connection.
    fn stop(self, runtime: &tokio::runtime::Runtime) {
        let _ = self.stop.send(());
        let within = std::time::Duration::from_secs(10);
        runtime
            .block_on(async { tokio::time::timeout(within, self.task).await })
            .expect("the sink stops")
            .unwrap();
    }
}

/// Serves the sink on `address` until stopped.
fn serve(runtime: &tokio::runtime::Runtime, address: SocketAddr, received: &Received) -> Serving {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(address))
        .unwrap();
    let sink = Sink {
        received: Arc::clone(received),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = runtime.spawn(async move {
        tonic::transport::Server::builder()
            .add_service(EventSinkServiceServer::new(sink))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
    });
    Serving { task, stop }
}

/// The services named by the ServiceStateEvents among `events`.
fn services(events: &[EventRequest]) -> Vec<String> {
    events
        .iter()
        .filter_map(|event| event.data.as_ref())
        .filter(|data| data.type_url == SERVICE_EVENT)
        .map(|data| {
            ServiceStateEvent::decode(data.value.as_slice())
                .unwrap()
                .service
        })
        .collect()
}

#[test]
fn events_stream_to_the_sink_in_order_and_resume_after_it_comes_back() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let first = runtime
        .block_on(tokio::net::TcpListener::bind((SINK, 0)))
        .unwrap();
    let address = first.local_addr().unwrap();
    drop(first);
    let received = Received::default();
    let server = serve(&runtime, address, &received);

    let mut cluster = Cluster::generate(76);
    cluster.add_node(NodeKind::ControlPlane, 2, &[]);
    cluster.wait_until_answering(&cluster.nodes[0]);
    let config = format!(
        "{}\n---\napiVersion: v1alpha1\nkind: EventSinkConfig\nendpoint: {address}\n",
        cluster.controlplane_config().trim_end()
    );
    let applied = cluster.apply_no_reboot("event-sink.yaml", &config);
    let warnings = String::from_utf8_lossy(&applied.stderr).into_owned();
    success(applied);
    assert!(
        !warnings.contains("EventSinkConfig"),
        "reported as not applied: {warnings}"
    );

    // What the node published before the sink was configured (its services starting) comes
    // first: the whole bus, oldest first.
    eventually("the boot's service events at the sink", || {
        services(&received.lock().unwrap()).contains(&"apid".to_string())
    });
    let node = cluster.nodes[0].address.to_string();
    let events = cluster.talosctl(&["-n", &node, "get", "eventsinkconfigs", "-o", "yaml"]);
    let events = success(events);
    assert!(events.contains(&format!("endpoint: {address}")), "{events}");

    // The sink goes away; a service restarts meanwhile; the sink comes back.
    server.stop(&runtime);
    let before = received.lock().unwrap().len();
    success(cluster.talosctl(&["-n", &node, "restart", "timed"]));
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(received.lock().unwrap().len(), before, "nothing while down");
    let server = serve(&runtime, address, &received);
    eventually("timed's restart at the sink after it came back", || {
        services(&received.lock().unwrap()[before..]).contains(&"timed".to_string())
    });
    server.stop(&runtime);

    let received = received.lock().unwrap();
    let ids: Vec<&str> = received.iter().map(|event| event.id.as_str()).collect();
    assert!(ids.iter().all(|id| id.len() == 20), "xids: {ids:?}");
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event arrived twice: {ids:?}");
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ids, "events out of order");
}
