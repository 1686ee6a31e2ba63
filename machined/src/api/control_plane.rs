//! Bootstrap (empty or recovering from an uploaded snapshot), the etcd RPCs and Kubeconfig (the control-plane calls), answered through the node's own etcd member (its client URL,
//! with the admin certificate machined issued). Every call first checks that this node runs
//! etcd's PKI, i.e. is a control plane.

use etcd_client::{AlarmAction, AlarmOptions, AlarmType};
use proto::common::Data;
use proto::machine::*;
use tonic::codegen::BoxStream;

use crate::error::MachinedError;
use crate::etcd;
use crate::machine::Machine;

pub async fn bootstrap(
    machine: &Machine,
    request: BootstrapRequest,
) -> Result<BootstrapResponse, MachinedError> {
    let mode = if request.recover_etcd {
        etcd::BootstrapMode::Recover {
            skip_hash_check: request.recover_skip_hash_check,
        }
    } else {
        etcd::BootstrapMode::Empty
    };
    let result = machine.etcd.bootstrap(mode).await;
    if request.recover_etcd {
        etcd::recovery::discard(machine).await;
    }
    result?;
    Ok(BootstrapResponse {
        messages: vec![Bootstrap::default()],
    })
}

/// Stores an uploaded snapshot for `Bootstrap` with `recover_etcd`.
pub async fn recover(
    machine: &Machine,
    chunks: tonic::Streaming<Data>,
) -> Result<EtcdRecoverResponse, MachinedError> {
    control_plane_config(machine, "etcd recovery")?;
    let status = etcd::recovery::store(machine, chunks).await?;
    tracing::info!(
        hash = format!("{:08x}", status.hash),
        revision = status.revision,
        total_keys = status.total_keys,
        total_size = status.total_size,
        "etcd snapshot uploaded for recovery"
    );
    Ok(EtcdRecoverResponse {
        messages: vec![EtcdRecover::default()],
    })
}

/// The node's config if the node is a control plane; FailedPrecondition naming `what` otherwise.
fn control_plane_config(
    machine: &Machine,
    what: &str,
) -> Result<std::sync::Arc<machineconfig::Config>, MachinedError> {
    let config = machine
        .config
        .current()
        .ok_or_else(|| MachinedError::FailedPrecondition("the node has no config yet".into()))?;
    let is_control_plane = config
        .v1alpha1
        .as_ref()
        .and_then(|c| c.machine.as_ref())
        .and_then(|m| m.machine_type.parse::<machineconfig::MachineType>().ok())
        .is_some_and(|t| t.is_control_plane());
    if !is_control_plane {
        return Err(MachinedError::FailedPrecondition(format!(
            "{what} is for control plane nodes only"
        )));
    }
    Ok(config)
}

pub async fn member_list(machine: &Machine) -> Result<EtcdMemberListResponse, MachinedError> {
    let (mut client, url) = etcd::local_client(machine).await?;
    let list = client
        .member_list()
        .await
        .map_err(|e| etcd::etcd_error(&url, e))?;
    let members: Vec<EtcdMember> = list
        .members()
        .iter()
        .map(|m| EtcdMember {
            id: m.id(),
            hostname: m.name().to_string(),
            peer_urls: m.peer_urls().to_vec(),
            client_urls: m.client_urls().to_vec(),
            is_learner: m.is_learner(),
        })
        .collect();
    Ok(EtcdMemberListResponse {
        messages: vec![EtcdMembers {
            metadata: None,
            legacy_members: members.iter().map(|m| m.hostname.clone()).collect(),
            members,
        }],
    })
}

pub async fn status(machine: &Machine) -> Result<EtcdStatusResponse, MachinedError> {
    let (mut client, url) = etcd::local_client(machine).await?;
    let status = client
        .status()
        .await
        .map_err(|e| etcd::etcd_error(&url, e))?;
    Ok(EtcdStatusResponse {
        messages: vec![EtcdStatus {
            metadata: None,
            member_status: Some(EtcdMemberStatus {
                protocol_version: status.version().to_string(),
                db_size: status.db_size(),
                db_size_in_use: status.raft_used_db_size(),
                leader: status.leader(),
                raft_index: status.raft_index(),
                raft_term: status.raft_term(),
                raft_applied_index: status.raft_applied_index(),
                errors: status.errors().to_vec(),
                is_learner: status.is_learner(),
                member_id: status.header().map(|h| h.member_id()).unwrap_or_default(),
                storage_version: status.storage_version().to_string(),
            }),
        }],
    })
}

pub async fn remove_member(
    machine: &Machine,
    request: EtcdRemoveMemberByIdRequest,
) -> Result<EtcdRemoveMemberByIdResponse, MachinedError> {
    let (mut client, url) = etcd::local_client(machine).await?;
    let list = client
        .member_list()
        .await
        .map_err(|e| etcd::etcd_error(&url, e))?;
    if !list.members().iter().any(|m| m.id() == request.member_id) {
        return Err(MachinedError::NotFound(format!(
            "etcd member {:x} not found",
            request.member_id
        )));
    }
    client
        .member_remove(request.member_id)
        .await
        .map_err(|e| etcd::etcd_error(&url, e))?;
    Ok(EtcdRemoveMemberByIdResponse {
        messages: vec![EtcdRemoveMemberById::default()],
    })
}

