//! The service supervisor with real child processes (`/bin/sh`, `sleep`: test-only programs).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::net::TcpListener;
use std::time::{Duration, Instant};

use machined::events::{EventBus, RuntimeEvent, SubscribeOptions, Subscription, Tail};
use machined::services::{
    ApiOperations, Backoff, ChildExit, ChildReaper, HealthCheck, LogLimits, NodeEnvironment,
    RestartPolicy, ServiceCondition, ServiceError, ServiceLog, ServiceSpec, ServiceState,
    Supervisor, SupervisorConfig,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use proto::machine::{ServiceInfo, ServiceStateEvent, service_state_event::Action};

const WAIT: Duration = Duration::from_secs(10);

struct Fixture {
    _dir: tempfile::TempDir,
    log_dir: std::path::PathBuf,
    bus: EventBus,
    supervisor: Supervisor,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("logs");
    let bus = EventBus::default();
    let supervisor = Supervisor::spawn(
        SupervisorConfig {
            log_dir: log_dir.clone(),
            log_limits: LogLimits::default(),
        },
        bus.clone(),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        log_dir,
        bus,
        supervisor,
    }
}

/// A `/bin/sh -c script` service with short test timings.
fn shell(id: &str, script: &str) -> ServiceSpec {
    let mut spec = ServiceSpec::process(id, "/bin/sh");
    spec.args = vec!["-c".into(), script.into()];
    spec.env = vec![("PATH".into(), "/usr/bin:/bin".into())];
    spec.backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };
    spec.stop_grace = Duration::from_secs(2);
    spec
}

async fn info(supervisor: &Supervisor, id: &str) -> ServiceInfo {
    supervisor
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|service| service.id == id)
        .unwrap_or_else(|| panic!("service {id} not listed"))
}

fn history(info: &ServiceInfo) -> Vec<(String, String)> {
    info.events
        .as_ref()
        .unwrap()
        .events
        .iter()
        .map(|event| (event.state.clone(), event.msg.clone()))
        .collect()
}

