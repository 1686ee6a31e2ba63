//! The payload messages an [`Event`](proto::machine::Event) may carry, and their type URLs.

use proto::machine::{
    AddressEvent, ConfigLoadErrorEvent, ConfigValidationErrorEvent, Event, MachineStatusEvent,
    PhaseEvent, RestartEvent, SequenceEvent, ServiceStateEvent, TaskEvent,
};

/// Prefix of every event type URL: Talos uses `talos/runtime/<proto full name>`, not
/// `type.googleapis.com/...`.
pub const TYPE_URL_PREFIX: &str = "talos/runtime/";

/// A message that can be published on the [`EventBus`](super::EventBus).
pub trait RuntimeEvent: prost::Message + Default + Sized {
    /// The full proto name, for example `machine.ServiceStateEvent`.
    const FULL_NAME: &'static str;

    /// `talos/runtime/<full name>`.
    fn type_url() -> String {
        format!("{TYPE_URL_PREFIX}{}", Self::FULL_NAME)
    }

    /// Decodes the payload of `event` when it is of this type.
    fn from_event(event: &Event) -> Option<Self> {
        let data = event.data.as_ref()?;
        if data.type_url != Self::type_url() {
            return None;
        }
        Self::decode(data.value.as_slice()).ok()
    }
}

macro_rules! runtime_events {
    ($($message:ident),* $(,)?) => {
        $(
            impl RuntimeEvent for $message {
                const FULL_NAME: &'static str = concat!("machine.", stringify!($message));
            }
        )*
    };
}

runtime_events!(
    SequenceEvent,
    PhaseEvent,
    TaskEvent,
    ServiceStateEvent,
    RestartEvent,
    ConfigLoadErrorEvent,
    ConfigValidationErrorEvent,
    AddressEvent,
    MachineStatusEvent,
);
