//! The dashboard's fetchers: for every node, one tokio task per kind of request, each sending
//! its request, storing the answer in the node's [`NodeData`] and waiting for the next tick.
//! A kind therefore never has two requests in flight, a slow one delays only itself, and the
//! screen is drawn from whatever was stored last. Failures are stored as the kind's error and
//! shown in the header; the next success clears them.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use apiclient::{ApiClientError, NodeMessage, NodeReply};
use proto::machine::{DmesgRequest, LogsRequest};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use super::data::{Kind, NodeData};
use crate::cmd::get;
use crate::connection::Target;

/// The longest any one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A node's data, shared between its fetchers and the renderer.
pub type Shared = Arc<Mutex<NodeData>>;

/// Locks a node's data; a fetcher that panicked holding the lock leaves data that is still
/// fine to read.
pub fn lock(node: &Shared) -> std::sync::MutexGuard<'_, NodeData> {
    node.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts every fetcher of `target`'s node. `changed` is notified after each store.
pub fn spawn(
    tasks: &mut JoinSet<()>,
    target: Target,
    node: Shared,
    interval: Duration,
    changed: Arc<Notify>,
) {
    let poller = Poller {
        node,
        interval,
        changed,
    };
    macro_rules! unary {
        ($kind:expr, $method:ident, |$reply:ident| $extract:expr, |$data:ident, $value:ident, $at:ident| $apply:expr) => {{
            let target = target.clone();
            tasks.spawn(poller.clone().run(
                $kind,
                move || {
                    let target = target.clone();
                    async move {
                        let request = target.request(()).map_err(|e| e.to_string())?;
                        let $reply = target
                            .machine()
                            .$method(request)
                            .await
                            .map_err(status)?
                            .into_inner();
                        first($extract, &target.label())
                    }
                },
                |$data: &mut NodeData, $value, $at: Instant| $apply,
            ));
        }};
    }
    unary!(Kind::Version, version, |r| r.messages, |d, v, _at| d
        .apply_version(v));
    unary!(Kind::SystemStat, system_stat, |r| r.messages, |d, v, at| d
        .apply_system_stat(v, at));
    unary!(Kind::Memory, memory, |r| r.messages, |d, v, _at| d
        .apply_memory(v.meminfo.unwrap_or_default()));
    unary!(Kind::LoadAvg, load_avg, |r| r.messages, |d, v, _at| d
        .apply_load(v));
    unary!(Kind::Processes, processes, |r| r.messages, |d, v, at| d
        .apply_processes(v.processes, at));
    unary!(Kind::Services, service_list, |r| r.messages, |d, v, _at| d
        .apply_services(v.services));
    unary!(
        Kind::NetworkStats,
        network_device_stats,
        |r| r.messages,
        |d, v, at| d.apply_network_stats(v, at)
    );

    let resources: [(Kind, &str, &str, ApplySpecs); 5] = [
        (
            Kind::MachineStatus,
            "runtime",
            "MachineStatuses.runtime.talos.dev",
            |d, specs| d.apply_machine_status(specs.first().map(|(_, spec)| spec.as_str())),
        ),
        (
            Kind::Addresses,
            "network",
            "AddressStatuses.net.talos.dev",
            NodeData::apply_addresses,
        ),
        (
            Kind::Links,
            "network",
            "LinkStatuses.net.talos.dev",
            NodeData::apply_links,
        ),
        (
            Kind::Routes,
            "network",
            "RouteStatuses.net.talos.dev",
            NodeData::apply_routes,
        ),
        (
            Kind::Resolvers,
            "network",
            "ResolverStatuses.net.talos.dev",
            NodeData::apply_resolvers,
        ),
    ];
    for (kind, namespace, resource_type, apply) in resources {
        let target = target.clone();
        tasks.spawn(poller.clone().run(
            kind,
            move || {
                let target = target.clone();
                async move {
                    let found = get::list(&target, namespace, resource_type)
                        .await
                        .map_err(|e| format!("{e:#}"))?;
                    Ok(found
                        .into_iter()
                        .map(|r| {
                            let id = r.metadata.map(|m| m.id).unwrap_or_default();
                            let spec = r.spec.map(|s| s.yaml_spec).unwrap_or_default();
                            (id, spec)
                        })
                        .collect::<Vec<_>>())
                }
            },
            move |d: &mut NodeData, specs: Vec<(String, String)>, _at| apply(d, &specs),
        ));
    }

    // The hostname from `HostnameStatus`, as upstream; a node that does not manage its network
    // (dev mode) has none, so then from the `Hostname` call.
    let hostname_target = target.clone();
    tasks.spawn(poller.clone().run(
        Kind::Hostname,
        move || {
            let target = hostname_target.clone();
            async move {
                let listed = get::list(&target, "network", "HostnameStatuses.net.talos.dev").await;
                let listed = match listed {
                    Ok(found) => found
                        .into_iter()
                        .find_map(|r| r.spec)
                        .and_then(|spec| hostname_of(&spec.yaml_spec))
                        .ok_or_else(|| "no HostnameStatus".to_string()),
                    Err(status_error) => Err(format!("{status_error:#}")),
                };
                match listed {
                    Ok(hostname) => Ok(Some(hostname)),
                    Err(status_error) => {
                        let request = target.request(()).map_err(|e| e.to_string())?;
                        let reply = target
                            .machine()
                            .hostname(request)
                            .await
                            .map_err(|e| format!("{status_error}; {}", status(e)))?;
                        Ok(Some(
                            first(reply.into_inner().messages, &target.label())?.hostname,
                        ))
                    }
                }
            }
        },
        |d: &mut NodeData, hostname: Option<String>, _at| d.apply_hostname(hostname),
    ));

    tasks.spawn(poller.clone().follow(Kind::Logs, target.clone()));
    tasks.spawn(poller.follow(Kind::Dmesg, target));
}

