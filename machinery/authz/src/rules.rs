//! The per-method rules (reference §3.2): which roles may call which gRPC method.

use thiserror::Error;

use crate::role::{Role, RoleSet};

/// The roles a method admits; a caller needs at least one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllowedRoles(u8);

impl AllowedRoles {
    const fn of(roles: &[Role]) -> Self {
        let mut bits = 0;
        let mut index = 0;
        while index < roles.len() {
            bits |= roles[index].bit();
            index += 1;
        }
        AllowedRoles(bits)
    }

    /// Whether this role is admitted.
    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Whether any known role of the caller is admitted.
    pub fn admits(self, roles: &RoleSet) -> bool {
        self.0 & roles.known_bits() != 0
    }

    /// The admitted roles, in [`Role::ALL`] order.
    pub fn roles(self) -> impl Iterator<Item = Role> {
        Role::ALL
            .into_iter()
            .filter(move |role| self.contains(*role))
    }
}

use Role::{Admin, EtcdBackup, ImageVerifier, MetaWriter, Operator, Reader};

const ADMIN: AllowedRoles = AllowedRoles::of(&[Admin]);
const OPERATOR: AllowedRoles = AllowedRoles::of(&[Admin, Operator]);
const ETCD_SNAPSHOT: AllowedRoles = AllowedRoles::of(&[Admin, Operator, EtcdBackup]);
const ETCD_READ: AllowedRoles = AllowedRoles::of(&[Admin, Operator, Reader, EtcdBackup]);
const READER: AllowedRoles = AllowedRoles::of(&[Admin, Operator, Reader]);
const IMAGE_VERIFY: AllowedRoles = AllowedRoles::of(&[Admin, Operator, Reader, ImageVerifier]);
const META_WRITE: AllowedRoles = AllowedRoles::of(&[Admin, MetaWriter]);
/// Reader is admitted by the table; the handlers accept it only in maintenance mode.
const MAINTENANCE_WRITE: AllowedRoles = AllowedRoles::of(&[Admin, Reader]);

/// The roles admitted for a full gRPC method path (`/package.Service/Method`). Methods the
/// table does not list are admin-only.
pub fn allowed_roles(method_path: &str) -> AllowedRoles {
    match method_path {
        "/machine.MachineService/EtcdAlarmDisarm"
        | "/machine.MachineService/EtcdDefragment"
        | "/machine.MachineService/ImagePull"
        | "/machine.MachineService/PacketCapture"
        | "/machine.MachineService/Reboot"
        | "/machine.MachineService/Restart"
        | "/machine.MachineService/ServiceRestart"
        | "/machine.MachineService/ServiceStart"
        | "/machine.MachineService/ServiceStop"
        | "/machine.MachineService/Shutdown"
        | "/machine.ImageService/Pull" => OPERATOR,

        "/machine.MachineService/EtcdSnapshot" => ETCD_SNAPSHOT,

        "/machine.MachineService/EtcdAlarmList"
        | "/machine.MachineService/EtcdMemberList"
        | "/machine.MachineService/EtcdStatus" => ETCD_READ,

        "/machine.MachineService/CPUInfo"
        | "/machine.MachineService/CPUFreqStats"
        | "/machine.MachineService/Containers"
        | "/machine.MachineService/DiskStats"
        | "/machine.MachineService/DiskUsage"
        | "/machine.MachineService/Dmesg"
        | "/machine.MachineService/Events"
        | "/machine.MachineService/Hostname"
        | "/machine.MachineService/ImageList"
        | "/machine.MachineService/List"
        | "/machine.MachineService/LoadAvg"
        | "/machine.MachineService/Logs"
        | "/machine.MachineService/LogsContainers"
        | "/machine.MachineService/Memory"
        | "/machine.MachineService/Mounts"
        | "/machine.MachineService/NetworkDeviceStats"
        | "/machine.MachineService/Netstat"
        | "/machine.MachineService/Processes"
        | "/machine.MachineService/ServiceList"
        | "/machine.MachineService/Stats"
        | "/machine.MachineService/SystemStat"
        | "/machine.MachineService/Version"
        | "/cluster.ClusterService/HealthCheck"
        | "/inspect.InspectService/ControllerRuntimeDependencies"
        | "/machine.ImageService/List"
        | "/machine.StorageService/Statfs"
        | "/storage.StorageService/Disks"
        | "/time.TimeService/Time"
        | "/time.TimeService/TimeCheck"
        | "/cosi.resource.State/Get"
        | "/cosi.resource.State/List"
        | "/cosi.resource.State/Watch" => READER,

        "/machine.ImageService/Verify" => IMAGE_VERIFY,

        "/machine.MachineService/MetaWrite" | "/machine.MachineService/MetaDelete" => META_WRITE,

        "/machine.MachineService/ApplyConfiguration"
        | "/storage.StorageService/BlockDeviceWipe"
        | "/machine.LVMService/LogicalVolumeRemove"
        | "/machine.LVMService/VolumeGroupRemove"
        | "/machine.LVMService/PhysicalVolumeRemove"
        | "/machine.MDService/Destroy" => MAINTENANCE_WRITE,

        // Listed as admin-only upstream (Bootstrap, Copy, Etcd{ForfeitLeadership,LeaveCluster,
        // Recover,RemoveMemberByID,Downgrade*}, GenerateClientConfiguration, Kubeconfig, Read,
        // Reset, Rollback, Upgrade, ImageService Import/Remove, DebugService ContainerRun,
        // LifecycleService Install/Upgrade, COSI writes) and the fallback for everything else.
        _ => ADMIN,
    }
}

