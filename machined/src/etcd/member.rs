//! `EtcdMembers.etcd.talos.dev/local` (namespace `etcd`, owner `etcd.MemberController`): the
//! local etcd member's id, as 16 hex digits, while the etcd service runs; none elsewhere. The
//! id is asked of etcd once per start of the service (it does not change while it runs).

use std::net::IpAddr;
use std::path::PathBuf;

use futures_util::future::BoxFuture;
use resources::{Context, Controller, Kind, Requeue, Spec};
use serde::Serialize;

use super::{CLIENT_PORT, EtcdPki, connect, etcd_error, url};
use crate::controllers::{ServiceSpec, service_is_running};

/// `EtcdMembers.etcd.talos.dev`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdMemberSpec {
    #[serde(rename = "memberID")]
    pub member_id: String,
}

impl Spec for EtcdMemberSpec {
    const TYPE: &'static str = "EtcdMembers.etcd.talos.dev";
    const NAMESPACE: &'static str = "etcd";
}

/// Asks the local member for its id.
pub trait MemberIdSource: Send + 'static {
    fn member_id(&self) -> BoxFuture<'_, Result<u64, String>>;
}

/// The local member at the node's client URL, with machined's etcd admin certificate.
#[derive(Debug)]
pub struct LocalMember {
    /// machined's etcd PKI directory.
    pub pki_dir: PathBuf,
    pub address: IpAddr,
}

impl MemberIdSource for LocalMember {
    fn member_id(&self) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async move {
            let url = url(self.address, CLIENT_PORT);
            let pki = EtcdPki::new(self.pki_dir.clone());
            let mut client = connect(&pki, std::slice::from_ref(&url))
                .await
                .map_err(|e| e.to_string())?;
            let status = client
                .status()
                .await
                .map_err(|e| etcd_error(&url, e).to_string())?;
            status
                .header()
                .map(|header| header.member_id())
                .ok_or_else(|| format!("etcd at {url} named no member"))
        })
    }
}

/// The etcd service's state → `EtcdMembers/local`.
#[derive(Debug)]
pub struct EtcdMemberController<M> {
    pub member: M,
}

impl<M: MemberIdSource> Controller for EtcdMemberController<M> {
    fn name(&self) -> &'static str {
        "etcd.MemberController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![Kind::of::<ServiceSpec>()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<EtcdMemberSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let kind = Kind::of::<EtcdMemberSpec>();
            if !service_is_running(context.state(), "etcd") {
                context
                    .keep_only::<EtcdMemberSpec>(&[])
                    .map_err(|e| e.to_string())?;
                return Ok(Requeue::Never);
            }
            if context.state().get(&kind, "local").is_some() {
                return Ok(Requeue::Never);
            }
            let id = self.member.member_id().await?;
            let spec = EtcdMemberSpec {
                member_id: format!("{id:016x}"),
            };
            context.write("local", &spec).map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use resources::{Runtime, State};

    use super::*;
    use crate::controllers::test_inputs::{settle, write_service};

    /// Fails its first answer, then names member 0x2f3e1a; counts the questions.
    struct Member(Arc<AtomicU32>);

    impl MemberIdSource for Member {
        fn member_id(&self) -> BoxFuture<'_, Result<u64, String>> {
            Box::pin(async move {
                match self.0.fetch_add(1, Ordering::SeqCst) {
                    0 => Err("etcd is not up yet".into()),
                    _ => Ok(0x002f_3e1a),
                }
            })
        }
    }

    fn etcd(running: bool) -> ServiceSpec {
        ServiceSpec {
            running,
            healthy: running,
            unknown: false,
        }
    }

    #[tokio::test]
    async fn the_member_id_follows_the_etcd_service() {
        let asked = Arc::new(AtomicU32::new(0));
        let state = Arc::new(State::new());
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(EtcdMemberController {
            member: Member(Arc::clone(&asked)),
        });
        runtime.start();
        let kind = Kind::of::<EtcdMemberSpec>();
        settle().await;
        assert!(state.list(&kind).is_empty(), "no etcd, no member");
        assert_eq!(asked.load(Ordering::SeqCst), 0);

        // etcd runs: the first question fails and is retried.
        write_service(&state, "etcd", &etcd(true));
        settle().await;
        settle().await;
        let member = state.get(&kind, "local").unwrap();
        assert_eq!(member.yaml_spec, "memberID: 00000000002f3e1a\n");
        assert_eq!(member.metadata.owner, "etcd.MemberController");
        assert_eq!(asked.load(Ordering::SeqCst), 2);

        // Other services changing ask nothing more; etcd stopping removes the member.
        write_service(&state, "timed", &etcd(true));
        settle().await;
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        write_service(&state, "etcd", &etcd(false));
        settle().await;
        assert!(state.get(&kind, "local").is_none());
    }
}