/// Stores the `(id, YAML spec)` of a listed resource type.
type ApplySpecs = fn(&mut NodeData, &[(String, String)]);

#[derive(Clone, Debug)]
struct Poller {
    node: Shared,
    interval: Duration,
    changed: Arc<Notify>,
}

impl Poller {
    /// Asks `fetch` once per interval (never twice at a time) and stores what it answers.
    async fn run<T, F, Fut>(
        self,
        kind: Kind,
        mut fetch: F,
        apply: impl Fn(&mut NodeData, T, Instant),
    ) where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let result = tokio::time::timeout(REQUEST_TIMEOUT, fetch())
                .await
                .unwrap_or_else(|_| Err(format!("no answer in {}s", REQUEST_TIMEOUT.as_secs())));
            self.store(|data| match result {
                Ok(value) => {
                    apply(data, value, Instant::now());
                    data.errors.remove(&kind);
                }
                Err(error) => {
                    data.errors.insert(kind, error);
                }
            });
        }
    }

    /// Follows machined's log (`Logs`) or the kernel's (`Dmesg`) into the node's log pane. A
    /// broken stream is opened again after an interval, asking only for new lines.
    async fn follow(self, kind: Kind, target: Target) {
        let mut first = true;
        loop {
            let error = match self.stream_once(kind, &target, first).await {
                Ok(()) => "stream ended".to_string(),
                Err(error) => error,
            };
            self.store(|data| {
                data.errors.insert(kind, error);
            });
            first = false;
            tokio::time::sleep(self.interval).await;
        }
    }

    async fn stream_once(&self, kind: Kind, target: &Target, first: bool) -> Result<(), String> {
        let mut machine = target.machine();
        let stream = match kind {
            Kind::Dmesg => {
                // Only new records: what the kernel already holds can be thousands of lines
                // (a dev-mode node shares the host's kernel); machined's log has the history.
                let request = DmesgRequest {
                    follow: true,
                    tail: true,
                };
                machine
                    .dmesg(target.request(request).map_err(|e| e.to_string())?)
                    .await
            }
            _ => {
                let request = LogsRequest {
                    namespace: "system".into(),
                    id: "machined".into(),
                    driver: 0,
                    follow: true,
                    tail_lines: if first { 100 } else { 0 },
                };
                machine
                    .logs(target.request(request).map_err(|e| e.to_string())?)
                    .await
            }
        };
        let mut stream = stream.map_err(status)?.into_inner();
        let label = target.label();
        loop {
            let Some(chunk) = stream.message().await.map_err(status)? else {
                return Ok(());
            };
            let chunk = NodeReply::of(chunk, &label)
                .result
                .map_err(|e| e.to_string())?;
            self.store(|data| {
                data.errors.remove(&kind);
                data.apply_log_bytes(kind, &chunk.bytes);
            });
        }
    }

    fn store(&self, update: impl FnOnce(&mut NodeData)) {
        update(&mut lock(&self.node));
        self.changed.notify_one();
    }
}

/// The `hostname` of a `HostnameStatus` spec.
fn hostname_of(spec: &str) -> Option<String> {
    let value: serde_norway::Value = serde_norway::from_str(spec).ok()?;
    value["hostname"].as_str().map(str::to_string)
}

/// The first element of a reply for one node, or the error the node put in it.
fn first<T: NodeMessage>(messages: Vec<T>, label: &str) -> Result<T, String> {
    let message = messages
        .into_iter()
        .next()
        .ok_or_else(|| "empty reply".to_string())?;
    NodeReply::of(message, label)
        .result
        .map_err(|e| e.to_string())
}

fn status(status: tonic::Status) -> String {
    ApiClientError::from(status).to_string()
}
