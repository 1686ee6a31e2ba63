//! Kubeconfig files (`apiVersion: v1`, `kind: Config`): the admin kubeconfig a control plane
//! hands out, client kubeconfigs for control-plane components, and merging one kubeconfig into
//! another as upstream `talosctl kubeconfig` does.
//!
//! Reading keeps every field this module does not know (exec credentials, extensions,
//! preferences, ...) so that merging into a user's file loses nothing.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use machineconfig::Config;
use pki::Validity;
use serde::{Deserialize, Deserializer, Serialize};
use serde_norway::Value;
use time::Duration;

use crate::KubernetesError;
use crate::certs::{self, ADMIN_COMMON_NAME, ADMIN_ORGANIZATION};
use crate::cluster;

/// A kubeconfig file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Kubeconfig {
    /// `v1`.
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    /// `Config`.
    #[serde(default)]
    pub kind: String,
    /// Named clusters.
    #[serde(default, deserialize_with = "nullable")]
    pub clusters: Vec<NamedCluster>,
    /// Named users (auth infos).
    #[serde(default, deserialize_with = "nullable")]
    pub users: Vec<NamedUser>,
    /// Named contexts.
    #[serde(default, deserialize_with = "nullable")]
    pub contexts: Vec<NamedContext>,
    /// The context in use.
    #[serde(rename = "current-context", default)]
    pub current_context: String,
    /// Everything else (`preferences`, `extensions`), kept as read.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One entry of `clusters`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedCluster {
    /// The entry's name.
    pub name: String,
    /// The cluster.
    #[serde(default)]
    pub cluster: Cluster,
}

/// A cluster: where the API server is and which CA it is signed by.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    /// The API server URL.
    #[serde(default)]
    pub server: String,
    /// Base64 of the CA certificate PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
    /// Other fields, kept as read.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One entry of `users`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedUser {
    /// The entry's name.
    pub name: String,
    /// The credentials.
    #[serde(default)]
    pub user: User,
}

/// Credentials.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct User {
    /// Base64 of the client certificate PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_data: Option<String>,
    /// Base64 of the client key PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_data: Option<String>,
    /// Other fields (tokens, exec plugins, ...), kept as read.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// One entry of `contexts`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedContext {
    /// The entry's name.
    pub name: String,
    /// The context.
    #[serde(default)]
    pub context: Context,
}

/// A context: a cluster, a user and a default namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Name of an entry of `clusters`.
    #[serde(default)]
    pub cluster: String,
    /// Name of an entry of `users`.
    #[serde(default)]
    pub user: String,
    /// Default namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Other fields, kept as read.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// What to do when a merged entry's name is taken by a different entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeOptions {
    /// Replace the existing entries (`--force`); otherwise the new ones are renamed with a
    /// `-1`, `-2`, ... suffix.
    pub force: bool,
    /// Name the merged context this (`--force-context-name`).
    pub force_context_name: Option<String>,
    /// Make the merged context the current one.
    pub activate_context: bool,
}

