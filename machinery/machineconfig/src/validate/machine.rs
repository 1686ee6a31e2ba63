//! Checks of `machine`.

use std::collections::{BTreeMap, BTreeSet};

use pki::{PemCertificate, PemCertificateAndKey};
use serde_norway::Value;

use super::{Findings, formats, kubernetes_names, network};
use crate::v1alpha1::{
    DiskConfig, EncryptionConfig, InstallConfig, KubeletConfig, MachineConfig, MachineFeatures,
    RegistriesConfig, SizeMatcher,
};
use crate::{MachineType, RuntimeMode};

/// Roles a pod may be granted through Kubernetes Talos API access.
pub(crate) const TALOS_ROLES: &[&str] = &[
    "os:admin",
    "os:operator",
    "os:reader",
    "os:etcd:backup",
    "os:image:verifier",
    "os:meta:writer",
    "os:impersonator",
];

/// `KubeletConfiguration` fields that talos-rs sets itself and `extraConfig` may not override.
const KUBELET_PROTECTED_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "staticPodPath",
    "staticPodURL",
    "authentication",
    "authorization",
    "cgroupRoot",
    "rotateCertificates",
];

const DISK_TYPES: &[&str] = &["ssd", "hdd", "nvme", "sd"];
const FILE_OPS: &[&str] = &["create", "append", "overwrite"];

pub(super) fn validate(
    machine: &MachineConfig,
    machine_type: Option<MachineType>,
    mode: RuntimeMode,
    f: &mut Findings,
) {
    if !machine.token.is_empty() {
        f.check("machine.token", formats::token(&machine.token));
    }
    check_ca(
        "machine",
        machine.ca.as_ref(),
        &machine.accepted_cas,
        machine_type,
        f,
    );
    if let Some(kubelet) = &machine.kubelet {
        check_kubelet(kubelet, f);
    }
    if let Some(network) = &machine.network {
        network::validate(network, machine_type, f);
    }
    for (name, value) in &machine.env {
        f.check(
            format!("machine.env.{name}"),
            formats::environment_variable(name, value),
        );
    }
    check_disks(&machine.disks, f);
    if let Some(install) = &machine.install {
        check_install(install, mode, f);
    }
    if !machine.files.is_empty() {
        f.warn(
            "machine.files",
            ".machine.files is deprecated, use EtcFileConfig or CRICustomizationConfig documents",
        );
    }
    for (i, file) in machine.files.iter().enumerate() {
        if !FILE_OPS.contains(&file.op.as_str()) {
            f.error(
                format!("machine.files[{i}].op"),
                format!(
                    "unknown file operation {:?} (create, append or overwrite)",
                    file.op
                ),
            );
        }
        if !file.path.starts_with('/') {
            f.error(
                format!("machine.files[{i}].path"),
                format!("{:?} is not an absolute path", file.path),
            );
        }
    }
    for (i, pod) in machine.pods.iter().enumerate() {
        check_static_pod(&format!("machine.pods[{i}]"), pod, f);
    }
    if let Some(registries) = &machine.registries {
        check_registries(registries, f);
    }
    if let Some(encryption) = &machine.system_disk_encryption {
        if let Some(state) = &encryption.state {
            check_encryption("machine.systemDiskEncryption.state", state, f);
        }
        if let Some(ephemeral) = &encryption.ephemeral {
            check_encryption("machine.systemDiskEncryption.ephemeral", ephemeral, f);
        }
    }
    if let Some(features) = &machine.features {
        check_features(features, machine_type, f);
    }
    if let Some(logging) = &machine.logging {
        for (i, destination) in logging.destinations.iter().enumerate() {
            let path = format!("machine.logging.destinations[{i}]");
            match formats::url(&destination.endpoint) {
                Ok(url) if !matches!(url.scheme(), "tcp" | "udp") => f.error(
                    format!("{path}.endpoint"),
                    format!("unsupported scheme {:?} (tcp or udp)", url.scheme()),
                ),
                Ok(_) => {}
                Err(err) => f.error(format!("{path}.endpoint"), err),
            }
            if destination.format != "json_lines" {
                f.error(
                    format!("{path}.format"),
                    format!("unknown format {:?} (json_lines)", destination.format),
                );
            }
        }
    }
    if let Some(kernel) = &machine.kernel {
        for (i, module) in kernel.modules.iter().enumerate() {
            if module.name.is_empty() {
                f.error(
                    format!("machine.kernel.modules[{i}].name"),
                    "module name is required",
                );
            }
        }
    }
    for (i, profile) in machine.seccomp_profiles.iter().enumerate() {
        if profile.name.is_empty() {
            f.error(
                format!("machine.seccompProfiles[{i}].name"),
                "profile name is required",
            );
        }
    }
    if let Some(overrides) = &machine.base_runtime_spec_overrides {
        f.warn(
            "machine.baseRuntimeSpecOverrides",
            ".machine.baseRuntimeSpecOverrides is deprecated, use a CRIBaseRuntimeSpecConfig document",
        );
        if !overrides.is_mapping() {
            f.error(
                "machine.baseRuntimeSpecOverrides",
                "must be an object (a partial OCI runtime spec)",
            );
        }
    }
    check_node_metadata(machine, f);
}

