//! Decoding errors name the document, the line in the input and the YAML path.

use machineconfig::documents::UPSTREAM_KINDS;
use machineconfig::{Config, ConfigError};

const WORKER: &str = include_str!("fixtures/worker.yaml");

/// The decode error's (document, line, path, message).
fn decode_error(input: &str) -> (usize, Option<usize>, String, String) {
    match Config::from_yaml(input) {
        Err(ConfigError::Decode {
            document,
            line,
            path,
            message,
            ..
        }) => (document, line, path, message),
        Err(other) => panic!("expected a decode error, got {other}"),
        Ok(_) => panic!("expected a decode error, the input decoded"),
    }
}

/// The 1-based line of the first line of `input` containing `needle`.
fn line_of(input: &str, needle: &str) -> usize {
    input
        .lines()
        .position(|line| line.contains(needle))
        .expect("needle present")
        + 1
}

#[test]
fn unknown_key_reports_its_line_and_path() {
    let input = WORKER.replace(
        "        disk: /dev/sda\n",
        "        disk: /dev/sda\n        diskk: /dev/sdb\n",
    );
    let line = line_of(&input, "diskk:");
    let (document, reported_line, path, message) = decode_error(&input);
    assert_eq!(document, 1);
    assert_eq!(reported_line, Some(line));
    assert_eq!(path, "machine.install.diskk");
    assert!(message.starts_with("unknown field `diskk`"), "{message}");
    let text = Config::from_yaml(&input).unwrap_err().to_string();
    assert!(
        text.starts_with(&format!(
            "document 1, line {line} column 9, at machine.install.diskk: unknown field `diskk`"
        )),
        "{text}"
    );
}

#[test]
fn unknown_key_deep_in_a_list() {
    let input = "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses:\n          - 10.0.0.1/24\n      - interface: eth1\n        adresses: [10.0.0.2/24]\n";
    let (_, line, path, _) = decode_error(input);
    assert_eq!(line, Some(8));
    assert_eq!(path, "machine.network.interfaces[1].adresses");
}

#[test]
fn wrong_type_reports_path_into_a_list() {
    let input = "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses:\n          - 10.0.0.1/24\n          - {ip: 10.0.0.2}\n";
    let (_, line, path, message) = decode_error(input);
    assert_eq!(path, "machine.network.interfaces[0].addresses[1]");
    assert_eq!(line, Some(7));
    assert!(
        message.contains("invalid type: map, expected a string"),
        "{message}"
    );
}

#[test]
fn wrong_scalar_type_and_bad_values() {
    let (_, line, path, message) =
        decode_error("machine:\n  features:\n    kubePrism:\n      port: lots\n");
    assert_eq!(
        (line, path.as_str()),
        (Some(4), "machine.features.kubePrism.port")
    );
    assert!(message.contains("expected u16"), "{message}");

    let (_, line, path, message) = decode_error("machine:\n  time:\n    bootTimeout: 2 minutes\n");
    assert_eq!((line, path.as_str()), (Some(3), "machine.time.bootTimeout"));
    assert!(message.contains("invalid duration"), "{message}");

    let (_, _, path, message) = decode_error("machine:\n  ca:\n    crt: '%%%'\n");
    assert_eq!(path, "machine.ca.crt");
    assert!(message.contains("not valid base64"), "{message}");
}

#[test]
fn malformed_yaml_reports_the_line_in_the_whole_stream() {
    let input = "version: v1alpha1\nmachine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: [a\n";
    let err = Config::from_yaml(input).unwrap_err();
    let ConfigError::Decode { document, line, .. } = &err else {
        panic!("expected a decode error, got {err}");
    };
    assert_eq!(*document, 2);
    assert!(line.is_some_and(|l| l >= 7), "{err}");
    let text = err.to_string();
    assert!(text.starts_with("document 2, line "), "{text}");
    // Lines inside the message are shifted to the whole input too.
    assert!(!text.contains("line 3 "), "{text}");
}

#[test]
fn bad_indentation_is_reported_with_its_line() {
    let input = "machine:\n  type: worker\n token: x\n";
    let (_, line, _, message) = decode_error(input);
    assert_eq!(line, Some(3), "{message}");
}

#[test]
fn errors_in_later_documents_count_lines_from_the_input_start() {
    let input = "version: v1alpha1\nmachine:\n  type: worker\n---\n# a comment\napiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n  - address: 1.1.1.1\n    port: 53\n";
    let (document, line, path, _) = decode_error(input);
    assert_eq!(document, 2);
    assert_eq!(line, Some(10));
    assert_eq!(path, "nameservers[0].port");
}

#[test]
fn unknown_key_in_a_document_kind_is_rejected() {
    let input = "apiVersion: v1alpha1\nkind: KubeClusterConfig\nclusterName: demo\nendpiont: https://x:6443\n";
    let (_, line, path, message) = decode_error(input);
    assert_eq!((line, path.as_str()), (Some(4), "endpiont"));
    assert!(message.contains("unknown field `endpiont`"), "{message}");
}