/// A call refused by the method table. Servers report it as `PermissionDenied` with the
/// message `not authorized` (the [`Display`](std::fmt::Display) text).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("not authorized")]
pub struct Denied {
    /// The full gRPC path of the refused method.
    pub method: String,
}

/// Checks that the caller's roles admit the method at `method_path`.
pub fn authorize(method_path: &str, roles: &RoleSet) -> Result<(), Denied> {
    if allowed_roles(method_path).admits(roles) {
        Ok(())
    } else {
        Err(Denied {
            method: method_path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> RoleSet {
        [role].into_iter().collect()
    }

    const VERSION: &str = "/machine.MachineService/Version";
    const REBOOT: &str = "/machine.MachineService/Reboot";
    const RESET: &str = "/machine.MachineService/Reset";
    const SNAPSHOT: &str = "/machine.MachineService/EtcdSnapshot";

    #[test]
    fn reader_reads_but_does_not_reboot() {
        let reader = caller(Reader);
        assert_eq!(authorize(VERSION, &reader), Ok(()));
        assert_eq!(authorize("/cosi.resource.State/Watch", &reader), Ok(()));
        assert_eq!(
            authorize("/machine.MachineService/EtcdMemberList", &reader),
            Ok(())
        );
        let denied = authorize(REBOOT, &reader).expect_err("reader must not reboot");
        assert_eq!(denied.method, REBOOT);
        assert_eq!(denied.to_string(), "not authorized");
        assert!(authorize("/machine.MachineService/Read", &reader).is_err());
        assert!(authorize("/cosi.resource.State/Create", &reader).is_err());
    }

    #[test]
    fn operator_reboots_but_does_not_reset() {
        let operator = caller(Operator);
        assert_eq!(authorize(REBOOT, &operator), Ok(()));
        assert_eq!(authorize(VERSION, &operator), Ok(()));
        assert_eq!(authorize(SNAPSHOT, &operator), Ok(()));
        assert!(authorize(RESET, &operator).is_err());
        assert!(authorize("/machine.MachineService/Kubeconfig", &operator).is_err());
        assert!(authorize("/machine.MachineService/MetaWrite", &operator).is_err());
    }

    #[test]
    fn etcd_backup_takes_snapshots_and_reads_etcd_only() {
        let backup = caller(EtcdBackup);
        assert_eq!(authorize(SNAPSHOT, &backup), Ok(()));
        assert_eq!(
            authorize("/machine.MachineService/EtcdStatus", &backup),
            Ok(())
        );
        assert!(authorize(VERSION, &backup).is_err());
        assert!(authorize(REBOOT, &backup).is_err());
        assert!(authorize("/machine.MachineService/EtcdDefragment", &backup).is_err());
    }

    #[test]
    fn narrow_roles_reach_their_own_methods() {
        assert_eq!(
            authorize("/machine.ImageService/Verify", &caller(ImageVerifier)),
            Ok(())
        );
        assert!(authorize("/machine.ImageService/List", &caller(ImageVerifier)).is_err());
        assert_eq!(
            authorize("/machine.MachineService/MetaDelete", &caller(MetaWriter)),
            Ok(())
        );
        assert!(authorize(VERSION, &caller(MetaWriter)).is_err());
        assert!(authorize(VERSION, &caller(Role::Impersonator)).is_err());
    }

    #[test]
    fn admin_may_call_everything() {
        let admin = caller(Admin);
        for method in [
            VERSION,
            REBOOT,
            RESET,
            SNAPSHOT,
            "/machine.MachineService/Kubeconfig",
        ] {
            assert_eq!(authorize(method, &admin), Ok(()), "{method}");
        }
        assert_eq!(
            authorize("/machine.DebugService/ContainerRun", &admin),
            Ok(())
        );
        assert_eq!(authorize("/made.Up/Method", &admin), Ok(()));
    }

    #[test]
    fn unknown_methods_are_admin_only() {
        let everyone_but_admin: RoleSet = Role::ALL.into_iter().filter(|r| *r != Admin).collect();
        assert!(authorize("/made.Up/Method", &everyone_but_admin).is_err());
        assert!(authorize("", &everyone_but_admin).is_err());
        assert_eq!(
            allowed_roles("/made.Up/Method").roles().collect::<Vec<_>>(),
            [Admin]
        );
        // Matching is exact: no prefix or case folding.
        assert!(authorize("/machine.MachineService/version", &caller(Reader)).is_err());
    }

    #[test]
    fn unknown_role_strings_grant_nothing() {
        let roles = RoleSet::parse(["os:superuser", "admin", "x,os:admin"]);
        assert!(roles.is_empty());
        assert!(authorize(VERSION, &roles).is_err());
    }

    #[test]
    fn maintenance_writes_admit_reader() {
        let allowed = allowed_roles("/machine.MachineService/ApplyConfiguration");
        assert_eq!(allowed.roles().collect::<Vec<_>>(), [Admin, Reader]);
        assert!(!allowed.contains(Operator));
    }
}
