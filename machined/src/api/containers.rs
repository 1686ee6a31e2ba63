//! Containers, Stats and Restart for machined's services (namespace `system`).
//!
//! In OS mode the system services are containerd tasks: namespace `system` lists containerd's
//! tasks there (status as containerd says), and Stats read each task's cgroup (memory.current,
//! cpu.stat usage). In dev mode machined runs its services as child processes, so namespace
//! `system` lists each service that has a process as one container: id and name are the service
//! id, the image is its program, the pid its main process; Stats count that main process only.
//! Kubernetes containers (namespace `k8s.io`,
//! driver CRI) need the CRI runtime, which talos-rs does not have yet: those requests are
//! refused as Unimplemented, as are other containerd namespaces.

use std::collections::HashMap;
use std::path::Path;

use proto::common::ContainerDriver;
use proto::containerd::v1::types::Process;
use proto::machine::{
    Container, ContainerInfo, ContainersRequest, ContainersResponse, Restart, RestartRequest,
    RestartResponse, Stat, Stats, StatsRequest, StatsResponse,
};

use super::host::on_host;
use crate::error::MachinedError;
use crate::machine::Machine;
use crate::services::{Containerd, ServiceProcess, cgroup_path};

/// The containerd namespace of the system services.
pub(super) const SYSTEM_NAMESPACE: &str = "system";

/// The containerd namespace of Kubernetes pods.
const KUBERNETES_NAMESPACE: &str = "k8s.io";

/// Accepts only machined's own services: namespace `system` with the containerd driver.
pub(super) fn require_system_namespace(namespace: &str, driver: i32) -> Result<(), MachinedError> {
    let driver = ContainerDriver::try_from(driver).map_err(|_| {
        MachinedError::InvalidArgument(format!(
            "container driver {driver} is unknown (expected 0 CONTAINERD or 1 CRI)"
        ))
    })?;
    if namespace.is_empty() {
        return Err(MachinedError::InvalidArgument(format!(
            "a namespace is required ({SYSTEM_NAMESPACE:?} for the system services)"
        )));
    }
    if namespace == KUBERNETES_NAMESPACE || driver == ContainerDriver::Cri {
        return Err(MachinedError::Unimplemented(format!(
            "Kubernetes containers (namespace {namespace:?}, driver {}) need the CRI runtime, \
             which is not available yet",
            driver.as_str_name()
        )));
    }
    if namespace != SYSTEM_NAMESPACE {
        return Err(MachinedError::Unimplemented(format!(
            "containerd namespace {namespace:?} needs the container runtime, which is not \
             available yet; only {SYSTEM_NAMESPACE:?} (the system services) is served"
        )));
    }
    Ok(())
}

/// The services that have a process now, with its pid.
async fn running_services(machine: &Machine) -> Result<Vec<(ServiceProcess, u32)>, MachinedError> {
    Ok(machine
        .services
        .processes()
        .await?
        .into_iter()
        .filter_map(|service| service.pid.map(|pid| (service, pid)))
        .collect())
}

/// `Containers`: one container per service with a process.
pub(super) async fn containers(
    machine: &Machine,
    request: ContainersRequest,
) -> Result<ContainersResponse, MachinedError> {
    require_system_namespace(&request.namespace, request.driver)?;
    if let Some(runner) = &machine.containers {
        return task_containers(machine, &runner.client()).await;
    }
    let containers = running_services(machine)
        .await?
        .into_iter()
        .map(|(service, pid)| container_info(service, pid))
        .collect();
    Ok(ContainersResponse {
        messages: vec![Container {
            metadata: None,
            containers,
        }],
    })
}

