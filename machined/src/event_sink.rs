//! machined's events streamed to an event sink, as upstream: the `talos.events.sink=HOST:PORT`
//! kernel argument (dev mode: `--events-sink`) or the `EventSinkConfig` document (which wins)
//! names a gRPC server of siderolink's `events.EventSinkService`, and every event of the bus
//! goes to its `Publish` in order, over plain gRPC (no TLS, as upstream).
//!
//! - `runtime.EventSinkConfigController` → `EventSinkConfigs.runtime.talos.dev/event-sink`
//!   (the endpoint);
//! - `v1alpha1.EventsSinkController` runs one streaming task per endpoint: it starts with every
//!   event the bus holds (upstream's tail of all), and after a failed connection or `Publish`
//!   it connects again with back-off (0.5 s doubling to 30 s) and resumes after the last event
//!   the sink took, so nothing is lost or repeated while the bus still holds it.
//!
//! The buffer is the event bus's own ring ([`crate::events::DEFAULT_CAPACITY`] events): a sink
//! that stays away longer than the ring lasts misses the oldest events, which is logged with
//! how many; machined never waits for a sink or holds more than the ring.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use machineconfig::Config;
use machineconfig::documents::Document;
use proto::events::EventRequest;
use proto::events::event_sink_service_client::EventSinkServiceClient;
use resources::{Context, Controller, Kind, Requeue, Spec};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::controllers::{active_config, machine_config_kind};
use crate::events::{EventBus, EventsError, SubscribeOptions, Tail, Xid};

/// The one config resource's id.
pub const EVENT_SINK_ID: &str = "event-sink";
/// The kernel argument naming the sink.
pub const KERNEL_ARGUMENT: &str = "talos.events.sink";
const RETRY_INITIAL: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long a connection attempt and one `Publish` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// `EventSinkConfigs.runtime.talos.dev`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSinkConfigSpec {
    pub endpoint: String,
}

impl Spec for EventSinkConfigSpec {
    const TYPE: &'static str = "EventSinkConfigs.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// Whether the event sink applies `document` (it is not reported as unapplied).
pub fn applied_by_event_sink(document: &Document) -> bool {
    matches!(document, Document::EventSink(_))
}

/// `HOST:PORT` (a bracketed IPv6 host allowed), as the kernel argument must be.
pub fn check_endpoint(text: &str) -> Result<String, String> {
    let invalid = || format!("{text:?} is not a valid host:port");
    let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
    port.parse::<u16>().map_err(|_| invalid())?;
    if host.is_empty() || text.len() > 256 || text.contains(['/', ' ']) {
        return Err(invalid());
    }
    Ok(text.to_string())
}

/// The kernel argument (or flag) and the `EventSinkConfig` document → `EventSinkConfigs`.
pub struct EventSinkConfigController {
    /// `talos.events.sink`, checked.
    pub kernel_argument: Option<String>,
}

impl Controller for EventSinkConfigController {
    fn name(&self) -> &'static str {
        "runtime.EventSinkConfigController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<EventSinkConfigSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let endpoint = configured(active_config(context)?.as_ref())
                .or_else(|| self.kernel_argument.clone());
            match endpoint {
                Some(endpoint) => {
                    let spec = EventSinkConfigSpec { endpoint };
                    context
                        .write(EVENT_SINK_ID, &spec)
                        .map_err(|e| e.to_string())?;
                }
                None => context
                    .keep_only::<EventSinkConfigSpec>(&[])
                    .map_err(|e| e.to_string())?,
            }
            Ok(Requeue::Never)
        })
    }
}

fn configured(config: Option<&Config>) -> Option<String> {
    config?
        .documents
        .iter()
        .find_map(|document| match document {
            Document::EventSink(sink) => Some(sink.endpoint.clone()),
            _ => None,
        })
}

/// `EventSinkConfigs` → a task streaming the bus to the endpoint.
pub struct EventsSinkController {
    events: EventBus,
    /// The last event a sink took, shared by the tasks so a new endpoint resumes after it.
    last_sent: Arc<Mutex<Option<Xid>>>,
    streaming: Option<(String, JoinHandle<()>)>,
}

impl EventsSinkController {
    pub fn new(events: EventBus) -> Self {
        EventsSinkController {
            events,
            last_sent: Arc::default(),
            streaming: None,
        }
    }
}

