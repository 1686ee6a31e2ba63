//! The node's machine config: the active config (what the node runs with), the persisted one
//! (`config.yaml` on STATE), and ApplyConfiguration's modes.
//!
//! One apply runs at a time. A config is decoded strictly and validated before anything
//! changes; a rejected config leaves both the active and the persisted config as they were.
//! A config may come from anyone in maintenance mode: it is decoded on a blocking thread, so the
//! API's workers never wait on it, and a decode that outlives [`DECODE_DEADLINE`] fails the
//! request (the decoder's own budget bounds its work; the apply slot stays taken until it ends).
//! Persisting is atomic (temp file, fsync, rename, fsync of the directory).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use machineconfig::{Config, RuntimeMode};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};
use tokio::task::JoinHandle;

use crate::error::MachinedError;

/// How long decoding and validating a config may take before the request fails.
const DECODE_DEADLINE: Duration = Duration::from_secs(10);

/// How an accepted config takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMode {
    /// Persist and activate now.
    NoReboot,
    /// Persist only; it becomes active at the next boot.
    Staged,
    /// Activate without persisting; revert to the previous config after the timeout.
    Try(Duration),
}

/// What an apply did (or, in a dry run, would do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub warnings: Vec<String>,
    pub details: String,
}

/// The active and persisted machine config of this node.
#[derive(Debug)]
pub struct NodeConfig {
    file: PathBuf,
    mode: RuntimeMode,
    active: watch::Sender<Option<Arc<Config>>>,
    apply_lock: Arc<Mutex<()>>,
    pending_revert: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl NodeConfig {
    /// Loads `file` if it exists. A config that fails to load or validate is reported as the
    /// second value and the node starts without one (maintenance), as upstream does.
    pub fn load(file: PathBuf, mode: RuntimeMode) -> (Arc<NodeConfig>, Option<String>) {
        let (config, problem) = match std::fs::read_to_string(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
            Err(e) => (None, Some(format!("reading {}: {e}", file.display()))),
            Ok(text) => match Config::from_yaml(&text)
                .map_err(MachinedError::from)
                .and_then(|config| {
                    // The boot timeline shows the decode and the checks apart.
                    crate::boot_clock::stamp("config decoded");
                    validated(config, mode)
                }) {
                Ok((config, _)) => (Some(Arc::new(config)), None),
                Err(e) => (None, Some(format!("{}: {e}", file.display()))),
            },
        };
        let node_config = NodeConfig {
            file,
            mode,
            active: watch::channel(config).0,
            apply_lock: Arc::new(Mutex::new(())),
            pending_revert: std::sync::Mutex::new(None),
        };
        (Arc::new(node_config), problem)
    }

    /// The active config, if any.
    pub fn current(&self) -> Option<Arc<Config>> {
        self.active.borrow().clone()
    }

    /// Notified whenever the active config changes.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Config>>> {
        self.active.subscribe()
    }

    /// Validates `data` and applies it in `mode` (or only reports what would change when
    /// `dry_run`).
    pub async fn apply(
        self: &Arc<Self>,
        data: &[u8],
        mode: ApplyMode,
        dry_run: bool,
    ) -> Result<ApplyOutcome, MachinedError> {
        self.apply_with(data, mode, dry_run, None).await
    }

