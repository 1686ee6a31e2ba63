//! The one error type of this crate.

/// Everything that can go wrong loading, validating or patching a machine configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // --- decoding and validation (owned by the config-types work) ---

    // --- patches (owned by the patch work; add variants below this line) ---
}
