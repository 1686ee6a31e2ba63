//! `talosctl reboot`, `shutdown` and `reset`: the node answers at once with an actor id and
//! runs the sequence on its own; with `--wait` (the default) each node is tracked to the end
//! (see the `action` module) and the command fails if any node fails or times out.

use std::time::Duration;

use apiclient::NodeMessage;
use clap::{ArgAction, Args, ValueEnum};
use proto::machine::{
    RebootRequest, ResetPartitionSpec, ResetRequest, ShutdownRequest, reboot_request, reset_request,
};

use crate::action::{self, Action};
use crate::cli::GlobalArgs;
use crate::connection::{Session, Target, block_on};
use crate::failures::Failures;
use crate::humanize::parse_go_duration;

#[derive(Debug, Args)]
pub struct RebootArgs {
    /// Select the reboot mode
    #[arg(short = 'm', long, value_enum, default_value = "default")]
    pub mode: RebootMode,
    #[command(flatten)]
    pub tracking: TrackingArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RebootMode {
    Default,
    Powercycle,
    Force,
}

#[derive(Debug, Args)]
pub struct ShutdownArgs {
    /// If true, force a node to shutdown without a cordon/drain
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub tracking: TrackingArgs,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// If true, attempt to cordon/drain node and leave etcd (if applicable)
    #[arg(
        long,
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub graceful: bool,
    /// If true, reboot the node after resetting instead of shutting down
    #[arg(long)]
    pub reboot: bool,
    /// If set, just wipe selected system disk partitions by label but keep other partitions
    /// intact
    #[arg(long, value_delimiter = ',')]
    pub system_labels_to_wipe: Vec<String>,
    /// If set, wipes defined devices in the list
    #[arg(long, value_delimiter = ',')]
    pub user_disks_to_wipe: Vec<String>,
    /// Disk reset mode
    #[arg(long, value_enum, default_value = "all")]
    pub wipe_mode: WipeMode,
    #[command(flatten)]
    pub tracking: TrackingArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WipeMode {
    All,
    SystemDisk,
    UserDisks,
}

/// `--wait`, `--debug` and `--timeout`, as upstream's action tracker takes them.
#[derive(Debug, Args)]
pub struct TrackingArgs {
    /// Wait for the operation to complete, tracking its progress. always set to true when
    /// --debug is set
    #[arg(
        long,
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub wait: bool,
    /// Debug operation from kernel logs. --wait is set to true when this flag is set
    #[arg(long)]
    pub debug: bool,
    /// Time to wait for the operation is complete if --debug or --wait is set
    #[arg(long, default_value = "30m")]
    pub timeout: String,
}

pub fn reboot(args: RebootArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let mode = match args.mode {
        RebootMode::Default => reboot_request::Mode::Default,
        RebootMode::Powercycle => reboot_request::Mode::Powercycle,
        RebootMode::Force => reboot_request::Mode::Force,
    };
    run(
        Sequence::Reboot,
        &args.tracking,
        global,
        |target| async move {
            let request = target.request(RebootRequest { mode: mode as i32 })?;
            let reply = target.machine().reboot(request).await;
            Ok(reply.map(|r| r.into_inner().messages))
        },
    )
}

pub fn shutdown(args: ShutdownArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let force = args.force;
    run(
        Sequence::Shutdown,
        &args.tracking,
        global,
        |target| async move {
            let request = target.request(ShutdownRequest { force })?;
            let reply = target.machine().shutdown(request).await;
            Ok(reply.map(|r| r.into_inner().messages))
        },
    )
}

pub fn reset(args: ResetArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let request = ResetRequest {
        graceful: args.graceful,
        reboot: args.reboot,
        system_partitions_to_wipe: args
            .system_labels_to_wipe
            .iter()
            .map(|label| ResetPartitionSpec {
                label: label.clone(),
                wipe: true,
            })
            .collect(),
        user_disks_to_wipe: args.user_disks_to_wipe.clone(),
        mode: match args.wipe_mode {
            WipeMode::All => reset_request::WipeMode::All,
            WipeMode::SystemDisk => reset_request::WipeMode::SystemDisk,
            WipeMode::UserDisks => reset_request::WipeMode::UserDisks,
        } as i32,
    };
    run(Sequence::Reset, &args.tracking, global, |target| {
        let request = request.clone();
        async move {
            let request = target.request(request)?;
            let reply = target.machine().reset(request).await;
            Ok(reply.map(|r| r.into_inner().messages))
        }
    })
}

/// What was asked of the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sequence {
    Reboot,
    Shutdown,
    /// An upgrade reboots into the new slot unless staged.
    Upgrade {
        staged: bool,
    },
    /// Tracked until the node has stopped its services (it comes back, if at all, in
    /// maintenance mode, which the talosconfig's credentials cannot follow).
    Reset,
}

impl Sequence {
    fn verb(self) -> &'static str {
        match self {
            Sequence::Reboot => "reboot",
            Sequence::Shutdown => "shutdown",
            Sequence::Upgrade { .. } => "upgrade",
            Sequence::Reset => "reset",
        }
    }

