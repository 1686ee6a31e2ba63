//! The one HTTP body type apid sends, both to callers and to upstreams.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::mpsc;

/// Errors a body can end with.
pub(crate) type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A body apid sends.
#[derive(Debug, Default)]
pub(crate) enum ProxyBody {
    /// Nothing (trailers-only error responses).
    #[default]
    Empty,
    /// Passed through unchanged from the other side (one-to-one proxying).
    Relayed(Incoming),
    /// One data frame then trailers (the aggregated reply of a one-to-many unary call).
    Complete {
        data: Option<Bytes>,
        trailers: Option<HeaderMap>,
    },
    /// Frames produced by a task (one-to-many streams, and the request copies sent to each
    /// target). The body ends when every sender is gone.
    Channel(mpsc::Receiver<Result<Frame<Bytes>, BodyError>>),
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Relayed(incoming) => Pin::new(incoming)
                .poll_frame(cx)
                .map(|frame| frame.map(|result| result.map_err(BodyError::from))),
            ProxyBody::Complete { data, trailers } => {
                if let Some(data) = data.take() {
                    Poll::Ready(Some(Ok(Frame::data(data))))
                } else {
                    Poll::Ready(
                        trailers
                            .take()
                            .map(|trailers| Ok(Frame::trailers(trailers))),
                    )
                }
            }
            ProxyBody::Channel(receiver) => receiver.poll_recv(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Relayed(incoming) => incoming.is_end_stream(),
            ProxyBody::Complete { data, trailers } => data.is_none() && trailers.is_none(),
            ProxyBody::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Relayed(incoming) => incoming.size_hint(),
            ProxyBody::Complete { .. } | ProxyBody::Channel(_) => SizeHint::default(),
        }
    }
}
