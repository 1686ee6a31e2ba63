//! The crate's one error type, and the one place where gRPC failures are put into words: as
//! Go's gRPC words them (`rpc error: code = Unavailable desc = …`), because scripts written for
//! upstream talosctl match that text.

use std::time::Duration;

/// Why the client could not be set up, could not reach apid, or why a node or call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiClientError {
    /// An endpoint string is not `host`, `host:port` or a URL.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// Neither the context nor the command line names an endpoint.
    #[error(
        "no endpoints to connect to: set `endpoints` in the talosconfig context or use `--endpoints`"
    )]
    NoEndpoints,
    /// The talosconfig context could not give its credentials.
    #[error(transparent)]
    Talosconfig(#[from] talosconfig::TalosconfigError),
    /// A credential (`ca`, `crt` or `key`) is not usable for TLS.
    #[error("client credentials: {field}: {reason}")]
    InvalidCredential { field: &'static str, reason: String },
    /// A `--cert-fingerprint` value is not a SHA-256 fingerprint.
    #[error("invalid certificate fingerprint {fingerprint:?}: {reason}")]
    InvalidFingerprint { fingerprint: String, reason: String },
    /// A server certificate could not be read.
    #[error("reading the server certificate: {reason}")]
    InvalidCertificate { reason: String },
    /// rustls refused the TLS client configuration.
    #[error("building the TLS client configuration: {0}")]
    TlsConfig(#[source] rustls::Error),
    /// One step of dialling an endpoint failed.
    #[error("{stage} {endpoint}: {source}")]
    Dial {
        endpoint: String,
        stage: &'static str,
        source: std::io::Error,
    },
    /// In pinned insecure mode, the server's key is not one of the accepted fingerprints.
    #[error("TLS handshake with {endpoint}: {reason}")]
    NotPinned { endpoint: String, reason: String },
    /// Dialling an endpoint (TCP and TLS handshake) took longer than allowed.
    #[error("connecting to {endpoint}: no TLS handshake within {timeout:?}")]
    DialTimeout { endpoint: String, timeout: Duration },
    /// No endpoint could be connected; one entry per endpoint tried: `(endpoint, reason)`.
    /// Worded as grpc-go words a failed dial, since upstream talosctl prints that.
    #[error("{}", describe_failures(.failures))]
    Connect { failures: Vec<(String, String)> },
    /// A node name cannot be sent as gRPC metadata.
    #[error("invalid node {node:?}: {reason}")]
    InvalidNode { node: String, reason: String },
    /// The call failed as a whole, with this gRPC status.
    #[error("{}", status_text(.0.code(), .0.message()))]
    Rpc(#[from] tonic::Status),
    /// One node of the reply reported a failure (`metadata.error`).
    #[error("error from node {node}: {message}")]
    Node { node: String, message: String },
}

fn describe_failures(failures: &[(String, String)]) -> String {
    let reasons: Vec<&str> = failures.iter().map(|(_, reason)| reason.as_str()).collect();
    let dialing = format!("transport: Error while dialing: {}", reasons.join("; "));
    status_text(
        tonic::Code::Unavailable,
        &format!("connection error: desc = {dialing:?}"),
    )
}

/// A gRPC status as Go's gRPC prints it (`status.Error(…).Error()`).
pub(crate) fn status_text(code: tonic::Code, message: &str) -> String {
    format!("rpc error: code = {} desc = {message}", go_code_name(code))
}

/// Go's name of a gRPC code (`codes.Code.String()`); tonic's differ for two of them.
fn go_code_name(code: tonic::Code) -> String {
    match code {
        tonic::Code::Ok => "OK".to_owned(),
        tonic::Code::Cancelled => "Canceled".to_owned(),
        other => format!("{other:?}"),
    }
}

/// An I/O error as Go's net package words it: the lower-case system message, without Rust's
/// ` (os error N)`.
pub(crate) fn go_io_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The messages of an error and all its sources, joined with `: `, leaving out a message that
/// merely repeats the one before it.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_errors_read_like_upstream() {
        let error = ApiClientError::from(tonic::Status::permission_denied("not authorized"));
        assert_eq!(
            error.to_string(),
            "rpc error: code = PermissionDenied desc = not authorized"
        );
    }

    #[test]
    fn go_code_names_differ_from_tonics_for_ok_and_canceled() {
        assert_eq!(
            status_text(tonic::Code::Cancelled, "stop"),
            "rpc error: code = Canceled desc = stop"
        );
        assert_eq!(
            status_text(tonic::Code::Ok, ""),
            "rpc error: code = OK desc = "
        );
        assert_eq!(
            status_text(tonic::Code::FailedPrecondition, "x"),
            "rpc error: code = FailedPrecondition desc = x"
        );
    }

    #[test]
    fn connect_failures_read_as_grpc_go_dial_errors() {
        let one = ApiClientError::Connect {
            failures: vec![(
                "a:50000".into(),
                "dial tcp a:50000: connect: connection refused".into(),
            )],
        };
        assert_eq!(
            one.to_string(),
            "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error \
             while dialing: dial tcp a:50000: connect: connection refused\""
        );
        let two = ApiClientError::Connect {
            failures: vec![
                ("a:50000".into(), "refused".into()),
                ("b:50000".into(), "timeout".into()),
            ],
        };
        assert!(
            two.to_string().ends_with("dialing: refused; timeout\""),
            "{two}"
        );
    }

    #[test]
    fn io_errors_read_as_gos() {
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(go_io_text(&refused), "connection refused");
        assert_eq!(go_io_text(&std::io::Error::other("Plain")), "plain");
    }

    #[test]
    fn error_chain_joins_sources_without_repeats() {
        let inner = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let outer = ApiClientError::Dial {
            endpoint: "127.0.0.1:50000".into(),
            stage: "TLS handshake with",
            source: inner,
        };
        assert_eq!(
            error_chain(&outer),
            "TLS handshake with 127.0.0.1:50000: invalid peer certificate: UnknownIssuer"
        );
    }
}
