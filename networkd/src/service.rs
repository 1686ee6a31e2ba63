//! The gRPC adapter: `talosrs.networkd.NetworkService` on networkd's Unix socket. Handlers
//! validate (pure), hand the work to the engine task, and convert its answer; errors become
//! `tonic::Status` in [`to_status`] only.

use std::net::IpAddr;
use std::time::UNIX_EPOCH;

use proto::talosrs::networkd as pb;
use proto::talosrs::networkd::network_service_server::NetworkService;
use tokio::sync::{mpsc, oneshot, watch};
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::NetworkdError;
use crate::engine::{Action, Command, OperatorAddress, Report, StatusView, route_link};
use machineconfig::ValidationIssue;

use crate::plan::{AddressPlan, Inputs, Plan};

/// The service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Service {
    engine: mpsc::Sender<Command>,
    status: watch::Receiver<Option<StatusView>>,
    /// Becomes true when networkd stops: WatchStatus streams end, so that the server's
    /// graceful shutdown, which waits for every open stream, can finish.
    stopping: watch::Receiver<bool>,
}

/// Statuses a WatchStatus stream holds for a slow reader (it skips to the latest after).
const WATCH_BUFFER: usize = 2;

impl Service {
    pub fn new(
        engine: mpsc::Sender<Command>,
        status: watch::Receiver<Option<StatusView>>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Service {
            engine,
            status,
            stopping,
        }
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetworkdError> {
        let (reply, answer) = oneshot::channel();
        self.engine
            .send(command(reply))
            .await
            .map_err(|_| NetworkdError::Stopped)?;
        answer.await.map_err(|_| NetworkdError::Stopped)
    }
}

/// The one place errors become gRPC statuses.
pub fn to_status(error: NetworkdError) -> Status {
    let message = error.to_string();
    match error {
        NetworkdError::Invalid(_) | NetworkdError::Config { .. } => {
            Status::invalid_argument(message)
        }
        NetworkdError::Stopped => Status::unavailable(message),
        NetworkdError::LinkMissing(_) => Status::not_found(message),
        NetworkdError::KindUnsupported { .. } => Status::failed_precondition(message),
        NetworkdError::Netlink { .. }
        | NetworkdError::Route { .. }
        | NetworkdError::Dhcp { .. }
        | NetworkdError::Record { .. }
        | NetworkdError::Write(_)
        | NetworkdError::Io { .. }
        | NetworkdError::Serve { .. } => Status::internal(message),
    }
}

#[tonic::async_trait]
impl NetworkService for Service {
    async fn apply(
        &self,
        request: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let request = request.into_inner();
        let inputs = Inputs {
            network_yaml: request.network_yaml,
            kernel_ip: request.kernel_ip_arg,
            documents_yaml: request.documents_yaml,
        };
        let plan = Plan::from_inputs(&inputs)
            .map_err(|issues| to_status(NetworkdError::Invalid(issues)))?;
        let report = self
            .call(|reply| Command::Apply {
                plan: Box::new(plan),
                inputs,
                reply,
            })
            .await
            .map_err(to_status)?;
        Ok(Response::new(apply_response(report)))
    }

    async fn set_operator_addresses(
        &self,
        request: Request<pb::OperatorAddresses>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let addresses = operator_addresses(request.into_inner())
            .map_err(|issue| to_status(NetworkdError::Invalid(vec![issue])))?;
        let report = self
            .call(|reply| Command::SetOperatorAddresses { addresses, reply })
            .await
            .map_err(to_status)?;
        Ok(Response::new(apply_response(report)))
    }

    async fn watch_status(
        &self,
        _: Request<()>,
    ) -> Result<Response<BoxStream<pb::NetworkStatus>>, Status> {
        let mut status = self.status.clone();
        let mut stopping = self.stopping.clone();
        let (sender, receiver) = mpsc::channel(WATCH_BUFFER);
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let current = status.borrow_and_update().as_ref().map(network_status);
                if let Some(current) = current
                    && last.as_ref() != Some(&current)
                {
                    if sender.send(Ok(current.clone())).await.is_err() {
                        return;
                    }
                    last = Some(current);
                }
                tokio::select! {
                    changed = status.changed() => if changed.is_err() { return },
                    () = sender.closed() => return,
                    _ = stopping.wait_for(|stopping| *stopping) => return,
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(receiver),
        )))
    }

    async fn status(&self, _: Request<()>) -> Result<Response<pb::NetworkStatus>, Status> {
        let view = self
            .call(|reply| Command::Status { reply })
            .await
            .and_then(|view| view)
            .map_err(to_status)?;
        Ok(Response::new(network_status(&view)))
    }
}

/// Most operator addresses one request may carry (each is a VIP of the config).
const MAX_OPERATOR_ADDRESSES: usize = 64;

/// The operator layer of a request, each address a CIDR on a named link.
fn operator_addresses(
    request: pb::OperatorAddresses,
) -> Result<Vec<OperatorAddress>, ValidationIssue> {
    if request.addresses.len() > MAX_OPERATOR_ADDRESSES {
        return Err(ValidationIssue {
            path: "addresses".to_string(),
            message: format!("more than {MAX_OPERATOR_ADDRESSES} operator addresses"),
        });
    }
    request
        .addresses
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let address: ipnet::IpNet = a.address.parse().map_err(|_| ValidationIssue {
                path: format!("addresses[{i}].address"),
                message: format!("{:?} is not a CIDR", a.address),
            })?;
            if a.link_name.is_empty() || a.link_name.len() > 15 {
                return Err(ValidationIssue {
                    path: format!("addresses[{i}].linkName"),
                    message: format!("{:?} is not a link name", a.link_name),
                });
            }
            Ok(OperatorAddress {
                address: AddressPlan {
                    link: a.link_name,
                    address,
                },
                announce_with_arp: a.announce_with_arp,
            })
        })
        .collect()
}

