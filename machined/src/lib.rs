//! machined: PID 1 of talos-rs, or an ordinary process in dev mode.
//!
//! machined holds the machine config (validated, persisted atomically, applied through the
//! machine API), supervises every other daemon (today: timed, apid, networkd when it owns the
//! network, and on control planes trustd, as child processes), issues their TLS material (workers through a control plane's
//! trustd), keeps the runtime event log, and serves `machine.MachineService` (and
//! `time.TimeService`, answered by timed) on its Unix socket with data read from the host.
//!
//! Dev mode is [`runtime`]; OS mode ([`os`], machined as PID 1 of the image) boots the machine
//! and then runs the same runtime rooted at `/`. Limits today: services are child processes, not
//! containerd tasks; of the COSI resource API only the types in `api/resources` are served.

mod api;
pub mod api_services;
mod block;
pub mod boot_clock;
mod certificates;
mod clock;
pub mod containerd;
mod controllers;
mod cri;
mod debug;
mod environment;
mod error;
mod etc_files;
mod etcd;
mod event_sink;
pub mod events;
mod glob;
mod install;
mod kmsg;
mod kubelet;
mod layout;
mod local_socket;
pub mod log_shipping;
mod machine;
pub mod network;
mod node_config;
pub mod os;
#[allow(unsafe_code)]
mod packet_socket;
pub mod runtime;
pub mod services;
mod time_sync;
pub mod upgrade;
mod vip;
mod watchdog;

pub use debug::image as debug_image;
pub use error::MachinedError;
pub use event_sink::check_endpoint as event_sink_endpoint;
pub use machine::{Platform, ResetPlan};
pub use runtime::{BUILD_RELEASE, Exit, Options, run};
