//! The Kubernetes PKI a control plane issues from the cluster CAs in its machine config, as
//! upstream's secrets controllers do: the kube-apiserver serving certificate, its kubelet
//! client and front-proxy client certificates, the service-account key pair, and client
//! certificates for kubeconfigs.
//!
//! Keys follow the CA's algorithm (ECDSA P-256 for upstream's Kubernetes CAs). Upstream's
//! lifetime for these certificates is one year ([`KUBERNETES_CERTIFICATE_TTL`]); it renews them
//! at half-life.

use std::collections::BTreeSet;
use std::net::IpAddr;

use machineconfig::Config;
use machineconfig::v1alpha1::ClusterConfig;
use pki::{
    CertificateAuthority, ExtendedKeyUsage, LeafCertificate, PemCertificateAndKey, PrivateKey,
    SubjectAltNames, Validity,
};
use time::Duration;

use crate::KubernetesError;
use crate::cluster::{self, NodeInfo};

/// Lifetime of the certificates issued here (upstream: one year).
pub const KUBERNETES_CERTIFICATE_TTL: Duration = Duration::hours(8_760);
/// Default lifetime of the admin kubeconfig's client certificate (`cluster.adminKubeconfig.certLifetime`).
pub const ADMIN_CERTIFICATE_TTL: Duration = Duration::hours(8_760);
/// The admin client certificate's Organization (Kubernetes group).
pub const ADMIN_ORGANIZATION: &str = "system:masters";
/// The admin client certificate's common name.
pub const ADMIN_COMMON_NAME: &str = "admin";
/// kube-apiserver's client certificate towards kubelets: its common name.
pub const API_SERVER_KUBELET_CLIENT_COMMON_NAME: &str = "apiserver-kubelet-client";
/// The front-proxy client certificate's common name (`--requestheader-allowed-names`).
pub const FRONT_PROXY_CLIENT_COMMON_NAME: &str = "front-proxy-client";

/// The service-account signing key and its public half, PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountKeys {
    /// The private key as found in `cluster.serviceAccount.key`.
    pub private_key_pem: String,
    /// The public key, `PUBLIC KEY` (SubjectPublicKeyInfo) PEM.
    pub public_key_pem: String,
}

/// Everything kube-apiserver needs besides the etcd client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPlaneCertificates {
    /// The Kubernetes CA certificate (`ca.crt`, also the client CA).
    pub ca_pem: String,
    /// The aggregator CA certificate (`aggregator-ca.crt`, `--requestheader-client-ca-file`).
    pub aggregator_ca_pem: String,
    /// The serving certificate: CN `kube-apiserver`, O `kube-master`, ServerAuth.
    pub api_server: PemCertificateAndKey,
    /// The client certificate towards kubelets: CN `apiserver-kubelet-client`,
    /// O `system:masters`, ClientAuth.
    pub api_server_kubelet_client: PemCertificateAndKey,
    /// The front-proxy client certificate from the aggregator CA: CN `front-proxy-client`,
    /// ClientAuth.
    pub front_proxy: PemCertificateAndKey,
    /// The service-account key pair.
    pub service_account: ServiceAccountKeys,
}

impl ControlPlaneCertificates {
    /// The files of kube-apiserver's secrets directory
    /// ([`crate::API_SERVER_SECRETS_DIR`]) made from these certificates, as (file name,
    /// contents). The etcd client files and `encryptionconfig.yaml` are not among them.
    pub fn api_server_files(&self) -> Vec<(&'static str, String)> {
        let part = |pair: &PemCertificateAndKey, crt: bool| {
            if crt {
                pair.crt.clone()
            } else {
                pair.key.clone()
            }
            .unwrap_or_default()
        };
        vec![
            ("ca.crt", self.ca_pem.clone()),
            ("aggregator-ca.crt", self.aggregator_ca_pem.clone()),
            ("apiserver.crt", part(&self.api_server, true)),
            ("apiserver.key", part(&self.api_server, false)),
            (
                "apiserver-kubelet-client.crt",
                part(&self.api_server_kubelet_client, true),
            ),
            (
                "apiserver-kubelet-client.key",
                part(&self.api_server_kubelet_client, false),
            ),
            ("front-proxy-client.crt", part(&self.front_proxy, true)),
            ("front-proxy-client.key", part(&self.front_proxy, false)),
            (
                "service-account.pub",
                self.service_account.public_key_pem.clone(),
            ),
            (
                "service-account.key",
                self.service_account.private_key_pem.clone(),
            ),
        ]
    }
}

/// Loads a CA (certificate and key) from the config.
fn load_ca(
    pair: Option<&PemCertificateAndKey>,
    key: &'static str,
) -> Result<CertificateAuthority, KubernetesError> {
    let pair = pair.ok_or(KubernetesError::Missing { key })?;
    CertificateAuthority::from_pair(pair).map_err(KubernetesError::pki(key))
}

/// The Kubernetes CA (`cluster.ca`, certificate and key: control planes only).
pub(crate) fn kubernetes_ca(
    cluster: &ClusterConfig,
) -> Result<CertificateAuthority, KubernetesError> {
    load_ca(cluster.ca.as_ref(), "cluster.ca")
}

