//! What a joining node may ask trustd for: a serving certificate for itself, nothing more.

use std::net::IpAddr;

use pki::{ExtendedKeyUsage, RequestedCertificate};

/// Checks on certificate requests. A request is refused when it asks to be a CA, carries roles
/// (Subject Organization), asks for client authentication, names no host at all, uses a wildcard
/// DNS name, or claims a protected name or address: the control planes', `machine.certSANs`, the
/// endpoint's host (except 127.0.0.1 and ::1, which every node's apid certificate carries).
#[derive(Clone, Debug, Default)]
pub struct NodePolicy {
    protected_names: Vec<String>,
    protected_addresses: Vec<IpAddr>,
}

impl NodePolicy {
    /// A policy protecting `names` (host names or IP addresses).
    pub fn new(names: &[String]) -> Self {
        let mut policy = NodePolicy::default();
        for name in names {
            match name.parse::<IpAddr>() {
                Ok(ip) if !is_shared_loopback(ip) => policy.protected_addresses.push(ip),
                Ok(_) => {}
                Err(_) => policy.protected_names.push(name.to_ascii_lowercase()),
            }
        }
        policy
    }

    /// Why `requested` may not be signed, if it may not.
    pub fn check(&self, requested: &RequestedCertificate) -> Result<(), String> {
        let request = &requested.request;
        if requested.is_ca {
            return Err("it asks to be a certificate authority".into());
        }
        if !request.roles.is_empty() {
            return Err(format!(
                "it asks for roles (Organization {:?}); node certificates carry none",
                request.roles
            ));
        }
        if let Some(usage) = request
            .extended_key_usages
            .iter()
            .find(|u| !matches!(u, ExtendedKeyUsage::ServerAuth))
        {
            return Err(format!(
                "it asks for extended key usage {usage:?}; only ServerAuth is issued"
            ));
        }
        let sans = &request.subject_alt_names;
        if sans.dns_names.is_empty() && sans.ip_addresses.is_empty() {
            return Err("it names no host (no subject alternative names)".into());
        }
        if let Some(name) = sans.dns_names.iter().find(|n| n.contains('*')) {
            return Err(format!("wildcard name {name:?} is not issued to nodes"));
        }
        if let Some(name) = sans
            .dns_names
            .iter()
            .find(|n| self.protected_names.contains(&n.to_ascii_lowercase()))
        {
            return Err(format!("name {name:?} belongs to the control plane"));
        }
        if let Some(ip) = sans
            .ip_addresses
            .iter()
            .find(|ip| self.protected_addresses.contains(ip))
        {
            return Err(format!("address {ip} belongs to the control plane"));
        }
        Ok(())
    }
}

fn is_shared_loopback(ip: IpAddr) -> bool {
    ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
}

#[cfg(test)]
mod tests {
    use pki::{CertificateRequest, SubjectAltNames};

    use super::*;

    fn request(dns: &[&str], ips: &[&str]) -> RequestedCertificate {
        RequestedCertificate {
            request: CertificateRequest {
                common_name: Some("worker-1".into()),
                subject_alt_names: SubjectAltNames {
                    dns_names: dns.iter().map(|s| s.to_string()).collect(),
                    ip_addresses: ips.iter().map(|s| s.parse().expect("ip")).collect(),
                },
                extended_key_usages: vec![ExtendedKeyUsage::ServerAuth],
                ..CertificateRequest::default()
            },
            is_ca: false,
        }
    }

    fn policy() -> NodePolicy {
        NodePolicy::new(&["cp-1".into(), "10.5.0.2".into(), "127.0.0.1".into()])
    }

    #[test]
    fn a_node_may_have_its_own_names_and_loopback() {
        let ok = request(&["worker-1"], &["10.5.0.3", "127.0.0.1"]);
        assert_eq!(policy().check(&ok), Ok(()));
    }

    #[test]
    fn what_a_node_may_not_have_is_refused_with_the_reason() {
        let mut ca = request(&["worker-1"], &[]);
        ca.is_ca = true;
        let mut roles = request(&["worker-1"], &[]);
        roles.request.roles = vec!["os:admin".into()];
        let mut client = request(&["worker-1"], &[]);
        client.request.extended_key_usages = vec![ExtendedKeyUsage::ClientAuth];
        let cases = [
            (ca, "certificate authority"),
            (roles, "os:admin"),
            (client, "ClientAuth"),
            (request(&[], &[]), "no subject alternative names"),
            (request(&["*.example"], &[]), "wildcard"),
            (
                request(&["CP-1"], &[]),
                "\"CP-1\" belongs to the control plane",
            ),
            (request(&[], &["10.5.0.2"]), "10.5.0.2 belongs"),
        ];
        for (requested, expected) in cases {
            let reason = policy().check(&requested).expect_err(expected);
            assert!(reason.contains(expected), "{reason} lacks {expected}");
        }
    }
}
