//! `CertSANs.secrets.talos.dev/api` (namespace `secrets`, owner
//! `secrets.APICertSANsController`): the names apid's and trustd's serving certificates are
//! issued for — the node's address, 127.0.0.1 and the IPs of `machine.certSANs`; the
//! hostname, its FQDN and the DNS names of `machine.certSANs`. [`crate::api_services`] follows
//! it: a change issues new certificates at once.

use std::net::IpAddr;

use futures_util::future::BoxFuture;
use resources::{Context, Controller, Kind, Requeue, Spec};
use serde::{Deserialize, Serialize};

use super::{HostnameSpec, active_config, machine_config_kind};

/// `CertSANs.secrets.talos.dev`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertSansSpec {
    pub ips: Vec<IpAddr>,
    pub dns_names: Vec<String>,
    pub fqdn: String,
}

impl Spec for CertSansSpec {
    const TYPE: &'static str = "CertSANs.secrets.talos.dev";
    const NAMESPACE: &'static str = "secrets";
}

/// The id of the API's names.
pub const API_ID: &str = "api";

impl CertSansSpec {
    /// The names of a node at `address` called `hostname` (`domainname` may be empty), with
    /// `cert_sans` (IPs and DNS names mixed, as the config has them); each once, in that order.
    pub fn new(address: IpAddr, hostname: &str, domainname: &str, cert_sans: &[String]) -> Self {
        let mut spec = CertSansSpec::default();
        let fqdn = if domainname.is_empty() {
            hostname.to_string()
        } else {
            format!("{hostname}.{domainname}")
        };
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let names = [hostname, fqdn.as_str()].into_iter().map(str::to_string);
        for ip in [address, loopback] {
            spec.add_ip(ip);
        }
        for san in cert_sans.iter().cloned().chain(names) {
            match san.parse::<IpAddr>() {
                Ok(ip) => spec.add_ip(ip),
                Err(_) if san.is_empty() || spec.dns_names.contains(&san) => {}
                Err(_) => spec.dns_names.push(san),
            }
        }
        spec.fqdn = fqdn;
        spec
    }

    fn add_ip(&mut self, ip: IpAddr) {
        if !self.ips.contains(&ip) {
            self.ips.push(ip);
        }
    }

    /// The API's names in `state`, if published.
    pub fn of_api(state: &resources::State) -> Option<Self> {
        let resource = state.get(&Kind::of::<CertSansSpec>(), API_ID)?;
        serde_norway::from_str(&resource.yaml_spec).ok()
    }
}

/// The config's `machine.certSANs`, the hostname spec and the node's address → the API's names.
#[derive(Debug)]
pub struct ApiCertSansController {
    /// The node's address (apid's IP).
    pub address: IpAddr,
}

impl Controller for ApiCertSansController {
    fn name(&self) -> &'static str {
        "secrets.APICertSANsController"
    }

    fn inputs(&self) -> Vec<Kind> {
        vec![machine_config_kind(), Kind::of::<HostnameSpec>()]
    }

    fn outputs(&self) -> Vec<Kind> {
        vec![Kind::of::<CertSansSpec>()]
    }

    fn reconcile<'a>(&'a mut self, context: &'a Context) -> BoxFuture<'a, Result<Requeue, String>> {
        Box::pin(async move {
            let Some(hostname) = context.state().get(&Kind::of::<HostnameSpec>(), "hostname")
            else {
                return Ok(Requeue::Never);
            };
            let hostname: serde_norway::Value = serde_norway::from_str(&hostname.yaml_spec)
                .map_err(|e| format!("decoding the hostname spec: {e}"))?;
            let field = |name: &str| hostname[name].as_str().unwrap_or_default().to_string();
            let cert_sans = active_config(context)?
                .and_then(|config| config.v1alpha1?.machine)
                .map(|machine| machine.cert_sans)
                .unwrap_or_default();
            let spec = CertSansSpec::new(
                self.address,
                &field("hostname"),
                &field("domainname"),
                &cert_sans,
            );
            context.write(API_ID, &spec).map_err(|e| e.to_string())?;
            Ok(Requeue::Never)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use resources::{Runtime, State, WatchOptions};

    use super::*;
    use crate::controllers::test_inputs::write_config;

    #[tokio::test]
    async fn the_api_names_follow_the_hostname_and_the_cert_sans() {
        let state = Arc::new(State::new());
        let mut runtime = Runtime::new(Arc::clone(&state));
        runtime.register(crate::controllers::HostnameController {
            default: "talos-abc".into(),
        });
        runtime.register(ApiCertSansController {
            address: IpAddr::from([10, 5, 0, 2]),
        });
        let mut names = state.watch(
            &Kind::of::<CertSansSpec>(),
            &WatchOptions {
                bootstrap_contents: true,
                ..WatchOptions::default()
            },
        );
        runtime.start();
        let first = names.next().await.unwrap();
        assert_eq!(first.resource.metadata.id, "api");
        assert_eq!(
            first.resource.metadata.owner,
            "secrets.APICertSANsController"
        );
        assert_eq!(
            first.resource.yaml_spec,
            "ips:\n- 10.5.0.2\n- 127.0.0.1\ndnsNames:\n- talos-abc\nfqdn: talos-abc\n"
        );

        write_config(
            &state,
            "version: v1alpha1\nmachine:\n  type: worker\n  certSANs: [api.example.org, 10.5.0.100, \
             127.0.0.1]\n  network:\n    hostname: w-1.example.org\n",
        );
        // The config's names and the new hostname arrive (the hostname spec may come first).
        let mut spec = CertSansSpec::default();
        while spec.fqdn != "w-1.example.org" || spec.dns_names.len() < 3 {
            let event = names.next().await.unwrap();
            spec = serde_norway::from_str(&event.resource.yaml_spec).unwrap();
        }
        assert_eq!(
            spec,
            CertSansSpec {
                ips: ["10.5.0.2", "127.0.0.1", "10.5.0.100"]
                    .map(|ip| ip.parse().unwrap())
                    .to_vec(),
                dns_names: ["api.example.org", "w-1", "w-1.example.org"]
                    .map(String::from)
                    .to_vec(),
                fqdn: "w-1.example.org".into(),
            }
        );
        assert_eq!(CertSansSpec::of_api(&state), Some(spec));
    }
}
