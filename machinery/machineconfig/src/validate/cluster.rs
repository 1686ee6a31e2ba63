//! Checks of `cluster`.

use std::collections::BTreeSet;

use super::machine::check_ca;
use super::{Findings, formats};
use crate::MachineType;
use crate::v1alpha1::{
    ClusterConfig, ClusterNetworkConfig, DEFAULT_DISCOVERY_ENDPOINT, DiscoveryConfig, EtcdConfig,
};

pub(super) fn validate(
    cluster: &ClusterConfig,
    machine_type: Option<MachineType>,
    f: &mut Findings,
) {
    let control_plane = machine_type.is_some_and(MachineType::is_control_plane);
    if let Some(control_plane) = &cluster.control_plane {
        if control_plane.endpoint.is_empty() {
            f.error(
                "cluster.controlPlane.endpoint",
                "the control plane endpoint is required",
            );
        } else {
            f.check(
                "cluster.controlPlane.endpoint",
                formats::url(&control_plane.endpoint),
            );
        }
    }
    if let Some(network) = &cluster.network {
        check_network(network, control_plane, f);
    }
    if let Some(token) = &cluster.token {
        f.check("cluster.token", formats::token(token));
    }
    check_ca(
        "cluster",
        cluster.ca.as_ref(),
        &cluster.accepted_cas,
        machine_type,
        f,
    );
    match (&cluster.etcd, machine_type) {
        (Some(_), Some(MachineType::Worker)) => {
            f.error(
                "cluster.etcd",
                "etcd settings are not allowed on worker nodes",
            );
        }
        (etcd, Some(t)) if t.is_control_plane() => check_etcd(etcd.as_ref(), f),
        (Some(etcd), _) => check_etcd_subnets(etcd, f),
        _ => {}
    }
    if let Some(image) = cluster.api_server.as_ref().and_then(|c| c.image.as_ref()) {
        f.check("cluster.apiServer.image", formats::kubernetes_image(image));
    }
    if let Some(image) = cluster
        .controller_manager
        .as_ref()
        .and_then(|c| c.image.as_ref())
    {
        f.check(
            "cluster.controllerManager.image",
            formats::kubernetes_image(image),
        );
    }
    if let Some(image) = cluster.scheduler.as_ref().and_then(|c| c.image.as_ref()) {
        f.check("cluster.scheduler.image", formats::kubernetes_image(image));
    }
    if let Some(discovery) = &cluster.discovery {
        check_discovery(discovery, cluster, f);
    }
    let mut names = BTreeSet::new();
    for (i, manifest) in cluster.inline_manifests.iter().enumerate() {
        let path = format!("cluster.inlineManifests[{i}].name");
        if manifest.name.is_empty() {
            f.error(path, "inline manifest name is required");
        } else if !names.insert(manifest.name.as_str()) {
            f.error(
                path,
                format!("duplicate inline manifest name {:?}", manifest.name),
            );
        }
    }
    for (i, url) in cluster.extra_manifests.iter().enumerate() {
        f.check(
            format!("cluster.extraManifests[{i}]"),
            formats::http_url(url),
        );
    }
    if let Some(provider) = &cluster.external_cloud_provider {
        if provider.enabled != Some(true) && !provider.manifests.is_empty() {
            f.error(
                "cluster.externalCloudProvider.manifests",
                "manifests are given but the external cloud provider is not enabled",
            );
        }
        for (i, url) in provider.manifests.iter().enumerate() {
            f.check(
                format!("cluster.externalCloudProvider.manifests[{i}]"),
                formats::http_url(url),
            );
        }
    }
}

