//! Health probes: one tokio task per running, health-checked service.

use std::time::Duration;

use proto::talosrs::timed::timed_service_client::TimedServiceClient;
use tokio::net::{TcpStream, UnixStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::spec::{HealthCheck, HealthProbe};

/// Until a service is first healthy, within [`STARTING_WINDOW`] of its first probe, it is
/// probed every [`STARTING_PERIOD`] instead of its period: whoever waits for it (its dependents,
/// the boot) learns it is up within that time, not a whole period later.
const STARTING_PERIOD: Duration = Duration::from_millis(100);

/// How long a starting service is probed every [`STARTING_PERIOD`] at most.
const STARTING_WINDOW: Duration = Duration::from_secs(30);

/// Probes `check` until aborted or until `report` returns false (nobody listens any more).
/// `report` gets `Ok` for a healthy probe and the error text otherwise.
pub(super) fn spawn_prober(
    check: HealthCheck,
    report: impl Fn(Result<(), String>) -> bool + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(check.initial_delay).await;
        let starting_until = Instant::now() + STARTING_WINDOW;
        let mut healthy_once = false;
        loop {
            let result = probe(&check.probe, check.timeout).await;
            healthy_once |= result.is_ok();
            if !report(result) {
                return;
            }
            let starting = !healthy_once && Instant::now() < starting_until;
            let wait = if starting {
                check.period.min(STARTING_PERIOD)
            } else {
                check.period
            };
            tokio::time::sleep(wait).await;
        }
    })
}

/// Checks that a TCP connection reached a listener, not itself. Dialing a local port in the
/// ephemeral range (apid's 50000 is) can connect a socket to itself when the kernel picks that
/// very port as the source, which looks like an answer and, after an ordinary close, keeps the
/// port in TIME_WAIT for a minute so the service cannot bind it. Such a connection is reset.
pub fn answered_by_another(connection: impl std::os::fd::AsFd) -> std::io::Result<()> {
    let socket = socket2::SockRef::from(&connection);
    let local = socket.local_addr()?.as_socket();
    if local.is_some() && local == socket.peer_addr()?.as_socket() {
        socket.set_linger(Some(Duration::ZERO))?;
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "nothing listens (the connection reached itself)",
        ));
    }
    Ok(())
}

async fn probe(probe: &HealthProbe, timeout: Duration) -> Result<(), String> {
    match probe {
        HealthProbe::TcpDial(address) => {
            match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
                Ok(Ok(connection)) => answered_by_another(&connection)
                    .map_err(|error| format!("dial tcp {address}: {error}")),
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

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, TcpListener};

    use socket2::{Domain, Socket, Type};

    use super::*;

    #[test]
    fn a_connection_to_itself_is_no_answer_and_leaves_the_port_free() {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let address = socket.local_addr().unwrap();
        // Bound to the address it dials: the kernel connects the socket to itself.
        socket.connect(&address).unwrap();
        let stream = std::net::TcpStream::from(socket);
        assert!(answered_by_another(&stream).is_err());
        drop(stream);
        // No TIME_WAIT: a listener without SO_REUSEADDR can take the port at once.
        let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        listener.bind(&address).unwrap();
    }

    #[test]
    fn a_listener_is_an_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(answered_by_another(&stream).is_ok());
    }
}
