//! `talosctl service [ID [start|stop|restart|status]]` (alias `services`).

use std::time::SystemTime;

use clap::{Args, ValueEnum};
use proto::machine::{ServiceInfo, ServiceRestartRequest, ServiceStartRequest, ServiceStopRequest};

use crate::cli::{GlobalArgs, InsecureArgs};
use crate::connection::{Session, block_on};
use crate::failures::Failures;
use crate::humanize::since;
use crate::output::table;

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Service ID; without it, every service is listed
    pub id: Option<String>,
    /// What to do with the service
    #[arg(value_enum, requires = "id")]
    pub action: Option<ServiceAction>,
    #[command(flatten)]
    pub access: InsecureArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ServiceAction {
    Start,
    Stop,
    Restart,
    Status,
}

pub fn run(args: ServiceArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    block_on(async {
        let session = Session::open_as(global, &args.access).await?;
        let mut failures = Failures::default();
        match (args.id, args.action.unwrap_or(ServiceAction::Status)) {
            (None, _) => list(&session, &mut failures).await?,
            (Some(id), ServiceAction::Status) => status(&session, &id, &mut failures).await?,
            (Some(id), ServiceAction::Start) => {
                control(&session, &id, Control::Start, &mut failures).await?
            }
            (Some(id), ServiceAction::Stop) => {
                control(&session, &id, Control::Stop, &mut failures).await?
            }
            (Some(id), ServiceAction::Restart) => {
                control(&session, &id, Control::Restart, &mut failures).await?
            }
        }
        failures.finish()
    })
}

/// The actions that change a service.
#[derive(Clone, Copy, Debug)]
enum Control {
    Start,
    Stop,
    Restart,
}

async fn services(
    session: &Session,
    failures: &mut Failures,
) -> anyhow::Result<Vec<(String, ServiceInfo)>> {
    let mut all = Vec::new();
    for target in session.targets() {
        let reply = target.machine().service_list(target.request(())?).await;
        for (node, list) in target.unary(reply.map(|r| r.into_inner().messages), failures) {
            all.extend(list.services.into_iter().map(|s| (node.clone(), s)));
        }
    }
    Ok(all)
}

async fn list(session: &Session, failures: &mut Failures) -> anyhow::Result<()> {
    let services = services(session, failures).await?;
    print!("{}", services_table(&services, SystemTime::now()));
    Ok(())
}

async fn status(session: &Session, id: &str, failures: &mut Failures) -> anyhow::Result<()> {
    let services = services(session, failures).await?;
    let mut nodes_with_service = Vec::new();
    for (node, service) in services.iter().filter(|(_, s)| s.id == id) {
        print!("{}", service_details(node, service, SystemTime::now()));
        nodes_with_service.push(node.as_str());
    }
    let mut nodes: Vec<&str> = services.iter().map(|(node, _)| node.as_str()).collect();
    nodes.dedup();
    for node in nodes
        .into_iter()
        .filter(|n| !nodes_with_service.contains(n))
    {
        failures.report(format_args!(
            "error from node {node}: service {id:?} is not registered"
        ));
    }
    Ok(())
}

async fn control(
    session: &Session,
    id: &str,
    action: Control,
    failures: &mut Failures,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for target in session.targets() {
        let mut machine = target.machine();
        let id = id.to_string();
        let responses = match action {
            Control::Start => {
                let reply = machine
                    .service_start(target.request(ServiceStartRequest { id })?)
                    .await;
                responses(
                    target.unary(reply.map(|r| r.into_inner().messages), failures),
                    |m| m.resp,
                )
            }
            Control::Stop => {
                let reply = machine
                    .service_stop(target.request(ServiceStopRequest { id })?)
                    .await;
                responses(
                    target.unary(reply.map(|r| r.into_inner().messages), failures),
                    |m| m.resp,
                )
            }
            Control::Restart => {
                let reply = machine
                    .service_restart(target.request(ServiceRestartRequest { id })?)
                    .await;
                responses(
                    target.unary(reply.map(|r| r.into_inner().messages), failures),
                    |m| m.resp,
                )
            }
        };
        rows.extend(responses);
    }
    print!("{}", table(&["NODE", "RESPONSE"], &rows));
    Ok(())
}

fn responses<T>(replies: Vec<(String, T)>, resp: impl Fn(T) -> String) -> Vec<Vec<String>> {
    replies
        .into_iter()
        .map(|(node, message)| vec![node, resp(message)])
        .collect()
}