fn check_network(network: &ClusterNetworkConfig, control_plane: bool, f: &mut Findings) {
    if let Some(domain) = &network.dns_domain {
        f.check("cluster.network.dnsDomain", formats::dns_name(domain));
    }
    for (i, subnet) in network.pod_subnets.iter().enumerate() {
        f.check(
            format!("cluster.network.podSubnets[{i}]"),
            formats::cidr(subnet),
        );
    }
    for (i, subnet) in network.service_subnets.iter().enumerate() {
        f.check(
            format!("cluster.network.serviceSubnets[{i}]"),
            formats::cidr(subnet),
        );
    }
    let Some(cni) = network.cni.as_ref().filter(|_| control_plane) else {
        return;
    };
    match cni.name.as_str() {
        "flannel" => {
            if !cni.urls.is_empty() {
                f.error(
                    "cluster.network.cni.urls",
                    "urls can only be set for the custom CNI",
                );
            }
        }
        "none" => {
            if !cni.urls.is_empty() {
                f.error(
                    "cluster.network.cni.urls",
                    "urls can only be set for the custom CNI",
                );
            }
            if cni.flannel.is_some() {
                f.error(
                    "cluster.network.cni.flannel",
                    "flannel options can only be set for the flannel CNI",
                );
            }
        }
        "custom" => {
            if cni.flannel.is_some() {
                f.error(
                    "cluster.network.cni.flannel",
                    "flannel options can only be set for the flannel CNI",
                );
            }
            if cni.urls.is_empty() {
                f.warn(
                    "cluster.network.cni.urls",
                    "custom CNI has no manifest URLs; the CNI must be deployed some other way",
                );
            }
            for (i, url) in cni.urls.iter().enumerate() {
                f.check(
                    format!("cluster.network.cni.urls[{i}]"),
                    formats::http_url(url),
                );
            }
        }
        other => f.error(
            "cluster.network.cni.name",
            format!("unknown CNI {other:?} (flannel, custom or none)"),
        ),
    }
}

/// etcd on a control plane node: the CA is required.
fn check_etcd(etcd: Option<&EtcdConfig>, f: &mut Findings) {
    let ca = etcd.and_then(|etcd| etcd.ca.as_ref());
    if ca.is_none_or(|ca| ca.crt.is_none()) {
        f.error(
            "cluster.etcd.ca.crt",
            "the etcd CA certificate is required on control plane nodes",
        );
    }
    if ca.is_none_or(|ca| ca.key.is_none()) {
        f.error(
            "cluster.etcd.ca.key",
            "the etcd CA key is required on control plane nodes",
        );
    }
    if let Some(etcd) = etcd {
        check_etcd_subnets(etcd, f);
    }
}

fn check_etcd_subnets(etcd: &EtcdConfig, f: &mut Findings) {
    if etcd.subnet.is_some() && !etcd.advertised_subnets.is_empty() {
        f.error(
            "cluster.etcd.subnet",
            "subnet and advertisedSubnets are mutually exclusive (subnet is the legacy spelling)",
        );
    }
    if let Some(subnet) = &etcd.subnet {
        f.check("cluster.etcd.subnet", formats::subnet_filter(subnet));
    }
    for (i, subnet) in etcd.advertised_subnets.iter().enumerate() {
        f.check(
            format!("cluster.etcd.advertisedSubnets[{i}]"),
            formats::subnet_filter(subnet),
        );
    }
    for (i, subnet) in etcd.listen_subnets.iter().enumerate() {
        f.check(
            format!("cluster.etcd.listenSubnets[{i}]"),
            formats::subnet_filter(subnet),
        );
    }
}

fn check_discovery(discovery: &DiscoveryConfig, cluster: &ClusterConfig, f: &mut Findings) {
    if discovery.enabled != Some(true) {
        return;
    }
    let service = discovery
        .registries
        .as_ref()
        .and_then(|r| r.service.as_ref());
    if service.is_some_and(|s| s.disabled == Some(true)) {
        return;
    }
    let endpoint = service
        .and_then(|s| s.endpoint.as_deref())
        .unwrap_or(DEFAULT_DISCOVERY_ENDPOINT);
    match formats::url(endpoint) {
        Ok(url) if !matches!(url.path(), "" | "/") => f.error(
            "cluster.discovery.registries.service.endpoint",
            format!("the discovery service endpoint {endpoint:?} must not have a path"),
        ),
        Ok(_) => {}
        Err(err) => f.error("cluster.discovery.registries.service.endpoint", err),
    }
    if cluster.id.as_deref().is_none_or(str::is_empty) {
        f.error(
            "cluster.id",
            "cluster.id is required when the discovery service is enabled",
        );
    }
    if cluster.secret.as_deref().is_none_or(str::is_empty) {
        f.error(
            "cluster.secret",
            "cluster.secret is required when the discovery service is enabled",
        );
    }
}
