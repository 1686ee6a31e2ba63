//! Disaster recovery: a snapshot uploaded with `EtcdRecover` waits on the node
//! (`<state>/var/lib/etcd.snapshot`, upstream's place) until `Bootstrap` with `recover_etcd`
//! restores etcd's data directory from it (`etcdctl snapshot restore`: Debian's etcd 3.4 ships
//! no `etcdutl`, and etcdctl 3.4 restores offline the same way) and starts a new single-member
//! cluster from that data.

use std::path::{Path, PathBuf};

use etcdsnapshot::SnapshotStatus;
use proto::common::Data;
use tokio::io::AsyncWriteExt;

use crate::error::MachinedError;
use crate::machine::Machine;

/// The largest snapshot accepted: etcd's largest supported database (8 GiB) and its hash.
pub const MAX_SNAPSHOT_BYTES: u64 = (8 << 30) + 32;
/// How much of etcdctl's complaint reaches the log.
const MAX_LOGGED_BYTES: usize = 4096;

/// Where an uploaded snapshot waits for the next bootstrap.
pub fn snapshot_path(machine: &Machine) -> PathBuf {
    machine.layout.root().join("var/lib/etcd.snapshot")
}

/// Stores the uploaded `chunks` as the snapshot for the next bootstrap, replacing an earlier
/// upload only once this one is complete and reads as a bbolt database. Refused on a node whose
/// etcd already has data.
pub async fn store(
    machine: &Machine,
    mut chunks: tonic::Streaming<Data>,
) -> Result<SnapshotStatus, MachinedError> {
    if super::data_dir(machine).join("member").exists() {
        return Err(MachinedError::AlreadyExists(
            "etcd data directory is not empty: this node is bootstrapped already, recovery is \
             for a node without etcd data"
                .into(),
        ));
    }
    let target = snapshot_path(machine);
    let dir = target.parent().unwrap_or(Path::new("/")).to_path_buf();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(MachinedError::io("creating", &dir))?;
    let partial = dir.join(format!(".etcd.snapshot.upload-{}", uuid::Uuid::new_v4()));
    let result = receive(&partial, &mut chunks).await;
    let result = match result {
        Ok(()) => {
            let checked = partial.clone();
            tokio::task::spawn_blocking(move || etcdsnapshot::status(&checked))
                .await
                .map_err(|e| MachinedError::Internal(format!("checking the snapshot: {e}")))
                .and_then(|status| status.map_err(MachinedError::from))
        }
        Err(error) => Err(error),
    };
    match result {
        Ok(status) => {
            tokio::fs::rename(&partial, &target)
                .await
                .map_err(MachinedError::io("renaming", &partial))?;
            Ok(status)
        }
        Err(error) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(error)
        }
    }
}

/// Writes the stream to `path`, at most [`MAX_SNAPSHOT_BYTES`], and flushes it to disk.
async fn receive(path: &Path, chunks: &mut tonic::Streaming<Data>) -> Result<(), MachinedError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(MachinedError::io("creating", path))?;
    let mut size = 0u64;
    loop {
        let chunk = match chunks.message().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(status) => {
                return Err(MachinedError::InvalidArgument(format!(
                    "the snapshot upload broke off: {}",
                    status.message()
                )));
            }
        };
        size += chunk.bytes.len() as u64;
        if size > MAX_SNAPSHOT_BYTES {
            return Err(MachinedError::ResourceExhausted(format!(
                "the snapshot is larger than {MAX_SNAPSHOT_BYTES} bytes"
            )));
        }
        file.write_all(&chunk.bytes)
            .await
            .map_err(MachinedError::io("writing", path))?;
    }
    file.sync_all()
        .await
        .map_err(MachinedError::io("flushing", path))
}

/// What restoring needs to know about the new member.
#[derive(Debug)]
pub struct Restore<'a> {
    pub etcdctl: &'a Path,
    pub name: &'a str,
    pub peer_url: &'a str,
    pub data_dir: &'a Path,
    pub skip_hash_check: bool,
}

