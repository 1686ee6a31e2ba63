//! The files other programs read to resolve names: `resolv.conf` (nameservers, search domains)
//! and `hosts`, and the kernel hostname.
//!
//! In dev mode they are `<state-dir>/system/resolved/resolv.conf` and
//! `<state-dir>/system/etc/hosts`, never the host's. The hostname is set only when networkd has a
//! UTS namespace of its own or was told to (`--set-hostname`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::NetworkdError;
use crate::plan::Hostname;

/// Nameservers used when neither the config, `ip=` nor a DHCP lease names any (upstream's
/// defaults).
pub const DEFAULT_NAMESERVERS: [&str; 2] = ["1.1.1.1", "8.8.8.8"];

/// Where the files go.
#[derive(Debug, Clone)]
pub struct HostFiles {
    pub resolv_conf: PathBuf,
    pub hosts: PathBuf,
}

impl HostFiles {
    /// The dev-mode locations under `state_dir`.
    pub fn under(state_dir: &Path) -> Self {
        HostFiles {
            resolv_conf: state_dir.join("system/resolved/resolv.conf"),
            hosts: state_dir.join("system/etc/hosts"),
        }
    }
}

/// The text of `resolv.conf`.
pub fn resolv_conf(nameservers: &[IpAddr], search: &[String]) -> String {
    let mut text = String::new();
    for server in nameservers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    if !search.is_empty() {
        text.push_str(&format!("search {}\n", search.join(" ")));
    }
    text
}

/// The text of `hosts`: localhost, the node's own name on `node_address`, and extra entries.
pub fn hosts(
    hostname: Option<&Hostname>,
    node_address: Option<IpAddr>,
    extra: &[(IpAddr, Vec<String>)],
) -> String {
    let mut text = String::from("127.0.0.1\tlocalhost\n");
    if let Some(hostname) = hostname {
        let names = if hostname.domain.is_empty() {
            hostname.host.clone()
        } else {
            format!("{} {}", hostname.fqdn(), hostname.host)
        };
        let address = node_address.map_or_else(|| "127.0.1.1".to_string(), |a| a.to_string());
        text.push_str(&format!("{address}\t{names}\n"));
    }
    text.push_str("::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
    for (ip, aliases) in extra {
        text.push_str(&format!("{ip}\t{}\n", aliases.join(" ")));
    }
    text
}

/// Writes `contents` to `path` atomically if it differs; returns whether it changed.
pub fn write_if_changed(path: &Path, contents: &str) -> Result<bool, NetworkdError> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| NetworkdError::Io {
            path: dir.to_path_buf(),
            step: "creating the directory",
            source,
        })?;
    }
    atomicfile::write(
        path,
        contents.as_bytes(),
        0o644,
        atomicfile::Overwrite::Allow,
    )?;
    Ok(true)
}

/// Whether this process has a UTS namespace other than PID 1's (or, where PID 1's cannot be
/// read, its parent's), so that setting the hostname cannot touch the host's. Unknown counts as
/// "no".
pub fn own_uts_namespace() -> bool {
    let Ok(own) = std::fs::read_link("/proc/self/ns/uts") else {
        return false;
    };
    let parent = std::os::unix::process::parent_id();
    let other = std::fs::read_link("/proc/1/ns/uts")
        .or_else(|_| std::fs::read_link(format!("/proc/{parent}/ns/uts")));
    other.is_ok_and(|other| other != own)
}

/// Sets the kernel hostname if it differs; returns whether it changed.
pub fn set_hostname(host: &str) -> Result<bool, NetworkdError> {
    let current = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok());
    if current.as_deref() == Some(host) {
        return Ok(false);
    }
    nix::unistd::sethostname(host).map_err(|errno| NetworkdError::Io {
        path: "sethostname".into(),
        step: "setting the hostname",
        source: errno.into(),
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_text() {
        let servers = ["10.0.0.53".parse().unwrap()];
        assert_eq!(
            resolv_conf(&servers, &["example.org".to_string()]),
            "nameserver 10.0.0.53\nsearch example.org\n"
        );
        let hostname = Hostname {
            host: "node1".into(),
            domain: "example.org".into(),
        };
        let text = hosts(
            Some(&hostname),
            Some("10.0.0.2".parse().unwrap()),
            &[(
                "10.0.0.9".parse().unwrap(),
                vec!["db".into(), "db.lan".into()],
            )],
        );
        assert!(
            text.contains("10.0.0.2\tnode1.example.org node1\n"),
            "{text}"
        );
        assert!(text.ends_with("10.0.0.9\tdb db.lan\n"), "{text}");
    }
}
