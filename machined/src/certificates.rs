//! The node's API certificates: apid's TLS directory (`ca.crt` — the CAs accepted for client
//! certificates —, `server.crt`/`server.key`, and on control planes `client.crt`/`client.key`
//! with Organization `os:impersonator` for forwarding to other nodes) and, on control planes,
//! trustd's (see the trustd crate for its files).
//!
//! Control planes issue everything from `machine.ca`, whose key they hold. Workers create a key
//! and a signing request for apid's serving certificate and have a control plane's trustd sign
//! it (endpoint: the host of `cluster.controlPlane.endpoint`, port 50001), presenting
//! `machine.token` and checking trustd's certificate against the accepted CAs. Without a config
//! (maintenance) a throw-away CA is made per boot and no client certificate is asked for.
//! Serving certificates are renewed at half their lifetime.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use apiclient::{Client, Endpoint, TlsSettings};
use atomicfile::Overwrite;
use machineconfig::{Config, MachineType};
use pki::{
    CertificateAuthority, CertificateRequest, ExtendedKeyUsage, PemCertificate,
    PemCertificateAndKey, PrivateKey, SubjectAltNames, Validity,
};
use proto::securityapi::security_service_client::SecurityServiceClient;
use resources::Spec;
use serde::Serialize;

use crate::controllers::cert_sans::CertSansSpec;
use crate::error::MachinedError;

/// trustd's port on control planes.
pub const TRUSTD_PORT: u16 = 50001;
/// How long one attempt to reach trustd may take.
const TRUSTD_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the certificates are issued for; new certificates are issued when it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInputs {
    /// The common name: the node's FQDN.
    pub hostname: String,
    /// `CertSANs.secrets.talos.dev/api`.
    pub names: SubjectAltNames,
    /// The trust settings of the active config; `None` in maintenance.
    pub trust: Option<Trust>,
    /// Every control plane's address (etcd's members), as far as known: names trustd keeps
    /// joining nodes from claiming.
    pub control_planes: Vec<IpAddr>,
}

/// The parts of a config the node's certificates depend on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trust {
    pub machine_type: MachineType,
    /// `machine.ca` (with its key on control planes).
    pub ca: PemCertificateAndKey,
    /// `machine.acceptedCAs` certificates.
    pub accepted: Vec<String>,
    /// `machine.token`.
    pub token: String,
    /// Host of `cluster.controlPlane.endpoint`.
    pub control_plane_host: Option<String>,
}

impl Trust {
    fn from_config(config: &Config) -> Option<Self> {
        let v1alpha1 = config.v1alpha1.as_ref()?;
        let machine = v1alpha1.machine.as_ref()?;
        let control_plane_host = v1alpha1
            .cluster
            .as_ref()
            .and_then(|c| c.control_plane.as_ref())
            .and_then(|cp| url::Url::parse(&cp.endpoint).ok())
            .and_then(|url| url.host_str().map(String::from));
        Some(Trust {
            machine_type: machine.machine_type.parse().unwrap_or(MachineType::Worker),
            ca: machine.ca.clone().unwrap_or_default(),
            accepted: machine
                .accepted_cas
                .iter()
                .filter_map(|ca| ca.crt.clone())
                .collect(),
            token: machine.token.clone(),
            control_plane_host,
        })
    }

    /// `machine.ca`'s certificate followed by the accepted CAs.
    fn accepted_cas(&self) -> Vec<String> {
        self.ca.crt.iter().chain(&self.accepted).cloned().collect()
    }
}

/// Everything apid needs to serve, and which mode it serves in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApidTls {
    pub maintenance: bool,
    /// PEM certificates, one each.
    accepted_cas: Vec<String>,
    server: PemCertificateAndKey,
    client: Option<PemCertificateAndKey>,
}

