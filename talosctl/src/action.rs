//! Tracking a reboot or shutdown to its end through the node's `Events` stream, as upstream's
//! action tracker does (`reboot`/`shutdown` `--wait`).
//!
//! 1. The node answers the call with an actor id; its events are read with that actor filter and
//!    the whole buffered history (`tail_events = -1`), so nothing between the reply and the
//!    subscription is lost. Sequence, phase and task events are printed as progress; a sequence
//!    that stops with an error fails the action.
//! 2. Shutdown is done at the TaskEvent `stopAllServices`. When the stream breaks first (apid
//!    itself is stopped by that task) after the shutdown started, the node is done once it no
//!    longer answers `Version`.
//! 3. Reboot: the stream breaks when the node goes down. The node is then asked again, with
//!    retries, until `Version` answers and the answer comes from a new boot: its
//!    `/proc/sys/kernel/random/boot_id` changed (a real reboot), or its event history no longer
//!    holds the last event of this action (asking for the events after it fails): a dev-mode
//!    node restarts machined without a kernel reboot, so its boot id stays but its events start
//!    afresh. The new boot's events are then read until a MachineStatusEvent RUNNING with
//!    `ready`, or the `boot` sequence's STOP.
//!
//! `--debug` collects the node's kernel log meanwhile and prints it when the action fails.

use std::future::Future;
use std::time::Duration;

use proto::machine::{
    DmesgRequest, Event, EventsRequest, MachineStatusEvent, ReadRequest, SequenceEvent, TaskEvent,
    machine_status_event, sequence_event,
};

use crate::cmd::events::describe_payload;
use crate::connection::Target;

/// How long one call made while waiting for a node may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between attempts to reach a node that went away.
const RETRY_INTERVAL: Duration = Duration::from_millis(500);
/// Where the kernel's boot id is read.
const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// The action being tracked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Reboot,
    Shutdown,
}

/// What one event means for the action.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Worth a progress line.
    Progress(String),
    /// The action is complete.
    Done(String),
    /// The action failed.
    Failed(String),
    /// Nothing to say.
    Quiet,
}

fn payload<M: prost::Message + Default>(event: &Event, name: &str) -> Option<M> {
    let data = event.data.as_ref()?;
    let type_name = data.type_url.rsplit('/').next()?;
    if type_name != name {
        return None;
    }
    M::decode(data.value.as_slice()).ok()
}

/// An event of the action's own stream (filtered by its actor id).
pub fn action_event(action: Action, event: &Event) -> Step {
    let Some(data) = event.data.as_ref().filter(|d| !d.type_url.is_empty()) else {
        return Step::Quiet;
    };
    if let Some(sequence) = payload::<SequenceEvent>(event, "machine.SequenceEvent")
        && let Some(error) = sequence.error
    {
        return Step::Failed(format!(
            "sequence {:?} failed: {}",
            sequence.sequence, error.message
        ));
    }
    let (source, message) = describe_payload(&data.type_url, &data.value);
    let line = format!("{source}: {message}");
    if action == Action::Shutdown
        && payload::<TaskEvent>(event, "machine.TaskEvent")
            .is_some_and(|task| task.task == "stopAllServices")
    {
        return Step::Done(line);
    }
    let progress = [
        "machine.SequenceEvent",
        "machine.PhaseEvent",
        "machine.TaskEvent",
        "machine.MachineStatusEvent",
    ];
    if progress.iter().any(|name| data.type_url.ends_with(name)) {
        Step::Progress(line)
    } else {
        Step::Quiet
    }
}

/// An event of a node's new boot: done at RUNNING + ready or at the boot sequence's end.
pub fn boot_event(event: &Event) -> Step {
    if let Some(status) = payload::<MachineStatusEvent>(event, "machine.MachineStatusEvent")
        && status.stage == machine_status_event::MachineStage::Running as i32
        && status.status.is_some_and(|s| s.ready)
    {
        return Step::Done("machine is running and ready".to_string());
    }
    if let Some(sequence) = payload::<SequenceEvent>(event, "machine.SequenceEvent")
        && sequence.sequence == "boot"
    {
        if let Some(error) = sequence.error {
            return Step::Failed(format!("boot sequence failed: {}", error.message));
        }
        if sequence.action == sequence_event::Action::Stop as i32 {
            return Step::Done("boot sequence finished".to_string());
        }
    }
    Step::Quiet
}

