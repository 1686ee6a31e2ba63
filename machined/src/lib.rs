//! machined: PID 1 of talos-rs, or an ordinary process in dev mode.
//!
//! machined holds the machine config (validated, persisted atomically, applied through the
//! machine API), supervises every other daemon (today: timed, apid, networkd when it owns the
//! network, and on control planes trustd, as child processes), issues their TLS material (workers through a control plane's
//! trustd), keeps the runtime event log, and serves `machine.MachineService` (and
//! `time.TimeService`, answered by timed) on its Unix socket with data read from the host.
//!
//! Limits today: only dev mode ([`runtime`]) is implemented — the image (PID 1, mounts, disks,
//! containerd tasks) comes later; of the COSI resource API only Get of the active machine config
//! is served.

mod api;
pub mod api_services;
mod certificates;
mod error;
mod etcd;
pub mod events;
mod layout;
mod local_socket;
mod machine;
pub mod network;
mod node_config;
pub mod runtime;
pub mod services;
mod time_sync;

pub use error::MachinedError;
pub use runtime::{Exit, Options, run};
