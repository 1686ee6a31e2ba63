//! `SideroLinkConfig`: the SideroLink connection to Omni.

use super::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

document_kind! {
    /// `SideroLinkConfig`: the SideroLink API to connect to.
    pub struct SideroLinkConfig = "SideroLinkConfig" {
        /// API URL (`https://` or `grpc://`, no path; the query may carry the join token).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub api_url: Option<String>,
        /// Unique token of the machine.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub unique_token: Option<String>,
    }
}

impl CheckDocument for SideroLinkConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let path = format!("{}.apiUrl", Self::KIND);
        let Some(text) = self.api_url.as_deref().filter(|u| !u.is_empty()) else {
            f.error(path, "apiUrl is required");
            return;
        };
        let url = match formats::url(text) {
            Ok(url) => url,
            Err(message) => return f.error(path, message),
        };
        if !matches!(url.scheme(), "https" | "grpc") {
            f.error(
                path.clone(),
                format!("scheme {:?} is not https or grpc", url.scheme()),
            );
        }
        if !matches!(url.path(), "" | "/") {
            f.error(path, "the URL must not have a path");
        }
    }
}