    /// How the node's progress is tracked; `None` when nothing follows the reply.
    fn tracked_as(self) -> Option<Action> {
        match self {
            Sequence::Reboot | Sequence::Upgrade { staged: false } => Some(Action::Reboot),
            Sequence::Shutdown | Sequence::Reset => Some(Action::Shutdown),
            Sequence::Upgrade { staged: true } => None,
        }
    }
}

/// A reply element naming the actor id of the sequence it started.
pub(crate) trait ActorReply: NodeMessage {
    fn actor_id(&self) -> &str;
}

impl ActorReply for proto::machine::Reboot {
    fn actor_id(&self) -> &str {
        &self.actor_id
    }
}

impl ActorReply for proto::machine::Upgrade {
    fn actor_id(&self) -> &str {
        &self.actor_id
    }
}

impl ActorReply for proto::machine::Reset {
    fn actor_id(&self) -> &str {
        &self.actor_id
    }
}

impl ActorReply for proto::machine::Shutdown {
    fn actor_id(&self) -> &str {
        &self.actor_id
    }
}

/// Requests `sequence` from every node, one call per node, then tracks them all together.
pub(crate) fn run<T, F, Fut>(
    sequence: Sequence,
    tracking: &TrackingArgs,
    global: &GlobalArgs,
    call: F,
) -> anyhow::Result<()>
where
    T: ActorReply,
    F: Fn(Target) -> Fut,
    Fut: Future<Output = anyhow::Result<Result<Vec<T>, tonic::Status>>>,
{
    let action = sequence.tracked_as();
    let wait = (tracking.wait || tracking.debug) && action.is_some();
    let action = action.unwrap_or(Action::Reboot);
    let timeout = parse_go_duration(&tracking.timeout)?;
    let verb = sequence.verb();
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let targets: Vec<Target> = session
            .targets()
            .iter()
            .flat_map(Target::per_node)
            .collect();
        if wait {
            let labels: Vec<String> = targets.iter().map(Target::label).collect();
            println!("watching nodes: [{}]", labels.join(" "));
        }
        let mut tracked = Vec::new();
        for target in targets {
            let boot_id = if wait && action == Action::Reboot {
                action::read_boot_id(&target).await
            } else {
                None
            };
            let reply = call(target.clone()).await?;
            for (node, reply) in target.unary(reply, &mut failures) {
                let actor_id = reply.actor_id().to_string();
                if wait {
                    println!("    * {node}: {verb} requested (actor id {actor_id})");
                    tracked.push((target.clone(), node, actor_id, boot_id.clone()));
                } else {
                    println!("{node}: {verb} requested (actor id {actor_id})");
                }
            }
        }
        let results = futures_util::future::join_all(tracked.iter().map(
            |(target, node, actor_id, boot_id)| {
                track_node(
                    target,
                    node,
                    action,
                    actor_id,
                    boot_id.clone(),
                    timeout,
                    tracking.debug,
                )
            },
        ))
        .await;
        for (node, result) in tracked.iter().map(|(_, node, _, _)| node).zip(results) {
            if let Err(reason) = result {
                failures.report(format_args!(
                    "error from node {node}: {verb} failed: {reason}"
                ));
            }
        }
        failures.finish()
    })
}

/// Tracks one node within `timeout`; with `debug`, prints its kernel log on failure.
async fn track_node(
    target: &Target,
    node: &str,
    action: Action,
    actor_id: &str,
    boot_id: Option<String>,
    timeout: Duration,
    debug: bool,
) -> Result<(), String> {
    let say = |line: &str| println!("    * {node}: {line}");
    let tracking = async {
        tokio::time::timeout(
            timeout,
            action::track(target, action, actor_id, boot_id, &say),
        )
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")))
    };
    if !debug {
        return tracking.await;
    }
    let mut kernel_log = Vec::new();
    let result = tokio::select! {
        result = tracking => result,
        () = action::collect_kernel_log(target, &mut kernel_log) => unreachable!("never ends"),
    };
    if result.is_err() {
        eprintln!("{node}: kernel log:");
        eprintln!("{}", String::from_utf8_lossy(&kernel_log));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        reboot: RebootArgs,
    }

    #[test]
    fn wait_is_on_by_default_and_can_be_turned_off() {
        let args = Wrapper::parse_from(["reboot"]).reboot;
        assert!(args.tracking.wait);
        assert_eq!(args.tracking.timeout, "30m");
        assert_eq!(args.mode, RebootMode::Default);
        let args = Wrapper::parse_from(["reboot", "--wait=false", "-m", "powercycle"]).reboot;
        assert!(!args.tracking.wait);
        assert_eq!(args.mode, RebootMode::Powercycle);
        let args = Wrapper::parse_from(["reboot", "--wait", "--timeout", "5m"]).reboot;
        assert!(args.tracking.wait);
        assert_eq!(
            parse_go_duration(&args.tracking.timeout).expect("duration"),
            Duration::from_secs(300)
        );
    }
}
