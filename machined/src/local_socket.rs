//! gRPC clients of the node's own daemons (timed, networkd) over their Unix sockets.

use std::path::Path;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

/// A channel to the gRPC server on `socket`, connected on first use and reconnected after the
/// daemon restarts.
pub fn channel(socket: &Path) -> Channel {
    let socket = socket.to_path_buf();
    // The URI is required by tonic and ignored by the connector.
    Endpoint::from_static("http://localhost").connect_with_connector_lazy(tower::service_fn(
        move |_| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        },
    ))
}
