//! The little of gRPC-over-HTTP/2 apid needs beyond forwarding streams untouched: message
//! framing (for one-to-many calls), statuses in headers and trailers.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tonic::{Code, Status};

use crate::body::ProxyBody;

/// Largest message apid accepts when it has to look at message boundaries (32 MiB, upstream's
/// `GRPCMaxMessageSize`).
pub(crate) const MAX_MESSAGE_SIZE: usize = 32 << 20;
/// Length of the gRPC message prefix: compressed flag and big-endian length.
const PREFIX_LEN: usize = 5;

pub(crate) const GRPC_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/grpc");

/// The response head of a successful gRPC call with a body to follow.
pub(crate) fn ok_response(body: ProxyBody) -> Response<ProxyBody> {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, GRPC_CONTENT_TYPE);
    response
}

/// A trailers-only response carrying `status`.
pub(crate) fn status_response(status: Status) -> Response<ProxyBody> {
    status.into_http()
}

/// Trailers ending a successful call.
pub(crate) fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers
}

/// `message` with its gRPC length prefix (uncompressed).
pub(crate) fn frame(parts: &[&[u8]]) -> Bytes {
    let length: usize = parts.iter().map(|part| part.len()).sum();
    let mut framed = BytesMut::with_capacity(PREFIX_LEN + length);
    framed.put_u8(0);
    framed.put_u32(u32::try_from(length).unwrap_or(u32::MAX));
    for part in parts {
        framed.put_slice(part);
    }
    framed.freeze()
}

/// How Go's gRPC renders an error (`status.Error(...).Error()`), which is what clients find in
/// `metadata.error`.
pub(crate) fn go_error_text(status: &Status) -> String {
    format!(
        "rpc error: code = {} desc = {}",
        go_code_name(status.code()),
        status.message()
    )
}

fn go_code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The status implied by an HTTP status other than 200 (gRPC's HTTP-to-gRPC mapping).
fn http_status(status: StatusCode) -> Status {
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(
        code,
        format!("unexpected HTTP status code received from server: {status}"),
    )
}

/// Reads the messages of an upstream gRPC response.
#[derive(Debug)]
pub(crate) struct MessageReader {
    /// `None` once the call has ended successfully.
    body: Option<Incoming>,
    buffer: BytesMut,
}

impl MessageReader {
    /// Starts reading a response; fails with the call's status if its head already ended it
    /// unsuccessfully (an HTTP error or a trailers-only error).
    pub fn new(response: Response<Incoming>) -> Result<Self, Status> {
        let (head, body) = response.into_parts();
        if head.status != StatusCode::OK {
            return Err(http_status(head.status));
        }
        let body = match Status::from_header_map(&head.headers) {
            Some(status) if status.code() != Code::Ok => return Err(status),
            Some(_) => None,
            None => Some(body),
        };
        Ok(MessageReader {
            body,
            buffer: BytesMut::new(),
        })
    }

    /// The next message; `None` once the call ended with status OK; the call's status if it
    /// failed.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Status> {
        loop {
            if let Some(message) = self.split_message()? {
                return Ok(Some(message));
            }
            let Some(body) = self.body.as_mut() else {
                return Ok(None);
            };
            match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.buffer.extend_from_slice(&data),
                    Err(frame) => {
                        let trailers = frame.into_trailers().unwrap_or_default();
                        return self.finish(Status::from_header_map(&trailers));
                    }
                },
                Some(Err(error)) => {
                    return Err(Status::unavailable(format!("connection error: {error}")));
                }
                None => return self.finish(None),
            }
        }
    }

    fn finish(&mut self, status: Option<Status>) -> Result<Option<Bytes>, Status> {
        self.body = None;
        if !self.buffer.is_empty() {
            return Err(Status::internal("stream ended inside a message"));
        }
        match status {
            Some(status) if status.code() == Code::Ok => Ok(None),
            Some(status) => Err(status),
            None => Err(Status::internal(
                "server closed the stream without sending trailers",
            )),
        }
    }

    fn split_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buffer.len() < PREFIX_LEN {
            return Ok(None);
        }
        let compressed = self.buffer[0] != 0;
        let length = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if length > MAX_MESSAGE_SIZE {
            return Err(Status::resource_exhausted(format!(
                "received message larger than max ({length} vs. {MAX_MESSAGE_SIZE})"
            )));
        }
        if self.buffer.len() < PREFIX_LEN + length {
            self.buffer.reserve(PREFIX_LEN + length - self.buffer.len());
            return Ok(None);
        }
        if compressed {
            return Err(Status::internal(
                "compressed messages cannot be aggregated from several nodes",
            ));
        }
        self.buffer.advance(PREFIX_LEN);
        Ok(Some(self.buffer.split_to(length).freeze()))
    }
}