/// `ApiCertificates.secrets.talos.dev` (sensitive): what apid serves with, published by
/// [`crate::api_services`] as owner [`API_CERTIFICATES_OWNER`] each time it puts them in place.
#[derive(Debug, Serialize)]
pub struct ApiCertificatesSpec {
    #[serde(rename = "acceptedCAs")]
    pub accepted_cas: Vec<PemCertificate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<PemCertificateAndKey>,
    pub server: PemCertificateAndKey,
}

impl Spec for ApiCertificatesSpec {
    const TYPE: &'static str = "ApiCertificates.secrets.talos.dev";
    const NAMESPACE: &'static str = "secrets";
}

/// The owner of `ApiCertificates/api`, as upstream's graph names it.
pub const API_CERTIFICATES_OWNER: &str = "secrets.APIController";

/// Everything trustd needs (control planes only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustdTls {
    issuer: PemCertificateAndKey,
    accepted_cas: String,
    server: PemCertificateAndKey,
    token: String,
    protected_names: String,
}

/// One issue of the node's certificates.
#[derive(Clone, Debug)]
pub struct NodeTls {
    pub apid: ApidTls,
    pub trustd: Option<TrustdTls>,
}

impl NodeTls {
    /// Half the time apid's serving certificate has left (`not_before` is set back by
    /// [`pki::CLOCK_SKEW`], so the lifetime is counted from now): when it is renewed.
    pub fn half_life(&self) -> Duration {
        let crt = self.apid.server.crt.as_deref().unwrap_or_default();
        pki::CertificateInfo::from_pem(crt)
            .ok()
            .and_then(|info| {
                Duration::try_from((info.not_after - time::OffsetDateTime::now_utc()) / 2).ok()
            })
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_secs(1))
    }

    /// Whether apid's serving certificate is valid by the clock now.
    pub fn valid_now(&self) -> bool {
        let crt = self.apid.server.crt.as_deref().unwrap_or_default();
        pki::CertificateInfo::from_pem(crt)
            .is_ok_and(|info| info.check_validity(time::OffsetDateTime::now_utc()).is_ok())
    }
}

impl TlsInputs {
    /// Issues for `names` (the API's `CertSANs`) with the trust of `config`.
    pub fn new(names: &CertSansSpec, config: Option<&Config>) -> Self {
        TlsInputs {
            hostname: names.fqdn.clone(),
            names: SubjectAltNames {
                dns_names: names.dns_names.clone(),
                ip_addresses: names.ips.clone(),
            },
            trust: config.and_then(Trust::from_config),
            control_planes: Vec::new(),
        }
    }

    /// Issues the node's certificates, valid for `ttl`. Workers ask trustd, once: the caller
    /// retries.
    pub async fn issue(&self, ttl: Duration) -> Result<NodeTls, MachinedError> {
        let validity = Validity::from_now(
            time::Duration::try_from(ttl).unwrap_or(pki::SERVER_CERTIFICATE_TTL),
        );
        let Some(trust) = &self.trust else {
            let ca = pki::generate_ca(pki::CaKind::Talos, Validity::for_new_ca())?;
            let authority = CertificateAuthority::from_pair(&ca)?;
            let server =
                authority.issue_server_certificate(&self.hostname, &self.names, validity)?;
            let apid = ApidTls {
                maintenance: true,
                accepted_cas: Vec::new(),
                server,
                client: None,
            };
            return Ok(NodeTls { apid, trustd: None });
        };
        let names = &self.names;
        if !trust.machine_type.is_control_plane() {
            let server = self.ask_trustd(trust, names).await?;
            let apid = ApidTls {
                maintenance: false,
                accepted_cas: trust.accepted_cas(),
                server,
                client: None,
            };
            return Ok(NodeTls { apid, trustd: None });
        }
        if trust.ca.key.is_none() {
            return Err(MachinedError::FailedPrecondition(
                "machine.ca has no key: a control plane issues the API certificates itself".into(),
            ));
        }
        let authority = CertificateAuthority::from_pair(&trust.ca)?;
        let server = authority.issue_server_certificate(&self.hostname, names, validity)?;
        let client = authority.issue_client_certificate(
            &self.hostname,
            &["os:impersonator".to_string()],
            validity,
        )?;
        let apid = ApidTls {
            maintenance: false,
            accepted_cas: trust.accepted_cas(),
            server,
            client: Some(client),
        };
        let trustd = TrustdTls {
            issuer: trust.ca.clone(),
            accepted_cas: trust.accepted_cas().concat(),
            server: authority.issue_server_certificate(&self.hostname, names, validity)?,
            token: trust.token.clone(),
            protected_names: self.protected_names(trust, names),
        };
        Ok(NodeTls {
            apid,
            trustd: Some(trustd),
        })
    }

