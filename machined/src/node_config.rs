//! The node's machine config: the active config (what the node runs with), the persisted one
//! (`config.yaml` on STATE), and ApplyConfiguration's modes.
//!
//! One apply runs at a time. A config is decoded strictly and validated before anything
//! changes; a rejected config leaves both the active and the persisted config as they were.
//! Persisting is atomic (temp file, fsync, rename, fsync of the directory).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use machineconfig::{Config, RuntimeMode};
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::error::MachinedError;

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
    apply_lock: Mutex<()>,
    pending_revert: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl NodeConfig {
    /// Loads `file` if it exists. A config that fails to load or validate is reported as the
    /// second value and the node starts without one (maintenance), as upstream does.
    pub fn load(file: PathBuf, mode: RuntimeMode) -> (Arc<NodeConfig>, Option<String>) {
        let (config, problem) = match std::fs::read_to_string(&file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
            Err(e) => (None, Some(format!("reading {}: {e}", file.display()))),
            Ok(text) => match decode(&text, mode) {
                Ok((config, _)) => (Some(Arc::new(config)), None),
                Err(e) => (None, Some(format!("{}: {e}", file.display()))),
            },
        };
        let node_config = NodeConfig {
            file,
            mode,
            active: watch::channel(config).0,
            apply_lock: Mutex::new(()),
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
        let _one_at_a_time = self.apply_lock.try_lock().map_err(|_| {
            MachinedError::FailedPrecondition("another configuration apply is in progress".into())
        })?;
        let text = std::str::from_utf8(data)
            .map_err(|_| MachinedError::InvalidArgument("the config is not UTF-8 text".into()))?;
        let (config, warnings) = decode(text, self.mode)?;
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

        self.cancel_pending_revert();
        match mode {
            ApplyMode::NoReboot => {
                self.persist(text)?;
                self.active.send_replace(Some(Arc::new(config)));
            }
            ApplyMode::Staged => self.persist(text)?,
            ApplyMode::Try(timeout) => {
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

/// Strict decoding plus validation for `mode`; returns the config and its warnings. A config
/// without a v1alpha1 document cannot boot a node and is refused.
fn decode(text: &str, mode: RuntimeMode) -> Result<(Config, Vec<String>), MachinedError> {
    let config = Config::from_yaml(text)?;
    if !config.is_complete() {
        return Err(MachinedError::InvalidArgument(
            "the config must contain a v1alpha1 document".into(),
        ));
    }
    let warnings = config.validate(mode, false)?;
    Ok((config, warnings.iter().map(ToString::to_string).collect()))
}
