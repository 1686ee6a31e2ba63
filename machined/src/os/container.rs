//! The `container` platform: machined as PID 1 of a container (`PLATFORM=container`), the
//! nodes of `talosctl cluster create docker`.
//!
//! The container engine has done what the initramfs does on a machine: the root filesystem is
//! the image's (read-only), `/proc`, `/sys` and `/dev` are mounted, `/run`, `/system` and
//! `/tmp` are tmpfs, and STATE (`/system/state`) and EPHEMERAL (`/var`) are volumes. The
//! network is the engine's too (networkd does not run). When STATE holds no config, the
//! base64 `USERDATA` variable becomes it, as upstream's container platform does.
//!
//! The system services run as machined's child processes: the container is their isolation,
//! and the engine's cgroup v1 hierarchy is not one containerd can nest in here. timed only
//! measures (the clock is the host's). Reboot and shutdown are refused in container mode, as
//! upstream does; SIGTERM (`docker stop`) stops every service in order and exits.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use machineconfig::RuntimeMode;

use crate::api_services::ApiServices;
use crate::error::MachinedError;
use crate::machine::Platform;
use crate::runtime::Options;

/// The environment variable that selects this platform.
pub const PLATFORM_VARIABLE: &str = "PLATFORM";
/// Its value.
pub const PLATFORM_NAME: &str = "container";
/// The variable holding the base64 machine config.
const USERDATA_VARIABLE: &str = "USERDATA";
/// Largest config accepted from `USERDATA` (decoded), as the API's own limit.
const MAX_USERDATA: usize = 4 << 20;

/// Whether this PID 1 runs in a container of the docker provisioner.
pub fn selected() -> bool {
    std::env::var(PLATFORM_VARIABLE).is_ok_and(|value| value == PLATFORM_NAME)
}

/// Runs the node; returns when it has stopped (the container then exits).
pub fn run() -> Result<(), MachinedError> {
    let version = env!("CARGO_PKG_VERSION");
    logging::init_with_tee("machined", version, crate::log_shipping::machined_log_tee());
    tracing::info!("container platform");
    let root = PathBuf::from("/");
    seed_config(
        &crate::layout::Layout::new(&root).config_file(),
        std::env::var(USERDATA_VARIABLE).ok().as_deref(),
    );
    let programs = Path::new(super::PROGRAMS);
    let options = Options {
        state_dir: root,
        api_address: SocketAddr::new(IpAddr::V4(node_address()), super::API_PORT),
        hostname: nix::unistd::gethostname()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "talos".into()),
        api_services: ApiServices {
            apid: programs.join("apid"),
            trustd: programs.join("trustd"),
            certificate_ttl: Duration::from_secs(24 * 3600),
        },
        timed: programs.join("timed"),
        networkd: None,
        etcd: programs.join("etcd"),
        containerd: None,
        platform: Platform {
            name: PLATFORM_NAME.into(),
            mode: RuntimeMode::Container,
            metadata: None,
            user_data_problem: None,
            network_yaml: None,
        },
        release: crate::BUILD_RELEASE.into(),
        system_disk: None,
        boot_artifacts: None,
        kernel_log_destination: None,
        events_sink: None,
        kernel_environment: Vec::new(),
        install_media: None,
        ending: None,
    };
    let runtime = tokio::runtime::Runtime::new()
        .map_err(MachinedError::io("starting", "the tokio runtime"))?;
    runtime.block_on(crate::runtime::run(options))?;
    Ok(())
}

/// Writes the `USERDATA` config to STATE when STATE has none; a variable that is not base64,
/// too large or empty is logged and the node waits in maintenance mode.
fn seed_config(config_file: &Path, userdata: Option<&str>) {
    let Some(userdata) = userdata.filter(|text| !text.trim().is_empty()) else {
        return;
    };
    if config_file.exists() {
        return;
    }
    let config = match decode_userdata(userdata) {
        Ok(config) => config,
        Err(reason) => {
            tracing::error!("{USERDATA_VARIABLE}: {reason}; waiting in maintenance mode");
            return;
        }
    };
    let write = config_file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(|error| error.to_string())
        .and_then(|()| {
            atomicfile::write(config_file, &config, 0o600, atomicfile::Overwrite::Allow)
                .map_err(|error| error.to_string())
        });
    match write {
        Ok(()) => tracing::info!("config taken from {USERDATA_VARIABLE}"),
        Err(error) => tracing::error!("cannot persist the {USERDATA_VARIABLE} config: {error}"),
    }
}

fn decode_userdata(userdata: &str) -> Result<Vec<u8>, String> {
    let compact: String = userdata.split_whitespace().collect();
    if compact.len() > MAX_USERDATA / 3 * 4 + 4 {
        return Err(format!("larger than {} MiB", MAX_USERDATA >> 20));
    }
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|error| format!("not base64: {error}"))
}

/// The container's first IPv4 address outside loopback (the engine's network), loopback when
/// it has none.
fn node_address() -> Ipv4Addr {
    let addresses = nix::ifaddrs::getifaddrs().into_iter().flatten();
    let mut found: Vec<(String, Ipv4Addr)> = addresses
        .filter_map(|entry| {
            let address = entry.address?.as_sockaddr_in()?.ip();
            (!address.is_loopback()).then_some((entry.interface_name, address))
        })
        .collect();
    found.sort();
    found
        .first()
        .map_or(Ipv4Addr::LOCALHOST, |(_, address)| *address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userdata_becomes_the_config_only_when_state_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("system/state/config.yaml");
        let encoded = base64::engine::general_purpose::STANDARD.encode("version: v1alpha1\n");
        seed_config(&file, Some(&encoded));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "version: v1alpha1\n"
        );

        let other = base64::engine::general_purpose::STANDARD.encode("other\n");
        seed_config(&file, Some(&other));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "version: v1alpha1\n"
        );
    }

    #[test]
    fn bad_userdata_leaves_state_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yaml");
        seed_config(&file, Some("not base64 at all!"));
        assert!(!file.exists());
        let huge = "A".repeat(MAX_USERDATA * 2);
        assert!(decode_userdata(&huge).unwrap_err().contains("larger than"));
    }
}
