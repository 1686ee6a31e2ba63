//! One VIP's campaign: an etcd lease kept alive (the session), an election under upstream's key
//! for the VIP with the node's hostname as value, and, while this node leads, the address held.
//! It leaves the election (address removed first, then the key resigned and the lease revoked)
//! when another leader shows, the lease cannot be renewed, or it is stopped; then it starts over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, LeaderKey, ResignOptions};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{AddressSpec, Holdings, OperatorSpec};
use crate::error::MachinedError;
use crate::etcd::{self, EtcdPki};
use crate::machine::Machine;

/// upstream's election key prefix (`constants.EtcdRootTalosKey` + `:vip:election:`).
const ELECTION_PREFIX: &str = "talos:v1:vip:election:";
/// The lease's TTL: etcd's default session TTL, which upstream keeps.
pub const LEASE_TTL_SECONDS: i64 = 60;
/// Renew the lease at a third of its TTL, as etcd's client does.
const KEEPALIVE_PERIOD: Duration = Duration::from_secs(20);
/// Bound on each renewal and on the clean-up calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before campaigning again after a failure (upstream's campaign retry interval).
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// How often the holder hands its address to networkd again (a restarted networkd lost it).
const REFRESH_PERIOD: Duration = Duration::from_secs(5);

/// The election name of a VIP.
pub fn election_name(spec: &OperatorSpec) -> String {
    format!("{ELECTION_PREFIX}{}", spec.vip.ip)
}

/// A running campaign.
#[derive(Debug)]
pub struct Campaign {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What one campaign works with.
struct Campaigner {
    machine: Arc<Machine>,
    holdings: Holdings,
    id: String,
    name: String,
    address: AddressSpec,
}

impl Campaign {
    pub fn start(
        machine: &Arc<Machine>,
        holdings: &Holdings,
        id: &str,
        spec: &OperatorSpec,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let campaigner = Campaigner {
            machine: Arc::clone(machine),
            holdings: holdings.clone(),
            id: id.to_string(),
            name: election_name(spec),
            address: spec.address(),
        };
        Campaign {
            stop,
            task: tokio::spawn(campaigner.run(stopped)),
        }
    }

    /// Stops the campaign and waits (up to `timeout`) until it gave the address and key up.
    pub async fn stop(self, timeout: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(timeout, &mut task).await.is_err() {
            tracing::warn!("a VIP campaign did not stop in time");
            task.abort();
        }
    }
}

impl Campaigner {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(error) = self.campaign(&mut stop).await {
                tracing::warn!(%error, vip = %self.address.address, link = %self.address.link_name, "campaign failure");
            }
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY_PAUSE) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One session: a lease, the campaign, the holding; the lease revoked at the end.
    async fn campaign(&self, stop: &mut watch::Receiver<bool>) -> Result<(), MachinedError> {
        let pki = EtcdPki::new(self.machine.layout.root().join("system/secrets/etcd"));
        let url = etcd::url(self.machine.address(), etcd::CLIENT_PORT);
        let mut client = etcd::connect_for_watching(&pki, std::slice::from_ref(&url)).await?;
        let lease = client
            .lease_grant(LEASE_TTL_SECONDS, None)
            .await
            .map_err(|e| etcd::etcd_error(&url, e))?
            .id();
        let result = self.in_session(&mut client, &url, lease, stop).await;
        // Drops this node's key at once (else it stays until the lease expires).
        let _ = tokio::time::timeout(CALL_TIMEOUT, client.lease_revoke(lease)).await;
        result
    }

