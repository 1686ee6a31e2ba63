//! Probe kinds: `TCPProbeConfig`, `HTTPProbeConfig`.

use super::common::{named, require_name};
use crate::GoDuration;
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

document_kind! {
    /// `TCPProbeConfig`: a probe that connects to a TCP endpoint.
    pub struct TcpProbeConfig = "TCPProbeConfig", named {
        /// Time between probes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<GoDuration>,
        /// Failures in a row before the probe counts as failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub failure_threshold: Option<i64>,
        /// `host:port` to connect to.
        #[serde(default)]
        pub endpoint: String,
        /// Connection timeout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<GoDuration>,
    }
}

document_kind! {
    /// `HTTPProbeConfig`: a probe that requests an HTTP(S) URL.
    pub struct HttpProbeConfig = "HTTPProbeConfig", named {
        /// Time between probes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub interval: Option<GoDuration>,
        /// Failures in a row before the probe counts as failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub failure_threshold: Option<i64>,
        /// The URL to request.
        #[serde(default)]
        pub url: String,
        /// Request timeout.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<GoDuration>,
    }
}

fn check_failure_threshold(path: &str, threshold: Option<i64>, f: &mut Findings) {
    if let Some(threshold) = threshold
        && threshold < 0
    {
        f.error(
            format!("{path}.failureThreshold"),
            format!("failureThreshold must not be negative (got {threshold})"),
        );
    }
}

impl CheckDocument for TcpProbeConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        require_name(Self::KIND, &self.name, f);
        let path = named(Self::KIND, &self.name);
        if self.endpoint.is_empty() {
            f.error(format!("{path}.endpoint"), "endpoint is required");
        }
        check_failure_threshold(&path, self.failure_threshold, f);
    }
}

impl CheckDocument for HttpProbeConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        require_name(Self::KIND, &self.name, f);
        let path = named(Self::KIND, &self.name);
        if self.url.is_empty() {
            f.error(format!("{path}.url"), "url is required");
        } else {
            f.check(format!("{path}.url"), formats::http_url(&self.url));
        }
        check_failure_threshold(&path, self.failure_threshold, f);
    }
}
