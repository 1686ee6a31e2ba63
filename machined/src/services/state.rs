//! Service states, health and history, and their API shapes.

use std::collections::VecDeque;
use std::time::SystemTime;

use proto::machine::{self, service_state_event::Action};

/// How many history entries a service keeps (as upstream).
pub const HISTORY_LEN: usize = 64;

/// The state of a service (the `state` strings of `ServiceInfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceState {
    /// Registered, never started.
    Initialized,
    /// Its runner is being created.
    Preparing,
    /// Waiting for dependencies or for a restart back-off.
    Waiting,
    /// Its program runs.
    Running,
    /// Being stopped.
    Stopping,
    /// Stopped, or exited with code 0.
    Finished,
    /// Exited with an error or could not be started.
    Failed,
    /// Nothing to run.
    Skipped,
    /// Start requested.
    Starting,
}

impl ServiceState {
    /// The API string (`Running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initialized => "Initialized",
            Self::Preparing => "Preparing",
            Self::Waiting => "Waiting",
            Self::Running => "Running",
            Self::Stopping => "Stopping",
            Self::Finished => "Finished",
            Self::Failed => "Failed",
            Self::Skipped => "Skipped",
            Self::Starting => "Starting",
        }
    }

    /// The `ServiceStateEvent` action for this state.
    pub fn action(self) -> Action {
        match self {
            Self::Initialized => Action::Initialized,
            Self::Preparing => Action::Preparing,
            Self::Waiting => Action::Waiting,
            Self::Running => Action::Running,
            Self::Stopping => Action::Stopping,
            Self::Finished => Action::Finished,
            Self::Failed => Action::Failed,
            Self::Skipped => Action::Skipped,
            Self::Starting => Action::Starting,
        }
    }
}

/// The health of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// No probe result yet (or no health check at all).
    pub unknown: bool,
    /// The last probe succeeded.
    pub healthy: bool,
    /// The last probe's error, empty when healthy.
    pub last_message: String,
    /// When `healthy` last changed.
    pub last_change: Option<SystemTime>,
}

impl Health {
    /// Nothing known.
    pub fn unknown() -> Self {
        Self {
            unknown: true,
            healthy: false,
            last_message: String::new(),
            last_change: None,
        }
    }

    /// The API shape.
    pub fn to_proto(&self) -> machine::ServiceHealth {
        machine::ServiceHealth {
            unknown: self.unknown,
            healthy: self.healthy,
            last_message: self.last_message.clone(),
            last_change: self.last_change.map(prost_types::Timestamp::from),
        }
    }
}

/// One transition of one service, as sent to watchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStateChange {
    /// The service.
    pub id: String,
    /// Its new state.
    pub state: ServiceState,
    /// The history message.
    pub message: String,
    /// Its health at the time.
    pub health: Health,
    /// Whether it is now up (running and, if health-checked, healthy; or skipped).
    pub up: bool,
}

/// The bounded per-service history.
#[derive(Debug, Default)]
pub(super) struct History {
    events: VecDeque<machine::ServiceEvent>,
}

impl History {
    pub(super) fn push(&mut self, state: ServiceState, message: &str) {
        if self.events.len() == HISTORY_LEN {
            self.events.pop_front();
        }
        self.events.push_back(machine::ServiceEvent {
            msg: message.to_owned(),
            state: state.as_str().to_owned(),
            ts: Some(prost_types::Timestamp::from(SystemTime::now())),
        });
    }

    pub(super) fn last_message(&self) -> Option<&str> {
        self.events.back().map(|event| event.msg.as_str())
    }

    pub(super) fn to_proto(&self) -> machine::ServiceEvents {
        machine::ServiceEvents {
            events: self.events.iter().cloned().collect(),
        }
    }
}