    /// [`NodeConfig::apply`], running `before` (on a blocking thread, holding the apply slot)
    /// once the config is valid and before it is persisted or activated: an error from it
    /// leaves the node's config as it was.
    pub async fn apply_with(
        self: &Arc<Self>,
        data: &[u8],
        mode: ApplyMode,
        dry_run: bool,
        before: Option<BeforeApply>,
    ) -> Result<ApplyOutcome, MachinedError> {
        let one_at_a_time = Arc::clone(&self.apply_lock).try_lock_owned().map_err(|_| {
            MachinedError::FailedPrecondition("another configuration apply is in progress".into())
        })?;
        let text = String::from_utf8(data.to_vec())
            .map_err(|_| MachinedError::InvalidArgument("the config is not UTF-8 text".into()))?;
        let (_one_at_a_time, text, decoded) = self.decode_off_workers(one_at_a_time, text).await?;
        let text = text.as_str();
        let (config, warnings) = decoded?;
        let details = match mode {
            ApplyMode::NoReboot => "Applied configuration without a reboot".to_string(),
            ApplyMode::Staged => {
                "Staged configuration to be applied after the next reboot".to_string()
            }
            ApplyMode::Try(timeout) => format!(
                "Applied configuration without a reboot (will be reverted in {})",
                machineconfig::format_go_duration(timeout)
            ),
        };
        if dry_run {
            let current = match self.current() {
                Some(config) => config.to_yaml()?,
                None => String::new(),
            };
            let diff = similar::TextDiff::from_lines(&current, &config.to_yaml()?)
                .unified_diff()
                .header("current", "new")
                .to_string();
            let diff = if diff.is_empty() {
                "No changes.\n".to_string()
            } else {
                diff
            };
            return Ok(ApplyOutcome {
                warnings,
                details: format!(
                    "Dry run summary:\n{details} (skipped in dry-run).\n\nConfig diff:\n\n{diff}"
                ),
            });
        }

        let config = match before {
            None => config,
            Some(before) => {
                let owned = text.to_string();
                tokio::task::spawn_blocking(move || before(&config, &owned).map(|()| config))
                    .await
                    .map_err(|e| MachinedError::Internal(format!("preparing the apply: {e}")))??
            }
        };
        match mode {
            ApplyMode::NoReboot => {
                self.cancel_pending_revert();
                self.persist(text)?;
                self.active.send_replace(Some(Arc::new(config)));
            }
            // The active config is left alone, and so is a pending try-mode revert of it.
            ApplyMode::Staged => self.persist(text)?,
            ApplyMode::Try(timeout) => {
                self.cancel_pending_revert();
                let previous = self.active.send_replace(Some(Arc::new(config)));
                let this = Arc::clone(self);
                let revert = tokio::spawn(async move {
                    tokio::time::sleep(timeout).await;
                    tracing::info!("try mode timeout reached: reverting the configuration");
                    this.active.send_replace(previous);
                });
                *self.pending_revert_slot() = Some(revert);
            }
        }
        Ok(ApplyOutcome { warnings, details })
    }

    /// [`decode`] on a blocking thread, within [`DECODE_DEADLINE`]. The apply slot travels with
    /// the work and comes back with it, so a decode that outlives the deadline keeps the slot
    /// until it ends.
    async fn decode_off_workers(
        &self,
        slot: OwnedMutexGuard<()>,
        text: String,
    ) -> Result<(OwnedMutexGuard<()>, String, DecodeResult), MachinedError> {
        let mode = self.mode;
        let decoding = tokio::task::spawn_blocking(move || {
            let decoded = decode(&text, mode);
            (slot, text, decoded)
        });
        match tokio::time::timeout(DECODE_DEADLINE, decoding).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(failed)) => {
                tracing::error!(error = %failed, "decoding a config failed");
                Err(MachinedError::Internal(
                    "the config could not be decoded".into(),
                ))
            }
            Err(_) => Err(MachinedError::DeadlineExceeded(format!(
                "decoding and validating the config took longer than {}",
                machineconfig::format_go_duration(DECODE_DEADLINE)
            ))),
        }
    }

    fn persist(&self, text: &str) -> Result<(), MachinedError> {
        atomicfile::write(
            &self.file,
            text.as_bytes(),
            0o600,
            atomicfile::Overwrite::Allow,
        )?;
        Ok(())
    }

    fn cancel_pending_revert(&self) {
        if let Some(revert) = self.pending_revert_slot().take() {
            revert.abort();
        }
    }

    fn pending_revert_slot(&self) -> std::sync::MutexGuard<'_, Option<JoinHandle<()>>> {
        self.pending_revert
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Work done with a valid config (and its text) before it is applied (an install).
pub type BeforeApply = Box<dyn FnOnce(&Config, &str) -> Result<(), MachinedError> + Send>;

/// A decoded, validated config and its warnings.
type DecodeResult = Result<(Config, Vec<String>), MachinedError>;

