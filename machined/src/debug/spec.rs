//! The OCI runtime spec of a debug container, `PROFILE_PRIVILEGED` as upstream: the host's
//! network, PID and IPC namespaces, every capability, every device allowed, no seccomp, the
//! host's root at `/host`, its `/sys` writable, its `/etc/hosts` and `/etc/resolv.conf`; a
//! root filesystem of its own (the image's layers, writable), its own mount and UTS
//! namespaces, cgroup `/system/debug/<id>`, and a terminal when the caller has one.

use std::path::Path;

use serde_json::{Value, json};

use crate::services::oci::SHIM_GROUP;

/// Every capability a process can hold (Linux 6.1).
const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What one debug container runs.
#[derive(Debug)]
pub struct Process<'a> {
    pub id: &'a str,
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub tty: bool,
}

/// The cgroup of debug container `id`.
pub fn cgroup_path(id: &str) -> String {
    format!("/system/debug/{id}")
}

/// The runtime spec of `process` with `rootfs` as its root; `host_root` is the host's `/`
/// (the test layouts of dev mode have another), whose `/etc` files are bound when present.
pub fn runtime_spec(process: &Process<'_>, rootfs: &Path, host_root: &Path) -> Value {
    let mut env: Vec<String> = Vec::new();
    if !process.env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    if process.tty && !process.env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    env.extend(process.env.iter().cloned());
    let host = |path: &str| host_root.join(path.trim_start_matches('/'));
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/sys", "type": "bind", "source": host("/sys").display().to_string(),
               "options": ["rbind", "rw"]}),
        json!({"destination": "/host", "type": "bind", "source": host_root.display().to_string(),
               "options": ["rbind", "rw"]}),
    ];
    for file in ["/etc/hosts", "/etc/resolv.conf"] {
        if host(file).is_file() {
            mounts.push(json!({"destination": file, "type": "bind",
                               "source": host(file).display().to_string(),
                               "options": ["rbind", "ro"]}));
        }
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": process.tty,
            "user": {"uid": 0, "gid": 0},
            "args": process.args,
            "env": env,
            "cwd": if process.cwd.is_empty() { "/" } else { process.cwd },
            "capabilities": {
                "bounding": ALL_CAPABILITIES,
                "effective": ALL_CAPABILITIES,
                "permitted": ALL_CAPABILITIES,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1_048_576u64, "soft": 1_048_576u64}],
            "noNewPrivileges": false,
        },
        "root": {"path": rootfs.display().to_string(), "readonly": false},
        "annotations": {SHIM_GROUP: "system"},
        "mounts": mounts,
        "linux": {
            "cgroupsPath": cgroup_path(process.id),
            "resources": {"devices": [{"allow": true, "access": "rwm"}]},
            "namespaces": [{"type": "mount"}, {"type": "uts"}],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_shares_the_hosts_pid_network_and_ipc_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/resolv.conf"), "nameserver 10.0.2.3\n").unwrap();
        let args = ["/bin/sh".to_string()];
        let spec = runtime_spec(
            &Process {
                id: "debug-1",
                args: &args,
                env: &["FOO=bar".to_string()],
                cwd: "",
                tty: true,
            },
            Path::new("/run/debug/rootfs"),
            dir.path(),
        );
        let namespaces: Vec<&str> = spec["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["type"].as_str())
            .collect();
        assert_eq!(namespaces, ["mount", "uts"], "host pid, network and ipc");
        assert_eq!(spec["process"]["terminal"], true);
        assert_eq!(spec["process"]["cwd"], "/");
        assert_eq!(spec["linux"]["cgroupsPath"], "/system/debug/debug-1");
        let env = spec["process"]["env"].as_array().unwrap();
        assert!(env.contains(&json!("FOO=bar")) && env.contains(&json!("TERM=xterm")));
        let caps = spec["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap();
        assert!(caps.contains(&json!("CAP_SYS_ADMIN")));
        let destinations: Vec<&str> = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["destination"].as_str())
            .collect();
        assert!(destinations.contains(&"/host") && destinations.contains(&"/etc/resolv.conf"));
        assert!(
            !destinations.contains(&"/etc/hosts"),
            "absent on the host: not bound"
        );
        assert_eq!(spec["root"]["readonly"], false);
    }
}
