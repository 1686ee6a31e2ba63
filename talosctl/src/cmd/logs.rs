//! `talosctl logs ID` and `talosctl dmesg`: byte streams of service/container logs and of the
//! kernel log. With several nodes (one `nodes` call through apid, or one stream per node in
//! insecure mode) the streams are interleaved line by line, each line prefixed with its node.

use clap::Args;
use proto::common::ContainerDriver;
use proto::machine::{DmesgRequest, LogsRequest};

use crate::cli::{GlobalArgs, InsecureArgs};
use crate::connection::{Session, block_on, interleave};
use crate::failures::Failures;
use crate::node_lines::NodeLines;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Service or container ID
    pub id: String,
    /// Specify if the logs should be streamed
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Lines of log file to display (default is to show from the beginning)
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i32,
    /// Use the k8s.io containerd namespace
    #[arg(short = 'k', long)]
    pub kubernetes: bool,
    #[command(flatten)]
    pub access: InsecureArgs,
}

#[derive(Debug, Args)]
pub struct DmesgArgs {
    /// Specify if the kernel log should be streamed
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Specify if only new messages should be sent (makes sense only when combined with --follow)
    #[arg(long)]
    pub tail: bool,
    #[command(flatten)]
    pub access: InsecureArgs,
}

/// The request for `talosctl logs`: Talos services live in containerd's `system` namespace,
/// Kubernetes containers (`-k`) in `k8s.io` through CRI.
fn logs_request(args: &LogsArgs) -> LogsRequest {
    let (namespace, driver) = if args.kubernetes {
        ("k8s.io", ContainerDriver::Cri)
    } else {
        ("system", ContainerDriver::Containerd)
    };
    LogsRequest {
        namespace: namespace.to_string(),
        id: args.id.clone(),
        driver: driver as i32,
        follow: args.follow,
        tail_lines: args.tail,
    }
}

pub fn run_logs(args: LogsArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open_as(global, &args.access).await?;
        let mut failures = Failures::default();
        let mut lines = NodeLines::new(session.node_count() > 1);
        let mut out = std::io::stdout().lock();
        let mut replies = Vec::new();
        for target in session.targets() {
            let reply = target
                .machine()
                .logs(target.request(logs_request(&args))?)
                .await;
            replies.push((target, reply));
        }
        interleave(replies, &mut failures, |node, data| {
            Ok(lines.push(node, &data.bytes, &mut out)?)
        })
        .await?;
        lines.finish(&mut out)?;
        failures.finish()
    })
}

pub fn run_dmesg(args: DmesgArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open_as(global, &args.access).await?;
        let mut failures = Failures::default();
        let mut lines = NodeLines::new(session.node_count() > 1);
        let mut out = std::io::stdout().lock();
        let request = DmesgRequest {
            follow: args.follow,
            tail: args.tail,
        };
        let mut replies = Vec::new();
        for target in session.targets() {
            let reply = target.machine().dmesg(target.request(request)?).await;
            replies.push((target, reply));
        }
        interleave(replies, &mut failures, |node, data| {
            Ok(lines.push(node, &data.bytes, &mut out)?)
        })
        .await?;
        lines.finish(&mut out)?;
        failures.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        logs: LogsArgs,
    }

    #[test]
    fn service_logs_read_the_system_namespace_from_the_start() {
        let args = Wrapper::parse_from(["logs", "apid"]).logs;
        let request = logs_request(&args);
        assert_eq!(
            (
                request.namespace.as_str(),
                request.driver,
                request.tail_lines
            ),
            ("system", ContainerDriver::Containerd as i32, -1)
        );
        assert_eq!(request.id, "apid");
    }

    #[test]
    fn kubernetes_logs_use_cri() {
        let args = Wrapper::parse_from(["logs", "-k", "-f", "--tail", "10", "kube-proxy"]).logs;
        let request = logs_request(&args);
        assert_eq!(
            (request.namespace.as_str(), request.driver),
            ("k8s.io", ContainerDriver::Cri as i32)
        );
        assert!(request.follow);
        assert_eq!(request.tail_lines, 10);
    }
}
