//! `talosctl bootstrap` and `talosctl etcd ...`: the etcd cluster of the control planes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::{Args, Subcommand};
use proto::common::Data;
use proto::machine::{
    BootstrapRequest, EtcdLeaveClusterRequest, EtcdMemberListRequest, EtcdRemoveMemberByIdRequest,
    EtcdSnapshotRequest, etcd_member_alarm,
};

use crate::cli::GlobalArgs;
use crate::connection::{Session, Target, block_on};
use crate::failures::Failures;
use crate::humanize::si_bytes;
use crate::output::table;
use tokio::io::AsyncReadExt as _;

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// recover etcd cluster from the snapshot
    #[arg(long)]
    recover_from: Option<PathBuf>,
    /// skip integrity check when recovering etcd (use when recovering from data directory copy)
    #[arg(long)]
    recover_skip_hash_check: bool,
}

/// Size of the chunks a snapshot is uploaded in.
const UPLOAD_CHUNK: usize = 1 << 20;

#[derive(Debug, Subcommand)]
pub enum EtcdCommand {
    /// Get the list of etcd cluster members
    #[command(visible_alias = "member")]
    Members,
    /// Get the status of etcd cluster member
    Status,
    /// Tell nodes to leave etcd cluster
    Leave,
    /// Remove the node from etcd cluster by member ID (hex)
    RemoveMember { member_id: String },
    /// Tell node to forfeit etcd cluster leadership
    ForfeitLeadership,
    /// Stream snapshot of the etcd node to the path
    Snapshot { path: PathBuf },
    /// Manage etcd alarms
    #[command(subcommand)]
    Alarm(AlarmCommand),
    /// Defragment etcd database on the node
    Defrag,
}

#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// List the etcd alarms for the node
    List,
    /// Disarm the etcd alarms for the node
    Disarm,
}

pub fn bootstrap(args: BootstrapArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        session.require_one_node("bootstrap")?;
        let mut failures = Failures::default();
        for target in session.targets() {
            if let Some(path) = &args.recover_from {
                let status = etcdsnapshot::status(path)?;
                println!(
                    "recovering from snapshot {:?}: {}",
                    path.display(),
                    summary(&status)
                );
                if !upload(target, path, &mut failures).await? {
                    break;
                }
            }
            let request = target.request(BootstrapRequest {
                recover_etcd: args.recover_from.is_some(),
                recover_skip_hash_check: args.recover_skip_hash_check,
            })?;
            let reply = target.machine().bootstrap(request).await;
            target.unary(reply.map(|r| r.into_inner().messages), &mut failures);
        }
        failures.finish()
    })
}

pub fn run(command: EtcdCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open(global).await?;
        if matches!(command, EtcdCommand::Snapshot { .. }) {
            session.require_one_node("etcd snapshot")?;
        }
        let mut failures = Failures::default();
        let mut rows = Vec::new();
        for target in session.targets() {
            rows.extend(one(target, &command, &mut failures).await?);
        }
        let header: &[&str] = match command {
            EtcdCommand::Members => &[
                "NODE",
                "ID",
                "HOSTNAME",
                "PEER URLS",
                "CLIENT URLS",
                "LEARNER",
            ],
            EtcdCommand::Status => &[
                "NODE",
                "MEMBER",
                "DB SIZE",
                "IN USE",
                "LEADER",
                "RAFT INDEX",
                "RAFT TERM",
                "RAFT APPLIED INDEX",
                "LEARNER",
                "ERRORS",
            ],
            EtcdCommand::Alarm(_) => &["NODE", "MEMBER", "ALARM"],
            _ => &[],
        };
        if !header.is_empty() {
            print!("{}", table(header, &rows));
        }
        failures.finish()
    })
}

