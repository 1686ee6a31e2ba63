//! The sync loop: one task owns the clock. It polls every configured server, keeps the best
//! sample, applies it (unless measuring only) and publishes the state; settings arrive on a
//! watch channel and take effect at once.

use std::time::{Duration, SystemTime};

use futures_util::future::join_all;
use tokio::sync::watch;

use crate::TimedError;
use crate::clock::Adjustment;
use crate::query::{Sample, ServerSpec, query};

/// The server used when none is configured (as upstream Talos).
pub const DEFAULT_SERVER: &str = "time.cloudflare.com";

/// Retry interval while not yet synchronised (boot wants time quickly).
const UNSYNCED_RETRY: Duration = Duration::from_secs(2);

/// What to synchronise with (`machine.time`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Servers in order of preference; never empty.
    pub servers: Vec<ServerSpec>,
    /// Synchronisation is off.
    pub disabled: bool,
}

impl Settings {
    /// Settings from config text; an empty list means [`DEFAULT_SERVER`].
    pub fn new(servers: &[String], disabled: bool) -> Result<Self, TimedError> {
        let servers = if servers.is_empty() {
            vec![ServerSpec::parse(DEFAULT_SERVER)?]
        } else {
            servers
                .iter()
                .map(|s| ServerSpec::parse(s))
                .collect::<Result<_, _>>()?
        };
        Ok(Settings { servers, disabled })
    }
}

/// How often to poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollPolicy {
    /// Interval after a change or a large offset.
    pub min: Duration,
    /// Interval the loop backs off to while the clock stays in step.
    pub max: Duration,
}

impl PollPolicy {
    /// Upstream-like defaults: 32 s growing to 2048 s.
    pub const DEFAULT: PollPolicy = PollPolicy {
        min: Duration::from_secs(32),
        max: Duration::from_secs(2048),
    };

    /// A fixed interval (`--poll-interval`).
    pub fn fixed(interval: Duration) -> Self {
        PollPolicy {
            min: interval,
            max: interval,
        }
    }

    /// The next interval after a successful poll: doubled while the offset is small enough to
    /// slew, back to the minimum otherwise.
    fn after_success(&self, current: Duration, offset_nanos: i64) -> Duration {
        if offset_nanos.abs() > crate::clock::SLEW_LIMIT_NANOS {
            self.min
        } else {
            (current * 2).clamp(self.min, self.max)
        }
    }
}

/// The published state of synchronisation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncState {
    /// A sample was accepted (or sync is disabled).
    pub synced: bool,
    /// Sync is disabled by configuration.
    pub disabled: bool,
    /// timed never touches the clock.
    pub measure_only: bool,
    /// The configured servers.
    pub servers: Vec<String>,
    /// The last accepted sample and when it was accepted.
    pub last: Option<(Sample, SystemTime)>,
    /// The last poll's error, if it failed.
    pub error: Option<String>,
}

/// Queries every server at once and keeps the sample with the smallest root distance (ties: the
/// earlier server). Fails with every server's error when none answered well.
pub async fn poll_servers(servers: &[ServerSpec], timeout: Duration) -> Result<Sample, TimedError> {
    let results = join_all(servers.iter().map(|server| query(server, timeout))).await;
    let mut best: Option<Sample> = None;
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(sample) => {
                if best
                    .as_ref()
                    .is_none_or(|b| sample.root_distance_nanos < b.root_distance_nanos)
                {
                    best = Some(sample);
                }
            }
            Err(error) => errors.push(error.to_string()),
        }
    }
    best.ok_or(TimedError::NoServerAnswered {
        errors: errors.join("; "),
    })
}

/// The sync loop's parameters.
#[derive(Debug)]
pub struct SyncLoop {
    /// Settings; a change re-polls at once.
    pub settings: watch::Receiver<Settings>,
    /// Where the state is published.
    pub state: watch::Sender<SyncState>,
    /// Never change the clock.
    pub measure_only: bool,
    /// Poll intervals.
    pub poll: PollPolicy,
    /// How long one query waits for its reply.
    pub query_timeout: Duration,
}

