//! The registries a node's containerd uses, as one view (upstream's
//! `RegistryConfigs.cri.talos.dev/registries`): `machine.registries` of the v1alpha1 document,
//! overridden per registry by the `RegistryMirrorConfig`, `RegistryAuthConfig` and
//! `RegistryTLSConfig` documents of the same name.

use std::collections::BTreeMap;

use base64::Engine as _;
use machineconfig::Config;
use machineconfig::documents::Document;
use machineconfig::v1alpha1::RegistriesConfig;
use pki::PemCertificateAndKey;
use resources::Spec;
use serde::{Serialize, Serializer};

use crate::error::MachinedError;

/// `RegistryConfigs.cri.talos.dev`: mirrors, credentials and TLS settings per registry host.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RegistriesSpec {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub mirrors: BTreeMap<String, Mirror>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub auths: BTreeMap<String, Auth>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tls: BTreeMap<String, Tls>,
}

impl Spec for RegistriesSpec {
    const TYPE: &'static str = "RegistryConfigs.cri.talos.dev";
    const NAMESPACE: &'static str = "cri";
}

/// The resource's one id.
pub const REGISTRIES_ID: &str = "registries";

/// The mirrors of one registry.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mirror {
    pub endpoints: Vec<Endpoint>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_fallback: bool,
}

/// One mirror endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub endpoint: String,
    pub override_path: bool,
}

/// Credentials for one registry.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub identity_token: String,
}

/// TLS settings for one registry host.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_identity: Option<PemCertificateAndKey>,
    /// The CA bundle (PEM), shown base64-encoded as upstream does.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "base64_text"
    )]
    pub ca: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

impl Tls {
    /// Whether these settings change anything for the host.
    pub fn is_effective(&self) -> bool {
        self.ca.is_some() || self.client_identity.is_some() || self.insecure_skip_verify
    }
}

fn base64_text<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match text {
        Some(text) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(text)),
        None => s.serialize_none(),
    }
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value.filter(|v| !v.is_empty()).cloned()
}

impl RegistriesSpec {
    /// The registries of `config` (none without one).
    pub fn from_config(config: Option<&Config>) -> Result<RegistriesSpec, MachinedError> {
        let mut spec = RegistriesSpec::default();
        let Some(config) = config else {
            return Ok(spec);
        };
        if let Some(registries) = config
            .v1alpha1
            .as_ref()
            .and_then(|c| c.machine.as_ref())
            .and_then(|m| m.registries.as_ref())
        {
            spec.add_v1alpha1(registries)?;
        }
        for document in &config.documents {
            match document {
                Document::RegistryMirror(mirror) => {
                    let endpoints = mirror
                        .endpoints
                        .iter()
                        .map(|e| Endpoint {
                            endpoint: e.url.clone(),
                            override_path: e.override_path.unwrap_or(false),
                        })
                        .collect();
                    let mirror_spec = Mirror {
                        endpoints,
                        skip_fallback: mirror.skip_fallback.unwrap_or(false),
                    };
                    spec.mirrors.insert(mirror.name.clone(), mirror_spec);
                }
                Document::RegistryAuth(auth) => {
                    let auth_spec = Auth {
                        username: auth.username.clone().unwrap_or_default(),
                        password: auth.password.clone().unwrap_or_default(),
                        auth: auth.auth.clone().unwrap_or_default(),
                        identity_token: auth.identity_token.clone().unwrap_or_default(),
                    };
                    spec.auths.insert(auth.name.clone(), auth_spec);
                }
                Document::RegistryTls(tls) => {
                    let client_identity =
                        tls.client_identity
                            .as_ref()
                            .map(|identity| PemCertificateAndKey {
                                crt: non_empty(identity.cert.as_ref()),
                                key: non_empty(identity.key.as_ref()),
                            });
                    let tls_spec = Tls {
                        client_identity,
                        ca: non_empty(tls.ca.as_ref()),
                        insecure_skip_verify: tls.insecure_skip_verify.unwrap_or(false),
                    };
                    spec.tls.insert(tls.name.clone(), tls_spec);
                }
                _ => {}
            }
        }
        Ok(spec)
    }

    fn add_v1alpha1(&mut self, registries: &RegistriesConfig) -> Result<(), MachinedError> {
        for (host, mirror) in &registries.mirrors {
            let mirror = mirror.clone().unwrap_or_default();
            let override_path = mirror.override_path.unwrap_or(false);
            let endpoints = mirror
                .endpoints
                .iter()
                .map(|endpoint| Endpoint {
                    endpoint: endpoint.clone(),
                    override_path,
                })
                .collect();
            let mirror_spec = Mirror {
                endpoints,
                skip_fallback: mirror.skip_fallback.unwrap_or(false),
            };
            self.mirrors.insert(host.clone(), mirror_spec);
        }
        for (host, config) in &registries.config {
            let Some(config) = config else { continue };
            if let Some(auth) = &config.auth {
                let auth_spec = Auth {
                    username: auth.username.clone().unwrap_or_default(),
                    password: auth.password.clone().unwrap_or_default(),
                    auth: auth.auth.clone().unwrap_or_default(),
                    identity_token: auth.identity_token.clone().unwrap_or_default(),
                };
                self.auths.insert(host.clone(), auth_spec);
            }
            if let Some(tls) = &config.tls {
                let ca = match non_empty(tls.ca.as_ref()) {
                    None => None,
                    Some(encoded) => Some(decode_ca(host, &encoded)?),
                };
                let tls_spec = Tls {
                    client_identity: tls.client_identity.clone(),
                    ca,
                    insecure_skip_verify: tls.insecure_skip_verify.unwrap_or(false),
                };
                self.tls.insert(host.clone(), tls_spec);
            }
        }
        Ok(())
    }
}

/// `machine.registries.config.<host>.tls.ca`: base64 of PEM text.
fn decode_ca(host: &str, encoded: &str) -> Result<String, MachinedError> {
    let invalid = |reason: String| MachinedError::CriConfig {
        what: format!("machine.registries.config.{host}.tls.ca"),
        reason,
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| invalid(format!("not base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| invalid("not PEM text".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_override_the_v1alpha1_registries_per_host() {
        let ca = base64::engine::general_purpose::STANDARD.encode("PEM CA");
        let config = Config::from_yaml(&format!(
            "version: v1alpha1\nmachine:\n  type: worker\n  registries:\n    mirrors:\n      \
             docker.io:\n        endpoints: [https://old.example]\n        overridePath: true\n      \
             ghcr.io:\n        endpoints: [https://ghcr.example]\n    config:\n      \
             ghcr.example:\n        tls:\n          ca: {ca}\n        auth:\n          \
             username: u\n          password: p\n---\n\
             apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: docker.io\n\
             endpoints: [{{url: 'https://new.example'}}]\nskipFallback: true\n"
        ))
        .unwrap();
        let spec = RegistriesSpec::from_config(Some(&config)).unwrap();
        assert_eq!(
            spec.mirrors["docker.io"],
            Mirror {
                endpoints: vec![Endpoint {
                    endpoint: "https://new.example".into(),
                    override_path: false
                }],
                skip_fallback: true
            }
        );
        assert_eq!(
            spec.mirrors["ghcr.io"].endpoints[0].endpoint,
            "https://ghcr.example"
        );
        assert_eq!(spec.tls["ghcr.example"].ca.as_deref(), Some("PEM CA"));
        assert_eq!(spec.auths["ghcr.example"].username, "u");
    }
}
