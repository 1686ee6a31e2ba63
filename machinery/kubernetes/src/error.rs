//! The crate's one error type.

/// Everything that can go wrong here; each variant names the config key, flag or archive entry
/// it failed on.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    /// The machine config lacks something the Kubernetes pieces need.
    #[error("the machine config has no {key}")]
    Missing {
        /// YAML path of the missing key, e.g. `cluster.ca.key`.
        key: &'static str,
    },
    /// A config value could not be used.
    #[error("{key}: invalid value {value:?}: {reason}")]
    InvalidValue {
        /// YAML path of the key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `extraArgs` tried to set a flag that Talos owns.
    #[error("{key}: the flag --{flag} is set by Talos and cannot be overridden")]
    DeniedFlag {
        /// YAML path of the `extraArgs` map.
        key: &'static str,
        /// The flag name, without `--`.
        flag: String,
    },
    /// `machine.kubelet.extraConfig` or `KubeletConfig.config` tried to set a field that Talos
    /// owns.
    #[error("{key}: the field {field} is set by Talos and cannot be overridden")]
    DeniedKubeletField {
        /// Where the field was set.
        key: &'static str,
        /// The top-level KubeletConfiguration field.
        field: String,
    },
    /// Issuing or loading a certificate or key failed.
    #[error("{what}: {source}")]
    Pki {
        /// Which certificate or key, e.g. `cluster.ca` or `kube-apiserver certificate`.
        what: &'static str,
        /// The PKI error.
        source: pki::PkiError,
    },
    /// A kubeconfig could not be read.
    #[error("reading kubeconfig {origin}: {source}")]
    KubeconfigDecode {
        /// Where it came from (a path, or `the node's reply`).
        origin: String,
        /// The YAML error.
        source: serde_norway::Error,
    },
    /// A kubeconfig is YAML but not a usable `Config`.
    #[error("kubeconfig {origin}: {reason}")]
    InvalidKubeconfig {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing YAML failed (not expected for the types here).
    #[error("encoding {what} as YAML: {source}")]
    Encode {
        /// What was being written.
        what: &'static str,
        /// The YAML error.
        source: serde_norway::Error,
    },
    /// Building or reading the `Kubeconfig` RPC's gzip tar failed.
    #[error("kubeconfig archive: {step}: {source}")]
    Archive {
        /// What was being done.
        step: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The archive has no regular file named `kubeconfig`.
    #[error("kubeconfig archive: no regular file named `kubeconfig` (entries: {entries})")]
    NoKubeconfigInArchive {
        /// The entry names found, comma-separated.
        entries: String,
    },
}

impl KubernetesError {
    pub(crate) fn pki(what: &'static str) -> impl FnOnce(pki::PkiError) -> Self {
        move |source| KubernetesError::Pki { what, source }
    }
}
