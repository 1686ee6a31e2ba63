//! The talosconfig file: the client side of the Talos API.
//!
//! A talosconfig names a current `context` and a map of `contexts`, each with the endpoints
//! (apid addresses the client dials), default target nodes and the client credentials (Talos CA,
//! client certificate and key, each the base64 of its PEM text). The format is upstream Talos's,
//! so files written by either tool load in the other. Keys this version does not know (written
//! by a newer talosctl) are ignored, as upstream ignores them, and are not written back.
//!
//! This crate reads, edits and writes the file (atomically, mode 0600); it does not dial anything.

mod path;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

pub use path::default_path;

/// Why a talosconfig could not be read, used or written.
#[derive(Debug, thiserror::Error)]
pub enum TalosconfigError {
    #[error("reading talosconfig {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing talosconfig {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_norway::Error,
    },
    #[error(transparent)]
    Write(#[from] atomicfile::WriteError),
    #[error("no current context is set in the talosconfig")]
    NoCurrentContext,
    #[error("context {0:?} is not defined in the talosconfig")]
    UnknownContext(String),
    #[error("context {0:?} already exists in the talosconfig")]
    ContextExists(String),
    #[error(
        "context {0:?} is the current context and cannot be removed (switch with `talosctl config context` first)"
    )]
    RemoveCurrent(String),
    #[error("context {name:?}: {field} is not valid base64: {source}")]
    Base64 {
        name: String,
        field: &'static str,
        source: base64::DecodeError,
    },
    #[error("context {name:?} has no {field}")]
    MissingCredential { name: String, field: &'static str },
}

/// A whole talosconfig file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Talosconfig {
    /// Name of the current context.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// Contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One cluster's endpoints, nodes and credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Deprecated single endpoint; moved into `endpoints` on load.
    #[serde(default, skip_serializing)]
    pub target: Option<String>,
    /// apid addresses the client dials (host, host:port or URL).
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Default target nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Base64 of the PEM Talos CA certificate.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ca: String,
    /// Base64 of the PEM client certificate.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub crt: String,
    /// Base64 of the PEM client key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// Alternative authentication for proxies (kept as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<serde_norway::Value>,
    /// Cluster name for multi-cluster proxies.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Proxy to dial through.
    #[serde(
        default,
        rename = "proxy-url",
        skip_serializing_if = "String::is_empty"
    )]
    pub proxy_url: String,
}

/// PEM texts of a context's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub ca_pem: String,
    pub crt_pem: String,
    pub key_pem: String,
}

impl Context {
    /// A context for `endpoints` with PEM credentials, stored base64-encoded as upstream does.
    pub fn new(endpoints: Vec<String>, ca_pem: &str, crt_pem: &str, key_pem: &str) -> Self {
        Context {
            endpoints,
            ca: STANDARD.encode(ca_pem),
            crt: STANDARD.encode(crt_pem),
            key: STANDARD.encode(key_pem),
            ..Context::default()
        }
    }

    /// This context with other credentials (endpoints, nodes and the rest kept).
    pub fn with_credentials(&self, credentials: &Credentials) -> Context {
        Context {
            ca: STANDARD.encode(&credentials.ca_pem),
            crt: STANDARD.encode(&credentials.crt_pem),
            key: STANDARD.encode(&credentials.key_pem),
            ..self.clone()
        }
    }

    /// Decodes the CA, certificate and key of the context called `name`.
    pub fn credentials(&self, name: &str) -> Result<Credentials, TalosconfigError> {
        let decode = |field: &'static str, value: &str| {
            if value.is_empty() {
                return Err(TalosconfigError::MissingCredential {
                    name: name.to_string(),
                    field,
                });
            }
            let bytes =
                STANDARD
                    .decode(value.trim())
                    .map_err(|source| TalosconfigError::Base64 {
                        name: name.to_string(),
                        field,
                        source,
                    })?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        Ok(Credentials {
            ca_pem: decode("ca", &self.ca)?,
            crt_pem: decode("crt", &self.crt)?,
            key_pem: decode("key", &self.key)?,
        })
    }
}

