//! `talosctl events`: the runtime event stream, one table row per event.

use clap::Args;
use prost::Message as _;
use proto::machine::{
    AddressEvent, ConfigLoadErrorEvent, ConfigValidationErrorEvent, Event, EventsRequest,
    MachineStatusEvent, PhaseEvent, SequenceEvent, ServiceStateEvent, TaskEvent,
    machine_status_event, phase_event, sequence_event, service_state_event, task_event,
};

use crate::cli::GlobalArgs;
use crate::connection::{Session, block_on, interleave};
use crate::failures::Failures;
use crate::humanize::parse_go_duration;

/// Type URLs of event payloads start with this, then the proto full name.
const TYPE_URL_PREFIX: &str = "talos/runtime/";

const HEADER: [&str; 6] = ["NODE", "ID", "EVENT", "ACTOR", "SOURCE", "MESSAGE"];

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Show specified number of past events (use -1 to show full history, default is to show no history)
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub tail: i32,
    /// Show events for the past duration interval (one second resolution, e.g. 30s, 5m)
    #[arg(long)]
    pub duration: Option<String>,
    /// Show events after the event with the specified event ID
    #[arg(long)]
    pub since: Option<String>,
    /// Filter events by the specified actor ID (default is no filter)
    #[arg(long = "actor-id")]
    pub actor_id: Option<String>,
}

fn events_request(args: &EventsArgs) -> anyhow::Result<EventsRequest> {
    let chosen = [
        args.tail != 0,
        args.duration.is_some(),
        args.since.is_some(),
    ];
    if chosen.iter().filter(|&&set| set).count() > 1 {
        anyhow::bail!("only one of --tail, --duration and --since may be used");
    }
    let tail_seconds = match &args.duration {
        Some(text) => i32::try_from(parse_go_duration(text)?.as_secs())
            .map_err(|_| anyhow::anyhow!("--duration {text:?} is too long"))?,
        None => 0,
    };
    Ok(EventsRequest {
        tail_events: args.tail,
        tail_id: args.since.clone().unwrap_or_default(),
        tail_seconds,
        with_actor_id: args.actor_id.clone().unwrap_or_default(),
    })
}

pub fn run(args: EventsArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let request = events_request(&args)?;
    block_on(async {
        let session = Session::open(global).await?;
        let mut failures = Failures::default();
        let widths: Vec<usize> = HEADER.iter().map(|h| h.len()).collect();
        let header: Vec<String> = HEADER.iter().map(|h| h.to_string()).collect();
        println!("{}", padded_row(&widths, &header));
        let mut replies = Vec::new();
        for target in session.targets() {
            let reply = target
                .machine()
                .events(target.request(request.clone())?)
                .await;
            replies.push((target, reply));
        }
        interleave(replies, &mut failures, |node, event| {
            if let Some(row) = event_row(node, &event) {
                println!("{}", padded_row(&widths, &row));
            }
            Ok(())
        })
        .await?;
        failures.finish()
    })
}

/// Cells padded to at least the header's widths, three spaces apart, as each event is printed
/// on its own (upstream flushes its tab writer after every event).
fn padded_row(widths: &[usize], cells: &[String]) -> String {
    let last = cells.len().saturating_sub(1);
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        line.push_str(cell);
        if i < last {
            let width = widths.get(i).copied().unwrap_or_default();
            line.push_str(&" ".repeat(width.saturating_sub(cell.len()) + 3));
        }
    }
    line
}

/// NODE, ID, EVENT, ACTOR, SOURCE, MESSAGE for one event; `None` for the stream's opening
/// "hello" event (no payload type).
fn event_row(node: &str, event: &Event) -> Option<Vec<String>> {
    let data = event.data.as_ref().filter(|any| !any.type_url.is_empty())?;
    let (source, message) = describe_payload(&data.type_url, &data.value);
    Some(vec![
        node.to_string(),
        event.id.clone(),
        data.type_url.clone(),
        event.actor_id.clone(),
        source,
        message,
    ])
}

