//! `DiscoveryServiceConfig`, `TrustedRootsConfig`, `ImageVerificationConfig`, `ContainerConfig`,
//! `PCIDriverRebindConfig` and `SideroLinkConfig`: every field decodes and is written back,
//! unknown fields are decode errors, each kind's rules are reported by validation.

mod documents_support;

use documents_support::*;
use machineconfig::documents::{ContainerNetworkMode, Document};

const GROUP: &str = "misc";

/// (fixture, kind, name when the kind is named).
const FIXTURES: &[(&str, &str, Option<&str>)] = &[
    (
        "discovery_service.yaml",
        "DiscoveryServiceConfig",
        Some("lab-discovery"),
    ),
    ("trusted_roots.yaml", "TrustedRootsConfig", Some("lab-ca")),
    ("image_verification.yaml", "ImageVerificationConfig", None),
    ("container.yaml", "ContainerConfig", Some("node-agent")),
    (
        "pci_driver_rebind.yaml",
        "PCIDriverRebindConfig",
        Some("0000:41:00.0"),
    ),
    ("siderolink.yaml", "SideroLinkConfig", None),
];

fn text(file: &str) -> String {
    fixture(GROUP, file)
}

/// The kinds in a fixture: its kind, and the documents it needs besides.
fn kinds_of(file: &str, kind: &'static str) -> Vec<&'static str> {
    match file {
        "discovery_service.yaml" => vec![kind, "DiscoveryIdentityConfig"],
        "container.yaml" => vec![kind, kind],
        _ => vec![kind],
    }
}

#[test]
fn every_fixture_round_trips_and_validates() {
    let mut all_kinds = Vec::new();
    for (file, kind, name) in FIXTURES {
        let kinds = kinds_of(file, kind);
        let config = assert_round_trip(&text(file), &kinds);
        assert_eq!(config.documents[0].name(), *name, "{file}");
        assert_valid(&config);
        all_kinds.extend(kinds);
    }
    let all: Vec<String> = FIXTURES.iter().map(|(file, _, _)| text(file)).collect();
    assert_valid(&assert_round_trip(&all.join("---\n"), &all_kinds));
}

#[test]
fn container_fields_decode_as_written() {
    let config = assert_round_trip(&text("container.yaml"), &["ContainerConfig"; 2]);
    let Document::Container(container) = &config.documents[0] else {
        panic!("not a container: {:?}", config.documents[0]);
    };
    assert_eq!(container.mounts.len(), 3);
    assert_eq!(
        container.network.as_ref().and_then(|n| n.mode),
        Some(ContainerNetworkMode::Host)
    );
    assert_eq!(container.environment[1], "EMPTY=");
}

#[test]
fn unknown_fields_are_decode_errors() {
    for (file, _, _) in FIXTURES {
        assert_unknown_field(&text(file), "kind:", "extra: true", "extra");
    }
    let container = text("container.yaml");
    assert_unknown_field(&container, "  uid: 1000", "  user: 1", "runAs.user");
    assert_unknown_field(
        &container,
        "  - tmpfs:",
        "      mode: 1777",
        "mounts[1].tmpfs.mode",
    );
    assert_unknown_field(
        &container,
        "  time: true",
        "  clock: true",
        "dependsOn.clock",
    );
    let rules = text("image_verification.yaml");
    assert_unknown_field(
        &rules,
        "    skip: true",
        "    allow: true",
        "rules[2].allow",
    );
    assert_unknown_field(
        &rules,
        "      issuer:",
        "      audience: x",
        "rules[0].keyless.audience",
    );
}

#[test]
fn closed_sets_refuse_other_values() {
    let container = text("container.yaml");
    let (_, path, _) = decode_error(&edit(&container, "mode: host", "mode: bridge"));
    assert_eq!(path, "network.mode");
    let (_, path, _) = decode_error(&edit(&container, "profile: restricted", "profile: open"));
    assert_eq!(path, "security.profile");
    let (_, path, _) = decode_error(&edit(&container, "uid: 1000", "uid: root"));
    assert_eq!(path, "runAs.uid");
}

#[test]
fn named_kinds_refuse_a_second_document_with_the_same_name() {
    for (file, kind, name) in FIXTURES {
        if name.is_some() {
            assert_duplicate_refused(&text(file), kind);
        }
    }
}

#[test]
fn named_kinds_need_a_name() {
    for (file, kind, name) in FIXTURES {
        if let Some(name) = name {
            let document = text(file);
            let line = format!("name: {name}\n");
            let from = if document.contains(&line) {
                line
            } else {
                format!("name: {name:?}\n")
            };
            assert_issue(
                &validation_errors(&edit(&document, &from, "")),
                &format!("{kind}.name"),
                "required",
            );
        }
    }
}

#[test]
fn discovery_service_rules() {
    let discovery = text("discovery_service.yaml");
    let path = "DiscoveryServiceConfig \"lab-discovery\"";
    let issues = validation_errors(&edit(&discovery, "https://discovery", "tcp://discovery"));
    assert_issue(&issues, &format!("{path}.endpoint"), "http, https or grpc");
    let issues = validation_errors(&edit(
        &discovery,
        "endpoint: https://discovery.lab.internal:8443\n",
        "",
    ));
    assert_issue(&issues, &format!("{path}.endpoint"), "required");
    warnings(&edit(&discovery, "https://", "grpc://"));
    let both = format!("cluster:\n  discovery:\n    enabled: true\n---\n{discovery}");
    assert_issue(&validation_errors(&both), path, "cluster.discovery");
    // The service needs the cluster identity, from a document or the v1alpha1 cluster section.
    let alone = discovery.split("---\n").next().expect("first document");
    let issues = validation_errors(alone);
    assert_issue(&issues, path, "cluster ID");
    assert_issue(&issues, path, "cluster secret");
    let legacy = format!("cluster:\n  id: abc\n  secret: def\n---\n{alone}");
    let issues = validation_errors(&legacy);
    assert!(!issues.iter().any(|i| i.path == path), "{issues:#?}");
}

#[test]
fn trusted_roots_need_certificates() {
    let roots = text("trusted_roots.yaml");
    let without = roots
        .split("certificates:")
        .next()
        .expect("prefix")
        .to_string()
        + "certificates: \"\"\n";
    let issues = validation_errors(&without);
    assert_issue(&issues, "TrustedRootsConfig \"lab-ca\".certificates", "PEM");
}

#[test]
fn image_verification_rules() {
    let rules = text("image_verification.yaml");
    let k = "ImageVerificationConfig.rules";
    let issues = validation_errors(&edit(
        &rules,
        "    skip: true",
        "    skip: true\n    deny: true",
    ));
    assert_issue(&issues, &format!("{k}[2]"), "skip and deny");
    let issues = validation_errors(&edit(&rules, "    deny: true", "    deny: false"));
    assert_issue(&issues, &format!("{k}[3]"), "needs a verifier");
    let issues = validation_errors(&edit(
        &rules,
        "    skip: true",
        "    skip: true\n    publicKey: {}",
    ));
    assert_issue(&issues, &format!("{k}[2]"), "can not have verifiers");
    assert_issue(
        &issues,
        &format!("{k}[2].publicKey.certificate"),
        "required",
    );
    let issues = validation_errors(&edit(
        &rules,
        "      issuer: https://token.actions.githubusercontent.com\n",
        "",
    ));
    assert_issue(&issues, &format!("{k}[0].keyless.issuer"), "required");
    let no_subject = edit(
        &rules,
        "      subject: https://github.com/lab-org/tools/.github/workflows/release.yaml@refs/heads/main\n",
        "",
    );
    warnings(&no_subject);
    let issues = validation_errors(&edit(
        &no_subject,
        "      subjectRegex: ^https://github\\.com/lab-org/.*$\n",
        "",
    ));
    assert_issue(&issues, &format!("{k}[0].keyless.subject"), "subjectRegex");
    let issues = validation_errors(&edit(&rules, "  - image: \"*\"\n", "  - image: \"\"\n"));
    assert_issue(&issues, &format!("{k}[3].image"), "required");
    let both = edit(
        &rules,
        "    skip: true",
        "    keyless:\n      issuer: x\n      subject: y\n    publicKey:\n      certificate: z",
    );
    assert_issue(
        &validation_errors(&both),
        &format!("{k}[2]"),
        "mutually exclusive",
    );
    // Tags, digests and bare names in patterns only warn.
    let found = warnings(&edit(
        &rules,
        "image: registry.lab.internal/scratch/*",
        "image: nginx:1.27",
    ));
    assert_issue(&found, &format!("{k}[2].image"), "normalized");
    let found = warnings(&edit(
        &rules,
        "image: ghcr.io/lab-org/*",
        "image: ghcr.io/lab-org/app:v1",
    ));
    assert_issue(&found, &format!("{k}[0].image"), "tag");
}

#[test]
fn container_rules() {
    let container = text("container.yaml");
    let path = "ContainerConfig \"node-agent\"";
    let issues = validation_errors(&edit(&container, "name: node-agent", "name: Node_Agent"));
    assert_issue(&issues, "ContainerConfig \"Node_Agent\".name", "lower case");
    let issues = validation_errors(&edit(
        &container,
        "image: registry",
        "image: Registry.lab.internal/Tools",
    ));
    assert!(
        issues.iter().any(|i| i.path == format!("{path}.image")),
        "{issues:#?}"
    );
    for bad in [
        "registry.lab.internal/tools/agent:v1 2",
        "registry.lab.internal/tools/agent:",
        "registry.lab.internal/tools/agent@sha256:xyz",
        "registry.lab.internal//agent",
    ] {
        let issues = validation_errors(&edit(
            &container,
            "registry.lab.internal/tools/node-agent@sha256:0f3c2a8d9e1b4c5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a",
            &format!("{bad:?}"),
        ));
        assert_issue(
            &issues,
            &format!("{path}.image"),
            "not a valid image reference",
        );
    }
    for good in [
        "nginx",
        "localhost:5000/tools/agent:1.0",
        "ghcr.io/org/app_x:v1.2-rc.1",
    ] {
        let found = warnings(&edit(
            &container,
            "registry.lab.internal/tools/node-agent@sha256:0f3c2a8d9e1b4c5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a",
            good,
        ));
        assert_issue(&found, &format!("{path}.image"), "digest");
    }
    let tagged = edit(
        &container,
        "node-agent@sha256:0f3c2a8d9e1b4c5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a",
        "node-agent:v1.2",
    );
    assert_issue(&warnings(&tagged), &format!("{path}.image"), "digest");
    let issues = validation_errors(&edit(&container, "AGENT_MODE=node", "AGENT_MODE"));
    assert_issue(&issues, &format!("{path}.environment[0]"), "KEY=value");
    let issues = validation_errors(&edit(&container, "uid: 1000", "uid: -1"));
    assert_issue(&issues, &format!("{path}.runAs.uid"), "negative");
    let issues = validation_errors(&edit(&container, "destination: /data", "destination: data"));
    assert_issue(
        &issues,
        &format!("{path}.mounts[0].userVolume.destination"),
        "absolute",
    );
    let issues = validation_errors(&edit(&container, "        - noexec", "        - ro"));
    assert_issue(
        &issues,
        &format!("{path}.mounts[0].userVolume.options"),
        "mutually exclusive",
    );
    let issues = validation_errors(&edit(&container, "        - nosuid", "        - sync"));
    assert_issue(
        &issues,
        &format!("{path}.mounts[1].tmpfs.options"),
        "\"sync\"",
    );
    let issues = validation_errors(&edit(
        &container,
        "destination: /host/log",
        "destination: /tmp",
    ));
    assert_issue(&issues, &format!("{path}.mounts[2]"), "twice");
    let issues = validation_errors(&edit(
        &container,
        "  - tmpfs:",
        "  - hostPath:\n      source: /a\n      destination: /b\n    tmpfs:",
    ));
    assert_issue(&issues, &format!("{path}.mounts[1]"), "exactly one");
    let issues = validation_errors(&edit(
        &container,
        "NET_BIND_SERVICE",
        "CAP_NET_BIND_SERVICE",
    ));
    assert_issue(
        &issues,
        &format!("{path}.security.capabilities.add"),
        "CAP_",
    );
    let issues = validation_errors(&edit(&container, "      - NET_BIND_SERVICE", "      - ALL"));
    assert_issue(
        &issues,
        &format!("{path}.security.capabilities.add"),
        "privileged",
    );
    let issues = validation_errors(&edit(&container, "cpu: 500m", "cpu: \"0.5\""));
    assert_issue(
        &issues,
        &format!("{path}.resources.limits.cpu"),
        "millicores",
    );
    let issues = validation_errors(&edit(&container, "memory: 256MiB", "memory: lots"));
    assert_issue(
        &issues,
        &format!("{path}.resources.limits.memory"),
        "not a size",
    );
    let issues = validation_errors(&edit(&container, "    - etcfiles", "    - dns"));
    assert_issue(&issues, &format!("{path}.dependsOn.networks"), "\"dns\"");
    let issues = validation_errors(&edit(&container, "    - log-shipper", "    - node-agent"));
    assert_issue(&issues, &format!("{path}.dependsOn.containers"), "itself");
    let issues = validation_errors(&edit(&container, "    - log-shipper", "    - metrics"));
    assert_issue(
        &issues,
        &format!("{path}.dependsOn.containers"),
        "\"metrics\" is not configured",
    );
    let cycle = format!("{container}dependsOn:\n  containers:\n    - node-agent\n");
    let issues = validation_errors(&cycle);
    assert_issue(
        &issues,
        "ContainerConfig.dependsOn.containers",
        "log-shipper -> node-agent -> log-shipper",
    );
    let issues = validation_errors(&edit(
        &container,
        "    - /var/lib/agent",
        "    - var/lib/agent",
    ));
    assert_issue(&issues, &format!("{path}.dependsOn.paths"), "absolute");
}

#[test]
fn pci_driver_rebind_needs_a_driver() {
    let rebind = text("pci_driver_rebind.yaml");
    let issues = validation_errors(&edit(&rebind, "targetDriver: vfio-pci\n", ""));
    assert_issue(
        &issues,
        "PCIDriverRebindConfig \"0000:41:00.0\".targetDriver",
        "required",
    );
}

#[test]
fn siderolink_rules() {
    let link = text("siderolink.yaml");
    let issues = validation_errors(&edit(&link, "https://omni", "http://omni"));
    assert_issue(&issues, "SideroLinkConfig.apiUrl", "https or grpc");
    let issues = validation_errors(&edit(&link, ":8090/?", ":8090/api?"));
    assert_issue(&issues, "SideroLinkConfig.apiUrl", "path");
    let issues =
        validation_errors("apiVersion: v1alpha1\nkind: SideroLinkConfig\nuniqueToken: x\n");
    assert_issue(&issues, "SideroLinkConfig.apiUrl", "required");
    warnings(&edit(&link, "https://", "grpc://"));
}
