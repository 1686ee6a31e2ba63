//! Manifests applied to the cluster at bootstrap: `KubeExternalManifestConfig`,
//! `KubeInlineManifestConfig`.

use std::collections::BTreeMap;

use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::{Findings, formats};

document_kind! {
    /// `KubeExternalManifestConfig`: a manifest fetched from a URL.
    pub struct KubeExternalManifestConfig = "KubeExternalManifestConfig", named {
        /// HTTP headers sent when fetching the manifest.
        #[serde(default, deserialize_with = "crate::v1alpha1::string_map::deserialize", skip_serializing_if = "BTreeMap::is_empty")]
        pub headers: BTreeMap<String, String>,
        /// The manifest URL (http or https; required).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
    }
}

document_kind! {
    /// `KubeInlineManifestConfig`: a manifest given in the document.
    pub struct KubeInlineManifestConfig = "KubeInlineManifestConfig", named {
        /// The manifest YAML (one or more Kubernetes objects).
        #[serde(default)]
        pub manifest: String,
    }
}

impl CheckDocument for KubeExternalManifestConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let path = format!("{} {:?}", Self::KIND, self.name);
        check_manifest_name(&path, &self.name, f);
        match self.url.as_deref() {
            None | Some("") => f.error(format!("{path}.url"), "the manifest URL is required"),
            Some(url) => f.check(format!("{path}.url"), formats::http_url(url)),
        }
    }
}

impl CheckDocument for KubeInlineManifestConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, f: &mut Findings) {
        let path = format!("{} {:?}", Self::KIND, self.name);
        check_manifest_name(&path, &self.name, f);
    }
}

/// A manifest name: required, a DNS subdomain.
fn check_manifest_name(path: &str, name: &str, f: &mut Findings) {
    if name.is_empty() {
        f.error(format!("{path}.name"), "the manifest name is required");
    } else {
        f.check(format!("{path}.name"), formats::dns_name(name));
    }
}