impl Kubeconfig {
    /// Reads a kubeconfig; `origin` names it in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, KubernetesError> {
        if text.trim().is_empty() {
            return Ok(Kubeconfig::empty());
        }
        let config: Kubeconfig =
            serde_norway::from_str(text).map_err(|source| KubernetesError::KubeconfigDecode {
                origin: origin.to_string(),
                source,
            })?;
        if !config.kind.is_empty() && config.kind != "Config" {
            return Err(KubernetesError::InvalidKubeconfig {
                origin: origin.to_string(),
                reason: format!("kind is {:?}, not \"Config\"", config.kind),
            });
        }
        Ok(config)
    }

    /// An empty `v1` `Config`.
    pub fn empty() -> Self {
        Kubeconfig {
            api_version: "v1".into(),
            kind: "Config".into(),
            ..Default::default()
        }
    }

    /// The YAML text.
    pub fn to_yaml(&self) -> Result<String, KubernetesError> {
        serde_norway::to_string(self).map_err(|source| KubernetesError::Encode {
            what: "kubeconfig",
            source,
        })
    }

    /// Merges `new` into this kubeconfig as upstream `talosctl kubeconfig` does. Clusters
    /// come first, then users (whose names take over the clusters' renames), then contexts
    /// (taking over the users' renames); an entry equal to the existing one of the same name
    /// is simply kept. Returns the messages upstream prints (`renamed cluster "a" -> "a-1"`).
    pub fn merge(&mut self, new: Kubeconfig, options: &MergeOptions) -> Vec<String> {
        let mut messages = Vec::new();

        let mut cluster_names = Vec::new();
        for entry in new.clusters {
            let merged = free_name(
                &self.clusters,
                |c| &c.name,
                &entry.name,
                |old| old.cluster == entry.cluster,
                options.force,
            );
            if merged != entry.name {
                messages.push(format!("renamed cluster {:?} -> {merged:?}", entry.name));
            }
            cluster_names.push((entry.name, merged.clone()));
            upsert(
                &mut self.clusters,
                |c| &c.name,
                NamedCluster {
                    name: merged,
                    cluster: entry.cluster,
                },
            );
        }

        let mut user_names = Vec::new();
        for entry in new.users {
            let wanted = apply_renames(&entry.name, &cluster_names);
            let merged = free_name(
                &self.users,
                |u| &u.name,
                &wanted,
                |old| old.user == entry.user,
                options.force,
            );
            if merged != entry.name {
                messages.push(format!("renamed auth info {:?} -> {merged:?}", entry.name));
            }
            user_names.push((entry.name, merged.clone()));
            upsert(
                &mut self.users,
                |u| &u.name,
                NamedUser {
                    name: merged,
                    user: entry.user,
                },
            );
        }

        for entry in new.contexts {
            let wanted = match &options.force_context_name {
                Some(forced) if !forced.is_empty() => forced.clone(),
                _ => apply_renames(&entry.name, &user_names),
            };
            let mut context = entry.context;
            context.cluster = lookup(&cluster_names, &context.cluster);
            context.user = lookup(&user_names, &context.user);
            let merged = free_name(
                &self.contexts,
                |c| &c.name,
                &wanted,
                |old| old.context == context,
                options.force,
            );
            if merged != entry.name {
                messages.push(format!("renamed context {:?} -> {merged:?}", entry.name));
            }
            upsert(
                &mut self.contexts,
                |c| &c.name,
                NamedContext {
                    name: merged.clone(),
                    context,
                },
            );
            if options.activate_context {
                self.current_context = merged;
            }
        }
        if self.api_version.is_empty() {
            self.api_version = "v1".into();
        }
        if self.kind.is_empty() {
            self.kind = "Config".into();
        }
        messages
    }
}

/// The name a new entry gets: `wanted` unless a different entry (`same` says false) holds it
/// and `force` is off; then `wanted-1`, `wanted-2`, ..., the first that is free.
fn free_name<T>(
    existing: &[T],
    name_of: impl Fn(&T) -> &String,
    wanted: &str,
    same: impl Fn(&T) -> bool,
    force: bool,
) -> String {
    let holder = |name: &str| existing.iter().find(|e| name_of(e) == name);
    let conflict = holder(wanted).is_some_and(|old| !same(old));
    if !conflict || force {
        return wanted.to_string();
    }
    (1u32..)
        .map(|i| format!("{wanted}-{i}"))
        .find(|candidate| holder(candidate).is_none())
        .unwrap_or_else(|| wanted.to_string())
}

fn upsert<T>(entries: &mut Vec<T>, name_of: impl Fn(&T) -> &String, entry: T) {
    match entries.iter_mut().find(|e| name_of(e) == name_of(&entry)) {
        Some(slot) => *slot = entry,
        None => entries.push(entry),
    }
}

/// Upstream's renaming of user and context names: every renamed cluster (or user) name that
/// occurs in `name` is replaced by its new name (`admin@talos` → `admin@talos-1`).
fn apply_renames(name: &str, renames: &[(String, String)]) -> String {
    renames
        .iter()
        .filter(|(old, new)| old != new)
        .fold(name.to_string(), |acc, (old, new)| acc.replace(old, new))
}

fn lookup(renames: &[(String, String)], name: &str) -> String {
    renames
        .iter()
        .find(|(old, _)| old == name)
        .map_or_else(|| name.to_string(), |(_, new)| new.clone())
}