/// The tasks of containerd's namespace `system`, each with its service's program as image.
async fn task_containers(
    machine: &Machine,
    containerd: &Containerd,
) -> Result<ContainersResponse, MachinedError> {
    let tasks = system_tasks(containerd).await?;
    let programs: HashMap<String, String> = machine
        .services
        .processes()
        .await?
        .into_iter()
        .map(|service| (service.id, service.command.display().to_string()))
        .collect();
    let containers = tasks
        .into_iter()
        .map(|task| ContainerInfo {
            namespace: SYSTEM_NAMESPACE.to_owned(),
            image: programs.get(&task.id).cloned().unwrap_or_default(),
            pid: task.pid,
            status: task.status().as_str_name().to_owned(),
            name: task.id.clone(),
            id: task.id,
            ..ContainerInfo::default()
        })
        .collect();
    Ok(ContainersResponse {
        messages: vec![Container {
            metadata: None,
            containers,
        }],
    })
}

fn container_info(service: ServiceProcess, pid: u32) -> ContainerInfo {
    ContainerInfo {
        namespace: SYSTEM_NAMESPACE.to_owned(),
        image: service.command.display().to_string(),
        pid,
        // `RUNNING`, or `STOPPING` while a stop waits for the process to exit.
        status: service.state.as_str().to_uppercase(),
        name: service.id.clone(),
        id: service.id,
        ..ContainerInfo::default()
    }
}

/// `Stats`: resident memory (bytes) and CPU time (nanoseconds) of each service's process.
pub(super) async fn stats(
    machine: &Machine,
    request: StatsRequest,
) -> Result<StatsResponse, MachinedError> {
    require_system_namespace(&request.namespace, request.driver)?;
    if let Some(runner) = &machine.containers {
        return task_stats(&runner.client()).await;
    }
    let services = running_services(machine).await?;
    let usage: HashMap<u32, (u64, f64)> = on_host(machine, |host| host.processes())
        .await?
        .processes
        .into_iter()
        .filter_map(|process| {
            let pid = u32::try_from(process.pid).ok()?;
            Some((pid, (process.resident_memory, process.cpu_time)))
        })
        .collect();
    let stats = services
        .into_iter()
        // A process that exited since the service list was taken has no stats.
        .filter_map(|(service, pid)| {
            let &(memory_usage, cpu_seconds) = usage.get(&pid)?;
            Some(Stat {
                namespace: SYSTEM_NAMESPACE.to_owned(),
                name: service.id.clone(),
                id: service.id,
                memory_usage,
                cpu_usage: cpu_nanoseconds(cpu_seconds),
                pod_id: String::new(),
            })
        })
        .collect();
    Ok(StatsResponse {
        messages: vec![Stats {
            metadata: None,
            stats,
        }],
    })
}

/// containerd's tasks in namespace `system`.
async fn system_tasks(containerd: &Containerd) -> Result<Vec<Process>, MachinedError> {
    containerd
        .list_tasks()
        .await
        .map_err(|status| MachinedError::Containerd(status.message().to_owned()))
}

/// Memory and CPU use of every task, from its cgroup.
async fn task_stats(containerd: &Containerd) -> Result<StatsResponse, MachinedError> {
    let tasks = system_tasks(containerd).await?;
    let stats = tasks
        .into_iter()
        // A task that ended since the list was taken has no cgroup any more.
        .filter_map(|task| {
            let cgroup = Path::new(CGROUP_ROOT).join(cgroup_path(&task.id).trim_start_matches('/'));
            let (memory_usage, cpu_usage) = cgroup_usage(&cgroup).ok()?;
            Some(Stat {
                namespace: SYSTEM_NAMESPACE.to_owned(),
                name: task.id.clone(),
                id: task.id,
                memory_usage,
                cpu_usage,
                pod_id: String::new(),
            })
        })
        .collect();
    Ok(StatsResponse {
        messages: vec![Stats {
            metadata: None,
            stats,
        }],
    })
}

