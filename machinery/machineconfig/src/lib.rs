//! The Talos machine configuration.
//!
//! (crate docs to be written)

mod error;
pub mod patch;

pub use error::ConfigError;
