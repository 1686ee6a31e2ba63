//! `talosctl containers` (alias `c`), `talosctl stats` and `talosctl restart`: containers of the
//! system namespace, or with `-k` the Kubernetes (CRI) ones.

use clap::Args;
use proto::common::ContainerDriver;
use proto::machine::{ContainerInfo, ContainersRequest, RestartRequest, Stat, StatsRequest};

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on};
use crate::failures::Failures;
use crate::output::table;

#[derive(Debug, Args)]
pub struct ContainersArgs {
    /// Use the k8s.io containerd namespace
    #[arg(short = 'k', long)]
    pub kubernetes: bool,
}

/// Namespace and driver: `system` through containerd, or `k8s.io` through CRI.
fn namespace(args: &ContainersArgs) -> (String, i32) {
    if args.kubernetes {
        ("k8s.io".to_string(), ContainerDriver::Cri as i32)
    } else {
        ("system".to_string(), ContainerDriver::Containerd as i32)
    }
}

pub fn run_containers(args: ContainersArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let (namespace, driver) = namespace(&args);
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let mut containers = Vec::new();
        for target in session.targets() {
            let request = ContainersRequest {
                namespace: namespace.clone(),
                driver,
            };
            let reply = target.machine().containers(target.request(request)?).await;
            for (node, list) in target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                containers.extend(list.containers.into_iter().map(|c| (node.clone(), c)));
            }
        }
        print!("{}", containers_table(containers));
        failures.finish()
    })
}

pub fn run_stats(args: ContainersArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let (namespace, driver) = namespace(&args);
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let mut stats = Vec::new();
        for target in session.targets() {
            let request = StatsRequest {
                namespace: namespace.clone(),
                driver,
            };
            let reply = target.machine().stats(target.request(request)?).await;
            for (node, list) in target.unary(reply.map(|r| r.into_inner().messages), &mut failures)
            {
                stats.extend(list.stats.into_iter().map(|s| (node.clone(), s)));
            }
        }
        print!("{}", stats_table(stats));
        failures.finish()
    })
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The container to restart
    pub id: String,
    #[command(flatten)]
    pub namespace: ContainersArgs,
}

pub fn run_restart(args: RestartArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let (namespace, driver) = namespace(&args.namespace);
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        for target in session.targets() {
            let request = RestartRequest {
                namespace: namespace.clone(),
                id: args.id.clone(),
                driver,
            };
            let reply = target.machine().restart(target.request(request)?).await;
            target.unary(reply.map(|r| r.into_inner().messages), &mut failures);
        }
        failures.finish()
    })
}

/// A container inside a pod sandbox is drawn under its pod.
fn display_id(id: &str, pod_id: &str) -> String {
    if pod_id.is_empty() || id == pod_id {
        id.to_string()
    } else {
        format!("└─ {id}")
    }
}

fn containers_table(mut containers: Vec<(String, ContainerInfo)>) -> String {
    containers
        .sort_by(|(na, a), (nb, b)| (na, &a.namespace, &a.id).cmp(&(nb, &b.namespace, &b.id)));
    let rows: Vec<Vec<String>> = containers
        .into_iter()
        .map(|(node, c)| {
            vec![
                node,
                c.namespace.clone(),
                display_id(&c.id, &c.pod_id),
                c.image.clone(),
                c.pid.to_string(),
                c.status.clone(),
            ]
        })
        .collect();
    table(
        &["NODE", "NAMESPACE", "ID", "IMAGE", "PID", "STATUS"],
        &rows,
    )
}

fn stats_table(mut stats: Vec<(String, Stat)>) -> String {
    stats.sort_by(|(na, a), (nb, b)| (na, &a.namespace, &a.id).cmp(&(nb, &b.namespace, &b.id)));
    let rows: Vec<Vec<String>> = stats
        .into_iter()
        .map(|(node, s)| {
            vec![
                node,
                s.namespace.clone(),
                display_id(&s.id, &s.pod_id),
                format!("{:.2}", s.memory_usage as f64 / 1024.0 / 1024.0),
                s.cpu_usage.to_string(),
            ]
        })
        .collect();
    table(&["NODE", "NAMESPACE", "ID", "MEMORY(MB)", "CPU"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_sorted_with_pod_members_indented() {
        let container = |id: &str, pod_id: &str, pid: u32| {
            (
                "10.5.0.2".to_string(),
                ContainerInfo {
                    namespace: "k8s.io".into(),
                    id: id.into(),
                    image: "registry.k8s.io/pause:3.9".into(),
                    pid,
                    status: "SANDBOX_READY".into(),
                    pod_id: pod_id.into(),
                    ..Default::default()
                },
            )
        };
        let text = containers_table(vec![
            container(
                "kube-system/kube-proxy-x/kube-proxy",
                "kube-system/kube-proxy-x",
                20,
            ),
            container("kube-system/kube-proxy-x", "kube-system/kube-proxy-x", 10),
        ]);
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].starts_with("NODE       NAMESPACE   ID "), "{text}");
        assert!(rows[1].contains("   kube-system/kube-proxy-x  "), "{text}");
        assert!(
            rows[2].contains("└─ kube-system/kube-proxy-x/kube-proxy"),
            "{text}"
        );
    }

    #[test]
    fn stats_in_megabytes() {
        let text = stats_table(vec![(
            "10.5.0.2".to_string(),
            Stat {
                namespace: "system".into(),
                id: "apid".into(),
                memory_usage: 15 * 1024 * 1024 + 512 * 1024,
                cpu_usage: 123_456,
                pod_id: String::new(),
                name: "apid".into(),
            },
        )]);
        assert_eq!(
            text,
            "NODE       NAMESPACE   ID     MEMORY(MB)   CPU\n\
             10.5.0.2   system      apid   15.50        123456\n"
        );
    }
}