async fn one(
    target: &Target,
    command: &EtcdCommand,
    failures: &mut Failures,
) -> anyhow::Result<Vec<Vec<String>>> {
    let mut machine = target.machine();
    let mut rows = Vec::new();
    match command {
        EtcdCommand::Members => {
            let request = target.request(EtcdMemberListRequest::default())?;
            let reply = machine.etcd_member_list(request).await;
            for (node, list) in target.unary(reply.map(|r| r.into_inner().messages), failures) {
                for m in list.members {
                    rows.push(vec![
                        node.clone(),
                        format!("{:x}", m.id),
                        m.hostname,
                        m.peer_urls.join(","),
                        m.client_urls.join(","),
                        m.is_learner.to_string(),
                    ]);
                }
            }
        }
        EtcdCommand::Status => {
            let reply = machine.etcd_status(target.request(())?).await;
            for (node, status) in target.unary(reply.map(|r| r.into_inner().messages), failures) {
                let s = status.member_status.unwrap_or_default();
                let in_use = if s.db_size > 0 {
                    s.db_size_in_use as f64 * 100.0 / s.db_size as f64
                } else {
                    0.0
                };
                rows.push(vec![
                    node,
                    format!("{:x}", s.member_id),
                    si_bytes(u64::try_from(s.db_size).unwrap_or_default()),
                    format!(
                        "{} ({in_use:.2}%)",
                        si_bytes(u64::try_from(s.db_size_in_use).unwrap_or_default())
                    ),
                    format!("{:x}", s.leader),
                    s.raft_index.to_string(),
                    s.raft_term.to_string(),
                    s.raft_applied_index.to_string(),
                    s.is_learner.to_string(),
                    s.errors.join(", "),
                ]);
            }
        }
        EtcdCommand::Leave => {
            let request = target.request(EtcdLeaveClusterRequest::default())?;
            let reply = machine.etcd_leave_cluster(request).await;
            target.unary(reply.map(|r| r.into_inner().messages), failures);
        }
        EtcdCommand::RemoveMember { member_id } => {
            let member_id = u64::from_str_radix(member_id.trim_start_matches("0x"), 16)
                .map_err(|e| anyhow::anyhow!("member id {member_id:?} is not hex: {e}"))?;
            let request = target.request(EtcdRemoveMemberByIdRequest { member_id })?;
            let reply = machine.etcd_remove_member_by_id(request).await;
            target.unary(reply.map(|r| r.into_inner().messages), failures);
        }
        EtcdCommand::ForfeitLeadership => {
            let request = target.request(Default::default())?;
            let reply = machine.etcd_forfeit_leadership(request).await;
            for (node, forfeit) in target.unary(reply.map(|r| r.into_inner().messages), failures) {
                if !forfeit.member.is_empty() {
                    println!("{node}: moved leadership to {}", forfeit.member);
                }
            }
        }
        EtcdCommand::Snapshot { path } => snapshot(target, path, failures).await?,
        EtcdCommand::Alarm(AlarmCommand::List) => {
            let reply = machine.etcd_alarm_list(target.request(())?).await;
            for (node, alarms) in target.unary(reply.map(|r| r.into_inner().messages), failures) {
                rows.extend(alarm_rows(&node, &alarms.member_alarms));
            }
        }
        EtcdCommand::Alarm(AlarmCommand::Disarm) => {
            let reply = machine.etcd_alarm_disarm(target.request(())?).await;
            for (node, alarms) in target.unary(reply.map(|r| r.into_inner().messages), failures) {
                rows.extend(alarm_rows(&node, &alarms.member_alarms));
            }
        }
        EtcdCommand::Defrag => {
            let reply = machine.etcd_defragment(target.request(())?).await;
            target.unary(reply.map(|r| r.into_inner().messages), failures);
        }
    }
    Ok(rows)
}

fn alarm_rows(node: &str, alarms: &[proto::machine::EtcdMemberAlarm]) -> Vec<Vec<String>> {
    alarms
        .iter()
        .map(|a| {
            let alarm = etcd_member_alarm::AlarmType::try_from(a.alarm)
                .map(|t| t.as_str_name().to_string())
                .unwrap_or_else(|_| a.alarm.to_string());
            vec![node.to_string(), format!("{:x}", a.member_id), alarm]
        })
        .collect()
}

/// Upstream's one-line snapshot summary.
fn summary(status: &etcdsnapshot::SnapshotStatus) -> String {
    format!(
        "hash {:08x}, revision {}, total keys {}, total size {}",
        status.hash, status.revision, status.total_keys, status.total_size
    )
}

/// Sends the snapshot at `path` to the node with `EtcdRecover`; false when the node refused it
/// (reported to `failures`).
async fn upload(target: &Target, path: &Path, failures: &mut Failures) -> anyhow::Result<bool> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
    let read_error = Arc::new(Mutex::new(None));
    let chunks = futures_util::stream::unfold(
        (file, read_error.clone()),
        |(mut file, read_error)| async move {
            let mut bytes = vec![0u8; UPLOAD_CHUNK];
            match file.read(&mut bytes).await {
                Ok(0) => None,
                Ok(n) => {
                    bytes.truncate(n);
                    let data = Data {
                        metadata: None,
                        bytes,
                    };
                    Some((data, (file, read_error)))
                }
                Err(error) => {
                    *read_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
                    None
                }
            }
        },
    );
    let reply = target.machine().etcd_recover(target.request(chunks)?).await;
    if let Some(error) = read_error.lock().unwrap_or_else(|e| e.into_inner()).take() {
        anyhow::bail!("reading {}: {error}", path.display());
    }
    let stored = target.unary(reply.map(|r| r.into_inner().messages), failures);
    Ok(!stored.is_empty())
}

/// Streams the snapshot into a temporary file next to `path`, checks its hash, then renames it
/// into place and prints its status. The temporary file never outlives a failure.
async fn snapshot(target: &Target, path: &Path, failures: &mut Failures) -> anyhow::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let received = receive_snapshot(target, &partial).await;
    let checked = match received {
        Ok(Ok(size)) => etcdsnapshot::check_integrity(&partial, false)
            .and_then(|()| etcdsnapshot::status(&partial))
            .map(|status| (size, status))
            .map_err(|e| e.to_string()),
        Ok(Err(reported)) => Err(reported.to_string()),
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    let (size, status) = match checked {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            failures.report(format!("etcd snapshot failed: {error}"));
            return Ok(());
        }
    };
    std::fs::rename(&partial, path)?;
    println!("etcd snapshot saved to {:?} ({size} bytes)", path.display());
    println!("snapshot info: {}", summary(&status));
    Ok(())
}

/// Writes the node's snapshot stream to `partial`: its size, or the node's failure (already
/// printed) inside.
async fn receive_snapshot(
    target: &Target,
    partial: &Path,
) -> anyhow::Result<anyhow::Result<usize>> {
    let mut file = std::fs::File::create(partial)?;
    let mut size = 0usize;
    let reply = target
        .machine()
        .etcd_snapshot(target.request(EtcdSnapshotRequest::default())?)
        .await;
    let mut failed = Failures::default();
    target
        .stream(reply, &mut failed, |_, data| {
            size += data.bytes.len();
            file.write_all(&data.bytes)?;
            Ok(())
        })
        .await?;
    file.sync_all()?;
    Ok(failed.finish().map(|()| size))
}
