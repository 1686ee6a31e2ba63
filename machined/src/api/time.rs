//! `time.TimeService`, answered by timed: machined passes each call on over timed's socket.

use std::sync::Arc;

use proto::time::time_service_client::TimeServiceClient;
use proto::time::time_service_server::TimeService;
use proto::time::{TimeRequest, TimeResponse};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::machine::Machine;

/// `time.TimeService` served by forwarding to timed.
#[derive(Clone, Debug)]
pub struct TimeApi {
    timed: TimeServiceClient<Channel>,
}

impl TimeApi {
    pub fn new(machine: &Arc<Machine>) -> Self {
        let channel = crate::local_socket::channel(&machine.layout.timed_socket());
        TimeApi {
            timed: TimeServiceClient::new(channel),
        }
    }
}

#[tonic::async_trait]
impl TimeService for TimeApi {
    async fn time(&self, _request: Request<()>) -> Result<Response<TimeResponse>, Status> {
        self.timed.clone().time(()).await
    }

    async fn time_check(
        &self,
        request: Request<TimeRequest>,
    ) -> Result<Response<TimeResponse>, Status> {
        self.timed.clone().time_check(request.into_inner()).await
    }
}