/// Polls until `done` holds for the service, then returns it.
async fn wait_until(
    supervisor: &Supervisor,
    id: &str,
    what: &str,
    done: impl Fn(&ServiceInfo) -> bool,
) -> ServiceInfo {
    let deadline = Instant::now() + WAIT;
    loop {
        let service = info(supervisor, id).await;
        if done(&service) {
            return service;
        }
        assert!(
            Instant::now() < deadline,
            "{id}: gave up waiting for {what}; history: {:#?}",
            history(&service)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count_messages(info: &ServiceInfo, needle: &str) -> usize {
    history(info)
        .iter()
        .filter(|(_, message)| message.contains(needle))
        .count()
}

/// PIDs from the "started with PID n" history entries, oldest first.
fn pids(info: &ServiceInfo) -> Vec<i32> {
    history(info)
        .iter()
        .filter_map(|(_, message)| message.split("started with PID ").nth(1))
        .map(|pid| pid.parse().unwrap())
        .collect()
}

fn all_events(bus: &EventBus) -> Subscription {
    bus.subscribe(SubscribeOptions {
        tail: Tail::All,
        actor_id: None,
    })
    .unwrap()
}

/// Every ServiceStateEvent buffered on the bus, in order.
async fn state_events(bus: &EventBus) -> Vec<ServiceStateEvent> {
    let mut subscription = all_events(bus);
    let mut events = Vec::new();
    while let Ok(next) = tokio::time::timeout(Duration::from_millis(50), subscription.recv()).await
    {
        if let Some(event) = ServiceStateEvent::from_event(&next.unwrap()) {
            events.push(event);
        }
    }
    events
}

fn process_exists(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

#[tokio::test]
async fn a_service_waits_for_its_dependency_to_be_up() {
    let f = fixture();
    let mut b = shell("b", "exec sleep 30");
    b.depends_on = vec!["a".into()];
    f.supervisor.register(b).await.unwrap();
    f.supervisor.start("b").await.unwrap();
    let waiting = wait_until(&f.supervisor, "b", "Waiting", |s| s.state == "Waiting").await;
    assert_eq!(
        history(&waiting).last().unwrap(),
        &(
            "Waiting".to_owned(),
            "Waiting for service \"a\" to be up".to_owned()
        )
    );
    // Still waiting a moment later: nothing starts it but "a".
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(info(&f.supervisor, "b").await.state, "Waiting");

    f.supervisor
        .register(shell("a", "exec sleep 30"))
        .await
        .unwrap();
    f.supervisor.start("a").await.unwrap();
    let b = wait_until(&f.supervisor, "b", "Running", |s| s.state == "Running").await;
    let states: Vec<String> = history(&b).into_iter().map(|(state, _)| state).collect();
    assert_eq!(
        states,
        ["Initialized", "Starting", "Waiting", "Preparing", "Running"]
    );

    // On the bus, "a" runs before "b" prepares.
    let events = state_events(&f.bus).await;
    let position = |service: &str, action: Action| {
        events
            .iter()
            .position(|event| event.service == service && event.action == action as i32)
            .unwrap_or_else(|| panic!("no {action:?} event for {service}"))
    };
    assert!(position("a", Action::Running) < position("b", Action::Preparing));
    f.supervisor.stop_all().await.unwrap();
}

#[tokio::test]
async fn health_check_follows_a_real_tcp_listener() {
    let f = fixture();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let mut server = shell("server", "exec sleep 30");
    server.health_check = Some(HealthCheck {
        initial_delay: Duration::from_millis(50),
        period: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
        ..HealthCheck::tcp(address)
    });
    let mut client = shell("client", "exec sleep 30");
    client.depends_on = vec!["server".into()];
    f.supervisor.register(server).await.unwrap();
    f.supervisor.register(client).await.unwrap();
    f.supervisor.start("client").await.unwrap();
    f.supervisor.start("server").await.unwrap();

    tokio::time::timeout(WAIT, f.supervisor.wait_for("server", ServiceCondition::Up))
        .await
        .unwrap()
        .unwrap();
    let server = info(&f.supervisor, "server").await;
    let health = server.health.clone().unwrap();
    assert!(health.healthy && !health.unknown, "{health:?}");
    assert!(health.last_change.is_some());
    assert_eq!(
        history(&server).last().unwrap(),
        &("Running".to_owned(), "Health check successful".to_owned())
    );
    // The dependent starts only once its dependency is healthy.
    wait_until(&f.supervisor, "client", "Running", |s| s.state == "Running").await;

    drop(listener);
    let server = wait_until(&f.supervisor, "server", "unhealthy", |s| {
        s.health.as_ref().is_some_and(|h| !h.unknown && !h.healthy)
    })
    .await;
    let health = server.health.clone().unwrap();
    assert!(
        health.last_message.contains(&address.to_string()),
        "{health:?}"
    );
    assert_eq!(server.state, "Running");
    assert_eq!(count_messages(&server, "Health check failed"), 1);

    // The bus saw both health transitions with the health attached.
    let events = state_events(&f.bus).await;
    let server_health: Vec<bool> = events
        .iter()
        .filter(|event| event.service == "server" && event.message.starts_with("Health check"))
        .map(|event| event.health.as_ref().unwrap().healthy)
        .collect();
    assert_eq!(server_health, [true, false]);
    f.supervisor.stop_all().await.unwrap();
}

#[tokio::test]
async fn a_killed_child_is_restarted_and_the_restart_is_recorded() {
    let f = fixture();
    f.supervisor
        .register(shell("victim", "exec sleep 30"))
        .await
        .unwrap();
    f.supervisor.start("victim").await.unwrap();
    let running = wait_until(&f.supervisor, "victim", "a PID", |s| pids(s).len() == 1).await;
    let first = pids(&running)[0];
    assert!(process_exists(first));

    kill(Pid::from_raw(first), Signal::SIGKILL).unwrap();
    let restarted = wait_until(&f.supervisor, "victim", "a second PID", |s| {
        pids(s).len() == 2
    })
    .await;
    let second = pids(&restarted)[1];
    assert_ne!(first, second);
    assert!(process_exists(second));
    let tail: Vec<(String, String)> = history(&restarted)
        .into_iter()
        .rev()
        .take(4)
        .rev()
        .collect();
    assert_eq!(
        tail[0],
        ("Failed".into(), "Process exited: signal SIGKILL".into())
    );
    assert_eq!(tail[1], ("Waiting".into(), "Restarting in 100ms".into()));
    assert_eq!(tail[2].0, "Preparing");
    assert_eq!(tail[3].0, "Running");

    let actions: Vec<(i32, String)> = state_events(&f.bus)
        .await
        .into_iter()
        .filter(|event| event.service == "victim")
        .map(|event| (event.action, event.message))
        .collect();
    let failed = actions
        .iter()
        .position(|(action, message)| {
            *action == Action::Failed as i32 && message.contains("SIGKILL")
        })
        .expect("a FAILED event on the bus");
    assert_eq!(actions[failed + 1].0, Action::Waiting as i32);
    assert_eq!(actions[failed + 3].0, Action::Running as i32);
    assert!(actions[failed + 3].1.contains(&second.to_string()));
    f.supervisor.stop_all().await.unwrap();
    assert!(!process_exists(second));
}

#[tokio::test]
async fn restart_back_off_doubles_up_to_its_cap() {
    let f = fixture();
    let mut flaky = shell("flaky", "exit 3");
    flaky.restart = RestartPolicy::OnFailure;
    flaky.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    f.supervisor.register(flaky).await.unwrap();
    f.supervisor.start("flaky").await.unwrap();
    let service = wait_until(&f.supervisor, "flaky", "5 restarts", |s| {
        count_messages(s, "Restarting in") >= 5
    })
    .await;
    let delays: Vec<String> = history(&service)
        .into_iter()
        .filter_map(|(_, message)| message.strip_prefix("Restarting in ").map(str::to_owned))
        .take(5)
        .collect();
    assert_eq!(delays, ["50ms", "100ms", "200ms", "200ms", "200ms"]);
    assert!(count_messages(&service, "Process exited: exit code 3") >= 5);
    f.supervisor.stop("flaky").await.unwrap();
    let stopped = info(&f.supervisor, "flaky").await;
    assert_eq!(stopped.state, "Finished");
    // No restart after the stop.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(info(&f.supervisor, "flaky").await.state, "Finished");
}

#[tokio::test]
async fn restart_policies_decide_what_an_exit_leads_to() {
    let f = fixture();
    let mut never = shell("never", "exit 4");
    never.restart = RestartPolicy::Never;
    let mut clean = shell("clean", "exit 0");
    clean.restart = RestartPolicy::OnFailure;
    let mut missing = ServiceSpec::process("missing", "/nonexistent/program");
    missing.restart = RestartPolicy::Never;
    for spec in [never, clean, missing] {
        let id = spec.id.clone();
        f.supervisor.register(spec).await.unwrap();
        f.supervisor.start(&id).await.unwrap();
    }
    let never = wait_until(&f.supervisor, "never", "Failed", |s| s.state == "Failed").await;
    assert_eq!(
        history(&never).last().unwrap().1,
        "Process exited: exit code 4"
    );
    let clean = wait_until(&f.supervisor, "clean", "Finished", |s| {
        s.state == "Finished"
    })
    .await;
    assert_eq!(
        history(&clean).last().unwrap().1,
        "Process exited: exit code 0"
    );
    let missing = wait_until(&f.supervisor, "missing", "Failed", |s| s.state == "Failed").await;
    let message = history(&missing).last().unwrap().1.clone();
    assert!(message.contains("/nonexistent/program"), "{message}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in ["never", "clean", "missing"] {
        assert_eq!(
            count_messages(&info(&f.supervisor, id).await, "Restarting"),
            0,
            "{id}"
        );
    }
}

#[tokio::test]
async fn stop_all_stops_dependents_first() {
    let f = fixture();
    let mut b = shell("b", "exec sleep 30");
    b.depends_on = vec!["a".into()];
    let mut c = shell("c", "exec sleep 30");
    c.depends_on = vec!["b".into()];
    for spec in [
        shell("a", "exec sleep 30"),
        b,
        c,
        shell("lone", "exec sleep 30"),
    ] {
        let id = spec.id.clone();
        f.supervisor.register(spec).await.unwrap();
        f.supervisor.start(&id).await.unwrap();
    }
    let mut running = Vec::new();
    for id in ["a", "b", "c", "lone"] {
        let service = wait_until(&f.supervisor, id, "Running", |s| s.state == "Running").await;
        running.push(pids(&service)[0]);
    }
    f.supervisor.stop_all().await.unwrap();
    for pid in running {
        assert!(!process_exists(pid), "pid {pid} survived stop_all");
    }
    let finished: Vec<String> = state_events(&f.bus)
        .await
        .into_iter()
        .filter(|event| event.action == Action::Finished as i32)
        .map(|event| event.service)
        .collect();
    let position = |id: &str| finished.iter().position(|service| service == id).unwrap();
    assert!(position("c") < position("b"));
    assert!(position("b") < position("a"));
    for service in f.supervisor.list().await.unwrap() {
        assert_eq!(service.state, "Finished", "{}", service.id);
        assert_eq!(
            history(&service).last().unwrap().1,
            "Service stopped (signal SIGTERM)"
        );
    }
}

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_grace_period() {
    let f = fixture();
    let mut stubborn = shell("stubborn", "trap '' TERM; echo ready; exec sleep 30");
    stubborn.stop_grace = Duration::from_millis(300);
    f.supervisor.register(stubborn).await.unwrap();
    let log = f.supervisor.log("stubborn").await.unwrap();
    let mut output = log.reader(None, true);
    f.supervisor.start("stubborn").await.unwrap();
    // SIGTERM is ignored only once the shell has run `trap`.
    let ready = tokio::time::timeout(WAIT, output.next_chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&ready[..], b"ready\n");
    let running = info(&f.supervisor, "stubborn").await;
    let pid = pids(&running)[0];
    let started = Instant::now();
    f.supervisor.stop("stubborn").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(!process_exists(pid));
    let stopped = info(&f.supervisor, "stubborn").await;
    let tail: Vec<(String, String)> = history(&stopped).into_iter().rev().take(3).rev().collect();
    assert!(
        tail[0].1.starts_with("Stopping service: sent SIGTERM"),
        "{tail:?}"
    );
    assert!(tail[1].1.starts_with("Sent SIGKILL"), "{tail:?}");
    assert_eq!(
        tail[2],
        ("Finished".into(), "Service stopped (signal SIGKILL)".into())
    );
}

#[tokio::test]
async fn api_operations_are_refused_unless_the_service_allows_them() {
    let f = fixture();
    f.supervisor
        .register(shell("locked", "exec sleep 30"))
        .await
        .unwrap();
    let mut open = shell("open", "exec sleep 30");
    open.api = ApiOperations::ALL;
    f.supervisor.register(open).await.unwrap();

    let refused = f.supervisor.start_via_api("locked").await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "service \"locked\" doesn't support start operation via API"
    );
    assert!(matches!(
        f.supervisor.stop_via_api("locked").await,
        Err(ServiceError::NotSupportedViaApi {
            operation: "stop",
            ..
        })
    ));
    assert_eq!(info(&f.supervisor, "locked").await.state, "Initialized");
    assert!(matches!(
        f.supervisor.start("nope").await,
        Err(ServiceError::NotFound { .. })
    ));

    f.supervisor.start_via_api("open").await.unwrap();
    let first = wait_until(&f.supervisor, "open", "a PID", |s| pids(s).len() == 1).await;
    f.supervisor.restart_via_api("open").await.unwrap();
    let again = wait_until(&f.supervisor, "open", "a second PID", |s| {
        pids(s).len() == 2
    })
    .await;
    assert!(!process_exists(pids(&first)[0]));
    assert!(process_exists(pids(&again)[1]));
    f.supervisor.stop_via_api("open").await.unwrap();
    assert_eq!(info(&f.supervisor, "open").await.state, "Finished");
}

#[tokio::test]
async fn registration_rejects_duplicates_cycles_and_bad_ids() {
    let f = fixture();
    let mut a = shell("a", "true");
    a.depends_on = vec!["b".into()];
    f.supervisor.register(a).await.unwrap();
    assert!(matches!(
        f.supervisor.register(shell("a", "true")).await,
        Err(ServiceError::AlreadyRegistered { .. })
    ));
    let mut b = shell("b", "true");
    b.depends_on = vec!["a".into()];
    match f.supervisor.register(b).await {
        Err(ServiceError::DependencyCycle { id, dependency }) => {
            assert_eq!((id.as_str(), dependency.as_str()), ("b", "a"))
        }
        other => panic!("expected a cycle error, got {other:?}"),
    }
    assert!(matches!(
        f.supervisor.register(shell("../escape", "true")).await,
        Err(ServiceError::InvalidId { .. })
    ));
}

#[tokio::test]
async fn logs_are_captured_in_memory_and_on_disk_and_can_be_followed() {
    let f = fixture();
    let script =
        "for i in 1 2 3 4 5; do echo line $i; sleep 0.05; done; echo oops >&2; exec sleep 30";
    f.supervisor
        .register(shell("talker", script))
        .await
        .unwrap();
    let log = f.supervisor.log("talker").await.unwrap();
    // 100 followers, as apid may open for `logs -f`, all attached before any output.
    let followers: Vec<_> = (0..100)
        .map(|_| {
            let mut reader = log.reader(None, true);
            tokio::spawn(async move {
                let mut text = Vec::new();
                while !text.ends_with(b"oops\n") {
                    let chunk = reader.next_chunk().await.unwrap();
                    assert!(chunk.ends_with(b"\n"), "chunk not line-aligned: {chunk:?}");
                    text.extend_from_slice(&chunk);
                }
                text
            })
        })
        .collect();
    f.supervisor.start("talker").await.unwrap();
    let expected = "line 1\nline 2\nline 3\nline 4\nline 5\noops\n";
    for follower in followers {
        let text = tokio::time::timeout(WAIT, follower).await.unwrap().unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), expected);
    }
    f.supervisor.stop("talker").await.unwrap();

    // After the stop: the ring still answers, with a tail or everything.
    let mut tail = f
        .supervisor
        .log("talker")
        .await
        .unwrap()
        .reader(Some(2), false);
    assert_eq!(&tail.next_chunk().await.unwrap()[..], b"line 5\noops\n");
    assert_eq!(tail.next_chunk().await, None);
    let mut everything = log.reader(None, false);
    assert_eq!(
        &everything.next_chunk().await.unwrap()[..],
        expected.as_bytes()
    );
    let on_disk = std::fs::read_to_string(f.log_dir.join("talker.log")).unwrap();
    assert_eq!(on_disk, expected);
}

#[tokio::test]
async fn a_follower_sees_only_new_output_with_tail_zero() {
    let f = fixture();
    f.supervisor
        .register(shell(
            "ticker",
            "echo before; sleep 0.3; echo after; exec sleep 30",
        ))
        .await
        .unwrap();
    f.supervisor.start("ticker").await.unwrap();
    let log = f.supervisor.log("ticker").await.unwrap();
    let deadline = Instant::now() + WAIT;
    while log.reader(None, false).next_chunk().await.is_none() {
        assert!(Instant::now() < deadline, "no output from ticker");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut follower = log.reader(Some(0), true);
    let chunk = tokio::time::timeout(WAIT, follower.next_chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&chunk[..], b"after\n");
    f.supervisor.stop_all().await.unwrap();
}

#[test]
fn the_log_ring_is_bounded_the_file_rotates_and_long_lines_split() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("svc.log");
    let log = ServiceLog::open(
        &path,
        LogLimits {
            ring_bytes: 30,
            file_bytes: 40,
            max_line: 16,
        },
    )
    .unwrap();
    // Ten 8-byte lines, written in odd pieces.
    let text: String = (0..10).map(|i| format!("line {i:02}\n")).collect();
    for piece in text.as_bytes().chunks(5) {
        log.append(piece);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ring = runtime
        .block_on(log.reader(None, false).next_chunk())
        .unwrap();
    // 30 bytes hold three whole lines.
    assert_eq!(&ring[..], b"line 07\nline 08\nline 09\n");
    // Every line is on disk: the current file plus the rotated one.
    let current = std::fs::read_to_string(&path).unwrap();
    let rotated = std::fs::read_to_string(dir.path().join("svc.log.1")).unwrap();
    assert!(current.len() as u64 <= 40 && rotated.len() as u64 <= 48);
    assert!(
        text.ends_with(&format!("{rotated}{current}")),
        "{rotated:?} {current:?}"
    );

    // A 20-byte line without a newline splits at 16 bytes; the rest waits for its end.
    log.append(b"abcdefghijklmnopqrst");
    log.finish_line();
    let tail = runtime
        .block_on(log.reader(Some(2), false).next_chunk())
        .unwrap();
    assert_eq!(&tail[..], b"abcdefghijklmnop\nqrst\n");
}

#[tokio::test]
async fn dropping_the_last_handle_kills_what_still_runs() {
    let f = fixture();
    f.supervisor
        .register(shell("orphan", "exec sleep 30"))
        .await
        .unwrap();
    f.supervisor.start("orphan").await.unwrap();
    let running = wait_until(&f.supervisor, "orphan", "a PID", |s| pids(s).len() == 1).await;
    let pid = pids(&running)[0];
    drop(f.supervisor);
    let deadline = Instant::now() + WAIT;
    while process_exists(pid) {
        assert!(
            Instant::now() < deadline,
            "pid {pid} outlived its supervisor"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_reaper_reports_one_shot_commands() {
    let mut command = std::process::Command::new("/bin/sh");
    command.args(["-c", "exit 7"]);
    let (pid, exit) = ChildReaper::global().spawn_waitable(&mut command).unwrap();
    assert!(pid > 0);
    assert_eq!(
        tokio::time::timeout(WAIT, exit).await.unwrap().unwrap(),
        ChildExit::Code(7)
    );
}

#[tokio::test]
async fn processes_report_the_pid_of_what_runs_now() {
    let f = fixture();
    f.supervisor
        .register(shell("worker", "exec sleep 30"))
        .await
        .unwrap();
    f.supervisor
        .register(shell("idle", "exec sleep 30"))
        .await
        .unwrap();
    f.supervisor.start("worker").await.unwrap();
    let running = wait_until(&f.supervisor, "worker", "a PID", |s| pids(s).len() == 1).await;
    let pid = pids(&running)[0];

    let processes = f.supervisor.processes().await.unwrap();
    let summary: Vec<(&str, &str, Option<u32>)> = processes
        .iter()
        .map(|p| (p.id.as_str(), p.state.as_str(), p.pid))
        .collect();
    assert_eq!(
        summary,
        [
            ("worker", "Running", Some(pid as u32)),
            ("idle", "Initialized", None)
        ]
    );
    assert_eq!(processes[0].command, std::path::Path::new("/bin/sh"));
    assert!(process_exists(pid));

    f.supervisor.stop("worker").await.unwrap();
    let processes = f.supervisor.processes().await.unwrap();
    assert_eq!(
        (processes[0].state, processes[0].pid),
        (ServiceState::Finished, None)
    );
}

/// The environment of the live process `pid`, as `NAME=value` entries.
fn environ(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|byte| *byte == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect()
}

/// A service running `sleep 60` itself (a shell would add `PWD` to its environment).
fn sleeper(id: &str) -> ServiceSpec {
    let mut spec = shell(id, "");
    spec.command = "/bin/sleep".into();
    spec.args = vec!["60".into()];
    spec
}

async fn running_pid(supervisor: &Supervisor, id: &str, after: usize) -> i32 {
    let service = wait_until(supervisor, id, "a new run", |service| {
        service.state == "Running" && pids(service).len() > after
    })
    .await;
    *pids(&service).last().unwrap()
}

#[tokio::test]
async fn the_node_environment_reaches_services_and_a_change_restarts_them() {
    let fixture = fixture();
    let supervisor = &fixture.supervisor;
    let node = |value: &str| {
        vec![
            ("TALOS_TEST".to_string(), value.to_string()),
            (
                "https_proxy".to_string(),
                "http://127.82.0.9:3128".to_string(),
            ),
            ("PATH".to_string(), "/nowhere".to_string()),
        ]
    };
    assert!(
        supervisor
            .set_environment(node("1"))
            .await
            .unwrap()
            .is_empty()
    );
    let mut apid = sleeper("apid-like");
    apid.node_environment = NodeEnvironment::RestartWithoutProxies;
    let mut containerd = sleeper("containerd-like");
    containerd.node_environment = NodeEnvironment::NextStart;
    for spec in [sleeper("plain"), apid, containerd] {
        let id = spec.id.clone();
        supervisor.register(spec).await.unwrap();
        supervisor.start(&id).await.unwrap();
    }
    let plain = running_pid(supervisor, "plain", 0).await;
    let apid = running_pid(supervisor, "apid-like", 0).await;
    let containerd = running_pid(supervisor, "containerd-like", 0).await;
    let sorted = |mut env: Vec<String>| {
        env.sort();
        env
    };
    // The service's own PATH wins over the node's.
    assert_eq!(
        sorted(environ(plain)),
        [
            "PATH=/usr/bin:/bin",
            "TALOS_TEST=1",
            "https_proxy=http://127.82.0.9:3128"
        ]
    );
    assert_eq!(
        sorted(environ(apid)),
        ["PATH=/usr/bin:/bin", "TALOS_TEST=1"]
    );
    assert_eq!(sorted(environ(containerd)), sorted(environ(plain)));

    // The same variables: nobody restarts. A proxy change: not apid either.
    assert!(
        supervisor
            .set_environment(node("1"))
            .await
            .unwrap()
            .is_empty()
    );
    let mut proxy_changed = node("1");
    proxy_changed[1].1 = "http://127.82.0.9:8080".to_string();
    assert_eq!(
        supervisor.set_environment(proxy_changed).await.unwrap(),
        ["plain"]
    );
    let mut restarts = supervisor.set_environment(node("2")).await.unwrap();
    restarts.sort();
    assert_eq!(restarts, ["apid-like", "plain"]);
    supervisor.restart("plain").await.unwrap();
    let plain = running_pid(supervisor, "plain", 1).await;
    assert!(environ(plain).contains(&"TALOS_TEST=2".to_string()));
    assert!(environ(containerd).contains(&"TALOS_TEST=1".to_string()));

    // Gone from the node: gone from the next run.
    assert_eq!(
        supervisor.set_environment(Vec::new()).await.unwrap(),
        ["plain", "apid-like"]
    );
    supervisor.restart("plain").await.unwrap();
    let plain = running_pid(supervisor, "plain", 2).await;
    assert_eq!(environ(plain), ["PATH=/usr/bin:/bin"]);
}
