//! The one error type of apid, and its mapping to gRPC statuses.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;
use tonic::{Code, Status};

/// Everything that can go wrong in apid: start-up and TLS reloads (files, certificates, the
/// listener) and single calls (authorization, routing, upstream connections).
#[derive(Debug, Error)]
pub enum ApidError {
    /// A file of the TLS directory could not be read.
    #[error("reading {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A certificate file is not valid PEM.
    #[error("{path}: not valid PEM certificates: {source}")]
    CertificatePem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate file holds no `CERTIFICATE` block.
    #[error("{path}: holds no certificate")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A private key file could not be loaded.
    #[error("{path}: {source}")]
    PrivateKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: pki::PkiError,
    },
    /// Only one half of the forwarding client certificate pair exists.
    #[error(
        "{present} exists but {missing} does not: the forwarding client certificate needs both"
    )]
    HalfClientPair {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// rustls refused the certificates or keys for one of apid's TLS roles.
    #[error("TLS {role} configuration: {source}")]
    Tls {
        /// `server`, `client-certificate verifier` or `forwarding client`.
        role: &'static str,
        /// Why.
        source: rustls::Error,
    },
    /// The accepted CA bundle could not be turned into a client certificate verifier.
    #[error("client certificate verifier from {path}: {source}")]
    ClientVerifier {
        /// The CA bundle.
        path: PathBuf,
        /// Why.
        source: rustls::server::VerifierBuilderError,
    },
    /// The listening socket could not be opened.
    #[error("listening on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A signal handler could not be installed.
    #[error("installing the {signal} handler: {source}")]
    Signal {
        /// The signal's name.
        signal: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The method table refused the caller.
    #[error("{method}: {source}", method = source.method)]
    NotAuthorized {
        /// The refusal, naming the method.
        #[from]
        source: authz::Denied,
    },
    /// The `node` metadata had several values.
    #[error("node metadata must be single-valued (got {count} values)")]
    NodeNotSingleValued {
        /// How many values it had.
        count: usize,
    },
    /// `nodes` metadata on a method outside the classic services.
    #[error("{method}: one-2-many proxying is not supported")]
    OneToManyUnsupported {
        /// The method.
        method: String,
    },
    /// A call asked to be forwarded but this node has no client certificate.
    #[error("no request forwarding (this node has no client certificate; target {target})")]
    NoForwarding {
        /// The first requested target.
        target: String,
    },
    /// A routing target is empty or carries a port.
    #[error("invalid target {target:?}: must be a host name or IP address without port")]
    BadTarget {
        /// The target as sent.
        target: String,
    },
    /// The upstream (machined's socket or another node) could not be reached.
    #[error("connection error: dialing {upstream}: {source}")]
    Connect {
        /// `machined` or `<host>:<port>`.
        upstream: String,
        /// Why.
        source: io::Error,
    },
    /// The HTTP/2 exchange with the upstream failed.
    #[error("connection error: {upstream}: {source}")]
    Upstream {
        /// `machined` or `<host>:<port>`.
        upstream: String,
        /// Why.
        source: hyper::Error,
    },
    /// `nodes` named more targets than a call may fan out to.
    #[error("{count} nodes named; a call fans out to at most {max}")]
    TooManyTargets {
        /// Distinct targets named.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Connections to this many other nodes are open already.
    #[error("connections to {max} other nodes are open already")]
    TooManyUpstreams {
        /// The limit.
        max: usize,
    },
}

impl ApidError {
    /// The gRPC status a caller sees for this error. This is the only place errors become
    /// statuses.
    pub fn to_status(&self) -> Status {
        match self {
            ApidError::NotAuthorized { .. } => Status::permission_denied("not authorized"),
            ApidError::NodeNotSingleValued { .. } => Status::invalid_argument(self.to_string()),
            ApidError::OneToManyUnsupported { .. } => {
                Status::invalid_argument("one-2-many proxying is not supported")
            }
            ApidError::NoForwarding { .. } => Status::permission_denied("no request forwarding"),
            ApidError::BadTarget { .. } => Status::internal(self.to_string()),
            ApidError::TooManyTargets { .. } => Status::invalid_argument(self.to_string()),
            ApidError::TooManyUpstreams { .. } => Status::resource_exhausted(self.to_string()),
            // One text whatever went wrong (refused, timed out, reset, TLS): a caller learns
            // that the target did not answer, not why; the log has the reason.
            ApidError::Connect { upstream, .. } | ApidError::Upstream { upstream, .. } => {
                Status::unavailable(format!("connection error: {upstream} is unavailable"))
            }
            ApidError::ReadFile { .. }
            | ApidError::CertificatePem { .. }
            | ApidError::NoCertificate { .. }
            | ApidError::PrivateKey { .. }
            | ApidError::HalfClientPair { .. }
            | ApidError::Tls { .. }
            | ApidError::ClientVerifier { .. }
            | ApidError::Listen { .. }
            | ApidError::Signal { .. } => Status::new(Code::Internal, self.to_string()),
        }
    }
}