impl Controller for EventsSinkController {
    fn name(&self) -> &'static str {
        "v1alpha1.EventsSinkController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![Kind::of::<EventSinkConfigSpec>()]
    }

    fn outputs(&self) -> Vec<Kind> {
        Vec::new()
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let endpoint = context
                .state()
                .get(&Kind::of::<EventSinkConfigSpec>(), EVENT_SINK_ID)
                .map(|resource| serde_norway::from_str::<EventSinkConfigSpec>(&resource.yaml_spec))
                .transpose()
                .map_err(|error| format!("event sink config: {error}"))?
                .map(|spec| spec.endpoint);
            if self.streaming.as_ref().map(|(current, _)| current) == endpoint.as_ref() {
                return Ok(Requeue::Never);
            }
            if let Some((old, task)) = self.streaming.take() {
                task.abort();
                tracing::info!("events no longer streamed to {old}");
            }
            if let Some(endpoint) = endpoint {
                let task = tokio::spawn(stream(
                    endpoint.clone(),
                    self.events.clone(),
                    Arc::clone(&self.last_sent),
                ));
                self.streaming = Some((endpoint, task));
            }
            Ok(Requeue::Never)
        })
    }
}

impl Drop for EventsSinkController {
    fn drop(&mut self) {
        if let Some((_, task)) = self.streaming.take() {
            task.abort();
        }
    }
}

/// Streams the bus to `endpoint` until aborted, connecting again with back-off.
async fn stream(endpoint: String, events: EventBus, last_sent: Arc<Mutex<Option<Xid>>>) {
    let mut retry = RETRY_INITIAL;
    loop {
        let Err(error) = stream_once(&endpoint, &events, &last_sent, &mut retry).await;
        tracing::warn!(%error, retry_in = ?retry, "event sink {endpoint}");
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// One connection: publishes from after the last event sent until something fails (`retry`
/// is reset once the sink takes an event).
async fn stream_once(
    endpoint: &str,
    events: &EventBus,
    last_sent: &Mutex<Option<Xid>>,
    retry: &mut Duration,
) -> Result<std::convert::Infallible, String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))
        .map_err(|error| format!("invalid endpoint: {error}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(PUBLISH_TIMEOUT)
        .connect()
        .await
        .map_err(|error| format!("connecting: {error}"))?;
    let mut client = EventSinkServiceClient::new(channel);
    let resume = *last_sent.lock().unwrap_or_else(PoisonError::into_inner);
    let tail = resume.map_or(Tail::All, Tail::After);
    let mut subscription = match events.subscribe(SubscribeOptions {
        tail,
        actor_id: None,
    }) {
        Err(EventsError::UnknownTailId { .. }) => {
            tracing::warn!(
                "event sink {endpoint}: the bus no longer holds the last event sent; \
                 resuming from the oldest it holds (events in between are lost)"
            );
            events
                .subscribe(SubscribeOptions {
                    tail: Tail::All,
                    actor_id: None,
                })
                .map_err(|error| error.to_string())?
        }
        other => other.map_err(|error| error.to_string())?,
    };
    tracing::info!("streaming events to {endpoint}");
    loop {
        let event = match subscription.recv().await {
            Ok(event) => event,
            Err(EventsError::Lagged { missed }) => {
                tracing::warn!("event sink {endpoint}: {missed} events dropped by the bus");
                continue;
            }
            Err(error) => return Err(error.to_string()),
        };
        // The subscription's hello event carries nothing.
        let Ok(id) = event.id.parse::<Xid>() else {
            continue;
        };
        let request = EventRequest {
            data: event.data,
            id: event.id,
            actor_id: event.actor_id,
        };
        client
            .publish(request)
            .await
            .map_err(|status| format!("publishing event {id}: {status}"))?;
        *last_sent.lock().unwrap_or_else(PoisonError::into_inner) = Some(id);
        *retry = RETRY_INITIAL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_host_and_port() {
        for good in ["127.0.0.1:4002", "sink.example.org:443", "[fd00::1]:4002"] {
            assert_eq!(check_endpoint(good).as_deref(), Ok(good));
        }
        for bad in [
            "",
            "sink",
            "sink:",
            ":4002",
            "sink:99999",
            "http://sink:1",
            "a b:1",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }
}
