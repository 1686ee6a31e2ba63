//! machined: PID 1 of talos-rs, or an ordinary process in dev mode.

pub mod events;
pub mod services;