/// The CA rules shared by `machine.ca` and `cluster.ca` (`section` is `machine` or `cluster`).
pub(super) fn check_ca(
    section: &str,
    ca: Option<&PemCertificateAndKey>,
    accepted: &[PemCertificate],
    machine_type: Option<MachineType>,
    f: &mut Findings,
) {
    let has_crt = ca.is_some_and(|ca| ca.crt.is_some());
    let has_key = ca.is_some_and(|ca| ca.key.is_some());
    for (i, accepted_ca) in accepted.iter().enumerate() {
        if accepted_ca.crt.is_none() {
            f.error(
                format!("{section}.acceptedCAs[{i}].crt"),
                "certificate is required",
            );
        }
    }
    match machine_type {
        Some(t) if t.is_control_plane() => {
            if !has_crt {
                f.error(
                    format!("{section}.ca.crt"),
                    "the CA certificate is required on control plane nodes",
                );
            }
            if !has_key {
                f.error(
                    format!("{section}.ca.key"),
                    "the CA key is required on control plane nodes",
                );
            }
        }
        _ => {
            if !has_crt && accepted.is_empty() {
                f.error(
                    format!("{section}.ca"),
                    format!("{section}.ca.crt or {section}.acceptedCAs is required"),
                );
            }
            if has_key && machine_type == Some(MachineType::Worker) {
                f.error(
                    format!("{section}.ca.key"),
                    "the CA key must not be present on worker nodes",
                );
            }
        }
    }
}