/// Removes the uploaded snapshot, if any: once the bootstrap that was to use it is over, whether
/// it worked or not, so that a refused recovery leaves the node as it was before the upload.
pub async fn discard(machine: &Machine) {
    let snapshot = snapshot_path(machine);
    match tokio::fs::remove_file(&snapshot).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(%error, path = %snapshot.display(), "cannot remove the etcd snapshot");
        }
        _ => {}
    }
}

/// Restores the data directory from the uploaded snapshot: its integrity first, then etcdctl
/// into a sibling directory that replaces the (member-less) data directory once complete.
pub async fn restore(machine: &Machine, restore: Restore<'_>) -> Result<(), MachinedError> {
    let snapshot = snapshot_path(machine);
    if !snapshot.exists() {
        return Err(MachinedError::FailedPrecondition(
            "no etcd snapshot was uploaded: send one with EtcdRecover first".into(),
        ));
    }
    let checked = snapshot.clone();
    let skip = restore.skip_hash_check;
    let status = tokio::task::spawn_blocking(move || {
        etcdsnapshot::check_integrity(&checked, skip)?;
        etcdsnapshot::status(&checked)
    })
    .await
    .map_err(|e| MachinedError::Internal(format!("checking the snapshot: {e}")))??;
    tracing::info!(
        hash = format!("{:08x}", status.hash),
        revision = status.revision,
        total_keys = status.total_keys,
        total_size = status.total_size,
        "recovering etcd from the uploaded snapshot"
    );
    let staging = restore.data_dir.with_extension("restore");
    remove_dir_if_present(&staging).await?;
    // etcdctl's output goes to a file: machined's reaper owns every child's exit, so the
    // command runs through it (no `tokio::process`) and its pipes could not be read after.
    let log = staging.with_extension("restore-log");
    let stderr = std::fs::File::create(&log).map_err(MachinedError::io("creating", &log))?;
    let mut command = std::process::Command::new(restore.etcdctl);
    command
        .env("ETCDCTL_API", "3")
        .arg("snapshot")
        .arg("restore")
        .arg(&snapshot)
        .arg(format!("--name={}", restore.name))
        .arg(format!(
            "--initial-cluster={}={}",
            restore.name, restore.peer_url
        ))
        .arg(format!(
            "--initial-advertise-peer-urls={}",
            restore.peer_url
        ))
        .arg(format!("--data-dir={}", staging.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    if restore.skip_hash_check {
        command.arg("--skip-hash-check");
    }
    let (_, exited) = crate::services::ChildReaper::global()
        .spawn_waitable(&mut command)
        .map_err(MachinedError::io("running", restore.etcdctl))?;
    let exit = exited
        .await
        .map_err(|_| MachinedError::Internal("etcdctl's exit was not reported".into()))?;
    let output = tokio::fs::read(&log).await.unwrap_or_default();
    let _ = tokio::fs::remove_file(&log).await;
    if !exit.success() {
        let _ = remove_dir_if_present(&staging).await;
        let stderr = String::from_utf8_lossy(&output);
        let mut end = stderr.len().min(MAX_LOGGED_BYTES);
        while !stderr.is_char_boundary(end) {
            end -= 1;
        }
        tracing::error!(output = %stderr[..end].trim(), "etcdctl snapshot restore failed");
        return Err(MachinedError::Internal(format!(
            "etcdctl snapshot restore failed ({exit}); the node's machined log has its output"
        )));
    }
    remove_dir_if_present(restore.data_dir).await?;
    tokio::fs::rename(&staging, restore.data_dir)
        .await
        .map_err(MachinedError::io("renaming", &staging))
}

async fn remove_dir_if_present(path: &Path) -> Result<(), MachinedError> {
    match tokio::fs::remove_dir_all(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(MachinedError::io("removing", path)(e))
        }
        _ => Ok(()),
    }
}