/// A kubeconfig with one cluster, one user and one context, authenticating with a client
/// certificate.
#[derive(Clone, Copy, Debug)]
pub struct ClientKubeconfig<'a> {
    /// The cluster entry's name.
    pub cluster_name: &'a str,
    /// The API server URL.
    pub server: &'a str,
    /// The CA certificate PEM.
    pub ca_pem: &'a str,
    /// The user entry's name.
    pub user_name: &'a str,
    /// The client certificate PEM.
    pub certificate_pem: &'a str,
    /// The client key PEM.
    pub key_pem: &'a str,
    /// The context's name (also the current context).
    pub context_name: &'a str,
    /// The context's namespace.
    pub namespace: Option<&'a str>,
}

impl ClientKubeconfig<'_> {
    /// The kubeconfig.
    pub fn build(&self) -> Kubeconfig {
        Kubeconfig {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: self.cluster_name.into(),
                cluster: Cluster {
                    server: self.server.into(),
                    certificate_authority_data: Some(STANDARD.encode(self.ca_pem)),
                    other: BTreeMap::new(),
                },
            }],
            users: vec![NamedUser {
                name: self.user_name.into(),
                user: User {
                    client_certificate_data: Some(STANDARD.encode(self.certificate_pem)),
                    client_key_data: Some(STANDARD.encode(self.key_pem)),
                    other: BTreeMap::new(),
                },
            }],
            contexts: vec![NamedContext {
                name: self.context_name.into(),
                context: Context {
                    cluster: self.cluster_name.into(),
                    user: self.user_name.into(),
                    namespace: self.namespace.map(String::from),
                    other: BTreeMap::new(),
                },
            }],
            current_context: self.context_name.into(),
            other: BTreeMap::new(),
        }
    }
}

/// The admin kubeconfig as upstream's `Kubeconfig` RPC returns it: cluster named
/// `cluster.clusterName` at `cluster.controlPlane.endpoint` with the Kubernetes CA, user and
/// context `admin@<cluster>` (namespace `default`), a new client certificate CN `admin`,
/// O `system:masters` valid for `ttl` (see [`certs::admin_certificate_ttl`]).
pub fn admin_kubeconfig(config: &Config, ttl: Duration) -> Result<String, KubernetesError> {
    let (_, cluster) = cluster::sections(config)?;
    let name = cluster::cluster_name(cluster)?;
    let endpoint = cluster::endpoint(cluster)?;
    let (ca, pair) = certs::client_certificate(
        cluster,
        ADMIN_COMMON_NAME,
        ADMIN_ORGANIZATION,
        Validity::from_now(ttl),
    )?;
    let user = format!("admin@{name}");
    ClientKubeconfig {
        cluster_name: name,
        server: endpoint.as_str().trim_end_matches('/'),
        ca_pem: ca.certificate_pem(),
        user_name: &user,
        certificate_pem: pair.crt.as_deref().unwrap_or_default(),
        key_pem: pair.key.as_deref().unwrap_or_default(),
        context_name: &user,
        namespace: Some("default"),
    }
    .build()
    .to_yaml()
}

/// The kubeconfig a control-plane component (`system:kube-controller-manager`,
/// `system:kube-scheduler`) uses to reach the local kube-apiserver: CN and O are the
/// component's user, server `https://localhost:<local port>/`, context `default`.
pub fn component_kubeconfig(
    config: &Config,
    component_user: &str,
    validity: Validity,
) -> Result<String, KubernetesError> {
    let (_, cluster) = cluster::sections(config)?;
    let name = cluster::cluster_name(cluster)?;
    let (ca, pair) = certs::client_certificate(cluster, component_user, component_user, validity)?;
    let server = format!(
        "https://localhost:{}/",
        cluster::local_api_server_port(cluster)
    );
    ClientKubeconfig {
        cluster_name: name,
        server: &server,
        ca_pem: ca.certificate_pem(),
        user_name: component_user,
        certificate_pem: pair.crt.as_deref().unwrap_or_default(),
        key_pem: pair.key.as_deref().unwrap_or_default(),
        context_name: "default",
        namespace: None,
    }
    .build()
    .to_yaml()
}
