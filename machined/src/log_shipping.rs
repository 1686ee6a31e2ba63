//! Log shipping (`machine.logging.destinations`): every service's log lines and machined's own
//! are sent to each destination as upstream's JSON lines (`msg`, `talos-level`,
//! `talos-service`, `talos-time`, plus the destination's `extraTags`), over TCP (one line per
//! `\n`) or UDP (one line per datagram). The kernel log goes the same way to its own
//! destinations (`talos.logging.kernel` and `KmsgLogConfig` documents, see [`kmsg`]).
//!
//! Nothing that logs ever waits for a destination: lines go through a broadcast tap that drops
//! the oldest when a destination falls behind, then into a bounded queue per destination. A
//! destination that is down is retried with back-off (1 s doubling to 30 s) while its queue
//! keeps the newest lines; what is dropped is counted and reported in machined's log. The
//! destinations follow the active config ([`LogShippingController`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use machineconfig::Config;
use machineconfig::documents::Document;
use resources::{Context, Controller, Kind, Requeue};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use crate::controllers;

mod kmsg;

/// Lines the tap holds for a destination that has not taken them yet.
const TAP_CAPACITY: usize = 4096;
/// Lines a destination keeps while it cannot send (the newest win).
const QUEUE_LINES: usize = 10_000;
/// Lines written in one go.
const BATCH_LINES: usize = 256;
/// A write that takes longer counts as a broken connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connecting may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_INITIAL: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Largest message sent over UDP (the rest of a longer line is cut).
const MAX_DATAGRAM: usize = 60_000;

/// One captured line.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub service: Arc<str>,
    pub text: Bytes,
    pub at: SystemTime,
}

static TAP: OnceLock<broadcast::Sender<LogLine>> = OnceLock::new();

fn tap() -> &'static broadcast::Sender<LogLine> {
    TAP.get_or_init(|| broadcast::channel(TAP_CAPACITY).0)
}

/// Hands a complete line of `service`'s log to the destinations; never waits.
pub fn publish(service: &Arc<str>, text: &[u8]) {
    let tap = tap();
    if tap.receiver_count() > 0 {
        let _ = tap.send(LogLine {
            service: Arc::clone(service),
            text: Bytes::copy_from_slice(text),
            at: SystemTime::now(),
        });
    }
}

/// machined's own log lines (its tracing output), as the service `machined`.
pub fn machined_log_tee() -> impl Fn(&[u8]) + Send + Sync + 'static {
    let service: Arc<str> = Arc::from("machined");
    move |bytes| {
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            publish(&service, line);
        }
    }
}

/// Where lines go, and which lines.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Destination {
    /// Every service's log and machined's own (`machine.logging.destinations`).
    Services {
        endpoint: String,
        extra_tags: BTreeMap<String, String>,
    },
    /// The kernel log (`talos.logging.kernel=` and `KmsgLogConfig` documents).
    Kernel { endpoint: String },
}

impl Destination {
    fn endpoint(&self) -> &str {
        match self {
            Destination::Services { endpoint, .. } | Destination::Kernel { endpoint } => endpoint,
        }
    }
}

