//! Talos API roles and the per-method authorization rules shared by apid and machined.
//!
//! - [`Role`] and [`RoleSet`]: the role strings carried in client certificates (one Subject
//!   Organization per role) and in the multi-valued `talos-role` gRPC metadata. A string grants
//!   a role only when it is exactly the role's name; any other string grants nothing.
//! - [`allowed_roles`] and [`authorize`]: the per-method table (reference §3.2), keyed by the
//!   full gRPC path such as `/machine.MachineService/Reboot`. Methods not in the table are
//!   admin-only. A refusal is [`Denied`], which the servers report as `PermissionDenied`
//!   with the message `not authorized`.
//! - The gRPC metadata keys apid and machined exchange ([`METADATA_ROLE`], [`METADATA_NODE`],
//!   [`METADATA_NODES`], [`METADATA_PROXY_FROM`]).
//!
//! Limits: this is the method table only. The COSI resource policy that machined adds on top
//! (no writes, sensitive types admin-only) and the rule that `ApplyConfiguration` accepts a reader
//! only in maintenance mode belong to the handlers.

mod role;
mod rules;

pub use role::{Role, RoleSet};
pub use rules::{AllowedRoles, Denied, allowed_roles, authorize};

/// Metadata key carrying the original caller's roles, one value per role (set by apid when it
/// forwards; trusted only from callers holding [`Role::Impersonator`]).
pub const METADATA_ROLE: &str = "talos-role";
/// Metadata key naming the single node a call is forwarded to (one-to-one proxying).
pub const METADATA_NODE: &str = "node";
/// Metadata key listing the nodes a call fans out to (one-to-many proxying, deprecated upstream).
pub const METADATA_NODES: &str = "nodes";
/// Metadata key apid sets to the original `:authority` when it forwards; its presence means
/// "deliver locally, do not forward again".
pub const METADATA_PROXY_FROM: &str = "proxyfrom";
