use thiserror::Error;

/// What went wrong writing or reading an installer.
#[derive(Debug, Error)]
pub enum InstallerError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("not an installer image: {0}")]
    Invalid(String),
    #[error("installer image: {what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("installer image: blob {name} does not match its digest (sha256 {actual})")]
    DigestMismatch { name: String, actual: String },
}

impl InstallerError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| InstallerError::Io { context, source }
    }
}