/// The destinations wanted: the config's service log destinations, then the kernel log's
/// (`kernel_destination` from the kernel command line, then the `KmsgLogConfig` documents'
/// URLs, each once).
fn destinations(config: Option<&Config>, kernel_destination: Option<&str>) -> Vec<Destination> {
    let mut wanted: Vec<Destination> = config
        .and_then(|c| c.v1alpha1.as_ref()?.machine.as_ref()?.logging.as_ref())
        .map(|logging| {
            logging
                .destinations
                .iter()
                .map(|d| Destination::Services {
                    endpoint: d.endpoint.clone(),
                    extra_tags: d.extra_tags.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let documents = config.into_iter().flat_map(|c| &c.documents);
    let kernel =
        kernel_destination
            .into_iter()
            .chain(documents.filter_map(|document| match document {
                Document::KmsgLog(kmsg) => Some(kmsg.url.as_str()),
                _ => None,
            }));
    for endpoint in kernel {
        let destination = Destination::Kernel {
            endpoint: endpoint.to_string(),
        };
        if !wanted.contains(&destination) {
            wanted.push(destination);
        }
    }
    wanted
}

/// Checks a kernel log destination given outside the config (`tcp://HOST:PORT` or
/// `udp://HOST:PORT`), as the config checks a `KmsgLogConfig` URL.
pub fn check_endpoint(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|error| format!("{text:?}: {error}"))?;
    if !matches!(url.scheme(), "tcp" | "udp") {
        return Err(format!("{text:?}: the scheme must be tcp or udp"));
    }
    if url.host_str().is_none() || url.port().is_none() {
        return Err(format!("{text:?}: a host and a port are required"));
    }
    Ok(text.to_string())
}

/// Whether `document` is applied here (a `KmsgLogConfig`).
pub fn applied_by_log_shipping(document: &Document) -> bool {
    matches!(document, Document::KmsgLog(_))
}

/// Ships to the active config's destinations and the kernel log to `kernel_destination` (the
/// kernel command line's `talos.logging.kernel`): on each config change, when the wanted
/// destinations differ from the running ones, stops those and starts the new ones; reads the
/// kernel log only while a kernel destination runs.
#[derive(Debug)]
pub struct LogShippingController {
    kernel_destination: Option<String>,
    running: Vec<(Destination, JoinHandle<()>)>,
    kernel_tap: broadcast::Sender<Bytes>,
    kernel_reader: Option<JoinHandle<()>>,
}

impl LogShippingController {
    pub fn new(kernel_destination: Option<String>) -> Self {
        LogShippingController {
            kernel_destination,
            running: Vec::new(),
            kernel_tap: broadcast::channel(TAP_CAPACITY).0,
            kernel_reader: None,
        }
    }

    fn ship_to(&mut self, wanted: Vec<Destination>) {
        if self.running.iter().map(|(d, _)| d).eq(wanted.iter()) {
            return;
        }
        for (_, task) in self.running.drain(..) {
            task.abort();
        }
        for destination in wanted {
            tracing::info!(endpoint = %destination.endpoint(), "shipping logs");
            let task = match &destination {
                Destination::Services {
                    endpoint,
                    extra_tags,
                } => {
                    let tags = extra_tags.clone();
                    tokio::spawn(ship(endpoint.clone(), tap().subscribe(), move |line| {
                        encode(line, &tags)
                    }))
                }
                Destination::Kernel { endpoint } => tokio::spawn(ship(
                    endpoint.clone(),
                    self.kernel_tap.subscribe(),
                    Bytes::clone,
                )),
            };
            self.running.push((destination, task));
        }
        let kernel_wanted = self
            .running
            .iter()
            .any(|(d, _)| matches!(d, Destination::Kernel { .. }));
        match (&self.kernel_reader, kernel_wanted) {
            (None, true) => {
                self.kernel_reader = Some(tokio::spawn(kmsg::follow(self.kernel_tap.clone())));
            }
            (Some(reader), false) => {
                reader.abort();
                self.kernel_reader = None;
            }
            _ => {}
        }
    }
}

impl Controller for LogShippingController {
    fn name(&self) -> &'static str {
        "runtime.LogShippingController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![controllers::machine_config_kind()]
    }

    fn outputs(&self) -> Vec<Kind> {
        Vec::new()
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let config = controllers::active_config(context)?;
            let wanted = destinations(config.as_ref(), self.kernel_destination.as_deref());
            self.ship_to(wanted);
            Ok(Requeue::Never)
        })
    }
}

