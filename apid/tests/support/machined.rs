//! A machined stand-in: a real tonic gRPC server on a Unix socket answering `Version`,
//! `Hostname`, `Reboot` and `Logs` of `machine.MachineService` (everything else is
//! Unimplemented), recording the metadata of every call.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use proto::common::Data;
use proto::machine::{
    Hostname, HostnameResponse, LogsRequest, Reboot, RebootRequest, RebootResponse, Version,
    VersionInfo, VersionResponse,
};
use tokio::net::UnixListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
use tonic::metadata::MetadataMap;
use tonic::server::Grpc;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type LogStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<Data, Status>> + Send>>;

/// How long `Reboot` takes to answer.
pub const REBOOT_REPLY_DELAY: Duration = Duration::from_millis(300);

/// Lines `Logs` sends before following.
pub const LOG_LINES: usize = 3;

/// A running stand-in.
pub struct Machined {
    pub socket: PathBuf,
    seen: Arc<Mutex<Vec<(String, MetadataMap)>>>,
    task: JoinHandle<()>,
}

impl Machined {
    /// Serves on `socket`; `name` is its version tag, hostname and log line prefix.
    pub fn start(socket: &Path, name: &str) -> Self {
        let listener = UnixListener::bind(socket).expect("machined socket");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let service = StandIn {
            name: name.into(),
            seen: seen.clone(),
        };
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .serve_with_incoming(service, UnixListenerStream::new(listener))
                .await
                .expect("machined stand-in serves");
        });
        Machined {
            socket: socket.to_owned(),
            seen,
            task,
        }
    }

    /// The metadata of every call so far, with its method path.
    pub fn calls(&self) -> Vec<(String, MetadataMap)> {
        self.seen.lock().expect("lock").clone()
    }

    /// Values of `key` in the last call's metadata.
    pub fn last_values(&self, key: &str) -> Vec<String> {
        let calls = self.calls();
        let (_, metadata) = calls.last().expect("a call reached machined");
        metadata
            .get_all(key)
            .iter()
            .map(|v| v.to_str().expect("text").to_owned())
            .collect()
    }
}

impl Drop for Machined {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct StandIn {
    name: Arc<str>,
    seen: Arc<Mutex<Vec<(String, MetadataMap)>>>,
}

impl tower::Service<http::Request<tonic::body::Body>> for StandIn {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let name = self.name.clone();
        let path = request.uri().path().to_owned();
        self.seen.lock().expect("lock").push((
            path.clone(),
            MetadataMap::from_headers(request.headers().clone()),
        ));
        Box::pin(async move {
            let response = match path.as_str() {
                "/machine.MachineService/Version" => {
                    let reply = version(&name);
                    let service = tower::service_fn(move |_: Request<()>| {
                        let reply = reply.clone();
                        async move { Ok::<_, Status>(Response::new(reply)) }
                    });
                    Grpc::new(ProstCodec::<VersionResponse, ()>::default())
                        .unary(service, request)
                        .await
                }
                "/machine.MachineService/Hostname" => {
                    let reply = HostnameResponse {
                        messages: vec![Hostname {
                            metadata: None,
                            hostname: name.to_string(),
                        }],
                    };
                    let service = tower::service_fn(move |_: Request<()>| {
                        let reply = reply.clone();
                        async move { Ok::<_, Status>(Response::new(reply)) }
                    });
                    Grpc::new(ProstCodec::<HostnameResponse, ()>::default())
                        .unary(service, request)
                        .await
                }
                "/machine.MachineService/Reboot" => {
                    // machined answers Reboot while the node already stops: slowly.
                    let service = tower::service_fn(|_: Request<RebootRequest>| async {
                        tokio::time::sleep(REBOOT_REPLY_DELAY).await;
                        Ok::<_, Status>(Response::new(RebootResponse {
                            messages: vec![Reboot {
                                metadata: None,
                                actor_id: "reboot-actor".into(),
                            }],
                        }))
                    });
                    Grpc::new(ProstCodec::<RebootResponse, RebootRequest>::default())
                        .unary(service, request)
                        .await
                }
                "/machine.MachineService/Logs" => {
                    let service = tower::service_fn(move |request: Request<LogsRequest>| {
                        let stream = logs(&name, request.get_ref().follow);
                        async move { Ok::<_, Status>(Response::new(stream)) }
                    });
                    Grpc::new(ProstCodec::<Data, LogsRequest>::default())
                        .server_streaming(service, request)
                        .await
                }
                other => Status::unimplemented(format!("{other} is not implemented")).into_http(),
            };
            Ok(response)
        })
    }
}

fn version(name: &str) -> VersionResponse {
    VersionResponse {
        messages: vec![Version {
            metadata: None,
            version: Some(VersionInfo {
                tag: name.to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }],
    }
}

/// `LOG_LINES` lines, then (when following) one more line every 50 ms until the caller goes.
fn logs(name: &str, follow: bool) -> LogStream {
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    let name = name.to_owned();
    tokio::spawn(async move {
        for index in 0.. {
            if index >= LOG_LINES {
                if !follow {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let line = Data {
                metadata: None,
                bytes: format!("{name} line {index}\n").into_bytes(),
            };
            if sender.send(Ok(line)).await.is_err() {
                break;
            }
        }
    });
    Box::pin(ReceiverStream::new(receiver))
}
