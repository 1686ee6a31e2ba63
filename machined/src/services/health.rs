//! Health probes: one tokio task per running, health-checked service.

use std::time::Duration;

use proto::talosrs::timed::timed_service_client::TimedServiceClient;
use tokio::net::{TcpStream, UnixStream};
use tokio::task::JoinHandle;

use super::spec::{HealthCheck, HealthProbe};

/// Probes `check` until aborted or until `report` returns false (nobody listens any more).
/// `report` gets `Ok` for a healthy probe and the error text otherwise.
pub(super) fn spawn_prober(
    check: HealthCheck,
    report: impl Fn(Result<(), String>) -> bool + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(check.initial_delay).await;
        loop {
            let result = probe(&check.probe, check.timeout).await;
            if !report(result) {
                return;
            }
            tokio::time::sleep(check.period).await;
        }
    })
}

async fn probe(probe: &HealthProbe, timeout: Duration) -> Result<(), String> {
    match probe {
        HealthProbe::TcpDial(address) => {
            match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
                Ok(Ok(_connection)) => Ok(()),
                Ok(Err(error)) => Err(format!("dial tcp {address}: {error}")),
                Err(_) => Err(format!("dial tcp {address}: no answer within {timeout:?}")),
            }
        }
        HealthProbe::TimeSynced(socket) => {
            let mut timed = TimedServiceClient::new(crate::local_socket::channel(socket));
            match tokio::time::timeout(timeout, timed.status(())).await {
                Ok(Ok(status)) if status.get_ref().synced => Ok(()),
                Ok(Ok(status)) => Err(format!(
                    "time is not in sync yet: {}",
                    status.get_ref().error
                )),
                Ok(Err(status)) => Err(format!("timed: {}", status.message())),
                Err(_) => Err(format!("timed: no answer within {timeout:?}")),
            }
        }
        HealthProbe::SocketAccepts(socket) => {
            let path = socket.display();
            match tokio::time::timeout(timeout, UnixStream::connect(socket)).await {
                Ok(Ok(_connection)) => Ok(()),
                Ok(Err(error)) => Err(format!("dial unix {path}: {error}")),
                Err(_) => Err(format!("dial unix {path}: no answer within {timeout:?}")),
            }
        }
    }
}
