//! Talking to etcd members with the node's admin client certificate.

use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::pki::EtcdPki;
use crate::error::MachinedError;

/// How long connecting and each call may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A client of the etcd members at `endpoints` (`https://IP:2379`).
pub async fn connect(pki: &EtcdPki, endpoints: &[String]) -> Result<Client, MachinedError> {
    let options = admin_options(pki)?.with_timeout(TIMEOUT);
    Client::connect(endpoints, Some(options))
        .await
        .map_err(|e| etcd_error(endpoints.join(","), e))
}

/// Like [`connect`], without the bound on each call: for calls that wait on purpose (an
/// election campaign, observing a leader, a lease's keep-alive stream).
pub async fn connect_for_watching(
    pki: &EtcdPki,
    endpoints: &[String],
) -> Result<Client, MachinedError> {
    Client::connect(endpoints, Some(admin_options(pki)?))
        .await
        .map_err(|e| etcd_error(endpoints.join(","), e))
}

/// Mutual TLS as etcd's admin, and a bound on connecting.
fn admin_options(pki: &EtcdPki) -> Result<ConnectOptions, MachinedError> {
    let (ca, crt, key) = pki.admin_identity()?;
    let tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(crt, key));
    Ok(ConnectOptions::new()
        .with_tls(tls)
        .with_connect_timeout(TIMEOUT))
}

/// An etcd failure as machined's error.
pub fn etcd_error(endpoint: impl Into<String>, error: etcd_client::Error) -> MachinedError {
    MachinedError::Etcd {
        endpoint: endpoint.into(),
        reason: error.to_string(),
    }
}