/// SOURCE and MESSAGE for a payload; unknown or undecodable payloads show empty cells.
pub(crate) fn describe_payload(type_url: &str, value: &[u8]) -> (String, String) {
    let name = type_url.strip_prefix(TYPE_URL_PREFIX).unwrap_or(type_url);
    let described = match name {
        "machine.SequenceEvent" => SequenceEvent::decode(value).map(|e| {
            let message = match &e.error {
                Some(error) => format!("error: {}", error.message),
                None => action_name(e.action, sequence_event::Action::try_from, |a| {
                    a.as_str_name()
                }),
            };
            (e.sequence, message)
        }),
        "machine.PhaseEvent" => PhaseEvent::decode(value).map(|e| {
            let action = action_name(e.action, phase_event::Action::try_from, |a| a.as_str_name());
            (e.phase, action)
        }),
        "machine.TaskEvent" => TaskEvent::decode(value).map(|e| {
            let action = action_name(e.action, task_event::Action::try_from, |a| a.as_str_name());
            (e.task, action)
        }),
        "machine.ServiceStateEvent" => ServiceStateEvent::decode(value).map(|e| {
            let action = action_name(e.action, service_state_event::Action::try_from, |a| {
                a.as_str_name()
            });
            (e.service, format!("{action}: {}", e.message))
        }),
        "machine.ConfigLoadErrorEvent" => {
            ConfigLoadErrorEvent::decode(value).map(|e| ("error".to_string(), e.error))
        }
        "machine.ConfigValidationErrorEvent" => {
            ConfigValidationErrorEvent::decode(value).map(|e| ("error".to_string(), e.error))
        }
        "machine.AddressEvent" => AddressEvent::decode(value)
            .map(|e| (e.hostname, format!("ADDRESSES: {}", e.addresses.join(",")))),
        "machine.MachineStatusEvent" => MachineStatusEvent::decode(value).map(|e| {
            let stage = action_name(e.stage, machine_status_event::MachineStage::try_from, |s| {
                s.as_str_name()
            });
            let status = e.status.unwrap_or_default();
            let unmet: Vec<String> = status
                .unmet_conditions
                .iter()
                .map(|c| format!("{}: {}", c.name, c.reason))
                .collect();
            (
                stage,
                format!(
                    "ready: {}, unmet conditions: [{}]",
                    status.ready,
                    unmet.join(", ")
                ),
            )
        }),
        _ => return (String::new(), String::new()),
    };
    described.unwrap_or_default()
}

