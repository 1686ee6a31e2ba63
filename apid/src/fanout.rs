//! One-to-many calls (`nodes` metadata, reference §2.4): the request goes to every target in
//! parallel and the replies come back as one, each element or streamed message stamped with the
//! target that produced it. A failed target becomes an element carrying its error; the call as
//! a whole succeeds.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::future::join_all;
use http::request::Parts;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rustls::ClientConfig;
use tokio::sync::mpsc;
use tonic::Status;

use crate::body::{BodyError, ProxyBody};
use crate::grpc::{self, MessageReader};
use crate::injection::{failure_field, failure_reply, hostname_field, stamp_reply};
use crate::state::Shared;

/// Server-streaming methods of the classic services, whose messages are interleaved rather
/// than aggregated into one reply.
const STREAMING_METHODS: [&str; 14] = [
    "/machine.MachineService/Copy",
    "/machine.MachineService/DiskUsage",
    "/machine.MachineService/Dmesg",
    "/machine.MachineService/EtcdSnapshot",
    "/machine.MachineService/Events",
    "/machine.MachineService/ImageList",
    "/machine.MachineService/Kubeconfig",
    "/machine.MachineService/List",
    "/machine.MachineService/Logs",
    "/machine.MachineService/PacketCapture",
    "/machine.MachineService/Read",
    "/machine.LifecycleService/Install",
    "/machine.LifecycleService/Upgrade",
    "/cluster.ClusterService/HealthCheck",
];

/// Frames buffered per channel between tasks.
const CHANNEL_DEPTH: usize = 16;

/// Whether one-to-many treats `method` as a stream of messages rather than one reply.
pub(crate) fn is_streaming(method: &str) -> bool {
    STREAMING_METHODS.contains(&method) || method.ends_with("Stream")
}

/// Runs a one-to-many call: `head` (already carrying the forwarded metadata) and `body` go to
/// every target through `tls`.
pub(crate) async fn call(
    shared: Arc<Shared>,
    tls: Arc<ClientConfig>,
    mut head: Parts,
    body: Incoming,
    targets: Vec<String>,
) -> Response<ProxyBody> {
    // Replies must come back uncompressed for metadata to be appended to them.
    head.headers.remove("grpc-accept-encoding");
    let streaming = is_streaming(head.uri.path());
    let request_bodies = broadcast(body, targets.len());
    let calls = targets
        .into_iter()
        .zip(request_bodies)
        .map(|(target, body)| {
            let shared = shared.clone();
            let tls = tls.clone();
            let head = copy_head(&head);
            let node = target.clone();
            let open = async move {
                let upstream = shared
                    .upstreams
                    .node(&node, &tls)
                    .await
                    .map_err(|error| error.to_status())?;
                let response = upstream
                    .send(head, body)
                    .await
                    .map_err(|error| error.to_status())?;
                MessageReader::new(response)
            };
            (target, open)
        });
    if streaming {
        interleave(calls.collect())
    } else {
        aggregate(calls.collect()).await
    }
}

/// Unary: waits for every target, then replies with the concatenation of their stamped replies
/// (or failure elements), in target order, as one message.
async fn aggregate<F>(calls: Vec<(String, F)>) -> Response<ProxyBody>
where
    F: Future<Output = Result<MessageReader, Status>>,
{
    let replies = join_all(calls.into_iter().map(|(target, open)| async move {
        let reply = async {
            let mut reader = open.await?;
            let stamp = hostname_field(&target);
            let mut stamped = BytesMut::new();
            while let Some(message) = reader.next().await? {
                stamp_reply(&message, &stamp, &mut stamped)
                    .map_err(|error| Status::internal(format!("reply from {target}: {error}")))?;
            }
            Ok::<_, Status>(stamped)
        };
        let reply = reply.await;
        (target, reply)
    }))
    .await;

    // The message prefix is written once the length is known.
    let mut payload = BytesMut::from(&[0u8; 5][..]);
    for (target, reply) in &replies {
        match reply {
            Ok(stamped) => payload.put_slice(stamped),
            Err(status) => failure_reply(&failure(target, status), &mut payload),
        }
    }
    let length = u32::try_from(payload.len() - 5).unwrap_or(u32::MAX);
    payload[1..5].copy_from_slice(&length.to_be_bytes());
    grpc::ok_response(ProxyBody::Complete {
        data: Some(payload.freeze()),
        trailers: Some(grpc::ok_trailers()),
    })
}

/// Streaming: forwards every target's messages as they arrive, each stamped; a failed target
/// adds one message made only of its failure metadata. Ends once all targets ended, or stops
/// them all when the caller goes away.
fn interleave<F>(calls: Vec<(String, F)>) -> Response<ProxyBody>
where
    F: Future<Output = Result<MessageReader, Status>> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel::<Result<Frame<Bytes>, BodyError>>(CHANNEL_DEPTH);
    let streams = join_all(calls.into_iter().map(|(target, open)| {
        let sender = sender.clone();
        async move {
            let stamp = hostname_field(&target);
            let relayed = async {
                let mut reader = open.await?;
                while let Some(message) = reader.next().await? {
                    let framed = grpc::frame(&[&message, &stamp]);
                    if sender.send(Ok(Frame::data(framed))).await.is_err() {
                        break;
                    }
                }
                Ok::<_, Status>(())
            };
            if let Err(status) = relayed.await {
                let framed = grpc::frame(&[&failure(&target, &status)]);
                let _ = sender.send(Ok(Frame::data(framed))).await;
            }
        }
    }));
    tokio::spawn(async move {
        tokio::select! {
            _ = streams => {
                let _ = sender.send(Ok(Frame::trailers(grpc::ok_trailers()))).await;
            }
            _ = sender.closed() => {}
        }
    });
    grpc::ok_response(ProxyBody::Channel(receiver))
}

fn failure(target: &str, status: &Status) -> Bytes {
    failure_field(
        target,
        status.code() as i32,
        status.message(),
        &grpc::go_error_text(status),
    )
}

/// Copies the caller's request body to `count` bodies, one per target. A target that stops
/// reading its copy no longer receives it; the others continue.
fn broadcast(body: Incoming, count: usize) -> Vec<ProxyBody> {
    let (senders, bodies): (Vec<_>, Vec<_>) = (0..count)
        .map(|_| {
            let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
            (sender, ProxyBody::Channel(receiver))
        })
        .unzip();
    tokio::spawn(async move {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    // Request trailers have no meaning in gRPC; only data is copied.
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    for sender in &senders {
                        let _ = sender.send(Ok(Frame::data(data.clone()))).await;
                    }
                }
                Err(error) => {
                    let reason = error.to_string();
                    for sender in &senders {
                        let _ = sender.send(Err(BodyError::from(reason.clone()))).await;
                    }
                    return;
                }
            }
        }
    });
    bodies
}

fn copy_head(head: &Parts) -> Parts {
    let mut request = Request::new(());
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = head.uri.clone();
    *request.version_mut() = head.version;
    *request.headers_mut() = head.headers.clone();
    request.into_parts().0
}