impl Talosconfig {
    /// Parses talosconfig text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, TalosconfigError> {
        if text.trim().is_empty() {
            return Ok(Talosconfig::default());
        }
        let mut config: Talosconfig =
            serde_norway::from_str(text).map_err(|source| TalosconfigError::Parse {
                path: origin.to_path_buf(),
                source,
            })?;
        for context in config.contexts.values_mut() {
            if let Some(target) = context.target.take()
                && !context.endpoints.contains(&target)
            {
                context.endpoints.push(target);
            }
        }
        Ok(config)
    }

    /// Loads `path`; a missing file is an error.
    pub fn load(path: &Path) -> Result<Self, TalosconfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| TalosconfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Loads `path`, or an empty talosconfig when the file does not exist yet.
    pub fn load_or_empty(path: &Path) -> Result<Self, TalosconfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Talosconfig::default()),
            Err(source) => Err(TalosconfigError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The YAML text of this talosconfig.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).expect("talosconfig types always serialize")
    }

    /// Writes the file atomically with mode 0600, creating its directory.
    pub fn save(
        &self,
        path: &Path,
        overwrite: atomicfile::Overwrite,
    ) -> Result<(), TalosconfigError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| TalosconfigError::Read {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        atomicfile::write(path, self.to_yaml().as_bytes(), 0o600, overwrite)?;
        Ok(())
    }

    /// The context named `name`, or the current one when `name` is `None`.
    pub fn context(&self, name: Option<&str>) -> Result<(&str, &Context), TalosconfigError> {
        let name = self.context_name(name)?;
        self.contexts
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| TalosconfigError::UnknownContext(name.to_string()))
    }

    /// Mutable access to the context named `name`, or the current one.
    pub fn context_mut(&mut self, name: Option<&str>) -> Result<&mut Context, TalosconfigError> {
        let name = self.context_name(name)?.to_string();
        self.contexts
            .get_mut(&name)
            .ok_or(TalosconfigError::UnknownContext(name))
    }

    fn context_name<'a>(&'a self, name: Option<&'a str>) -> Result<&'a str, TalosconfigError> {
        match name {
            Some(name) => Ok(name),
            None if self.context.is_empty() => Err(TalosconfigError::NoCurrentContext),
            None => Ok(&self.context),
        }
    }

    /// Makes `name` the current context.
    pub fn use_context(&mut self, name: &str) -> Result<(), TalosconfigError> {
        if !self.contexts.contains_key(name) {
            return Err(TalosconfigError::UnknownContext(name.to_string()));
        }
        self.context = name.to_string();
        Ok(())
    }

    /// Adds a new context; an existing name is an error.
    pub fn add(&mut self, name: &str, context: Context) -> Result<(), TalosconfigError> {
        if self.contexts.contains_key(name) {
            return Err(TalosconfigError::ContextExists(name.to_string()));
        }
        self.contexts.insert(name.to_string(), context);
        Ok(())
    }

    /// Merges every context of `other` into this file. A context whose name is taken is renamed
    /// `<name>-1`, `<name>-2`, … Returns `(old, new)` for each renamed context. The current
    /// context becomes `other`'s current context (under its possibly new name).
    pub fn merge(&mut self, other: Talosconfig) -> Vec<(String, String)> {
        let mut renamed = Vec::new();
        let mut current = other.context.clone();
        for (name, context) in other.contexts {
            let mut new_name = name.clone();
            let mut suffix = 1;
            while self.contexts.contains_key(&new_name) {
                new_name = format!("{name}-{suffix}");
                suffix += 1;
            }
            if new_name != name {
                if current == name {
                    current = new_name.clone();
                }
                renamed.push((name, new_name.clone()));
            }
            self.contexts.insert(new_name, context);
        }
        if !current.is_empty() {
            self.context = current;
        }
        renamed
    }

    /// Removes the context `name`; the current context cannot be removed.
    pub fn remove(&mut self, name: &str) -> Result<Context, TalosconfigError> {
        if self.context == name {
            return Err(TalosconfigError::RemoveCurrent(name.to_string()));
        }
        self.contexts
            .remove(name)
            .ok_or_else(|| TalosconfigError::UnknownContext(name.to_string()))
    }
}
