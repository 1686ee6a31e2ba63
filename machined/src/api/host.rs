//! Version and the monitoring RPCs (Memory … Netstat): host data from [`hostinfo`], read on a
//! blocking thread and wrapped in the one-element `messages` list every reply carries.

use hostinfo::{Host, HostInfoError};
use proto::machine::{
    CpuFreqStatsResponse, CpuInfoResponse, DiskStatsResponse, FeaturesInfo, LoadAvgResponse,
    MemoryResponse, MountsResponse, NetstatRequest, NetstatResponse, NetworkDeviceStatsResponse,
    PlatformInfo, ProcessesResponse, SystemStatResponse, Version, VersionInfo, VersionResponse,
};

use crate::error::MachinedError;
use crate::machine::Machine;

/// The upstream Talos release whose machine API talos-rs answers like; reported as the Version
/// tag, which clients use to pick protocols (e.g. how `talosctl upgrade` talks to the node).
pub(crate) const COMPATIBLE_TALOS_TAG: &str = "v1.13.0";

/// `Version`: the compatible Talos tag, this build, and the platform. `features` stays unset
/// while no config is active (as upstream, whose RBAC switch lives in the config).
pub(super) fn version(machine: &Machine) -> VersionResponse {
    VersionResponse {
        messages: vec![Version {
            metadata: None,
            version: Some(VersionInfo {
                tag: COMPATIBLE_TALOS_TAG.to_owned(),
                sha: format!("talos-rs {}", machine.release),
                built: String::new(),
                go_version: String::new(),
                os: std::env::consts::OS.to_owned(),
                arch: go_arch(std::env::consts::ARCH).to_owned(),
            }),
            platform: Some(PlatformInfo {
                name: machine.platform.name.clone(),
                mode: machine.platform.mode.as_str().to_owned(),
            }),
            features: (!machine.in_maintenance()).then_some(FeaturesInfo { rbac: true }),
        }],
    }
}

/// Go's name (`GOARCH`) of a Rust target architecture, as talosctl expects it.
fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Runs a (procfs-reading, hence blocking) [`Host`] query on a blocking thread.
pub(super) async fn on_host<T: Send + 'static>(
    machine: &Machine,
    query: impl FnOnce(&Host) -> Result<T, HostInfoError> + Send + 'static,
) -> Result<T, MachinedError> {
    let host = machine.host.clone();
    match tokio::task::spawn_blocking(move || query(&host)).await {
        Ok(result) => Ok(result?),
        // A panic in the query is a bug: the hook logged it; the caller gets an error and
        // machined goes on.
        Err(error) if error.is_panic() => {
            Err(MachinedError::Internal("reading host data failed".into()))
        }
        Err(_) => Err(MachinedError::FailedPrecondition(
            "reading host data: cancelled because machined is shutting down".to_owned(),
        )),
    }
}

pub(super) async fn memory(machine: &Machine) -> Result<MemoryResponse, MachinedError> {
    let memory = on_host(machine, Host::memory).await?;
    Ok(MemoryResponse {
        messages: vec![memory],
    })
}

pub(super) async fn load_avg(machine: &Machine) -> Result<LoadAvgResponse, MachinedError> {
    let load_avg = on_host(machine, Host::load_avg).await?;
    Ok(LoadAvgResponse {
        messages: vec![load_avg],
    })
}

pub(super) async fn system_stat(machine: &Machine) -> Result<SystemStatResponse, MachinedError> {
    let system_stat = on_host(machine, Host::system_stat).await?;
    Ok(SystemStatResponse {
        messages: vec![system_stat],
    })
}

pub(super) async fn cpu_info(machine: &Machine) -> Result<CpuInfoResponse, MachinedError> {
    let cpu_info = on_host(machine, Host::cpu_info).await?;
    Ok(CpuInfoResponse {
        messages: vec![cpu_info],
    })
}

pub(super) async fn cpu_freq_stats(
    machine: &Machine,
) -> Result<CpuFreqStatsResponse, MachinedError> {
    let cpu_freq_stats = on_host(machine, Host::cpu_freq_stats).await?;
    Ok(CpuFreqStatsResponse {
        messages: vec![cpu_freq_stats],
    })
}

pub(super) async fn processes(machine: &Machine) -> Result<ProcessesResponse, MachinedError> {
    let processes = on_host(machine, Host::processes).await?;
    Ok(ProcessesResponse {
        messages: vec![processes],
    })
}

pub(super) async fn mounts(machine: &Machine) -> Result<MountsResponse, MachinedError> {
    let mounts = on_host(machine, Host::mounts).await?;
    Ok(MountsResponse {
        messages: vec![mounts],
    })
}

pub(super) async fn disk_stats(machine: &Machine) -> Result<DiskStatsResponse, MachinedError> {
    let disk_stats = on_host(machine, Host::disk_stats).await?;
    Ok(DiskStatsResponse {
        messages: vec![disk_stats],
    })
}

pub(super) async fn network_device_stats(
    machine: &Machine,
) -> Result<NetworkDeviceStatsResponse, MachinedError> {
    let network_device_stats = on_host(machine, Host::network_device_stats).await?;
    Ok(NetworkDeviceStatsResponse {
        messages: vec![network_device_stats],
    })
}

pub(super) async fn netstat(
    machine: &Machine,
    request: NetstatRequest,
) -> Result<NetstatResponse, MachinedError> {
    let netstat = on_host(machine, move |host| host.netstat(&request)).await?;
    Ok(NetstatResponse {
        messages: vec![netstat],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_architectures_are_reported_with_their_go_names() {
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("riscv64"), "riscv64");
    }
}
