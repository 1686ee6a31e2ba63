//! Client side of the Talos API, shared by `talosctl` and tests.
//!
//! - [`Endpoint`]: apid addresses as talosconfig and `--endpoints` spell them (`host`,
//!   `host:port`, `[v6]:port` or a URL), port 50000 by default.
//! - [`TlsSettings`]: mutual TLS from a talosconfig context (client certificate and key, server
//!   verified against the context's CA with the dialled host as server name, so an IP endpoint
//!   must match an IP SAN), or the maintenance-mode "insecure" TLS, optionally pinned by
//!   [`SpkiFingerprint`] (SHA-256 of the server's SubjectPublicKeyInfo).
//! - [`Client`]: gRPC over HTTP/2 on rustls. Several endpoints are tried in order, each attempt
//!   (TCP connect and TLS handshake) bounded by a timeout. Messages up to 32 MiB.
//! - [`NodeTarget`]: the `node` / `nodes` metadata apid routes on.
//! - [`NodeReply`], [`split_by_node`]: a `messages` reply or a streamed message attributed to its
//!   node through `metadata.hostname` / `metadata.error`.
//!
//! Limits: endpoints are tried in order rather than balanced round-robin; no HTTP/SOCKS proxy
//! (`proxy-url`) and no alternative `auth` (basic, SideroV1).

mod client;
mod endpoint;
mod error;
mod reply;
mod target;
mod tls;

pub use client::{Client, DEFAULT_CONNECT_TIMEOUT, MAX_MESSAGE_SIZE};
pub use endpoint::{DEFAULT_PORT, Endpoint};
pub use error::ApiClientError;
pub use reply::{NodeMessage, NodeReply, split_by_node};
pub use target::{NODE_KEY, NODES_KEY, NodeTarget};
pub use tls::{SpkiFingerprint, TlsSettings};