/// The subject alternative names of the kube-apiserver certificate, sorted and without
/// duplicates: the control-plane endpoint host, `cluster.apiServer.certSANs`, `kubernetes`,
/// `kubernetes.default`, `kubernetes.default.svc`, `kubernetes.default.svc.<domain>`,
/// `localhost`, the node's hostname and FQDN, the first address of each service CIDR,
/// `127.0.0.1` and the node's addresses. Entries that parse as IPs become IP SANs.
pub fn api_server_sans(
    config: &Config,
    node: &NodeInfo,
) -> Result<SubjectAltNames, KubernetesError> {
    let (_, cluster) = cluster::sections(config)?;
    let endpoint = cluster::endpoint(cluster)?;
    let mut names: Vec<String> = vec![cluster::endpoint_host(&endpoint)];
    if let Some(api_server) = &cluster.api_server {
        names.extend(api_server.cert_sans.iter().cloned());
    }
    let domain = cluster::dns_domain(cluster);
    names.extend([
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        format!("kubernetes.default.svc.{domain}"),
        "localhost".to_string(),
    ]);
    names.push(node.hostname.clone());
    names.push(node.fqdn());

    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    for name in names.into_iter().filter(|n| !n.is_empty()) {
        match name.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => {
                ips.insert(ip);
            }
            Err(_) => {
                dns.insert(name);
            }
        }
    }
    ips.extend(cluster::api_server_ips(cluster)?);
    ips.insert(IpAddr::from([127, 0, 0, 1]));
    ips.extend(node.addresses.iter().copied());
    Ok(SubjectAltNames {
        dns_names: dns.into_iter().collect(),
        ip_addresses: ips.into_iter().collect(),
    })
}

/// Issues the control plane's Kubernetes certificates for `node`, valid for `validity`
/// (upstream: [`KUBERNETES_CERTIFICATE_TTL`] from now).
pub fn control_plane_certificates(
    config: &Config,
    node: &NodeInfo,
    validity: Validity,
) -> Result<ControlPlaneCertificates, KubernetesError> {
    let (_, cluster) = cluster::sections(config)?;
    let ca = kubernetes_ca(cluster)?;
    let aggregator_ca = load_ca(cluster.aggregator_ca.as_ref(), "cluster.aggregatorCA")?;
    let sans = api_server_sans(config, node)?;
    let none = SubjectAltNames::default();

    let api_server = ca
        .issue_leaf(
            &LeafCertificate {
                common_name: "kube-apiserver",
                organizations: &["kube-master".to_string()],
                extended_key_usages: &[ExtendedKeyUsage::ServerAuth],
                subject_alt_names: &sans,
                key_encipherment: true,
            },
            validity,
        )
        .map_err(KubernetesError::pki("kube-apiserver certificate"))?;
    let api_server_kubelet_client = ca
        .issue_leaf(
            &LeafCertificate {
                common_name: API_SERVER_KUBELET_CLIENT_COMMON_NAME,
                organizations: &[ADMIN_ORGANIZATION.to_string()],
                extended_key_usages: &[ExtendedKeyUsage::ClientAuth],
                subject_alt_names: &none,
                key_encipherment: true,
            },
            validity,
        )
        .map_err(KubernetesError::pki("apiserver-kubelet-client certificate"))?;
    let front_proxy = aggregator_ca
        .issue_leaf(
            &LeafCertificate {
                common_name: FRONT_PROXY_CLIENT_COMMON_NAME,
                organizations: &[],
                extended_key_usages: &[ExtendedKeyUsage::ClientAuth],
                subject_alt_names: &none,
                key_encipherment: true,
            },
            validity,
        )
        .map_err(KubernetesError::pki("front-proxy-client certificate"))?;

    Ok(ControlPlaneCertificates {
        ca_pem: ca.certificate_pem().to_string(),
        aggregator_ca_pem: aggregator_ca.certificate_pem().to_string(),
        api_server,
        api_server_kubelet_client,
        front_proxy,
        service_account: service_account_keys(cluster)?,
    })
}

/// The service-account key pair from `cluster.serviceAccount.key`.
pub(crate) fn service_account_keys(
    cluster: &ClusterConfig,
) -> Result<ServiceAccountKeys, KubernetesError> {
    let key_pem = cluster
        .service_account
        .as_ref()
        .and_then(|sa| sa.key.as_deref())
        .ok_or(KubernetesError::Missing {
            key: "cluster.serviceAccount.key",
        })?;
    let key = PrivateKey::from_pem(key_pem)
        .map_err(KubernetesError::pki("cluster.serviceAccount.key"))?;
    Ok(ServiceAccountKeys {
        private_key_pem: key_pem.to_string(),
        public_key_pem: key.public_key_pem(),
    })
}

/// Issues a Kubernetes client certificate (ClientAuth; `organization` is the group) from the
/// cluster CA.
pub(crate) fn client_certificate(
    cluster: &ClusterConfig,
    common_name: &str,
    organization: &str,
    validity: Validity,
) -> Result<(CertificateAuthority, PemCertificateAndKey), KubernetesError> {
    let ca = kubernetes_ca(cluster)?;
    let pair = ca
        .issue_leaf(
            &LeafCertificate {
                common_name,
                organizations: &[organization.to_string()],
                extended_key_usages: &[ExtendedKeyUsage::ClientAuth],
                subject_alt_names: &SubjectAltNames::default(),
                key_encipherment: true,
            },
            validity,
        )
        .map_err(KubernetesError::pki("Kubernetes client certificate"))?;
    Ok((ca, pair))
}

/// The admin certificate's lifetime: `cluster.adminKubeconfig.certLifetime`, else one year.
pub fn admin_certificate_ttl(config: &Config) -> Duration {
    cluster::sections(config)
        .ok()
        .and_then(|(_, cluster)| cluster.admin_kubeconfig.as_ref())
        .and_then(|admin| admin.cert_lifetime.as_ref())
        .and_then(|lifetime| Duration::try_from(lifetime.as_duration()).ok())
        .filter(|ttl| ttl.is_positive())
        .unwrap_or(ADMIN_CERTIFICATE_TTL)
}