    /// What no joining node may have in its certificate: this control plane's own names
    /// (hostname, addresses, `machine.certSANs`), the control-plane endpoint's host and every
    /// other control plane's address. One per line, sorted.
    fn protected_names(&self, trust: &Trust, own: &SubjectAltNames) -> String {
        let mut names: Vec<String> = own
            .dns_names
            .iter()
            .cloned()
            .chain(own.ip_addresses.iter().map(IpAddr::to_string))
            .chain(trust.control_plane_host.iter().cloned())
            .chain(self.control_planes.iter().map(IpAddr::to_string))
            .collect();
        names.sort();
        names.dedup();
        names.iter().map(|name| format!("{name}\n")).collect()
    }

    /// Has a control plane's trustd sign a new key's request for apid's serving certificate.
    async fn ask_trustd(
        &self,
        trust: &Trust,
        names: &SubjectAltNames,
    ) -> Result<PemCertificateAndKey, MachinedError> {
        let host = trust.control_plane_host.as_deref().ok_or_else(|| {
            MachinedError::FailedPrecondition(
                "cluster.controlPlane.endpoint names no host: a worker cannot find trustd".into(),
            )
        })?;
        let unavailable = |reason: String| MachinedError::Trustd {
            endpoint: format!("{host}:{TRUSTD_PORT}"),
            reason,
        };
        let endpoint = Endpoint::parse(&format!("{host}:{TRUSTD_PORT}"))
            .or_else(|_| Endpoint::parse(&format!("[{host}]:{TRUSTD_PORT}")))
            .map_err(|e| unavailable(e.to_string()))?;
        let key = PrivateKey::generate_ed25519()?;
        let csr = pki::generate_csr(
            &key,
            &CertificateRequest {
                common_name: Some(self.hostname.clone()),
                subject_alt_names: names.clone(),
                extended_key_usages: vec![ExtendedKeyUsage::ServerAuth],
                ..CertificateRequest::default()
            },
        )?;
        let tls = TlsSettings::server_only(&trust.accepted_cas().concat())
            .map_err(|e| unavailable(e.to_string()))?;
        let client = Client::connect(&[endpoint], &tls, TRUSTD_ATTEMPT_TIMEOUT)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let mut request = tonic::Request::new(proto::securityapi::CertificateRequest {
            csr: csr.into_bytes(),
        });
        request.set_timeout(TRUSTD_ATTEMPT_TIMEOUT);
        let token = trust
            .token
            .parse()
            .map_err(|_| MachinedError::FailedPrecondition("machine.token is not ASCII".into()))?;
        request.metadata_mut().insert("token", token);
        let reply = SecurityServiceClient::new(client.channel())
            .certificate(request)
            .await
            .map_err(|status| unavailable(status.message().to_string()))?
            .into_inner();
        let crt = String::from_utf8(reply.crt)
            .map_err(|_| unavailable("the certificate is not PEM text".into()))?;
        pki::verify_pair(&crt, &key.to_pem(), time::OffsetDateTime::now_utc())
            .map_err(|e| unavailable(format!("the signed certificate is unusable: {e}")))?;
        Ok(PemCertificateAndKey {
            crt: Some(crt),
            key: Some(key.to_pem()),
        })
    }
}

