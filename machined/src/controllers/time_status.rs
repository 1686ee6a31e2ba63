//! timed's sync state as upstream's resources, followed through timed's `WatchStatus`:
//!
//! - `TimeStatuses.v1alpha1.talos.dev/node` (namespace `runtime`): `synced`, `syncDisabled`, and
//!   `epoch`, the number of times this boot's sync stepped the clock (an accepted sample whose
//!   offset timed steps rather than slews, with timed allowed to change the clock);
//! - `TimeServerStatuses.net.talos.dev/timeservers`: the servers timed uses.
//!
//! While timed does not answer, the resources keep their last values.

use std::sync::Arc;
use std::time::Duration;

use proto::talosrs::timed::SyncStatus;
use proto::talosrs::timed::timed_service_client::TimedServiceClient;
use resources::{Spec, State};
use serde::Serialize;

/// The owner of both kinds, as upstream's graph names the controller.
pub const OWNER: &str = "time.SyncController";
/// timed slews offsets up to this and steps larger ones (timed's `SLEW_LIMIT_NANOS`).
const STEP_THRESHOLD_NANOS: i64 = 128_000_000;
/// Pause before dialling timed again.
const RETRY: Duration = Duration::from_secs(1);

/// `TimeStatuses.v1alpha1.talos.dev`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TimeStatusSpec {
    pub synced: bool,
    pub epoch: u64,
    pub sync_disabled: bool,
}

impl Spec for TimeStatusSpec {
    const TYPE: &'static str = "TimeStatuses.v1alpha1.talos.dev";
    const NAMESPACE: &'static str = "runtime";
}

/// `TimeServerStatuses.net.talos.dev`.
#[derive(Debug, Serialize)]
pub struct TimeServerStatusSpec {
    #[serde(rename = "timeServers")]
    pub servers: Vec<String>,
    #[serde(rename = "useNTS")]
    pub use_nts: bool,
}

impl Spec for TimeServerStatusSpec {
    const TYPE: &'static str = "TimeServerStatuses.net.talos.dev";
    const NAMESPACE: &'static str = "network";
}

/// Counts clock steps across timed's status reports.
#[derive(Debug, Default)]
pub struct Epochs {
    epoch: u64,
    last_sync: Option<prost_types::Timestamp>,
}

impl Epochs {
    /// The status resource for `status`, counting it if it reports a new stepped sample.
    pub fn observe(&mut self, status: &SyncStatus) -> TimeStatusSpec {
        if status.last_sync.is_some() && status.last_sync != self.last_sync {
            let offset = status
                .offset
                .map(|o| {
                    o.seconds
                        .saturating_mul(1_000_000_000)
                        .saturating_add(i64::from(o.nanos))
                })
                .unwrap_or(0);
            if !status.measure_only && !status.disabled && offset.abs() > STEP_THRESHOLD_NANOS {
                self.epoch += 1;
            }
            self.last_sync = status.last_sync;
        }
        TimeStatusSpec {
            synced: status.synced,
            epoch: self.epoch,
            sync_disabled: status.disabled,
        }
    }
}

/// Follows timed at `socket` for as long as machined runs.
pub async fn run(socket: std::path::PathBuf, state: Arc<State>) {
    let mut epochs = Epochs::default();
    loop {
        let mut client = TimedServiceClient::new(crate::local_socket::channel(&socket));
        if let Ok(reply) = client.watch_status(()).await {
            let mut stream = reply.into_inner();
            while let Ok(Some(status)) = stream.message().await {
                publish(&state, &mut epochs, &status);
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

fn publish(state: &State, epochs: &mut Epochs, status: &SyncStatus) {
    let servers = TimeServerStatusSpec {
        servers: status.servers.clone(),
        use_nts: false,
    };
    for written in [
        state.write_spec(OWNER, "node", &epochs.observe(status)),
        state.write_spec(OWNER, "timeservers", &servers),
    ] {
        if let Err(error) = written {
            tracing::error!(%error, "cannot publish the time status");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(second: i64, offset_ms: i64, measure_only: bool) -> SyncStatus {
        SyncStatus {
            synced: true,
            last_sync: Some(prost_types::Timestamp {
                seconds: second,
                nanos: 0,
            }),
            offset: Some(prost_types::Duration {
                seconds: offset_ms / 1000,
                nanos: ((offset_ms % 1000) * 1_000_000) as i32,
            }),
            measure_only,
            servers: vec!["ntp.example.org".into()],
            ..SyncStatus::default()
        }
    }

    #[test]
    fn steps_of_the_clock_count_as_epochs() {
        let mut epochs = Epochs::default();
        let unsynced = SyncStatus::default();
        assert_eq!(
            epochs.observe(&unsynced),
            TimeStatusSpec {
                synced: false,
                epoch: 0,
                sync_disabled: false
            }
        );
        assert_eq!(epochs.observe(&sample(1, -2500, false)).epoch, 1, "stepped");
        assert_eq!(
            epochs.observe(&sample(1, -2500, false)).epoch,
            1,
            "same sample"
        );
        assert_eq!(epochs.observe(&sample(2, 20, false)).epoch, 1, "slewed");
        assert_eq!(
            epochs.observe(&sample(3, 900, true)).epoch,
            1,
            "measured only"
        );
        assert_eq!(epochs.observe(&sample(4, 900, false)).epoch, 2);
        let state = State::new();
        publish(&state, &mut epochs, &sample(4, 900, false));
        let servers = state
            .get(
                &resources::Kind::of::<TimeServerStatusSpec>(),
                "timeservers",
            )
            .unwrap_or_else(|| panic!("published"));
        assert_eq!(
            servers.yaml_spec,
            "timeServers:\n- ntp.example.org\nuseNTS: false\n"
        );
    }
}
