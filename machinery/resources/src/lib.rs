//! Resources and controllers, the shape of upstream Talos's machined.
//!
//! - A [`Resource`] is `(namespace, type, id)`, metadata (version, owner, phase, labels,
//!   annotations, finalizers, created and updated times) and a spec in upstream's two forms
//!   (YAML text and protobuf bytes). Typed specs implement [`Spec`].
//! - The [`State`] holds resources in memory and answers Get, List and Watch: a watch of a kind
//!   or of one resource starts with the current contents when asked (then a bootstrapped
//!   marker), or with the last events of the kind, then follows every change. Only a
//!   resource's owner may change or destroy it.
//! - A [`Controller`] declares the kinds it reads and the kinds it writes; the [`Runtime`] runs
//!   it whenever one of its inputs changes (and when it asks to be run again), retries a
//!   failure with back-off, reports failures, and lets it write only its outputs, as their
//!   owner. [`Runtime::graph`] is the dependency graph (`talosctl inspect dependencies`).
//!
//! Limits: no persistence (machined rebuilds the state at boot), no label queries in watches,
//! finalizers are carried but not enforced.

mod error;
mod resource;
mod runtime;
mod state;

pub use error::StateError;
pub use resource::{Kind, Metadata, Phase, Resource, Spec};
pub use runtime::{Context, Controller, ControllerGraph, Requeue, Runtime};
pub use state::{Event, EventKind, State, Watch, WatchOptions};