pub fn apply_response(report: Report) -> pb::ApplyResponse {
    pb::ApplyResponse {
        changes: report
            .changes
            .into_iter()
            .map(|c| pb::Change {
                action: match c.action {
                    Action::Added => pb::change::Action::Added,
                    Action::Removed => pb::change::Action::Removed,
                    Action::Updated => pb::change::Action::Updated,
                } as i32,
                kind: c.kind.to_string(),
                id: c.id,
            })
            .collect(),
        errors: report.errors,
    }
}

fn family(ip: IpAddr) -> String {
    if ip.is_ipv4() { "inet4" } else { "inet6" }.to_string()
}

fn mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn network_status(view: &StatusView) -> pb::NetworkStatus {
    let snapshot = &view.snapshot;
    let name = |index: u32| snapshot.link_name(index).unwrap_or_default().to_string();
    let links = snapshot
        .links
        .iter()
        .map(|l| pb::LinkStatus {
            name: l.name.clone(),
            index: l.index,
            r#type: l.link_type.clone(),
            kind: l.kind.clone().unwrap_or_default(),
            mtu: l.mtu,
            hardware_addr: mac(&l.hardware_addr),
            broadcast_addr: mac(&l.broadcast_addr),
            operational_state: l.oper_state.clone(),
            flags: l.flags,
            master_index: l.master.unwrap_or_default(),
            link_index: l.parent.unwrap_or_default(),
            vlan_id: l.vlan_id.map(u32::from).unwrap_or_default(),
            managed: view.owned.links.contains_key(&l.name),
        })
        .collect();
    let addresses = snapshot
        .addresses
        .iter()
        .map(|a| {
            let link_name = name(a.link_index);
            let managed = view
                .owned
                .addresses
                .iter()
                .any(|o| o.link == link_name && o.address == a.address);
            pb::AddressStatus {
                address: a.address.to_string(),
                link_name,
                link_index: a.link_index,
                family: family(a.address.addr()),
                scope: a.scope.clone(),
                flags: a.flags,
                managed,
            }
        })
        .collect();
    let routes = snapshot
        .routes
        .iter()
        .map(|r| {
            let out = r.out_link.unwrap_or_default();
            let managed = view
                .owned
                .routes
                .iter()
                .any(|o| route_link(snapshot, o).is_some_and(|link| r.matches(o, link)));
            pb::RouteStatus {
                family: family(r.destination.addr()),
                destination: if r.destination.prefix_len() == 0 {
                    String::new()
                } else {
                    r.destination.to_string()
                },
                gateway: r.gateway.map(|g| g.to_string()).unwrap_or_default(),
                source: r.source.map(|s| s.to_string()).unwrap_or_default(),
                out_link_name: name(out),
                out_link_index: out,
                table: r.table,
                priority: r.priority,
                scope: r.scope.clone(),
                r#type: r.kind.clone(),
                protocol: r.protocol.clone(),
                mtu: r.mtu.unwrap_or_default(),
                managed,
            }
        })
        .collect();
    let dhcp_leases = view
        .leases
        .iter()
        .map(|(link, lease)| pb::DhcpLease {
            link_name: link.clone(),
            address: lease.address.to_string(),
            gateway: lease.router.map(|r| r.to_string()).unwrap_or_default(),
            dns_servers: lease.dns.iter().map(ToString::to_string).collect(),
            server: lease.server.to_string(),
            lease_seconds: lease.lease_seconds,
            renew_seconds: lease.renew_seconds,
            acquired_unix: lease
                .acquired
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default(),
            renewals: lease.renewals,
            hostname: lease.hostname.clone().unwrap_or_default(),
        })
        .collect();
    pb::NetworkStatus {
        links,
        addresses,
        routes,
        hostname: view.hostname.as_ref().map(|h| pb::HostnameStatus {
            hostname: h.host.clone(),
            domainname: h.domain.clone(),
        }),
        resolvers: Some(pb::ResolverStatus {
            dns_servers: view.nameservers.iter().map(ToString::to_string).collect(),
            search_domains: view.search_domains.clone(),
        }),
        dhcp_leases,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn request(addresses: &[(&str, &str)]) -> pb::OperatorAddresses {
        pb::OperatorAddresses {
            addresses: addresses
                .iter()
                .map(|(address, link)| pb::OperatorAddress {
                    address: address.to_string(),
                    link_name: link.to_string(),
                    announce_with_arp: true,
                })
                .collect(),
        }
    }

    #[test]
    fn operator_addresses_are_cidrs_on_named_links_and_bounded() {
        let addresses = operator_addresses(request(&[("10.5.0.50/32", "eth0")])).unwrap();
        assert_eq!(addresses[0].address.to_string(), "eth0 10.5.0.50/32");
        assert!(addresses[0].announce_with_arp);
        for (bad, path) in [
            (request(&[("10.5.0.50", "eth0")]), "addresses[0].address"),
            (
                request(&[("10.5.0.50/32", "eth0"), ("fd00::50/128", "")]),
                "addresses[1].linkName",
            ),
            (
                request(&[("10.5.0.50/32", "a-link-name-too-long")]),
                "addresses[0].linkName",
            ),
            (request(&[("10.5.0.50/32", "eth0"); 65]), "addresses"),
        ] {
            assert_eq!(operator_addresses(bad).unwrap_err().path, path);
        }
    }
}