/// Removes this node's member from the cluster, stops etcd and clears its data, so that the
/// node joins again as a new member after a reboot.
pub async fn leave(machine: &Machine) -> Result<EtcdLeaveClusterResponse, MachinedError> {
    let (mut client, url) = etcd::local_client(machine).await?;
    let own = client
        .status()
        .await
        .map_err(|e| etcd::etcd_error(&url, e))?
        .header()
        .map(|h| h.member_id())
        .unwrap_or_default();
    client
        .member_remove(own)
        .await
        .map_err(|e| etcd::etcd_error(&url, e))?;
    machine.services.stop("etcd").await?;
    let data = etcd::data_dir(machine);
    match std::fs::remove_dir_all(&data) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(MachinedError::io("removing", data)(e));
        }
        _ => {}
    }
    Ok(EtcdLeaveClusterResponse {
        messages: vec![EtcdLeaveCluster::default()],
    })
}

pub async fn forfeit_leadership(
    machine: &Machine,
) -> Result<EtcdForfeitLeadershipResponse, MachinedError> {
    let (mut client, url) = etcd::local_client(machine).await?;
    let error = |e| etcd::etcd_error(&url, e);
    let status = client.status().await.map_err(error)?;
    let own = status.header().map(|h| h.member_id()).unwrap_or_default();
    let mut new_leader = String::new();
    if status.leader() == own {
        let list = client.member_list().await.map_err(error)?;
        if let Some(target) = list
            .members()
            .iter()
            .find(|m| m.id() != own && !m.is_learner())
        {
            client.move_leader(target.id()).await.map_err(error)?;
            new_leader = target.name().to_string();
        }
    }
    Ok(EtcdForfeitLeadershipResponse {
        messages: vec![EtcdForfeitLeadership {
            metadata: None,
            member: new_leader,
        }],
    })
}

fn member_alarms(response: &etcd_client::AlarmResponse) -> Vec<EtcdMemberAlarm> {
    response
        .alarms()
        .iter()
        .map(|a| EtcdMemberAlarm {
            member_id: a.member_id(),
            alarm: match a.alarm() {
                AlarmType::Nospace => etcd_member_alarm::AlarmType::Nospace,
                AlarmType::Corrupt => etcd_member_alarm::AlarmType::Corrupt,
                AlarmType::None => etcd_member_alarm::AlarmType::None,
            } as i32,
        })
        .collect()
}

pub async fn alarm_list(machine: &Machine) -> Result<EtcdAlarmListResponse, MachinedError> {
    let (mut client, url) = etcd::local_client(machine).await?;
    let alarms = client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .map_err(|e| etcd::etcd_error(&url, e))?;
    Ok(EtcdAlarmListResponse {
        messages: vec![EtcdAlarm {
            metadata: None,
            member_alarms: member_alarms(&alarms),
        }],
    })
}

/// Deactivates every active alarm, one by one as etcd wants them named (member and type), and
/// answers with the alarms that were disarmed.
pub async fn alarm_disarm(machine: &Machine) -> Result<EtcdAlarmDisarmResponse, MachinedError> {
    let (mut client, url) = etcd::local_client(machine).await?;
    let error = |e| etcd::etcd_error(&url, e);
    let active = client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .map_err(error)?;
    let mut disarmed = Vec::new();
    for alarm in active.alarms() {
        let mut options = AlarmOptions::new();
        options.with_member(alarm.member_id());
        let response = client
            .alarm(AlarmAction::Deactivate, alarm.alarm(), Some(options))
            .await
            .map_err(error)?;
        disarmed.extend(member_alarms(&response));
    }
    Ok(EtcdAlarmDisarmResponse {
        messages: vec![EtcdAlarmDisarm {
            metadata: None,
            member_alarms: disarmed,
        }],
    })
}

pub async fn defragment(machine: &Machine) -> Result<EtcdDefragmentResponse, MachinedError> {
    let (mut client, url) = etcd::local_client(machine).await?;
    client
        .defragment()
        .await
        .map_err(|e| etcd::etcd_error(&url, e))?;
    Ok(EtcdDefragmentResponse {
        messages: vec![EtcdDefragment::default()],
    })
}

/// The member's snapshot, streamed as it arrives.
pub async fn snapshot(machine: &Machine) -> Result<BoxStream<Data>, MachinedError> {
    let (mut client, url) = etcd::local_client(machine).await?;
    let stream = client
        .snapshot()
        .await
        .map_err(|e| etcd::etcd_error(&url, e))?;
    let chunks = futures_util::stream::unfold(
        (stream, url, false),
        |(mut stream, url, failed)| async move {
            if failed {
                return None;
            }
            match stream.message().await {
                Ok(Some(chunk)) => {
                    let data = Data {
                        metadata: None,
                        bytes: chunk.blob().to_vec(),
                    };
                    Some((Ok(data), (stream, url, false)))
                }
                Ok(None) => None,
                Err(e) => {
                    let status = tonic::Status::from(etcd::etcd_error(&url, e));
                    Some((Err(status), (stream, url, true)))
                }
            }
        },
    );
    Ok(Box::pin(chunks))
}

/// The admin kubeconfig (signed by the cluster CA) as upstream's `Kubeconfig` stream: a gzip tar
/// holding one file, `kubeconfig`. Control planes only, like the etcd calls.
pub fn kubeconfig(machine: &Machine) -> Result<BoxStream<Data>, MachinedError> {
    let config = control_plane_config(machine, "kubeconfig")?;
    let archive =
        kubernetes::admin_kubeconfig_tar_gz(&config, kubernetes::admin_certificate_ttl(&config))?;
    let chunks: Vec<Result<Data, tonic::Status>> = archive
        .chunks(64 * 1024)
        .map(|chunk| {
            Ok(Data {
                metadata: None,
                bytes: chunk.to_vec(),
            })
        })
        .collect();
    Ok(Box::pin(tokio_stream::iter(chunks)))
}