/// Strict decoding plus validation for `mode`; returns the config and its warnings. A config
/// without a v1alpha1 document cannot boot a node and is refused.
/// Whether `text` is a machine config this node would load in `mode`.
pub(crate) fn check(text: &str, mode: RuntimeMode) -> Result<(), MachinedError> {
    decode(text, mode).map(|_| ())
}

fn decode(text: &str, mode: RuntimeMode) -> DecodeResult {
    validated(Config::from_yaml(text)?, mode)
}

/// `config`, decoded, if it is complete and valid in `mode`, with the warnings.
fn validated(config: Config, mode: RuntimeMode) -> DecodeResult {
    if !config.is_complete() {
        return Err(MachinedError::InvalidArgument(
            "the config must contain a v1alpha1 document".into(),
        ));
    }
    let mut warnings: Vec<String> = config
        .validate(mode, false)?
        .iter()
        .map(ToString::to_string)
        .collect();
    warnings.extend(inactive_documents(&config));
    warnings.extend(crate::vip::vip_operators(&config).1);
    Ok((config, warnings))
}

/// A warning for each document kind the node keeps but does not act on yet: accepted, never
/// dropped silently. The network kinds networkd applies are listed in
/// [`crate::network::applied_by_networkd`], the kernel log's in
/// [`crate::log_shipping::applied_by_log_shipping`], the CRI's in [`crate::cri::applied_by_cri`],
/// the `/etc` files' in [`crate::etc_files::applied_by_etc_files`], the kubelet's in
/// [`crate::kubelet::applied_by_kubelet`], the kernel parameters' in
/// [`crate::controllers::kernel_params::applied_by_kernel_params`], the watchdog's in
/// [`crate::watchdog::applied_by_watchdog`], the event sink's in
/// [`crate::event_sink::applied_by_event_sink`], the environment's in
/// [`crate::environment::applied_by_environment`], the VIPs' in [`crate::vip::applied_by_vip`].
fn inactive_documents(config: &Config) -> Vec<String> {
    config
        .documents
        .iter()
        .filter(|document| {
            !crate::network::applied_by_networkd(document)
                && !crate::log_shipping::applied_by_log_shipping(document)
                && !crate::cri::applied_by_cri(document)
                && !crate::etc_files::applied_by_etc_files(document)
                && !crate::kubelet::applied_by_kubelet(document)
                && !crate::controllers::kernel_params::applied_by_kernel_params(document)
                && !crate::watchdog::applied_by_watchdog(document)
                && !crate::event_sink::applied_by_event_sink(document)
                && !crate::environment::applied_by_environment(document)
                && !crate::vip::applied_by_vip(document)
                // Installer imports check their signatures against it (upgrade::verify).
                && !matches!(
                    document,
                    machineconfig::documents::Document::ImageVerification(_)
                )
        })
        .map(|document| {
            let name = document
                .name()
                .map(|name| format!(" {name:?}"))
                .unwrap_or_default();
            format!(
                "{}{name}: accepted and kept in the config, not applied by talos-rs yet",
                document.kind()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kinds_nobody_applies_are_reported() {
        let config = Config::from_yaml(
            "apiVersion: v1alpha1\nkind: BridgeConfig\nname: br0\nlinks: [eth1]\n---\n\
             apiVersion: v1alpha1\nkind: Layer2VIPConfig\nname: 10.5.0.50\nlink: eth0\n---\n\
             apiVersion: v1alpha1\nkind: HCloudVIPConfig\nname: 10.5.0.51\nlink: eth0\napiToken: t\n---\n\
             apiVersion: v1alpha1\nkind: KmsgLogConfig\nname: sink\nurl: tcp://10.5.0.1:5000\n---\n\
             apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: docker.io\n---\n\
             apiVersion: v1alpha1\nkind: EtcFileConfig\nname: motd\ncontents: hi\n---\n\
             apiVersion: v1alpha1\nkind: KubeletConfig\nimage: ghcr.io/siderolabs/kubelet:v1.34.0\n",
        )
        .unwrap();
        assert_eq!(
            inactive_documents(&config),
            [
                "HCloudVIPConfig \"10.5.0.51\": accepted and kept in the config, not applied by \
              talos-rs yet"
            ]
        );
    }
}