/// An enum value's proto name, or its number when this client does not know it.
fn action_name<E>(
    value: i32,
    parse: impl Fn(i32) -> Result<E, prost::UnknownEnumValue>,
    name: impl Fn(&E) -> &'static str,
) -> String {
    parse(value)
        .map(|e| name(&e).to_string())
        .unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use proto::common;

    fn event(type_url: &str, payload: impl Message) -> Event {
        Event {
            metadata: None,
            data: Some(prost_types::Any {
                type_url: type_url.to_string(),
                value: payload.encode_to_vec(),
            }),
            id: "cn3v9rbq5rk7g2e7gq3g".to_string(),
            actor_id: "actor-1".to_string(),
        }
    }

    fn source_and_message(event: &Event) -> (String, String) {
        let row = event_row("10.5.0.2", event).expect("a row");
        assert_eq!(row[0], "10.5.0.2");
        assert_eq!(row[1], "cn3v9rbq5rk7g2e7gq3g");
        assert_eq!(row[3], "actor-1");
        (row[4].clone(), row[5].clone())
    }

    #[test]
    fn the_hello_event_is_skipped() {
        let hello = Event {
            data: Some(prost_types::Any::default()),
            ..Default::default()
        };
        assert!(event_row("n", &hello).is_none());
        assert!(event_row("n", &Event::default()).is_none());
    }

    #[test]
    fn sequence_events_show_action_or_error() {
        let started = event(
            "talos/runtime/machine.SequenceEvent",
            SequenceEvent {
                sequence: "boot".into(),
                action: sequence_event::Action::Start as i32,
                error: None,
            },
        );
        let row = event_row("10.5.0.2", &started).expect("row");
        assert_eq!(row[2], "talos/runtime/machine.SequenceEvent");
        assert_eq!(
            source_and_message(&started),
            ("boot".into(), "START".into())
        );
        let failed = event(
            "talos/runtime/machine.SequenceEvent",
            SequenceEvent {
                sequence: "boot".into(),
                action: sequence_event::Action::Stop as i32,
                error: Some(common::Error {
                    code: 0,
                    message: "disk not found".into(),
                    details: vec![],
                }),
            },
        );
        assert_eq!(
            source_and_message(&failed),
            ("boot".into(), "error: disk not found".into())
        );
    }

    #[test]
    fn phase_task_and_service_events() {
        let phase = event(
            "talos/runtime/machine.PhaseEvent",
            PhaseEvent {
                phase: "ephemeral".into(),
                action: phase_event::Action::Stop as i32,
            },
        );
        assert_eq!(
            source_and_message(&phase),
            ("ephemeral".into(), "STOP".into())
        );
        let task = event(
            "talos/runtime/machine.TaskEvent",
            TaskEvent {
                task: "startAllServices".into(),
                action: task_event::Action::Start as i32,
            },
        );
        assert_eq!(
            source_and_message(&task),
            ("startAllServices".into(), "START".into())
        );
        let service = event(
            "talos/runtime/machine.ServiceStateEvent",
            ServiceStateEvent {
                service: "apid".into(),
                action: service_state_event::Action::Running as i32,
                message: "Health check successful".into(),
                health: None,
            },
        );
        assert_eq!(
            source_and_message(&service),
            ("apid".into(), "RUNNING: Health check successful".into())
        );
    }

    #[test]
    fn address_config_and_status_events() {
        let address = event(
            "talos/runtime/machine.AddressEvent",
            AddressEvent {
                hostname: "talos-cp-1".into(),
                addresses: vec!["10.5.0.2".into(), "fd00::2".into()],
            },
        );
        assert_eq!(
            source_and_message(&address),
            ("talos-cp-1".into(), "ADDRESSES: 10.5.0.2,fd00::2".into())
        );
        let config = event(
            "talos/runtime/machine.ConfigLoadErrorEvent",
            ConfigLoadErrorEvent {
                error: "bad yaml".into(),
            },
        );
        assert_eq!(
            source_and_message(&config),
            ("error".into(), "bad yaml".into())
        );
        let status = event(
            "talos/runtime/machine.MachineStatusEvent",
            MachineStatusEvent {
                stage: machine_status_event::MachineStage::Running as i32,
                status: Some(machine_status_event::MachineStatus {
                    ready: false,
                    unmet_conditions: vec![machine_status_event::machine_status::UnmetCondition {
                        name: "nodeReady".into(),
                        reason: "node not ready".into(),
                    }],
                }),
            },
        );
        assert_eq!(
            source_and_message(&status),
            (
                "RUNNING".into(),
                "ready: false, unmet conditions: [nodeReady: node not ready]".into()
            )
        );
    }

    #[test]
    fn unknown_payloads_keep_their_type() {
        let unknown = event(
            "talos/runtime/machine.Future",
            common::Empty { metadata: None },
        );
        let row = event_row("n", &unknown).expect("row");
        assert_eq!(row[2], "talos/runtime/machine.Future");
        assert_eq!((row[4].as_str(), row[5].as_str()), ("", ""));
    }

    #[test]
    fn only_one_history_selector() {
        let args = EventsArgs {
            tail: 5,
            duration: Some("1m".into()),
            since: None,
            actor_id: None,
        };
        assert!(events_request(&args).is_err());
        let args = EventsArgs {
            tail: 0,
            duration: Some("1m30s".into()),
            since: None,
            actor_id: Some("a".into()),
        };
        let request = events_request(&args).expect("request");
        assert_eq!(
            (request.tail_seconds, request.with_actor_id.as_str()),
            (90, "a")
        );
    }

    #[test]
    fn rows_pad_to_the_header() {
        let widths = [4, 2];
        let cells = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(padded_row(&widths, &cells), "a      b    c");
    }
}