    async fn in_session(
        &self,
        client: &mut Client,
        url: &str,
        lease: i64,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), MachinedError> {
        let session = keep_alive(client.clone(), url.to_string(), lease);
        tokio::pin!(session);
        // upstream's election value: the node's hostname.
        let value = self.machine.hostname();
        self.resign_previous(client, url, &value).await?;
        let won = tokio::select! {
            won = client.campaign(self.name.as_str(), value.as_str(), lease) => {
                won.map_err(|e| etcd::etcd_error(url, e))?
            }
            ended = &mut session => return ended,
            _ = stop.changed() => return Ok(()),
        };
        let Some(leader) = won.leader().cloned() else {
            return Err(etcd::etcd_error(
                url,
                etcd_client::Error::ElectError("campaign answered without a leader key".into()),
            ));
        };
        tracing::info!(vip = %self.address.address, link = %self.address.link_name, "enabled shared IP");
        self.holdings
            .set(&self.id, Some(self.address.clone()))
            .await;
        let held = self.hold(client, url, &value, &mut session, stop).await;
        self.holdings.set(&self.id, None).await;
        tracing::info!(vip = %self.address.address, link = %self.address.link_name, "removed shared IP");
        let resign = client.resign(Some(ResignOptions::new().with_leader(leader)));
        let _ = tokio::time::timeout(CALL_TIMEOUT, resign).await;
        held
    }

    /// Leads until another leader shows, the session ends or the campaign is stopped.
    async fn hold(
        &self,
        client: &mut Client,
        url: &str,
        value: &str,
        session: &mut (impl Future<Output = Result<(), MachinedError>> + Unpin),
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), MachinedError> {
        let mut observe = client
            .observe(self.name.as_str())
            .await
            .map_err(|e| etcd::etcd_error(url, e))?;
        let mut refresh = tokio::time::interval(REFRESH_PERIOD);
        refresh.tick().await;
        loop {
            tokio::select! {
                seen = observe.message() => match seen {
                    Ok(Some(seen)) => {
                        if seen.kv().is_some_and(|kv| kv.value() != value.as_bytes()) {
                            tracing::info!("detected new leader");
                            return Ok(());
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(etcd::etcd_error(url, e)),
                },
                ended = &mut *session => return ended,
                _ = stop.changed() => return Ok(()),
                _ = refresh.tick() => {
                    self.holdings.push().await;
                }
            }
        }
    }

    /// Still the leader from an earlier session (a restart)? Resign it, as upstream does, so
    /// that a fresh election decides.
    async fn resign_previous(
        &self,
        client: &mut Client,
        url: &str,
        value: &str,
    ) -> Result<(), MachinedError> {
        let Ok(current) = client.leader(self.name.as_str()).await else {
            return Ok(()); // no leader
        };
        let Some(kv) = current.kv().filter(|kv| kv.value() == value.as_bytes()) else {
            return Ok(());
        };
        tracing::info!("resigning from previous election");
        let leader = LeaderKey::new()
            .with_name(self.name.as_str())
            .with_key(kv.key())
            .with_rev(kv.create_revision())
            .with_lease(kv.lease());
        client
            .resign(Some(ResignOptions::new().with_leader(leader)))
            .await
            .map(drop)
            .map_err(|e| etcd::etcd_error(url, e))
    }
}

/// Keeps `lease` alive; ends with an error once it could not be renewed for its whole TTL (or
/// etcd says it expired).
async fn keep_alive(mut client: Client, url: String, lease: i64) -> Result<(), MachinedError> {
    let ttl = Duration::from_secs(LEASE_TTL_SECONDS.unsigned_abs());
    let mut renewed = Instant::now();
    let mut keepalive = None;
    loop {
        tokio::time::sleep(KEEPALIVE_PERIOD).await;
        let attempt = async {
            if keepalive.is_none() {
                keepalive = Some(client.lease_keep_alive(lease).await?);
            }
            let Some((keeper, responses)) = keepalive.as_mut() else {
                return Ok(None);
            };
            keeper.keep_alive().await?;
            responses.message().await
        };
        match tokio::time::timeout(CALL_TIMEOUT, attempt).await {
            Ok(Ok(Some(answer))) if answer.ttl() > 0 => renewed = Instant::now(),
            Ok(Ok(Some(_))) => return Err(expired(&url, "etcd says the lease expired")),
            Ok(Ok(None) | Err(_)) | Err(_) => keepalive = None,
        }
        if renewed.elapsed() >= ttl {
            return Err(expired(
                &url,
                "the lease could not be renewed within its TTL",
            ));
        }
    }
}

fn expired(url: &str, reason: &str) -> MachinedError {
    MachinedError::Etcd {
        endpoint: url.to_string(),
        reason: format!("VIP election session ended: {reason}"),
    }
}
