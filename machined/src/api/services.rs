//! ServiceList/Start/Stop/Restart and Events.

use futures_util::StreamExt as _;
use proto::machine::*;
use tonic::Status;
use tonic::codegen::BoxStream;

use crate::error::MachinedError;
use crate::events::SubscribeOptions;
use crate::machine::Machine;

pub(super) fn events(
    machine: &Machine,
    request: EventsRequest,
) -> Result<BoxStream<Event>, MachinedError> {
    let subscription = machine
        .events
        .subscribe(SubscribeOptions::from_request(&request)?)?;
    Ok(Box::pin(subscription.into_stream().map(|event| {
        event.map_err(|e| Status::from(MachinedError::from(e)))
    })))
}

pub(super) async fn list(machine: &Machine) -> Result<ServiceListResponse, MachinedError> {
    Ok(ServiceListResponse {
        messages: vec![ServiceList {
            metadata: None,
            services: machine.services.list().await?,
        }],
    })
}

pub(super) async fn start(
    machine: &Machine,
    id: String,
) -> Result<ServiceStartResponse, MachinedError> {
    machine.services.start_via_api(&id).await?;
    Ok(ServiceStartResponse {
        messages: vec![ServiceStart {
            metadata: None,
            resp: format!("Service {id:?} started"),
        }],
    })
}

pub(super) async fn stop(
    machine: &Machine,
    id: String,
) -> Result<ServiceStopResponse, MachinedError> {
    machine.services.stop_via_api(&id).await?;
    Ok(ServiceStopResponse {
        messages: vec![ServiceStop {
            metadata: None,
            resp: format!("Service {id:?} stopped"),
        }],
    })
}

pub(super) async fn restart(
    machine: &Machine,
    id: String,
) -> Result<ServiceRestartResponse, MachinedError> {
    machine.services.restart_via_api(&id).await?;
    Ok(ServiceRestartResponse {
        messages: vec![ServiceRestart {
            metadata: None,
            resp: format!("Service {id:?} restarted"),
        }],
    })
}
