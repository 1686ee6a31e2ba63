//! Machine-wide block settings: `ZswapConfig`, `FilesystemScrubConfig`, `FilesystemTrimConfig`.

use super::common::check_scrub_interval;
use crate::GoDuration;
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::Findings;

document_kind! {
    /// `ZswapConfig`: compressed swap cache in memory.
    pub struct ZswapConfig = "ZswapConfig" {
        /// The largest share of memory the pool may use, in percent (20 when unset).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub max_pool_percent: Option<i64>,
        /// Let the kernel shrink the pool under memory pressure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub shrinker_enabled: Option<bool>,
    }
}

document_kind! {
    /// `FilesystemScrubConfig`: how often filesystems are scrubbed.
    pub struct FilesystemScrubConfig = "FilesystemScrubConfig" {
        /// The interval (at least ten seconds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<GoDuration>,
    }
}

document_kind! {
    /// `FilesystemTrimConfig`: how often filesystems are trimmed. Negative intervals are
    /// rejected when decoding.
    pub struct FilesystemTrimConfig = "FilesystemTrimConfig" {
        /// The interval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<GoDuration>,
    }
}

impl CheckDocument for ZswapConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if let Some(percent) = self.max_pool_percent
            && !(0..=100).contains(&percent)
        {
            f.error(
                format!("{kind}.maxPoolPercent"),
                format!("{percent} is not a percentage (0 to 100)"),
            );
        }
    }
}

impl CheckDocument for FilesystemScrubConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        check_scrub_interval(
            format!("{}.interval", Self::KIND),
            self.interval.as_ref(),
            f,
        );
    }
}

impl CheckDocument for FilesystemTrimConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, _: &mut Findings) {}
}
