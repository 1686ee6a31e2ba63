//! The OCI runtime spec of a system service's container.
//!
//! Every system service runs its program from the image's root filesystem, read-only, in its own
//! mount, PID and IPC namespaces, on the host's network (apid, trustd and etcd serve the node's
//! addresses), with a fresh `/proc`, a `/dev` holding only runc's default devices, a read-only
//! `/sys`, a private `/tmp`, the host paths its spec names, a small capability set, no new
//! privileges, and its own cgroup `/system/<id>` with the spec's memory limit. All system
//! services share one runc shim.

use std::path::Path;

use serde_json::{Value, json};

use super::spec::ServiceSpec;

/// The containerd type URL of a JSON runtime spec.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// What a system service may do as root in its container: file ownership and permission
/// overrides, signalling its own processes, changing user, binding low ports.
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_NET_BIND_SERVICE",
];

/// Kernel interfaces a service never needs to read.
const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

/// Kernel interfaces a service may read but not change.
const READ_ONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The runc shim's grouping annotation: every system service with the same value shares one
/// shim process instead of starting one each (two Go processes fewer per service at boot, and
/// 12–19 MB of memory each).
pub(crate) const SHIM_GROUP: &str = "io.containerd.runc.v2.group";

/// The cgroup of a system service.
pub fn cgroup_path(id: &str) -> String {
    format!("/system/{id}")
}

/// The runtime spec of `spec` with `root` as its read-only root filesystem.
pub fn runtime_spec(spec: &ServiceSpec, root: &Path) -> Value {
    let mut args = vec![spec.command.display().to_string()];
    args.extend(spec.args.iter().cloned());
    // The image's PATH unless the service's environment gives one (one entry per name).
    let mut env = Vec::new();
    if !spec.env.iter().any(|(name, _)| name == "PATH") {
        env.push("PATH=/usr/bin:/usr/sbin:/bin:/sbin".to_string());
    }
    env.extend(
        spec.env
            .iter()
            .map(|(name, value)| format!("{name}={value}")),
    );
    let cwd = spec
        .working_dir
        .as_deref()
        .unwrap_or(Path::new("/"))
        .display()
        .to_string();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777", "size=16m"]}),
    ];
    // The root is read-only, so runc cannot make the binds' mount points in it: each top-level
    // folder holding a bind (`/system`, `/var`) becomes a small tmpfs first.
    let mut parents: Vec<String> = spec
        .mounts
        .iter()
        .filter_map(|mount| mount.path.components().nth(1))
        .map(|top| format!("/{}", top.as_os_str().to_string_lossy()))
        .collect();
    parents.sort();
    parents.dedup();
    for parent in parents {
        mounts.push(
            json!({"destination": parent, "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "noexec", "mode=755", "size=64k"]}),
        );
    }
    for mount in &spec.mounts {
        let path = mount.path.display().to_string();
        let access = if mount.writable { "rw" } else { "ro" };
        mounts.push(json!({"destination": path, "type": "bind", "source": path,
                           "options": ["rbind", "nosuid", "nodev", access]}));
    }
    let mut capabilities: Vec<&str> = CAPABILITIES.to_vec();
    capabilities.extend(spec.extra_capabilities.iter().copied());
    let mut resources = json!({"devices": [{"allow": false, "access": "rwm"}]});
    if let Some(limit) = spec.memory_limit {
        resources["memory"] = json!({"limit": limit});
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {
                "bounding": capabilities,
                "effective": capabilities,
                "permitted": capabilities,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1_048_576u64, "soft": 1_048_576u64}],
            "noNewPrivileges": true,
        },
        "root": {"path": root.display().to_string(), "readonly": true},
        "annotations": {SHIM_GROUP: "system"},
        "mounts": mounts,
        "linux": {
            "cgroupsPath": cgroup_path(&spec.id),
            "resources": resources,
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}],
            "maskedPaths": MASKED,
            "readonlyPaths": READ_ONLY,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::HostMount;

    #[test]
    fn spec_runs_the_program_read_only_with_its_mounts_and_limit() {
        let spec = ServiceSpec {
            args: vec!["--listen".into(), "10.5.0.2:50000".into()],
            env: vec![("RUST_LOG".into(), "debug".into())],
            mounts: vec![
                HostMount::read_only("/system/secrets/apid"),
                HostMount::writable("/system/run/apid"),
            ],
            memory_limit: Some(64 << 20),
            extra_capabilities: vec!["CAP_NET_ADMIN"],
            ..ServiceSpec::process("apid", "/usr/bin/apid")
        };
        let oci = runtime_spec(&spec, Path::new("/system/rootfs"));
        assert_eq!(
            oci["process"]["args"],
            json!(["/usr/bin/apid", "--listen", "10.5.0.2:50000"])
        );
        assert!(
            oci["process"]["env"]
                .as_array()
                .is_some_and(|env| env.contains(&json!("RUST_LOG=debug")))
        );
        assert_eq!(
            oci["root"],
            json!({"path": "/system/rootfs", "readonly": true})
        );
        assert_eq!(oci["linux"]["cgroupsPath"], "/system/apid");
        assert_eq!(
            oci["annotations"]["io.containerd.runc.v2.group"], "system",
            "system services share one shim"
        );
        let bounding = &oci["process"]["capabilities"]["bounding"];
        assert!(
            bounding
                .as_array()
                .is_some_and(|c| c.contains(&json!("CAP_NET_ADMIN"))
                    && c.contains(&json!("CAP_KILL"))
                    && !c.contains(&json!("CAP_SYS_ADMIN")))
        );
        assert_eq!(oci["linux"]["resources"]["memory"]["limit"], 64 << 20);
        let binds: Vec<(&str, bool)> = oci["mounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["type"] == "bind")
            .map(|m| {
                let ro = m["options"]
                    .as_array()
                    .is_some_and(|o| o.contains(&json!("ro")));
                (m["destination"].as_str().unwrap_or_default(), ro)
            })
            .collect();
        assert_eq!(
            binds,
            vec![("/system/secrets/apid", true), ("/system/run/apid", false)]
        );
        let destinations: Vec<&str> = oci["mounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["destination"].as_str())
            .collect();
        assert_eq!(
            destinations[4..],
            ["/system", "/system/secrets/apid", "/system/run/apid"],
            "one tmpfs holds the binds' mount points, before them"
        );
        assert_eq!(
            oci["process"]["env"],
            json!(["PATH=/usr/bin:/usr/sbin:/bin:/sbin", "RUST_LOG=debug"])
        );
        let with_path = spec.with_node_environment(&[("PATH".into(), "/opt/bin".into())]);
        assert_eq!(
            runtime_spec(&with_path, Path::new("/system/rootfs"))["process"]["env"],
            json!(["PATH=/opt/bin", "RUST_LOG=debug"]),
            "the node's PATH replaces the image's"
        );
        let namespaces = &oci["linux"]["namespaces"];
        assert!(
            !namespaces
                .as_array()
                .into_iter()
                .flatten()
                .any(|n| n["type"] == "network"),
            "system services share the host's network"
        );
    }
}
