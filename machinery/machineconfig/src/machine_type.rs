//! The role of a machine (`machine.type`) and the mode the OS runs in.

use std::fmt;
use std::str::FromStr;

use crate::ConfigError;

/// The role of a machine in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MachineType {
    /// Legacy: a control plane node that bootstraps etcd by itself.
    Init,
    /// A control plane node (runs etcd and the Kubernetes control plane).
    ControlPlane,
    /// A worker node.
    Worker,
}

impl MachineType {
    /// The canonical spelling, as written in `machine.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineType::Init => "init",
            MachineType::ControlPlane => "controlplane",
            MachineType::Worker => "worker",
        }
    }

    /// Init and control plane nodes run the control plane.
    pub fn is_control_plane(self) -> bool {
        matches!(self, MachineType::Init | MachineType::ControlPlane)
    }
}

impl FromStr for MachineType {
    type Err = ConfigError;

    /// Accepts the canonical names plus the legacy `join` and the empty string (both: worker).
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "init" => Ok(MachineType::Init),
            "controlplane" => Ok(MachineType::ControlPlane),
            "worker" | "join" | "" => Ok(MachineType::Worker),
            other => Err(ConfigError::UnknownMachineType {
                value: other.to_string(),
            }),
        }
    }
}

impl fmt::Display for MachineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the OS runs; some validation rules depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuntimeMode {
    /// Bare metal or a VM booted from install media: the OS installs itself to a disk.
    Metal,
    /// A cloud VM booted from a disk image.
    Cloud,
    /// Inside a container (the docker provisioner).
    Container,
}

impl RuntimeMode {
    /// Whether the OS installs itself to a disk (so that `machine.install` matters).
    pub fn requires_install(self) -> bool {
        matches!(self, RuntimeMode::Metal)
    }

    /// The name used on command lines and in the kernel arguments.
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeMode::Metal => "metal",
            RuntimeMode::Cloud => "cloud",
            RuntimeMode::Container => "container",
        }
    }
}

impl FromStr for RuntimeMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "metal" => Ok(RuntimeMode::Metal),
            "cloud" => Ok(RuntimeMode::Cloud),
            "container" => Ok(RuntimeMode::Container),
            other => Err(ConfigError::UnknownRuntimeMode {
                value: other.to_string(),
            }),
        }
    }
}

impl fmt::Display for RuntimeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_types_parse_with_legacy_aliases() {
        assert_eq!(
            "controlplane".parse::<MachineType>().unwrap(),
            MachineType::ControlPlane
        );
        assert_eq!("init".parse::<MachineType>().unwrap(), MachineType::Init);
        assert_eq!("join".parse::<MachineType>().unwrap(), MachineType::Worker);
        assert_eq!("".parse::<MachineType>().unwrap(), MachineType::Worker);
        let err = "master".parse::<MachineType>().unwrap_err();
        assert_eq!(err.to_string(), "unknown machine type \"master\"");
        assert!(MachineType::Init.is_control_plane());
        assert!(!MachineType::Worker.is_control_plane());
    }

    #[test]
    fn runtime_modes_parse() {
        assert_eq!("metal".parse::<RuntimeMode>().unwrap(), RuntimeMode::Metal);
        assert_eq!(
            "container".parse::<RuntimeMode>().unwrap(),
            RuntimeMode::Container
        );
        assert!(RuntimeMode::Metal.requires_install());
        assert!(!RuntimeMode::Cloud.requires_install());
        assert!("docker".parse::<RuntimeMode>().is_err());
    }
}