fn check_kubelet(kubelet: &KubeletConfig, f: &mut Findings) {
    if let Some(image) = &kubelet.image {
        f.check("machine.kubelet.image", formats::kubernetes_image(image));
    }
    for (i, dns) in kubelet.cluster_dns.iter().enumerate() {
        f.check(format!("machine.kubelet.clusterDNS[{i}]"), formats::ip(dns));
    }
    if let Some(node_ip) = &kubelet.node_ip {
        for (i, subnet) in node_ip.valid_subnets.iter().enumerate() {
            f.check(
                format!("machine.kubelet.nodeIP.validSubnets[{i}]"),
                formats::subnet_filter(subnet),
            );
        }
    }
    match &kubelet.extra_config {
        Some(Value::Mapping(fields)) => {
            for field in KUBELET_PROTECTED_FIELDS {
                if fields.contains_key(*field) {
                    f.error(
                        format!("machine.kubelet.extraConfig.{field}"),
                        format!("field {field:?} is set by Talos and cannot be overridden"),
                    );
                }
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => f.error(
            "machine.kubelet.extraConfig",
            "must be an object (KubeletConfiguration fields)",
        ),
    }
    for (i, mount) in kubelet.extra_mounts.iter().enumerate() {
        if mount.destination.is_empty() {
            f.error(
                format!("machine.kubelet.extraMounts[{i}].destination"),
                "destination is required",
            );
        }
    }
}

fn check_disks(disks: &[DiskConfig], f: &mut Findings) {
    for (i, disk) in disks.iter().enumerate() {
        if disk.device.is_empty() {
            f.error(format!("machine.disks[{i}].device"), "device is required");
        }
        let last = disk.partitions.len().saturating_sub(1);
        for (j, partition) in disk.partitions.iter().enumerate() {
            let size = partition.size.map_or(0, |s| s.0);
            if size == 0 && j != last {
                f.error(
                    format!("machine.disks[{i}].partitions[{j}].size"),
                    "only the last partition may have size 0 (the rest of the disk)",
                );
            }
        }
    }
}

fn check_install(install: &InstallConfig, mode: RuntimeMode, f: &mut Findings) {
    let mut extensions = BTreeSet::new();
    for (i, extension) in install.extensions.iter().enumerate() {
        if !extensions.insert(extension.image.as_str()) {
            f.error(
                format!("machine.install.extensions[{i}].image"),
                format!("duplicate extension {:?}", extension.image),
            );
        }
    }
    if !install.extensions.is_empty() {
        f.warn(
            "machine.install.extensions",
            ".machine.install.extensions is deprecated, use an installer image with the extensions built in",
        );
    }
    if let Some(selector) = &install.disk_selector {
        if let Some(disk_type) = &selector.disk_type
            && !DISK_TYPES.contains(&disk_type.as_str())
        {
            f.error(
                "machine.install.diskSelector.type",
                format!("unknown disk type {disk_type:?} (ssd, hdd, nvme or sd)"),
            );
        }
        if let Some(size) = &selector.size {
            f.check(
                "machine.install.diskSelector.size",
                SizeMatcher::parse(size),
            );
        }
    }
    if !mode.requires_install() {
        return;
    }
    if install.disk.as_deref().is_none_or(str::is_empty) && install.disk_selector.is_none() {
        f.error(
            "machine.install",
            "an install disk or disk selector is required (machine.install.disk or machine.install.diskSelector)",
        );
    }
    if !install.extra_kernel_args.is_empty() && install.grub_use_uki_cmdline == Some(true) {
        f.error(
            "machine.install.extraKernelArgs",
            "extraKernelArgs cannot be used together with grubUseUKICmdline",
        );
    }
}

fn check_static_pod(path: &str, pod: &Value, f: &mut Findings) {
    let Some(fields) = pod.as_mapping() else {
        f.error(path, "a static pod must be an object (a Pod manifest)");
        return;
    };
    if fields.get("apiVersion").and_then(Value::as_str) != Some("v1") {
        f.error(
            format!("{path}.apiVersion"),
            "a static pod must have apiVersion v1",
        );
    }
    if fields.get("kind").and_then(Value::as_str) != Some("Pod") {
        f.error(format!("{path}.kind"), "a static pod must have kind Pod");
    }
    // The node names the pod's manifest after these.
    for key in ["name", "namespace"] {
        if let Some(value) = pod["metadata"].get(key) {
            let checked = value
                .as_str()
                .ok_or_else(|| "must be a string".to_string())
                .and_then(formats::dns_name);
            f.check(format!("{path}.metadata.{key}"), checked);
        }
    }
}

fn check_registries(registries: &RegistriesConfig, f: &mut Findings) {
    for (host, mirror) in &registries.mirrors {
        let path = format!("machine.registries.mirrors.{host}");
        f.check(&path, formats::registry_host(host));
        match mirror {
            None => f.error(path, "registry mirror must not be null"),
            Some(mirror) => {
                for (i, endpoint) in mirror.endpoints.iter().enumerate() {
                    f.check(
                        format!("{path}.endpoints[{i}]"),
                        formats::http_url(endpoint),
                    );
                }
            }
        }
    }
    for (host, config) in &registries.config {
        let path = format!("machine.registries.config.{host}");
        f.check(&path, formats::registry_host(host));
        let Some(tls) = config.as_ref().map(|c| c.tls.as_ref()) else {
            f.error(path, "registry config must not be null");
            continue;
        };
        let Some(tls) = tls else { continue };
        let ca = tls.ca.as_deref().filter(|ca| !ca.is_empty());
        if let Some(ca) = ca {
            f.check(format!("{path}.tls.ca"), base64_certificate(ca));
        }
        let effective =
            ca.is_some() || tls.client_identity.is_some() || tls.insecure_skip_verify == Some(true);
        if host == "*" && effective {
            f.error(
                format!("{path}.tls"),
                "TLS settings for every registry (\"*\") are not supported: containerd's host files cannot express them",
            );
        }
    }
}

/// Base64 of a PEM certificate bundle.
fn base64_certificate(text: &str) -> Result<(), String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let pem = String::from_utf8(bytes).map_err(|_| "not base64 of PEM text".to_string())?;
    pki::CertificateInfo::from_pem(&pem)
        .map(|_| ())
        .map_err(|e| format!("not a base64-encoded PEM certificate: {e}"))
}

fn check_encryption(path: &str, config: &EncryptionConfig, f: &mut Findings) {
    if config.keys.is_empty() {
        f.error(format!("{path}.keys"), "no encryption keys are configured");
    }
    let mut slots = BTreeSet::new();
    for (i, key) in config.keys.iter().enumerate() {
        let key_path = format!("{path}.keys[{i}]");
        if !slots.insert(key.slot) {
            f.error(
                format!("{key_path}.slot"),
                format!("key slot {} is used by more than one key", key.slot),
            );
        }
        let providers = [
            key.static_key.is_some(),
            key.node_id.is_some(),
            key.kms.is_some(),
            key.tpm.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count();
        match providers {
            0 => f.error(
                key_path,
                "the key has no provider (static, nodeID, kms or tpm)",
            ),
            1 => {}
            _ => f.error(
                key_path,
                "the key has more than one provider (static, nodeID, kms, tpm)",
            ),
        }
    }
}

fn check_features(features: &MachineFeatures, machine_type: Option<MachineType>, f: &mut Findings) {
    if let Some(host_dns) = &features.host_dns
        && host_dns.forward_kube_dns_to_host == Some(true)
        && host_dns.enabled != Some(true)
    {
        f.error(
            "machine.features.hostDNS.forwardKubeDNSToHost",
            "forwardKubeDNSToHost requires hostDNS to be enabled",
        );
    }
    if let Some(access) = &features.kubernetes_talos_api_access {
        if access.enabled == Some(true) && !machine_type.is_some_and(MachineType::is_control_plane)
        {
            f.error(
                "machine.features.kubernetesTalosAPIAccess",
                "Kubernetes Talos API access can only be enabled on control plane nodes",
            );
        }
        for (i, role) in access.allowed_roles.iter().enumerate() {
            if !TALOS_ROLES.contains(&role.as_str()) {
                f.error(
                    format!("machine.features.kubernetesTalosAPIAccess.allowedRoles[{i}]"),
                    format!("invalid role {role:?} (valid: {})", TALOS_ROLES.join(", ")),
                );
            }
        }
    }
    if let Some(algorithm) = &features.node_address_sort_algorithm
        && !matches!(algorithm.as_str(), "v1" | "v2")
    {
        f.error(
            "machine.features.nodeAddressSortAlgorithm",
            format!("unknown node address sort algorithm {algorithm:?} (v1 or v2)"),
        );
    }
}

fn check_node_metadata(machine: &MachineConfig, f: &mut Findings) {
    let check_keys = |section: &str, map: &BTreeMap<String, String>, f: &mut Findings| {
        for key in map.keys() {
            f.check(
                format!("machine.{section}.{key}"),
                kubernetes_names::qualified_name(key),
            );
        }
    };
    check_keys("nodeLabels", &machine.node_labels, f);
    for (key, value) in &machine.node_labels {
        f.check(
            format!("machine.nodeLabels.{key}"),
            kubernetes_names::label_value(value),
        );
    }
    check_keys("nodeAnnotations", &machine.node_annotations, f);
    f.check(
        "machine.nodeAnnotations",
        kubernetes_names::annotations_size(&machine.node_annotations),
    );
    check_keys("nodeTaints", &machine.node_taints, f);
    for (key, value) in &machine.node_taints {
        f.check(
            format!("machine.nodeTaints.{key}"),
            kubernetes_names::taint_value(value),
        );
    }
}
