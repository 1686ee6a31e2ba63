//! The gRPC adapters on timed's socket: upstream `time.TimeService` (so machined can forward
//! `/time.TimeService/*` unchanged) and our `talosrs.timed.TimedService`. Handlers unpack,
//! call the sync/query logic and map [`TimedError`] to a status in one place.

use std::sync::Arc;
use std::time::Duration;

use proto::talosrs::timed::timed_service_server::TimedService;
use proto::talosrs::timed::{ConfigureRequest, SyncStatus};
use proto::time::time_service_server::TimeService;
use proto::time::{Time as TimeMessage, TimeRequest, TimeResponse};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::TimedError;
use crate::query::{ServerSpec, query};
use crate::sync::{Settings, SyncState};

/// The boxed stream type the generated server expects.
type StatusStream = std::pin::Pin<
    Box<dyn futures_util::Stream<Item = Result<SyncStatus, Status>> + Send + 'static>,
>;

/// Both services share this state.
#[derive(Clone, Debug)]
pub struct Api {
    /// The sync loop's settings.
    pub settings: Arc<watch::Sender<Settings>>,
    /// The sync loop's published state.
    pub state: watch::Receiver<SyncState>,
    /// Timeout of one on-demand query.
    pub query_timeout: Duration,
}

/// The one place a [`TimedError`] becomes a gRPC status.
fn status(error: TimedError) -> Status {
    let message = error.to_string();
    match error {
        TimedError::InvalidServer { .. } => Status::invalid_argument(message),
        TimedError::Resolve { .. }
        | TimedError::NoAddress { .. }
        | TimedError::Network { .. }
        | TimedError::Timeout { .. }
        | TimedError::BadReply { .. }
        | TimedError::KissOfDeath { .. }
        | TimedError::ServerUnsynchronised { .. }
        | TimedError::NoServerAnswered { .. } => Status::unavailable(message),
        TimedError::Io { .. }
        | TimedError::Config { .. }
        | TimedError::Clock { .. }
        | TimedError::Signal { .. }
        | TimedError::Serve { .. } => Status::internal(message),
    }
}

fn signed_duration(nanos: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: nanos / 1_000_000_000,
        nanos: (nanos % 1_000_000_000) as i32,
    }
}

/// The wire form of the sync state.
pub fn sync_status(state: &SyncState) -> SyncStatus {
    let mut status = SyncStatus {
        synced: state.synced,
        disabled: state.disabled,
        measure_only: state.measure_only,
        servers: state.servers.clone(),
        error: state.error.clone().unwrap_or_default(),
        ..SyncStatus::default()
    };
    if let Some((sample, at)) = &state.last {
        status.server = sample.server.clone();
        status.offset = Some(signed_duration(sample.offset_nanos));
        status.delay = Some(signed_duration(sample.delay_nanos));
        status.stratum = u32::from(sample.stratum);
        status.last_sync = Some((*at).into());
    }
    status
}

impl Api {
    async fn time_of(&self, server: &ServerSpec) -> Result<Response<TimeResponse>, Status> {
        let sample = query(server, self.query_timeout).await.map_err(status)?;
        Ok(Response::new(TimeResponse {
            messages: vec![TimeMessage {
                metadata: None,
                server: server.to_string(),
                localtime: Some(sample.received_at.into()),
                remotetime: Some(sample.remote_time().into()),
            }],
        }))
    }
}

#[tonic::async_trait]
impl TimeService for Api {
    async fn time(&self, _request: Request<()>) -> Result<Response<TimeResponse>, Status> {
        let server = self.settings.borrow().servers[0].clone();
        self.time_of(&server).await
    }

    async fn time_check(
        &self,
        request: Request<TimeRequest>,
    ) -> Result<Response<TimeResponse>, Status> {
        let server = ServerSpec::parse(&request.into_inner().server).map_err(status)?;
        self.time_of(&server).await
    }
}

#[tonic::async_trait]
impl TimedService for Api {
    async fn status(&self, _request: Request<()>) -> Result<Response<SyncStatus>, Status> {
        Ok(Response::new(sync_status(&self.state.borrow())))
    }

    async fn watch_status(&self, _request: Request<()>) -> Result<Response<StatusStream>, Status> {
        let mut receiver = self.state.clone();
        receiver.mark_changed();
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.changed().await.ok()?;
            let status = sync_status(&receiver.borrow_and_update());
            Some((Ok(status), receiver))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn configure(&self, request: Request<ConfigureRequest>) -> Result<Response<()>, Status> {
        let request = request.into_inner();
        let settings = Settings::new(&request.servers, request.disabled).map_err(status)?;
        tracing::info!(servers = ?request.servers, disabled = request.disabled, "configured");
        self.settings.send_if_modified(|current| {
            let changed = *current != settings;
            *current = settings;
            changed
        });
        Ok(Response::new(()))
    }
}