/// Tracks `action` on the node of `target` from its reply's `actor_id` to its end, printing
/// progress through `say`. `boot_id` is the node's boot id read before the action, if any.
pub async fn track(
    target: &Target,
    action: Action,
    actor_id: &str,
    boot_id: Option<String>,
    say: &dyn Fn(&str),
) -> Result<(), String> {
    let mut last_event = None;
    if let Some(done) = follow_action(target, action, actor_id, &mut last_event, say).await? {
        say(&done);
        return Ok(());
    }
    match action {
        Action::Shutdown => loop {
            // The stream broke before `stopAllServices` was seen.
            if !answers(target).await {
                say("node stopped answering");
                return Ok(());
            }
            if let Some(done) =
                follow_action(target, action, actor_id, &mut last_event, say).await?
            {
                say(&done);
                return Ok(());
            }
            tokio::time::sleep(RETRY_INTERVAL).await;
        },
        Action::Reboot => {
            say("connection lost, waiting for the node to come back");
            loop {
                tokio::time::sleep(RETRY_INTERVAL).await;
                if !answers(target).await
                    || !new_boot(target, boot_id.as_deref(), last_event.as_deref()).await
                {
                    continue;
                }
                if let Some(done) = follow_boot(target).await? {
                    say(&done);
                    say("post check passed");
                    return Ok(());
                }
            }
        }
    }
}

/// Reads the action's events until the action is done (`Some`) or the stream ends (`None`).
async fn follow_action(
    target: &Target,
    action: Action,
    actor_id: &str,
    last_event: &mut Option<String>,
    say: &dyn Fn(&str),
) -> Result<Option<String>, String> {
    let request = EventsRequest {
        tail_events: -1,
        with_actor_id: actor_id.to_string(),
        ..Default::default()
    };
    let Ok(request) = target.request(request) else {
        return Err("invalid node name".to_string());
    };
    let Some(Ok(response)) = bounded(target.machine().events(request)).await else {
        return Ok(None);
    };
    let mut stream = response.into_inner();
    while let Ok(Some(event)) = stream.message().await {
        if event.actor_id == actor_id && !event.id.is_empty() {
            *last_event = Some(event.id.clone());
        }
        match action_event(action, &event) {
            Step::Progress(line) => say(&line),
            Step::Done(line) => return Ok(Some(line)),
            Step::Failed(reason) => return Err(reason),
            Step::Quiet => {}
        }
    }
    Ok(None)
}

/// Reads a new boot's events until it is done (`Some`) or the stream ends (`None`).
async fn follow_boot(target: &Target) -> Result<Option<String>, String> {
    let request = EventsRequest {
        tail_events: -1,
        ..Default::default()
    };
    let Ok(request) = target.request(request) else {
        return Err("invalid node name".to_string());
    };
    let Some(Ok(response)) = bounded(target.machine().events(request)).await else {
        return Ok(None);
    };
    let mut stream = response.into_inner();
    while let Ok(Some(event)) = stream.message().await {
        match boot_event(&event) {
            Step::Done(line) => return Ok(Some(line)),
            Step::Failed(reason) => return Err(reason),
            Step::Progress(_) | Step::Quiet => {}
        }
    }
    Ok(None)
}

/// Whether the node answers `Version` (without a node error).
async fn answers(target: &Target) -> bool {
    let Ok(request) = target.request(()) else {
        return false;
    };
    match bounded(target.machine().version(request)).await {
        Some(Ok(reply)) => reply
            .into_inner()
            .messages
            .first()
            .is_some_and(|m| m.metadata.as_ref().is_none_or(|md| md.error.is_empty())),
        _ => false,
    }
}

/// Whether the node that answers again runs a new boot: its boot id changed, or it no longer
/// knows the last event of the action. With neither to compare, answering again after the
/// connection was lost counts.
async fn new_boot(target: &Target, boot_id: Option<&str>, last_event: Option<&str>) -> bool {
    if let (Some(before), Some(now)) = (boot_id, read_boot_id(target).await)
        && before != now
    {
        return true;
    }
    let Some(last_event) = last_event else {
        return true;
    };
    let request = EventsRequest {
        tail_id: last_event.to_string(),
        ..Default::default()
    };
    let Ok(request) = target.request(request) else {
        return false;
    };
    let unknown_event = |status: &tonic::Status| {
        matches!(
            status.code(),
            tonic::Code::InvalidArgument | tonic::Code::NotFound | tonic::Code::OutOfRange
        )
    };
    match bounded(target.machine().events(request)).await {
        Some(Err(status)) => unknown_event(&status),
        Some(Ok(response)) => {
            // The old boot sends its hello event; an error may also come as the first message.
            let mut stream = response.into_inner();
            match bounded(stream.message()).await {
                Some(Err(status)) => unknown_event(&status),
                Some(Ok(Some(event))) => event
                    .metadata
                    .as_ref()
                    .is_some_and(|md| !md.error.is_empty()),
                _ => false,
            }
        }
        None => false,
    }
}

/// The node's boot id, if it can be read.
pub async fn read_boot_id(target: &Target) -> Option<String> {
    let request = target
        .request(ReadRequest {
            path: BOOT_ID_PATH.to_string(),
        })
        .ok()?;
    let mut stream = bounded(target.machine().read(request))
        .await?
        .ok()?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(Ok(Some(data))) = bounded(stream.message()).await {
        if data
            .metadata
            .as_ref()
            .is_some_and(|md| !md.error.is_empty())
        {
            return None;
        }
        bytes.extend_from_slice(&data.bytes);
    }
    let text = String::from_utf8(bytes).ok()?;
    Some(text.trim().to_string()).filter(|id| !id.is_empty())
}

