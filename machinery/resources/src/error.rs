//! The one error type of this crate.

/// Why a state operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The resource belongs to another owner.
    #[error("resource {namespace}/{resource_type}/{id} is owned by {owner:?}, not {writer:?}")]
    NotOwner {
        namespace: String,
        resource_type: String,
        id: String,
        owner: String,
        writer: String,
    },
    /// A controller wrote a kind it did not declare as an output.
    #[error("controller {controller} does not declare {namespace}/{resource_type} as an output")]
    UndeclaredOutput {
        controller: String,
        namespace: String,
        resource_type: String,
    },
    /// A spec could not be written as YAML.
    #[error("encoding the spec of {resource_type}: {reason}")]
    Encode {
        resource_type: String,
        reason: String,
    },
}