/// Where the cgroup2 hierarchy is mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `memory.current` (bytes) and the CPU time of `cpu.stat` (nanoseconds) of a cgroup.
fn cgroup_usage(cgroup: &Path) -> std::io::Result<(u64, u64)> {
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let memory = std::fs::read_to_string(cgroup.join("memory.current"))?
        .trim()
        .parse()
        .map_err(|_| invalid("memory.current is not a number"))?;
    let cpu_stat = std::fs::read_to_string(cgroup.join("cpu.stat"))?;
    let micros: u64 = cpu_stat
        .lines()
        .find_map(|line| line.strip_prefix("usage_usec "))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| invalid("cpu.stat has no usage_usec"))?;
    Ok((memory, micros * 1000))
}

/// CPU time in whole nanoseconds, as containerd reports `cpu_usage`.
fn cpu_nanoseconds(seconds: f64) -> u64 {
    // `as` saturates: negative or NaN input gives 0.
    (seconds * 1e9).round() as u64
}

/// `Restart`: stops the service's process and starts it again.
pub(super) async fn restart(
    machine: &Machine,
    request: RestartRequest,
) -> Result<RestartResponse, MachinedError> {
    require_system_namespace(&request.namespace, request.driver)?;
    machine.services.restart(&request.id).await?;
    Ok(RestartResponse {
        messages: vec![Restart { metadata: None }],
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use tonic::{Code, Status};

    use super::*;
    use crate::services::ServiceState;

    fn code(namespace: &str, driver: i32) -> Option<Code> {
        require_system_namespace(namespace, driver)
            .err()
            .map(|error| Status::from(error).code())
    }

    #[test]
    fn only_the_system_namespace_is_served() {
        let containerd = ContainerDriver::Containerd as i32;
        let cri = ContainerDriver::Cri as i32;
        assert_eq!(code("system", containerd), None);
        assert_eq!(code("", containerd), Some(Code::InvalidArgument));
        assert_eq!(code("system", 7), Some(Code::InvalidArgument));
        assert_eq!(code("k8s.io", cri), Some(Code::Unimplemented));
        assert_eq!(code("k8s.io", containerd), Some(Code::Unimplemented));
        assert_eq!(code("system", cri), Some(Code::Unimplemented));
        assert_eq!(code("moby", containerd), Some(Code::Unimplemented));
    }

    #[test]
    fn a_kubernetes_request_says_what_is_missing() {
        let error =
            require_system_namespace("k8s.io", ContainerDriver::Cri as i32).expect_err("refused");
        assert!(
            error.to_string().contains("need the CRI runtime"),
            "{error}"
        );
    }

    #[test]
    fn a_service_process_is_listed_as_a_system_container() {
        let service = ServiceProcess {
            id: "apid".to_owned(),
            command: PathBuf::from("/usr/bin/apid"),
            state: ServiceState::Stopping,
            pid: Some(42),
        };
        let info = container_info(service, 42);
        assert_eq!(
            info,
            ContainerInfo {
                namespace: "system".to_owned(),
                id: "apid".to_owned(),
                image: "/usr/bin/apid".to_owned(),
                pid: 42,
                status: "STOPPING".to_owned(),
                name: "apid".to_owned(),
                ..ContainerInfo::default()
            }
        );
    }

    #[test]
    fn cgroup_usage_reads_memory_and_cpu_time() {
        let cgroup = tempfile::tempdir().unwrap();
        std::fs::write(cgroup.path().join("memory.current"), "7340032\n").unwrap();
        std::fs::write(
            cgroup.path().join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
        )
        .unwrap();
        assert_eq!(cgroup_usage(cgroup.path()).unwrap(), (7_340_032, 1_500_000));
        std::fs::write(cgroup.path().join("cpu.stat"), "user_usec 1\n").unwrap();
        assert!(cgroup_usage(cgroup.path()).is_err());
    }

    #[test]
    fn cpu_seconds_become_whole_nanoseconds() {
        assert_eq!(cpu_nanoseconds(1.23), 1_230_000_000);
        assert_eq!(cpu_nanoseconds(0.0), 0);
        assert_eq!(cpu_nanoseconds(-1.0), 0);
    }
}
