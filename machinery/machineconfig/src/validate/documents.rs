//! Checks of the multi-document kinds, alone and against the v1alpha1 document.

use std::collections::BTreeSet;

use super::{Findings, formats};
use crate::documents::{AutoHostname, Document};
use crate::v1alpha1::V1Alpha1Config;

pub(super) fn validate(
    documents: &[Document],
    v1alpha1: Option<&V1Alpha1Config>,
    f: &mut Findings,
) {
    let mut seen = BTreeSet::new();
    for document in documents {
        let kind = document.kind();
        if !seen.insert((kind, document.name())) {
            f.error(kind, "duplicate document");
        }
        match document {
            Document::Hostname(hostname) => {
                let auto_on = hostname.auto.is_some_and(|auto| auto != AutoHostname::Off);
                match &hostname.hostname {
                    Some(name) => {
                        f.check(format!("{kind}.hostname"), formats::hostname(name));
                        if auto_on {
                            f.error(
                                kind,
                                "hostname and auto are mutually exclusive (unless auto is off)",
                            );
                        }
                    }
                    None if !auto_on => f.error(kind, "either hostname or auto must be set"),
                    None => {}
                }
                let v1alpha1_hostname = v1alpha1
                    .and_then(|c| c.machine.as_ref())
                    .and_then(|m| m.network.as_ref())
                    .and_then(|n| n.hostname.as_ref());
                if v1alpha1_hostname.is_some() {
                    f.error(
                        kind,
                        "a static hostname is already set in the v1alpha1 document (machine.network.hostname)",
                    );
                }
            }
            Document::Resolver(resolver) => {
                for (i, server) in resolver.nameservers.iter().enumerate() {
                    f.check(
                        format!("{kind}.nameservers[{i}].address"),
                        formats::ip(&server.address),
                    );
                }
                if let Some(search) = &resolver.search_domains {
                    for (i, domain) in search.domains.iter().enumerate() {
                        f.check(
                            format!("{kind}.searchDomains.domains[{i}]"),
                            formats::hostname(domain),
                        );
                    }
                }
                if let Some(host_dns) = &resolver.host_dns
                    && host_dns.forward_kube_dns_to_host == Some(true)
                    && host_dns.enabled != Some(true)
                {
                    f.error(
                        format!("{kind}.hostDNS.forwardKubeDNSToHost"),
                        "forwardKubeDNSToHost requires hostDNS to be enabled",
                    );
                }
            }
            Document::TimeSync(time) => {
                if let Some(ntp) = &time.ntp {
                    for (i, server) in ntp.servers.iter().enumerate() {
                        if server.is_empty() {
                            f.error(
                                format!("{kind}.ntp.servers[{i}]"),
                                "server must not be empty",
                            );
                        }
                    }
                }
            }
            Document::Sysctl(sysctl) => {
                for key in sysctl.params.keys() {
                    if key.is_empty() || key.contains(char::is_whitespace) {
                        f.error(
                            format!("{kind}.params"),
                            format!("invalid parameter name {key:?}"),
                        );
                    }
                }
            }
            Document::Environment(environment) => {
                for key in environment.variables.keys() {
                    f.check(
                        format!("{kind}.variables.{key}"),
                        environment_variable_name(key),
                    );
                }
            }
            Document::DiscoveryIdentity(identity) => {
                if identity.cluster_id.as_deref().is_none_or(str::is_empty) {
                    f.error(format!("{kind}.clusterID"), "clusterID is required");
                }
                if identity.cluster_secret.as_deref().is_none_or(str::is_empty) {
                    f.error(format!("{kind}.clusterSecret"), "clusterSecret is required");
                }
            }
            Document::KubeCluster(cluster) => {
                if let Some(endpoint) = &cluster.endpoint {
                    f.check(format!("{kind}.endpoint"), formats::url(endpoint));
                }
            }
            Document::KubeNetwork(network) => {
                if let Some(domain) = &network.dns_domain {
                    f.check(format!("{kind}.dnsDomain"), formats::dns_name(domain));
                }
                for (i, subnet) in network.pod_subnets.iter().enumerate() {
                    f.check(format!("{kind}.podSubnets[{i}]"), formats::cidr(subnet));
                }
                for (i, subnet) in network.service_subnets.iter().enumerate() {
                    f.check(format!("{kind}.serviceSubnets[{i}]"), formats::cidr(subnet));
                }
                if network
                    .node_cidr_mask_size_ipv4
                    .is_some_and(|size| size > 32)
                {
                    f.error(format!("{kind}.nodeCIDRMaskSizeIPv4"), "must be at most 32");
                }
                if network
                    .node_cidr_mask_size_ipv6
                    .is_some_and(|size| size > 128)
                {
                    f.error(
                        format!("{kind}.nodeCIDRMaskSizeIPv6"),
                        "must be at most 128",
                    );
                }
            }
        }
    }
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn environment_variable_name(name: &str) -> Result<(), String> {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid environment variable name"))
    }
}