impl ApidTls {
    /// As upstream's `ApiCertificates.secrets.talos.dev/api`.
    pub fn spec(&self) -> ApiCertificatesSpec {
        ApiCertificatesSpec {
            accepted_cas: self
                .accepted_cas
                .iter()
                .map(|crt| PemCertificate {
                    crt: Some(crt.clone()),
                })
                .collect(),
            client: self.client.clone(),
            server: self.server.clone(),
        }
    }

    /// Writes the files atomically into `dir` (keys 0600); files this mode does not use
    /// (`ca.crt` in maintenance, the client pair on workers and in maintenance) are removed.
    pub fn write(&self, dir: &Path) -> Result<(), MachinedError> {
        let bundle = self.accepted_cas.concat();
        let accepted = (!bundle.is_empty()).then_some(bundle.as_str());
        let client = self.client.as_ref().map(pem_pair);
        let (server_crt, server_key) = pem_pair(&self.server);
        write_files(
            dir,
            [
                ("server.crt", Some(server_crt), 0o644),
                ("server.key", Some(server_key), 0o600),
                ("ca.crt", accepted, 0o644),
                ("client.crt", client.map(|(crt, _)| crt), 0o644),
                ("client.key", client.map(|(_, key)| key), 0o600),
            ],
        )
    }
}

impl TrustdTls {
    /// Writes trustd's directory atomically (keys and token 0600).
    pub fn write(&self, dir: &Path) -> Result<(), MachinedError> {
        let (issuer_crt, issuer_key) = pem_pair(&self.issuer);
        let (server_crt, server_key) = pem_pair(&self.server);
        write_files(
            dir,
            [
                ("ca.crt", Some(issuer_crt), 0o644),
                ("ca.key", Some(issuer_key), 0o600),
                ("accepted-cas.crt", Some(&self.accepted_cas), 0o644),
                ("server.crt", Some(server_crt), 0o644),
                ("server.key", Some(server_key), 0o600),
                ("token", Some(&self.token), 0o600),
                ("protected-names", Some(&self.protected_names), 0o644),
            ],
        )
    }
}

/// Writes each `Some` file atomically and removes each `None` one.
fn write_files<const N: usize>(
    dir: &Path,
    files: [(&str, Option<&str>, u32); N],
) -> Result<(), MachinedError> {
    std::fs::create_dir_all(dir).map_err(MachinedError::io("creating", dir))?;
    for (name, contents, mode) in files {
        let path = dir.join(name);
        match contents {
            Some(contents) => {
                atomicfile::write(&path, contents.as_bytes(), mode, Overwrite::Allow)?
            }
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(MachinedError::io("removing", path)(e));
                }
                _ => {}
            },
        }
    }
    Ok(())
}

fn pem_pair(pair: &PemCertificateAndKey) -> (&str, &str) {
    (
        pair.crt.as_deref().unwrap_or_default(),
        pair.key.as_deref().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn certificates_are_issued_for_the_api_names_and_published_as_upstream() {
        let names = CertSansSpec::new(
            IpAddr::from([10, 5, 0, 2]),
            "talos-abc",
            "example.org",
            &["api.example.org".into(), "10.5.0.100".into()],
        );
        let tls = TlsInputs::new(&names, None)
            .issue(Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(tls.apid.maintenance && tls.trustd.is_none());
        let server = tls.apid.server.crt.as_deref().unwrap();
        let info = pki::CertificateInfo::from_pem(server).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("talos-abc.example.org"));
        assert_eq!(
            info.dns_names,
            ["api.example.org", "talos-abc", "talos-abc.example.org"]
        );
        assert_eq!(
            info.ip_addresses,
            ["10.5.0.2", "127.0.0.1", "10.5.0.100"].map(|ip| ip.parse::<IpAddr>().unwrap())
        );
        // Maintenance accepts no client CAs and has no client pair.
        let yaml = serde_norway::to_string(&tls.apid.spec()).unwrap();
        assert!(
            yaml.starts_with("acceptedCAs: []\nserver:\n  crt: "),
            "{yaml}"
        );
        assert!(!yaml.contains("client:"), "{yaml}");
    }
}
