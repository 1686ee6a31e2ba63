//! Health probes: one tokio task per running, health-checked service. TCP and Unix-socket
//! probes dial again every period; timed's is followed instead: timed streams every change of
//! its sync state, so an idle node asks it nothing and a timed that exits is noticed at once.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use proto::talosrs::timed::SyncStatus;
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
        let timeout = check.timeout;
        match &check.probe {
            HealthProbe::TcpDial(address) => {
                poll(&check, report, || dial_tcp(*address, timeout)).await;
            }
            HealthProbe::SocketAccepts(socket) => {
                poll(&check, report, || dial_unix(socket, timeout)).await;
            }
            HealthProbe::TimeSynced(socket) => follow_timed(socket, &check, report).await,
        }
    })
}

/// When a service is looked at again: soon while it is starting, its period once it was
/// healthy or has had its window.
struct Pace {
    period: Duration,
    starting_until: Instant,
    healthy_once: bool,
}

impl Pace {
    fn new(check: &HealthCheck) -> Self {
        Self {
            period: check.period,
            starting_until: Instant::now() + STARTING_WINDOW,
            healthy_once: false,
        }
    }

    fn saw(&mut self, result: &Result<(), String>) {
        self.healthy_once |= result.is_ok();
    }

    fn wait(&self) -> Duration {
        if !self.healthy_once && Instant::now() < self.starting_until {
            self.period.min(STARTING_PERIOD)
        } else {
            self.period
        }
    }
}

/// Runs `probe` every period until `report` returns false.
async fn poll<F, Fut>(check: &HealthCheck, report: impl Fn(Result<(), String>) -> bool, probe: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut pace = Pace::new(check);
    loop {
        let result = probe().await;
        pace.saw(&result);
        if !report(result) {
            return;
        }
        tokio::time::sleep(pace.wait()).await;
    }
}

/// Follows timed's status stream on `socket`: each status it sends (the current one first, then
/// every change) is a probe, healthy when the clock is in sync. A stream that does not open
/// within the check's timeout, fails or ends is a failed probe, and it is opened again after
/// the pace's wait.
async fn follow_timed(
    socket: &Path,
    check: &HealthCheck,
    report: impl Fn(Result<(), String>) -> bool,
) {
    let mut pace = Pace::new(check);
    loop {
        let mut timed = TimedServiceClient::new(crate::local_socket::channel(socket));
        let failure = match tokio::time::timeout(check.timeout, timed.watch_status(())).await {
            Ok(Ok(reply)) => {
                let mut statuses = reply.into_inner();
                loop {
                    match statuses.message().await {
                        Ok(Some(status)) => {
                            let result = in_sync(&status);
                            pace.saw(&result);
                            if !report(result) {
                                return;
                            }
                        }
                        Ok(None) => break "timed: its status stream ended".to_owned(),
                        Err(status) => break format!("timed: {}", status.message()),
                    }
                }
            }
            Ok(Err(status)) => format!("timed: {}", status.message()),
            Err(_) => format!("timed: no answer within {:?}", check.timeout),
        };
        let failure = Err(failure);
        pace.saw(&failure);
        if !report(failure) {
            return;
        }
        tokio::time::sleep(pace.wait()).await;
    }
}

fn in_sync(status: &SyncStatus) -> Result<(), String> {
    if status.synced {
        Ok(())
    } else {
        Err(format!("time is not in sync yet: {}", status.error))
    }
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

async fn dial_tcp(address: SocketAddr, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Ok(Ok(connection)) => {
            answered_by_another(&connection).map_err(|error| format!("dial tcp {address}: {error}"))
        }
        Ok(Err(error)) => Err(format!("dial tcp {address}: {error}")),
        Err(_) => Err(format!("dial tcp {address}: no answer within {timeout:?}")),
    }
}