impl SyncLoop {
    /// Runs until the settings sender is dropped.
    pub async fn run(mut self) {
        let mut interval = self.poll.min;
        loop {
            let settings = self.settings.borrow_and_update().clone();
            let servers: Vec<String> = settings.servers.iter().map(|s| s.to_string()).collect();
            self.state.send_if_modified(|state| {
                let before = state.clone();
                state.measure_only = self.measure_only;
                state.disabled = settings.disabled;
                // As upstream: with sync off the clock is trusted as it is.
                state.synced = settings.disabled || state.last.is_some();
                if settings.disabled {
                    state.error = None;
                }
                if state.servers != servers {
                    state.servers = servers.clone();
                }
                *state != before
            });

            let wait = if settings.disabled {
                None
            } else {
                Some(self.poll_once(&settings, &mut interval).await)
            };

            let changed = async {
                match wait {
                    Some(wait) => {
                        tokio::select! {
                            () = tokio::time::sleep(wait) => Ok(()),
                            changed = self.settings.changed() => changed,
                        }
                    }
                    None => self.settings.changed().await,
                }
            };
            if changed.await.is_err() {
                return;
            }
            if self.settings.has_changed().unwrap_or(false) {
                interval = self.poll.min;
            }
        }
    }

    /// Polls once, applies and publishes the result; returns how long to wait for the next poll.
    async fn poll_once(&self, settings: &Settings, interval: &mut Duration) -> Duration {
        let first_sync = self.state.borrow().last.is_none();
        let outcome = match poll_servers(&settings.servers, self.query_timeout).await {
            Ok(sample) if self.measure_only => Ok(sample),
            Ok(sample) => {
                let adjustment = Adjustment::choose(first_sync, sample.offset_nanos);
                adjustment.apply(sample.offset_nanos, *interval).map(|()| {
                    tracing::info!(
                        server = %sample.server,
                        offset_ns = sample.offset_nanos,
                        ?adjustment,
                        "adjusted the clock"
                    );
                    sample
                })
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(sample) => {
                *interval = self.poll.after_success(*interval, sample.offset_nanos);
                if first_sync {
                    tracing::info!(
                        server = %sample.server,
                        offset_ns = sample.offset_nanos,
                        delay_ns = sample.delay_nanos,
                        stratum = sample.stratum,
                        measure_only = self.measure_only,
                        "time synchronised"
                    );
                }
                self.state.send_modify(|state| {
                    state.synced = true;
                    state.error = None;
                    state.last = Some((sample, SystemTime::now()));
                });
                *interval
            }
            Err(error) => {
                let message = error.to_string();
                tracing::warn!(error = %message, "time sync poll failed");
                self.state.send_if_modified(|state| {
                    let changed = state.error.as_deref() != Some(message.as_str());
                    state.error = Some(message);
                    changed
                });
                *interval = self.poll.min;
                if first_sync {
                    self.poll.min.min(UNSYNCED_RETRY)
                } else {
                    self.poll.min
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_server_list_means_the_default() {
        let settings = Settings::new(&[], false).unwrap();
        assert_eq!(settings.servers[0].as_str(), DEFAULT_SERVER);
        assert!(Settings::new(&["bad host".into()], false).is_err());
    }

    #[test]
    fn poll_interval_backs_off_while_in_step() {
        let policy = PollPolicy::DEFAULT;
        let s = Duration::from_secs;
        assert_eq!(policy.after_success(s(32), 1_000), s(64));
        assert_eq!(policy.after_success(s(2048), 1_000), s(2048));
        assert_eq!(policy.after_success(s(512), 2_000_000_000), s(32));
        let fixed = PollPolicy::fixed(Duration::from_millis(200));
        assert_eq!(
            fixed.after_success(Duration::from_millis(200), 0),
            Duration::from_millis(200)
        );
    }
}
