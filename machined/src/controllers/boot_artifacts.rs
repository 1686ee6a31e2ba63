//! `BootArtifacts.runtime.talos.dev`: the SHA-256 of what this boot runs — the kernel and
//! initramfs read back from the boot medium (the BOOT slot that booted) and the SquashFS root —
//! measured once per boot by PID 1 ([`crate::os`]) and published by this source
//! (owner [`OWNER`]) as it arrives. Ids are the artifacts' file names in the build's
//! `SHA256SUMS` (`vmlinuz`, `initramfs.img`, `rootfs.sqsh`), so the two compare line by line.

use std::sync::Arc;

use resources::{Kind, Spec, State};
use serde::Serialize;
use tokio::sync::watch;

/// The source's owner name.
pub const OWNER: &str = "runtime.BootArtifactController";

/// `BootArtifacts.runtime.talos.dev`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BootArtifactSpec {
    /// Lower-case hex SHA-256 of the artifact's bytes.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Where it was read (`BOOT partition, slot A`, `initramfs`).
    pub source: String,
}

impl Spec for BootArtifactSpec {
    const TYPE: &'static str = "BootArtifacts.runtime.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// One measured artifact: its file name (the resource id) and spec.
pub type BootArtifact = (String, BootArtifactSpec);

/// Publishes every measurement `measured` carries until its sender is gone.
pub async fn run(mut measured: watch::Receiver<Vec<BootArtifact>>, state: Arc<State>) {
    loop {
        let artifacts = measured.borrow_and_update().clone();
        publish(&state, &artifacts);
        if measured.changed().await.is_err() {
            return;
        }
    }
}

/// Writes `artifacts` as the only boot artifacts.
fn publish(state: &State, artifacts: &[BootArtifact]) {
    for (id, spec) in artifacts {
        if let Err(error) = state.write_spec(OWNER, id, spec) {
            tracing::warn!(%error, "cannot publish boot artifact {id}");
        }
    }
    let kind = Kind::of::<BootArtifactSpec>();
    for stale in state.list(&kind) {
        if !artifacts.iter().any(|(id, _)| *id == stale.metadata.id) {
            let _ = state.destroy(OWNER, &kind, &stale.metadata.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(name: &str, digest: &str) -> BootArtifact {
        (
            name.to_string(),
            BootArtifactSpec {
                sha256: digest.to_string(),
                size: 3,
                source: "initramfs".into(),
            },
        )
    }

    #[tokio::test]
    async fn each_measurement_replaces_the_last() {
        let state = Arc::new(State::new());
        let (send, receive) = watch::channel(Vec::new());
        let task = tokio::spawn(run(receive, Arc::clone(&state)));
        send.send(vec![
            artifact("vmlinuz", "aa"),
            artifact("rootfs.sqsh", "bb"),
        ])
        .unwrap();
        let kind = Kind::of::<BootArtifactSpec>();
        for _ in 0..100 {
            if state.list(&kind).len() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(state.list(&kind).len(), 2);
        send.send(vec![artifact("rootfs.sqsh", "cc")]).unwrap();
        drop(send);
        task.await.unwrap();
        let left = state.list(&kind);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].metadata.id, "rootfs.sqsh");
    }
}