#[test]
fn missing_kind_and_api_version() {
    let err = Config::from_yaml("version: v1alpha1\n---\nhostname: x\n").unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::MissingKind {
                document: 2,
                line: 3
            }
        ),
        "{err}"
    );
    assert_eq!(err.to_string(), "document 2 (line 3): missing kind");

    let err = Config::from_yaml("kind: HostnameConfig\nhostname: x\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::MissingApiVersion { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("missing apiVersion"), "{err}");

    let err = Config::from_yaml("apiVersion: v1alpha2\nkind: HostnameConfig\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::UnsupportedApiVersion { .. }),
        "{err}"
    );
}

#[test]
fn every_upstream_kind_is_decoded_and_others_are_unknown() {
    for kind in UPSTREAM_KINDS {
        match Config::from_yaml(&format!("apiVersion: v1alpha1\nkind: {kind}\n")) {
            Err(ConfigError::UnknownKind { .. }) => panic!("{kind} is not decoded"),
            Ok(config) => assert_eq!(config.documents[0].kind(), *kind),
            // Decoded, but a required field is missing or so: still its own kind.
            Err(ConfigError::Decode { .. }) => {}
            Err(other) => panic!("{kind}: {other}"),
        }
    }
    let err = Config::from_yaml("apiVersion: v1alpha1\nkind: FancyConfig\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "document 1 (line 1): unknown document kind \"FancyConfig\""
    );
}

#[test]
fn duplicate_documents_are_rejected() {
    let input = "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: x\n";
    let err = Config::from_yaml(input).unwrap_err();
    assert!(
        matches!(&err, ConfigError::DuplicateDocument { document: 2, line: 5, kind, name: None } if kind == "HostnameConfig"),
        "{err}"
    );
    let err = Config::from_yaml("machine: {}\n---\ncluster: {}\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::DuplicateDocument { .. }),
        "{err}"
    );
}

#[test]
fn v1alpha1_detection_needs_one_of_its_keys() {
    for key in [
        "version: v1alpha1",
        "machine: {}",
        "cluster: {}",
        "debug: true",
        "persist: true",
    ] {
        let config = Config::from_yaml(key).unwrap_or_else(|err| panic!("{key}: {err}"));
        assert!(config.is_complete(), "{key}");
    }
    let err = Config::from_yaml("- a\n- b\n").unwrap_err();
    assert!(matches!(err, ConfigError::NotAMapping { .. }), "{err}");
}

#[test]
fn legacy_alias_allow_scheduling_on_masters() {
    let config = Config::from_yaml("cluster:\n  allowSchedulingOnMasters: true\n").unwrap();
    let cluster = config.v1alpha1.unwrap().cluster.unwrap();
    assert_eq!(cluster.allow_scheduling_on_control_planes, Some(true));
}

#[test]
fn null_collections_and_scalar_map_values_read_like_upstream() {
    let input = "machine:\n  certSANs:\n  sysctls:\n    net.ipv4.ip_forward: 1\n    vm.overcommit: true\n  nodeLabels:\ncluster:\n  extraManifests:\n  inlineManifests: ~\n";
    let config = Config::from_yaml(input).unwrap().v1alpha1.unwrap();
    let machine = config.machine.unwrap();
    assert!(machine.cert_sans.is_empty());
    assert!(machine.node_labels.is_empty());
    assert_eq!(machine.sysctls["net.ipv4.ip_forward"], "1");
    assert_eq!(machine.sysctls["vm.overcommit"], "true");
    assert!(config.cluster.unwrap().inline_manifests.is_empty());

    let (_, line, path, message) = decode_error("machine:\n  sysctls:\n    a: [1]\n");
    assert_eq!((line, path.as_str()), (Some(3), "machine.sysctls.a"));
    assert!(message.contains("expected a string"), "{message}");
}

#[test]
fn line_numbers_written_in_keys_are_quoted_unchanged() {
    // An audit finding: every "line N" in a message was shifted, overflowing on this key.
    let input = "version: v1alpha1\nmachine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: HostnameConfig\n\"line 18446744073709551615\": x\n";
    let (document, line, path, message) = decode_error(input);
    assert_eq!((document, line), (2, Some(7)));
    assert_eq!(path, "line 18446744073709551615");
    assert!(
        message.contains("unknown field `line 18446744073709551615`"),
        "{message}"
    );
}

#[test]
fn aliases_that_multiply_a_document_are_refused() {
    // The audit's alias bomb: 20,000 aliases of a 20,001-element list (400 million nodes).
    let n = 20_000;
    let input = format!(
        "version: v1alpha1\ndebug: &a [{}1]\npersist: [{}*a]\n",
        "1,".repeat(n),
        "*a,".repeat(n)
    );
    let (document, _, _, message) = decode_error(&input);
    assert_eq!(document, 1);
    assert!(message.contains("YAML aliases"), "{message}");
}

#[test]
fn aliases_that_multiply_a_patch_are_refused() {
    let n = 20_000;
    let patch = format!(
        "machine:\n  certSANs: &a [{}x]\ncluster:\n  apiServer:\n    certSANs: [{}*a]\n",
        "x,".repeat(n),
        "*a,".repeat(n)
    );
    let err = machineconfig::patch::Patch::parse(&patch).unwrap_err();
    assert!(err.to_string().contains("YAML aliases"), "{err}");
}