async fn dial_unix(socket: &Path, timeout: Duration) -> Result<(), String> {
    let path = socket.display();
    match tokio::time::timeout(timeout, UnixStream::connect(socket)).await {
        Ok(Ok(_connection)) => Ok(()),
        Ok(Err(error)) => Err(format!("dial unix {path}: {error}")),
        Err(_) => Err(format!("dial unix {path}: no answer within {timeout:?}")),
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

    /// timed as far as the probe sees it: its status stream, fed by the test.
    struct FakeTimed(tokio::sync::watch::Receiver<SyncStatus>);

    type StatusStream = std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<SyncStatus, tonic::Status>> + Send>,
    >;

    #[tonic::async_trait]
    impl proto::talosrs::timed::timed_service_server::TimedService for FakeTimed {
        async fn status(
            &self,
            _: tonic::Request<()>,
        ) -> Result<tonic::Response<SyncStatus>, tonic::Status> {
            Ok(tonic::Response::new(self.0.borrow().clone()))
        }

        async fn watch_status(
            &self,
            _: tonic::Request<()>,
        ) -> Result<tonic::Response<StatusStream>, tonic::Status> {
            let mut receiver = self.0.clone();
            receiver.mark_changed();
            let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
                receiver.changed().await.ok()?;
                let status = receiver.borrow_and_update().clone();
                Some((Ok(status), receiver))
            });
            Ok(tonic::Response::new(Box::pin(stream)))
        }

        async fn configure(
            &self,
            _: tonic::Request<proto::talosrs::timed::ConfigureRequest>,
        ) -> Result<tonic::Response<()>, tonic::Status> {
            Err(tonic::Status::unimplemented("not in the fake"))
        }
    }

    fn serve_timed(
        socket: &Path,
        statuses: tokio::sync::watch::Receiver<SyncStatus>,
    ) -> JoinHandle<()> {
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        let server = proto::talosrs::timed::timed_service_server::TimedServiceServer::new(
            FakeTimed(statuses),
        );
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(server)
                .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
                .await
                .unwrap();
        })
    }

    async fn next(
        reported: &mut tokio::sync::mpsc::UnboundedReceiver<Result<(), String>>,
    ) -> Result<(), String> {
        tokio::time::timeout(Duration::from_secs(5), reported.recv())
            .await
            .expect("a report within 5 s")
            .expect("the prober runs")
    }

    #[tokio::test]
    async fn timed_is_followed_not_asked_every_period() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("timed.sock");
        let (statuses, watched) = tokio::sync::watch::channel(SyncStatus {
            error: "no server answered".into(),
            ..SyncStatus::default()
        });
        let server = serve_timed(&socket, watched);
        let (results, mut reported) = tokio::sync::mpsc::unbounded_channel();
        let check = HealthCheck::time_synced(socket.clone());
        let period = check.period;
        let prober = spawn_prober(check, move |result| results.send(result).is_ok());

        assert_eq!(
            next(&mut reported).await,
            Err("time is not in sync yet: no server answered".to_owned())
        );
        statuses.send_modify(|s| s.synced = true);
        assert_eq!(next(&mut reported).await, Ok(()));
        // Nothing changes: nothing is asked or reported for three periods.
        tokio::time::sleep(period * 3).await;
        assert!(reported.try_recv().is_err(), "a report without a change");

        // timed goes away (its stream ends, its socket no longer answers): noticed without
        // waiting for a period.
        server.abort();
        let _ = server.await;
        drop(statuses);
        let gone = tokio::time::Instant::now();
        let failure = next(&mut reported).await.unwrap_err();
        assert!(failure.starts_with("timed: "), "{failure}");
        assert!(
            gone.elapsed() < period,
            "noticed after {:?}",
            gone.elapsed()
        );

        // Back, and in sync: healthy again within a period or so.
        std::fs::remove_file(&socket).unwrap();
        let (_statuses, watched) = tokio::sync::watch::channel(SyncStatus {
            synced: true,
            ..SyncStatus::default()
        });
        let _server = serve_timed(&socket, watched);
        loop {
            if next(&mut reported).await.is_ok() {
                break;
            }
        }
        prober.abort();
    }
}