/// Collects the node's kernel log (follow) into `log` until dropped.
pub async fn collect_kernel_log(target: &Target, log: &mut Vec<u8>) {
    let request = DmesgRequest {
        follow: true,
        tail: false,
    };
    let Ok(request) = target.request(request) else {
        return std::future::pending().await;
    };
    match target.machine().dmesg(request).await {
        Ok(response) => {
            let mut stream = response.into_inner();
            while let Ok(Some(data)) = stream.message().await {
                log.extend_from_slice(&data.bytes);
            }
        }
        Err(status) => log.extend_from_slice(
            format!("(kernel log unavailable: {})\n", status.message()).as_bytes(),
        ),
    }
    std::future::pending().await
}

async fn bounded<F: Future>(future: F) -> Option<F::Output> {
    tokio::time::timeout(CALL_TIMEOUT, future).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::common;
    use proto::machine::{PhaseEvent, phase_event, task_event};

    fn event(name: &str, payload: impl prost::Message) -> Event {
        Event {
            metadata: None,
            data: Some(prost_types::Any {
                type_url: format!("talos/runtime/machine.{name}"),
                value: payload.encode_to_vec(),
            }),
            id: "cn3v9rbq5rk7g2e7gq3g".to_string(),
            actor_id: "actor".to_string(),
        }
    }

    fn sequence(name: &str, action: sequence_event::Action, error: Option<&str>) -> Event {
        event(
            "SequenceEvent",
            SequenceEvent {
                sequence: name.into(),
                action: action as i32,
                error: error.map(|message| common::Error {
                    code: 0,
                    message: message.into(),
                    details: vec![],
                }),
            },
        )
    }

    fn task(name: &str, action: task_event::Action) -> Event {
        event(
            "TaskEvent",
            TaskEvent {
                task: name.into(),
                action: action as i32,
            },
        )
    }

    fn status(stage: machine_status_event::MachineStage, ready: bool) -> Event {
        event(
            "MachineStatusEvent",
            MachineStatusEvent {
                stage: stage as i32,
                status: Some(machine_status_event::MachineStatus {
                    ready,
                    unmet_conditions: vec![],
                }),
            },
        )
    }

    #[test]
    fn shutdown_is_done_at_stop_all_services() {
        let start = sequence("shutdown", sequence_event::Action::Start, None);
        assert_eq!(
            action_event(Action::Shutdown, &start),
            Step::Progress("shutdown: START".into())
        );
        let stop_all = task("stopAllServices", task_event::Action::Start);
        assert_eq!(
            action_event(Action::Shutdown, &stop_all),
            Step::Done("stopAllServices: START".into())
        );
        // For a reboot the same task is only progress: the node must come back.
        assert_eq!(
            action_event(Action::Reboot, &stop_all),
            Step::Progress("stopAllServices: START".into())
        );
    }

    #[test]
    fn phases_and_statuses_are_progress_and_errors_fail() {
        let phase = event(
            "PhaseEvent",
            PhaseEvent {
                phase: "stopEverything".into(),
                action: phase_event::Action::Start as i32,
            },
        );
        assert_eq!(
            action_event(Action::Reboot, &phase),
            Step::Progress("stopEverything: START".into())
        );
        let rebooting = status(machine_status_event::MachineStage::Rebooting, false);
        assert!(matches!(
            action_event(Action::Reboot, &rebooting),
            Step::Progress(line) if line.starts_with("REBOOTING")
        ));
        let failed = sequence("reboot", sequence_event::Action::Stop, Some("stuck"));
        assert_eq!(
            action_event(Action::Reboot, &failed),
            Step::Failed("sequence \"reboot\" failed: stuck".into())
        );
        assert_eq!(action_event(Action::Reboot, &Event::default()), Step::Quiet);
    }

    #[test]
    fn a_new_boot_is_done_when_ready_or_booted() {
        assert!(matches!(
            boot_event(&status(machine_status_event::MachineStage::Running, true)),
            Step::Done(_)
        ));
        assert_eq!(
            boot_event(&status(machine_status_event::MachineStage::Running, false)),
            Step::Quiet
        );
        assert_eq!(
            boot_event(&status(machine_status_event::MachineStage::Booting, true)),
            Step::Quiet
        );
        assert_eq!(
            boot_event(&sequence("boot", sequence_event::Action::Start, None)),
            Step::Quiet
        );
        assert!(matches!(
            boot_event(&sequence("boot", sequence_event::Action::Stop, None)),
            Step::Done(_)
        ));
        assert_eq!(
            boot_event(&sequence(
                "boot",
                sequence_event::Action::Stop,
                Some("no disk")
            )),
            Step::Failed("boot sequence failed: no disk".into())
        );
        assert_eq!(
            boot_event(&sequence("reboot", sequence_event::Action::Stop, None)),
            Step::Quiet
        );
    }
}
