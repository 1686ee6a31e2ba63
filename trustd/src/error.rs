//! trustd's one error type, and its mapping to gRPC status codes.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What went wrong: starting up, reading the TLS directory, or a request.
#[derive(Debug, thiserror::Error)]
pub enum TrustdError {
    /// A file of the TLS directory could not be read.
    #[error("reading {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A certificate or key of the TLS directory is unusable.
    #[error("{}: {source}", path.display())]
    Pki {
        path: PathBuf,
        source: pki::PkiError,
    },
    /// The serving certificate and key do not make a TLS configuration.
    #[error("TLS configuration from {}: {source}", dir.display())]
    Tls { dir: PathBuf, source: rustls::Error },
    /// The machine token file is empty.
    #[error("{}: the machine token is empty", path.display())]
    EmptyToken { path: PathBuf },
    /// The listening socket could not be opened.
    #[error("listening on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    /// A signal handler could not be installed.
    #[error("installing the {name} handler: {source}")]
    Signal {
        name: &'static str,
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("serving: {0}")]
    Serve(tonic::transport::Error),
    /// A request came without the `token` metadata.
    #[error("missing token")]
    MissingToken,
    /// A request's token is not the machine token.
    #[error("invalid token")]
    InvalidToken,
    /// The request's CSR cannot be read.
    #[error("{0}")]
    MalformedCsr(pki::PkiError),
    /// The CSR asks for something a node's serving certificate may not have.
    #[error("certificate request refused: {0}")]
    Refused(String),
    /// Signing failed on our side.
    #[error("signing the certificate: {0}")]
    Signing(pki::PkiError),
}

impl From<TrustdError> for tonic::Status {
    fn from(error: TrustdError) -> Self {
        let message = error.to_string();
        match error {
            TrustdError::MissingToken | TrustdError::InvalidToken => {
                tonic::Status::unauthenticated(message)
            }
            TrustdError::MalformedCsr(_) => tonic::Status::invalid_argument(message),
            TrustdError::Refused(_) => tonic::Status::permission_denied(message),
            TrustdError::ReadFile { .. }
            | TrustdError::Pki { .. }
            | TrustdError::Tls { .. }
            | TrustdError::EmptyToken { .. }
            | TrustdError::Bind { .. }
            | TrustdError::Signal { .. }
            | TrustdError::Serve(_)
            | TrustdError::Signing(_) => tonic::Status::internal(message),
        }
    }
}