/// `OK`, `Fail`, or `?` when the service has no health check (or it has not run yet).
fn health(service: &ServiceInfo) -> &'static str {
    match &service.health {
        None => "?",
        Some(h) if h.unknown => "?",
        Some(h) if h.healthy => "OK",
        Some(_) => "Fail",
    }
}

fn services_table(services: &[(String, ServiceInfo)], now: SystemTime) -> String {
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|(node, service)| {
            let last = service.events.as_ref().and_then(|e| e.events.last());
            vec![
                node.clone(),
                service.id.clone(),
                service.state.clone(),
                health(service).to_string(),
                last.and_then(|e| e.ts.as_ref())
                    .map(|ts| format!("{} ago", since(ts, now)))
                    .unwrap_or_default(),
                last.map(|e| e.msg.clone())
                    .unwrap_or_else(|| "<none>".to_string()),
            ]
        })
        .collect();
    table(
        &[
            "NODE",
            "SERVICE",
            "STATE",
            "HEALTH",
            "LAST CHANGE",
            "LAST EVENT",
        ],
        &rows,
    )
}

/// The detailed view of one service on one node: its state, health and events, newest first.
pub(crate) fn service_details(node: &str, service: &ServiceInfo, now: SystemTime) -> String {
    let mut rows = vec![
        vec!["NODE".to_string(), node.to_string()],
        vec!["ID".to_string(), service.id.clone()],
        vec!["STATE".to_string(), service.state.clone()],
        vec!["HEALTH".to_string(), health(service).to_string()],
    ];
    if let Some(message) = service
        .health
        .as_ref()
        .map(|h| h.last_message.clone())
        .filter(|m| !m.is_empty())
    {
        rows.push(vec!["LAST HEALTH MESSAGE".to_string(), message]);
    }
    let events = service
        .events
        .as_ref()
        .map(|e| e.events.as_slice())
        .unwrap_or_default();
    for (i, event) in events.iter().rev().enumerate() {
        let ago = event
            .ts
            .as_ref()
            .map(|ts| since(ts, now))
            .unwrap_or_default();
        let label = if i == 0 { "EVENTS" } else { "" };
        rows.push(vec![
            label.to_string(),
            format!("[{}]: {} ({} ago)", event.state, event.msg, ago),
        ]);
    }
    // The detailed view has no header line: drop the one `table` writes for the first row.
    let text = table(&["", ""], &rows);
    text.split_once('\n')
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::machine::{ServiceEvent, ServiceEvents, ServiceHealth};
    use std::time::Duration;

    fn at(seconds: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp { seconds, nanos: 0 })
    }

    fn apid() -> ServiceInfo {
        ServiceInfo {
            id: "apid".into(),
            state: "Running".into(),
            events: Some(ServiceEvents {
                events: vec![
                    ServiceEvent {
                        msg: "Starting service".into(),
                        state: "Starting".into(),
                        ts: at(1000),
                    },
                    ServiceEvent {
                        msg: "Health check successful".into(),
                        state: "Running".into(),
                        ts: at(1010),
                    },
                ],
            }),
            health: Some(ServiceHealth {
                unknown: false,
                healthy: true,
                last_message: String::new(),
                last_change: at(1010),
            }),
        }
    }

    #[test]
    fn list_shows_health_and_last_event() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1326);
        let udevd = ServiceInfo {
            id: "udevd".into(),
            state: "Waiting".into(),
            events: None,
            health: None,
        };
        let text = services_table(
            &[("10.5.0.2".into(), apid()), ("10.5.0.2".into(), udevd)],
            now,
        );
        assert_eq!(
            text,
            "NODE       SERVICE   STATE     HEALTH   LAST CHANGE   LAST EVENT\n\
             10.5.0.2   apid      Running   OK       5m16s ago     Health check successful\n\
             10.5.0.2   udevd     Waiting   ?                      <none>\n"
        );
    }

    #[test]
    fn details_list_events_newest_first() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1070);
        let text = service_details("10.5.0.2", &apid(), now);
        assert_eq!(
            text,
            "NODE     10.5.0.2\n\
             ID       apid\n\
             STATE    Running\n\
             HEALTH   OK\n\
             EVENTS   [Running]: Health check successful (1m0s ago)\n\
             \x20        [Starting]: Starting service (1m10s ago)\n"
        );
    }
}
