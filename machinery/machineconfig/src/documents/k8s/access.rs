//! Kinds that shape who may do what through the Kubernetes API: `KubeAdmissionControlConfig`,
//! `KubeAuditPolicyConfig`, `KubeAuthenticationConfig`, `KubeAuthorizerConfig`.

use serde::{Deserialize, Serialize};
use serde_norway::{Mapping, Value};

use super::{conflict, v1alpha1_cluster};
use crate::documents::{CheckDocument, DocumentKind, document_kind};
use crate::v1alpha1::V1Alpha1Config;
use crate::validate::Findings;

document_kind! {
    /// `KubeAdmissionControlConfig`: the configuration of one admission plugin, named after
    /// the plugin (`PodSecurity`, …).
    pub struct KubeAdmissionControlConfig = "KubeAdmissionControlConfig", named {
        /// The plugin's configuration object.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub configuration: Mapping,
    }
}

document_kind! {
    /// `KubeAuditPolicyConfig`: the API server's audit `Policy`.
    pub struct KubeAuditPolicyConfig = "KubeAuditPolicyConfig" {
        /// The `Policy` object.
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub configuration: Mapping,
    }
}

document_kind! {
    /// `KubeAuthenticationConfig`: the API server's structured authentication configuration.
    pub struct KubeAuthenticationConfig = "KubeAuthenticationConfig" {
        /// The `AuthenticationConfiguration` fields (`jwt`, `anonymous`, …).
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub configuration: Mapping,
    }
}

/// The kind of an API server authorizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthorizerType {
    /// The Node authorizer (kubelets).
    Node,
    /// Role-based access control.
    #[serde(rename = "RBAC")]
    Rbac,
    /// An external webhook; needs `webhook`.
    Webhook,
}

document_kind! {
    /// `KubeAuthorizerConfig`: one API server authorizer; authorizers run in document order.
    pub struct KubeAuthorizerConfig = "KubeAuthorizerConfig", named {
        /// Authorizer type (required).
        #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
        pub authorizer_type: Option<AuthorizerType>,
        /// Webhook settings (Webhook authorizers only).
        #[serde(default, deserialize_with = "crate::v1alpha1::nullable::deserialize", skip_serializing_if = "Mapping::is_empty")]
        pub webhook: Mapping,
    }
}

impl CheckDocument for KubeAdmissionControlConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        if self.name.is_empty() {
            f.error(
                format!("{kind} \"\".name"),
                "the admission plugin name is required",
            );
        }
        if has_admission_plugins(v1alpha1) {
            conflict(f, kind, "cluster.apiServer.admissionControl");
        }
    }
}

impl CheckDocument for KubeAuditPolicyConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let audit_policy = v1alpha1_cluster(v1alpha1)
            .and_then(|c| c.api_server.as_ref())
            .and_then(|a| a.audit_policy.as_ref());
        let set = match audit_policy {
            Some(Value::Mapping(fields)) => !fields.is_empty(),
            Some(Value::Null) | None => false,
            Some(_) => true,
        };
        if set {
            conflict(f, Self::KIND, "cluster.apiServer.auditPolicy");
        }
    }
}

impl CheckDocument for KubeAuthenticationConfig {
    fn check(&self, _: Option<&V1Alpha1Config>, _: &mut Findings) {}
}

impl CheckDocument for KubeAuthorizerConfig {
    fn check(&self, v1alpha1: Option<&V1Alpha1Config>, f: &mut Findings) {
        let kind = Self::KIND;
        let path = format!("{kind} {:?}", self.name);
        if self.name.is_empty() {
            f.error(format!("{path}.name"), "the authorizer name is required");
        }
        match self.authorizer_type {
            None => f.error(
                format!("{path}.type"),
                "the authorizer type is required (Node, RBAC or Webhook)",
            ),
            Some(AuthorizerType::Webhook) if self.webhook.is_empty() => f.error(
                format!("{path}.webhook"),
                "a Webhook authorizer needs its webhook settings",
            ),
            Some(AuthorizerType::Node | AuthorizerType::Rbac) if !self.webhook.is_empty() => f
                .warn(
                    format!("{path}.webhook"),
                    "webhook settings are ignored for authorizers other than Webhook",
                ),
            Some(_) => {}
        }
        // Upstream checks this kind against the v1alpha1 admission plugins (not the
        // authorizers); kept as is so that the same configs are accepted.
        if has_admission_plugins(v1alpha1) {
            conflict(f, kind, "cluster.apiServer.admissionControl");
        }
    }
}

/// Whether the v1alpha1 document configures admission plugins.
fn has_admission_plugins(v1alpha1: Option<&V1Alpha1Config>) -> bool {
    v1alpha1_cluster(v1alpha1)
        .and_then(|c| c.api_server.as_ref())
        .is_some_and(|a| !a.admission_control.is_empty())
}