/// The encoded lines waiting for one destination.
#[derive(Debug, Default)]
struct Queue {
    lines: Mutex<VecDeque<Bytes>>,
    ready: Notify,
    dropped: AtomicU64,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Bytes>> {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, line: Bytes) {
        let mut lines = self.lock();
        if lines.len() >= QUEUE_LINES {
            lines.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        lines.push_back(line);
        drop(lines);
        self.ready.notify_one();
    }

    /// Up to [`BATCH_LINES`] lines, waiting for the first.
    async fn take(&self) -> Vec<Bytes> {
        loop {
            let ready = self.ready.notified();
            {
                let mut lines = self.lock();
                if !lines.is_empty() {
                    let n = lines.len().min(BATCH_LINES);
                    return lines.drain(..n).collect();
                }
            }
            ready.await;
        }
    }

    /// Puts an unsent batch back in front, as far as there is room.
    fn put_back(&self, batch: Vec<Bytes>) {
        let mut lines = self.lock();
        for line in batch.into_iter().rev() {
            if lines.len() >= QUEUE_LINES {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            lines.push_front(line);
        }
    }
}

/// Ships what `lines` carries, encoded by `encode`, to `endpoint`.
async fn ship<T: Clone>(
    endpoint: String,
    lines: broadcast::Receiver<T>,
    encode: impl Fn(&T) -> Bytes,
) {
    let queue = Queue::default();
    tokio::select! {
        () = receive(lines, &queue, encode) => {}
        () = send(&endpoint, &queue) => {}
    }
}

/// Moves lines from a tap into the queue, counting what the tap dropped.
async fn receive<T: Clone>(
    mut lines: broadcast::Receiver<T>,
    queue: &Queue,
    encode: impl Fn(&T) -> Bytes,
) {
    loop {
        match lines.recv().await {
            Ok(line) => queue.push(encode(&line)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                queue.dropped.fetch_add(missed, Ordering::Relaxed);
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

enum Connection {
    Tcp(tokio::net::TcpStream),
    Udp(tokio::net::UdpSocket),
}

impl Connection {
    async fn open(endpoint: &str) -> Result<Connection, String> {
        let url = url::Url::parse(endpoint).map_err(|e| e.to_string())?;
        let host = url.host_str().ok_or("no host")?;
        let port = url.port().ok_or("no port")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let address = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("no address")?;
        match url.scheme() {
            "tcp" => {
                let stream =
                    tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address))
                        .await
                        .map_err(|_| "connecting timed out".to_string())?
                        .map_err(|e| e.to_string())?;
                Ok(Connection::Tcp(stream))
            }
            "udp" => {
                let local = if address.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = tokio::net::UdpSocket::bind(local)
                    .await
                    .map_err(|e| e.to_string())?;
                socket.connect(address).await.map_err(|e| e.to_string())?;
                Ok(Connection::Udp(socket))
            }
            other => Err(format!("unsupported scheme {other:?}")),
        }
    }

    async fn send(&mut self, batch: &[Bytes]) -> std::io::Result<()> {
        match self {
            Connection::Tcp(stream) => {
                let joined: Vec<u8> = batch.concat();
                stream.write_all(&joined).await
            }
            Connection::Udp(socket) => {
                for line in batch {
                    socket.send(&line[..line.len().min(MAX_DATAGRAM)]).await?;
                }
                Ok(())
            }
        }
    }
}

/// Connects (with back-off) and writes batches until the connection breaks, for ever.
async fn send(endpoint: &str, queue: &Queue) {
    let mut retry = RETRY_INITIAL;
    let mut reported_drops = 0;
    let mut last_failure = String::new();
    loop {
        let mut connection = match Connection::open(endpoint).await {
            Ok(connection) => {
                tracing::info!(endpoint, "log destination connected");
                retry = RETRY_INITIAL;
                last_failure.clear();
                connection
            }
            Err(failure) => {
                if failure != last_failure {
                    tracing::warn!(endpoint, %failure, "log destination unreachable; retrying");
                    last_failure = failure;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        };
        loop {
            let batch = queue.take().await;
            let dropped = queue.dropped.load(Ordering::Relaxed);
            if dropped != reported_drops {
                tracing::warn!(
                    endpoint,
                    dropped,
                    "log lines dropped for a slow or absent destination"
                );
                reported_drops = dropped;
            }
            match tokio::time::timeout(WRITE_TIMEOUT, connection.send(&batch)).await {
                Ok(Ok(())) => {}
                outcome => {
                    let failure = match outcome {
                        Ok(Err(error)) => error.to_string(),
                        _ => "write timed out".to_string(),
                    };
                    tracing::warn!(endpoint, %failure, "log destination lost; reconnecting");
                    queue.put_back(batch);
                    break;
                }
            }
        }
        tokio::time::sleep(retry).await;
    }
}

/// Upstream's JSON line: the destination's tags, then `msg`, `talos-level`, `talos-service`
/// and `talos-time`. Lines in the daemons' own format (`TIME LEVEL message`) give their time
/// and level; other lines are `info` at the time they were captured.
fn encode(line: &LogLine, extra_tags: &BTreeMap<String, String>) -> Bytes {
    let text = String::from_utf8_lossy(&line.text);
    let text = text.trim_end_matches(['\n', '\r']);
    let captured = time::OffsetDateTime::from(line.at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let (at, level, message) = split_daemon_line(text).unwrap_or((&captured, "info", text));
    let mut fields = serde_json::Map::new();
    for (key, value) in extra_tags {
        fields.insert(key.clone(), value.clone().into());
    }
    fields.insert("msg".into(), message.into());
    fields.insert("talos-level".into(), level.into());
    fields.insert("talos-service".into(), line.service.as_ref().into());
    fields.insert("talos-time".into(), at.into());
    let mut encoded = serde_json::to_vec(&fields).unwrap_or_default();
    encoded.push(b'\n');
    Bytes::from(encoded)
}

/// `2026-12-04T21:00:29.363632Z  INFO starting daemon="apid"` → (time, `info`, the rest).
fn split_daemon_line(text: &str) -> Option<(&str, &'static str, &str)> {
    let (at, rest) = text.split_once(' ')?;
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()?;
    let rest = rest.trim_start();
    let (level, message) = rest.split_once(' ').unwrap_or((rest, ""));
    let level = match level {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" => "error",
        _ => return None,
    };
    Some((at, level, message.trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine {
            service: Arc::from("apid"),
            text: Bytes::copy_from_slice(text.as_bytes()),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    fn decoded(bytes: &Bytes) -> serde_json::Value {
        assert!(bytes.ends_with(b"\n"));
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn daemon_lines_give_their_time_and_level() {
        let tags = BTreeMap::from([("cluster".to_string(), "demo".to_string())]);
        let json = decoded(&encode(
            &line("2026-12-04T21:00:29.363632Z  WARN listening address=10.5.0.2:50000\n"),
            &tags,
        ));
        assert_eq!(json["msg"], "listening address=10.5.0.2:50000");
        assert_eq!(json["talos-level"], "warn");
        assert_eq!(json["talos-service"], "apid");
        assert_eq!(json["talos-time"], "2026-12-04T21:00:29.363632Z");
        assert_eq!(json["cluster"], "demo");
    }

    #[test]
    fn other_lines_are_info_at_capture_time_and_tags_cannot_hide_fields() {
        let tags = BTreeMap::from([("msg".to_string(), "spoofed".to_string())]);
        let json = decoded(&encode(&line("{\"odd\": \"json\"}\r\n"), &tags));
        assert_eq!(json["msg"], "{\"odd\": \"json\"}");
        assert_eq!(json["talos-level"], "info");
        assert_eq!(json["talos-time"], "2027-01-15T08:00:00Z");
    }

    #[test]
    fn kernel_destinations_come_from_the_command_line_and_documents_once_each() {
        let config = Config::from_yaml(
            "apiVersion: v1alpha1\nkind: KmsgLogConfig\nname: a\nurl: tcp://10.5.0.1:5000\n---\n\
             apiVersion: v1alpha1\nkind: KmsgLogConfig\nname: b\nurl: udp://10.5.0.1:5001\n",
        )
        .unwrap();
        let kernel = |endpoint: &str| Destination::Kernel {
            endpoint: endpoint.to_string(),
        };
        assert_eq!(
            destinations(Some(&config), Some("tcp://10.5.0.1:5000")),
            [kernel("tcp://10.5.0.1:5000"), kernel("udp://10.5.0.1:5001")]
        );
        assert_eq!(
            destinations(None, Some("udp://[::1]:9")),
            [kernel("udp://[::1]:9")]
        );
        assert!(destinations(None, None).is_empty());
    }

    #[test]
    fn kernel_destinations_outside_the_config_are_checked() {
        assert!(check_endpoint("tcp://127.0.0.1:5140").is_ok());
        assert!(check_endpoint("udp://[::1]:5140").is_ok());
        for bad in [
            "http://127.0.0.1:80",
            "tcp://127.0.0.1",
            "127.0.0.1:5140",
            "tcp://:1",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_full_queue_keeps_the_newest_lines_and_counts_the_rest() {
        let queue = Queue::default();
        for i in 0..QUEUE_LINES + 5 {
            queue.push(Bytes::from(i.to_string()));
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 5);
        let batch = queue.take().await;
        assert_eq!(batch.len(), BATCH_LINES);
        assert_eq!(batch[0], Bytes::from("5"));
        queue.push(Bytes::from("newest"));
        // Back in front as far as there is room: the oldest of the batch goes.
        queue.put_back(batch);
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 6);
        assert_eq!(queue.lock().front(), Some(&Bytes::from("6")));
        assert_eq!(queue.lock().back(), Some(&Bytes::from("newest")));
    }

    #[tokio::test]
    async fn the_controller_ships_to_the_configured_destination_and_stops_when_it_goes() {
        use tokio::io::AsyncBufReadExt as _;

        // A TCP sink on this test's loopback block.
        let sink = tokio::net::TcpListener::bind("127.10.67.1:0")
            .await
            .unwrap();
        let endpoint = format!("tcp://{}", sink.local_addr().unwrap());
        let state = Arc::new(resources::State::new());
        let write_config = |text: String| {
            state
                .write(
                    "ConfigController",
                    &controllers::machine_config_kind(),
                    controllers::ACTIVE_CONFIG_ID,
                    text,
                    Vec::new(),
                    BTreeMap::new(),
                )
                .unwrap()
        };
        write_config(format!(
            "version: v1alpha1\nmachine:\n  logging:\n    destinations:\n    \
             - endpoint: {endpoint}\n      format: json_lines\n      extraTags:\n        node: cp-1\n"
        ));
        let mut runtime = resources::Runtime::new(Arc::clone(&state));
        runtime.register(LogShippingController::new(None));
        runtime.start();

        // The destination connects at once and sends what is published from then on: publish
        // until a line arrives.
        let service: Arc<str> = Arc::from("unit");
        let (connection, _) = tokio::time::timeout(Duration::from_secs(10), sink.accept())
            .await
            .unwrap()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(connection).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                publish(&service, b"hello from the controller test\n");
                tokio::select! {
                    line = lines.next_line() => break line.unwrap().unwrap(),
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        })
        .await
        .unwrap();
        let first: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(first["talos-service"], "unit");
        assert_eq!(first["node"], "cp-1");

        // The destination leaves the config: its connection is closed.
        write_config("version: v1alpha1\nmachine:\n  type: worker\n".into());
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(_)) = lines.next_line().await {}
        })
        .await;
        assert!(
            closed.is_ok(),
            "the connection to a removed destination stays open"
        );
    }
}
