//! machined: PID 1 of talos-rs, or an ordinary process in dev mode.
//!
//! machined holds the machine config (validated, persisted atomically, applied through the
//! machine API), supervises every other daemon (today: apid, as a child process), issues apid's
//! TLS material, keeps the runtime event log, and serves `machine.MachineService` on its Unix
//! socket with data read from the host.
//!
//! Dev mode is [`runtime`]; OS mode ([`os`], machined as PID 1 of the image) boots the machine and
//! then runs the same runtime rooted at `/`. Limits today: no containerd tasks; worker nodes cannot serve the API until trustd exists, since
//! their apid certificate must come from it; of the COSI resource API only Get of the active
//! machine config is served.

mod api;
mod apid_tls;
mod error;
pub mod events;
mod layout;
mod machine;
mod node_config;
pub mod os;
pub mod runtime;
pub mod services;

pub use error::MachinedError;
pub use machine::Platform;
pub use runtime::{Exit, Options, run};
