//! The Kubernetes pieces of a Talos control plane that need no Kubernetes binaries, generated
//! from the machine config as upstream Talos generates them:
//!
//! - the Kubernetes PKI ([`control_plane_certificates`]): the kube-apiserver serving
//!   certificate with upstream's SANs ([`api_server_sans`]), its kubelet-client and
//!   front-proxy client certificates, the service-account key pair;
//! - kubeconfigs: the admin kubeconfig ([`admin_kubeconfig`]), the `Kubeconfig` RPC's gzip tar
//!   ([`admin_kubeconfig_tar_gz`], [`extract_kubeconfig`]), component kubeconfigs
//!   ([`component_kubeconfig`]), and merging into a user's kubeconfig ([`Kubeconfig::merge`]);
//! - the control-plane static pod manifests ([`static_pods`]) and the kubelet's
//!   `KubeletConfiguration` ([`kubelet_configuration`]).
//!
//! Limits: only the v1alpha1 `cluster` section is read (not the `KubeCluster*` multi-document
//! kinds); the apiserver's config files (admission control, audit policy, authorization
//! config, encryption config), the scheduler config and the etcd client certificate the pods
//! reference are not generated here. Nothing here runs Kubernetes: no kubelet, apiserver or
//! images are involved.

mod archive;
mod args;
mod certs;
mod cluster;
mod error;
mod kubeconfig;
mod kubelet;
mod static_pods;

pub use archive::{
    KUBECONFIG_ENTRY, admin_kubeconfig_tar_gz, extract_kubeconfig, kubeconfig_tar_gz,
};
pub use certs::{
    ADMIN_CERTIFICATE_TTL, ADMIN_COMMON_NAME, ADMIN_ORGANIZATION,
    API_SERVER_KUBELET_CLIENT_COMMON_NAME, ControlPlaneCertificates,
    FRONT_PROXY_CLIENT_COMMON_NAME, KUBERNETES_CERTIFICATE_TTL, ServiceAccountKeys,
    admin_certificate_ttl, api_server_sans, control_plane_certificates,
};
pub use cluster::{
    DEFAULT_LOCAL_API_SERVER_PORT, DEFAULT_POD_SUBNET, DEFAULT_SERVICE_SUBNET, NodeInfo,
};
pub use error::KubernetesError;
pub use kubeconfig::{
    ClientKubeconfig, Cluster, Context, Kubeconfig, MergeOptions, NamedCluster, NamedContext,
    NamedUser, User, admin_kubeconfig, component_kubeconfig,
};
pub use kubelet::{
    CONTAINER_RUNTIME_ENDPOINT, KUBELET_CLIENT_CA_FILE, MANIFESTS_DIR, RESOLV_CONF, cluster_dns,
    kubelet_configuration, kubelet_document, kubelet_image,
};
pub use static_pods::{
    API_SERVER_CONFIG_DIR, API_SERVER_SECRETS_DIR, AUDIT_LOG_DIR, CONTROLLER_MANAGER_SECRETS_DIR,
    ETCD_SERVERS, SCHEDULER_CONFIG_DIR, SCHEDULER_SECRETS_DIR, static_pods,
};
