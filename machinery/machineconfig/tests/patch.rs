//! Config patches: RFC 6902 JSON patches and Talos strategic merge, from inline text and files.

use machineconfig::ConfigError;
use machineconfig::patch::{Patch, PatchFormat, apply_patches, load_patches};
use serde::Deserialize;
use serde_norway::Value;

const CONFIG: &str = r#"
version: v1alpha1
machine:
  type: controlplane
  certSANs: [a.example]
  nodeLabels:
    zone: one
  network:
    hostname: node-1
    interfaces:
      - interface: eth0
        addresses: [10.0.0.2/24]
        vlans:
          - vlanId: 100
            mtu: 1400
            addresses: [10.1.0.2/24]
          - vlanId: 200
            mtu: 1500
      - deviceSelector: {hardwareAddr: "aa:bb:*"}
        dhcp: true
cluster:
  clusterName: demo
---
apiVersion: v1alpha1
kind: LinkConfig
name: eth0
mtu: 9000
---
apiVersion: v1alpha1
kind: HostnameConfig
auto: stable
"#;

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).expect("test YAML is valid")
}

fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("patched YAML is valid"))
        .collect()
}

/// Applies inline patches to `config` and returns the resulting documents.
fn patched(config: &str, patches: &[&str]) -> Result<Vec<Value>, ConfigError> {
    let patches = load_patches(patches)?;
    Ok(documents(&apply_patches(config, &patches)?))
}

fn patched_v1alpha1(patches: &[&str]) -> Value {
    patched(CONFIG, patches).expect("patches apply").remove(0)
}

fn at<'a>(value: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(value, |value, key| match key.parse::<usize>() {
            Ok(index) => &value[index],
            Err(_) => &value[key],
        })
}

fn operation_error(error: ConfigError) -> (usize, String, String, String) {
    match error {
        ConfigError::PatchOperation {
            index,
            op,
            path,
            reason,
            ..
        } => (index, op, path, reason),
        other => panic!("expected a patch operation error, got {other:?}"),
    }
}

fn json_patch_error(patch: &str) -> (usize, String, String, String) {
    operation_error(patched(CONFIG, &[patch]).expect_err("patch fails"))
}

// ---- format detection ----

#[test]
fn lists_are_json_patches_and_documents_are_merge_patches() {
    let json = Patch::parse(r#"[{"op": "remove", "path": "/debug"}]"#).expect("valid");
    let yaml_list = Patch::parse("- op: remove\n  path: /debug\n").expect("valid");
    let merge = Patch::parse("machine:\n  type: worker\n").expect("valid");
    assert_eq!(json.format(), PatchFormat::JsonPatch);
    assert_eq!(yaml_list.format(), PatchFormat::JsonPatch);
    assert_eq!(merge.format(), PatchFormat::StrategicMerge);
}

#[test]
fn json_and_yaml_list_forms_apply_the_same() {
    let json = patched_v1alpha1(&[
        r#"[{"op": "add", "path": "/machine/network/hostname", "value": "n2"}]"#,
    ]);
    let yaml_list =
        patched_v1alpha1(&["- op: add\n  path: /machine/network/hostname\n  value: n2\n"]);
    assert_eq!(at(&json, "machine.network.hostname"), "n2");
    assert_eq!(json, yaml_list);
}

// ---- RFC 6902 ----

#[test]
fn add_sets_keys_inserts_at_index_and_appends_with_dash() {
    let doc = patched_v1alpha1(&[r#"[
        {"op": "add", "path": "/machine/nodeLabels/rack", "value": "r1"},
        {"op": "add", "path": "/machine/certSANs/0", "value": "first"},
        {"op": "add", "path": "/machine/certSANs/-", "value": "last"},
        {"op": "add", "path": "/machine/install", "value": {"disk": "/dev/vda"}}
    ]"#]);
    assert_eq!(
        at(&doc, "machine.nodeLabels"),
        &yaml("{zone: one, rack: r1}")
    );
    assert_eq!(
        at(&doc, "machine.certSANs"),
        &yaml("[first, a.example, last]")
    );
    assert_eq!(at(&doc, "machine.install.disk"), "/dev/vda");
}

#[test]
fn add_past_the_end_of_a_list_fails() {
    let (index, op, path, reason) =
        json_patch_error(r#"[{"op": "add", "path": "/machine/certSANs/5", "value": "x"}]"#);
    assert_eq!(
        (index, op.as_str(), path.as_str()),
        (0, "add", "/machine/certSANs/5")
    );
    assert_eq!(reason, "array index 5 out of range (length 1)");
}

#[test]
fn remove_deletes_keys_and_list_elements() {
    let doc = patched_v1alpha1(&[r#"[
        {"op": "remove", "path": "/machine/network/interfaces/1"},
        {"op": "remove", "path": "/cluster/clusterName"}
    ]"#]);
    assert_eq!(
        at(&doc, "machine.network.interfaces")
            .as_sequence()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(at(&doc, "cluster"), &yaml("{}"));
}

#[test]
fn remove_of_a_missing_path_fails_naming_the_operation() {
    let error = patched(
        CONFIG,
        &[r#"[{"op": "test", "path": "/version", "value": "v1alpha1"}, {"op": "remove", "path": "/machine/nope"}]"#],
    )
    .expect_err("missing path");
    assert_eq!(
        error.to_string(),
        "inline patch 1: patch operation 1 (remove /machine/nope): path not found"
    );
}

#[test]
fn replace_changes_existing_values_only() {
    let doc = patched_v1alpha1(&[
        r#"[{"op": "replace", "path": "/machine/network/interfaces/0/vlans/1/mtu", "value": 9000}]"#,
    ]);
    assert_eq!(at(&doc, "machine.network.interfaces.0.vlans.1.mtu"), 9000);

    let (index, op, path, reason) =
        json_patch_error(r#"[{"op": "replace", "path": "/machine/foo", "value": 1}]"#);
    assert_eq!(
        (index, op.as_str(), path.as_str(), reason.as_str()),
        (0, "replace", "/machine/foo", "path not found")
    );
}

#[test]
fn move_and_copy_take_from_another_path() {
    let doc = patched_v1alpha1(&[r#"[
        {"op": "copy", "from": "/machine/network/hostname", "path": "/machine/nodeLabels/host"},
        {"op": "move", "from": "/cluster/clusterName", "path": "/machine/nodeLabels/cluster"}
    ]"#]);
    assert_eq!(
        at(&doc, "machine.nodeLabels"),
        &yaml("{zone: one, host: node-1, cluster: demo}")
    );
    assert_eq!(at(&doc, "machine.network.hostname"), "node-1");
    assert!(at(&doc, "cluster").get("clusterName").is_none());

    let (_, op, _, reason) =
        json_patch_error(r#"[{"op": "move", "from": "/machine", "path": "/machine/network/x"}]"#);
    assert_eq!(
        (op.as_str(), reason.as_str()),
        ("move", "cannot move /machine into itself")
    );
    let (_, _, _, reason) = json_patch_error(r#"[{"op": "copy", "from": "/nope", "path": "/x"}]"#);
    assert_eq!(reason, "from /nope: path not found");
}

#[test]
fn test_op_passes_on_equal_values_and_fails_otherwise() {
    let doc = patched_v1alpha1(&[r#"[
        {"op": "test", "path": "/machine/network/interfaces/0/vlans/0", "value": {"vlanId": 100, "mtu": 1400, "addresses": ["10.1.0.2/24"]}},
        {"op": "replace", "path": "/machine/type", "value": "worker"}
    ]"#]);
    assert_eq!(at(&doc, "machine.type"), "worker");

    let (index, op, path, reason) = json_patch_error(
        r#"[{"op": "replace", "path": "/machine/type", "value": "worker"}, {"op": "test", "path": "/machine/type", "value": "controlplane"}]"#,
    );
    assert_eq!(
        (index, op.as_str(), path.as_str()),
        (1, "test", "/machine/type")
    );
    assert_eq!(
        reason,
        r#"test failed: found "worker", expected "controlplane""#
    );
}

#[test]
fn pointer_escapes_reach_keys_with_slash_and_tilde() {
    let doc = patched_v1alpha1(&[r#"[
        {"op": "add", "path": "/machine/nodeLabels/example.com~1role", "value": "db"},
        {"op": "add", "path": "/machine/nodeLabels/a~0b", "value": "tilde"},
        {"op": "test", "path": "/machine/nodeLabels/example.com~1role", "value": "db"}
    ]"#]);
    assert_eq!(at(&doc, "machine.nodeLabels")["example.com/role"], "db");
    assert_eq!(at(&doc, "machine.nodeLabels")["a~b"], "tilde");
}

#[test]
fn malformed_operations_fail_when_parsed() {
    let cases = [
        (
            r#"[{"op": "add", "path": "machine/x", "value": 1}]"#,
            "add",
            "machine/x",
            "must be empty or start with '/'",
        ),
        (
            r#"[{"op": "add", "path": "/machine/~2", "value": 1}]"#,
            "add",
            "/machine/~2",
            "'~' must be followed by 0 or 1",
        ),
        (
            r#"[{"op": "add", "path": "/machine/x"}]"#,
            "add",
            "/machine/x",
            "missing field `value`",
        ),
        (
            r#"[{"op": "frobnicate", "path": "/x"}]"#,
            "frobnicate",
            "/x",
            "unknown op \"frobnicate\"",
        ),
        (
            r#"[{"op": "move", "path": "/x"}]"#,
            "move",
            "/x",
            "missing string field `from`",
        ),
    ];
    for (patch, expected_op, expected_path, expected_reason) in cases {
        let (index, op, path, reason) = operation_error(Patch::parse(patch).expect_err(patch));
        assert_eq!(
            (index, op.as_str(), path.as_str()),
            (0, expected_op, expected_path),
            "{patch}"
        );
        assert!(reason.contains(expected_reason), "{patch}: {reason}");
    }
}

#[test]
fn json_patches_touch_only_the_v1alpha1_document() {
    let docs =
        patched(CONFIG, &[r#"[{"op": "add", "path": "/mtu", "value": 1}]"#]).expect("applies");
    assert_eq!(docs[0]["mtu"], 1);
    assert_eq!(docs[1]["mtu"], 9000);
}

#[test]
fn json_patch_without_a_v1alpha1_document_fails() {
    let config = "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n";
    let error = patched(
        config,
        &[r#"[{"op": "add", "path": "/auto", "value": "off"}]"#],
    )
    .expect_err("no v1alpha1");
    assert!(
        matches!(&error, ConfigError::JsonPatchWithoutV1Alpha1 { patch } if patch == "inline patch 1"),
        "{error:?}"
    );
}

// ---- strategic merge ----

#[test]
fn mappings_merge_scalars_replace_and_lists_append() {
    let doc = patched_v1alpha1(&[
        "machine:\n  type: worker\n  certSANs: [b.example]\n  nodeLabels: {rack: r1}\n  network: {nameservers: [1.1.1.1]}\n",
    ]);
    assert_eq!(at(&doc, "machine.type"), "worker");
    assert_eq!(
        at(&doc, "machine.certSANs"),
        &yaml("[a.example, b.example]")
    );
    assert_eq!(
        at(&doc, "machine.nodeLabels"),
        &yaml("{zone: one, rack: r1}")
    );
    assert_eq!(at(&doc, "machine.network.hostname"), "node-1");
    assert_eq!(at(&doc, "machine.network.nameservers"), &yaml("[1.1.1.1]"));
    assert_eq!(at(&doc, "cluster.clusterName"), "demo");
}

#[test]
fn null_in_a_patch_changes_nothing() {
    let doc = patched_v1alpha1(&["machine:\n  network:\n  kubelet:\n"]);
    assert_eq!(at(&doc, "machine.network.hostname"), "node-1");
    assert!(at(&doc, "machine").get("kubelet").is_none());
}

#[test]
fn interfaces_merge_by_name_and_by_device_selector() {
    let doc = patched_v1alpha1(&[r#"
machine:
  network:
    interfaces:
      - interface: eth0
        addresses: [10.0.0.3/24]
        mtu: 1500
      - interface: eth1
        dhcp: true
      - deviceSelector: {hardwareAddr: "aa:bb:*"}
        dhcp: false
"#]);
    let interfaces = at(&doc, "machine.network.interfaces");
    assert_eq!(interfaces.as_sequence().map(Vec::len), Some(3));
    assert_eq!(
        interfaces[0]["addresses"],
        yaml("[10.0.0.2/24, 10.0.0.3/24]")
    );
    assert_eq!(interfaces[0]["mtu"], 1500);
    assert_eq!(interfaces[1]["dhcp"], false);
    assert_eq!(interfaces[2], yaml("{interface: eth1, dhcp: true}"));
}

#[test]
fn vlans_merge_by_vlan_id_within_their_interface() {
    let doc = patched_v1alpha1(&[r#"
machine:
  network:
    interfaces:
      - interface: eth0
        vlans:
          - vlanId: 100
            mtu: 1450
            addresses: [10.1.0.3/24]
          - vlanId: 300
"#]);
    let vlans = at(&doc, "machine.network.interfaces.0.vlans");
    assert_eq!(
        vlans,
        &yaml(
            "[{vlanId: 100, mtu: 1450, addresses: [10.1.0.2/24, 10.1.0.3/24]}, {vlanId: 200, mtu: 1500}, {vlanId: 300}]"
        )
    );
}

#[test]
fn other_keyed_lists_merge_by_name() {
    let config = "machine:\n  kernel:\n    modules: [{name: br_netfilter, parameters: [a=1]}]\ncluster:\n  inlineManifests: [{name: cni, contents: old}]\n";
    let patch = "machine:\n  kernel:\n    modules: [{name: br_netfilter, parameters: [b=2]}, {name: zfs}]\ncluster:\n  inlineManifests: [{name: cni, contents: new}]\n";
    let doc = patched(config, &[patch]).expect("applies").remove(0);
    assert_eq!(
        at(&doc, "machine.kernel.modules"),
        &yaml("[{name: br_netfilter, parameters: [a=1, b=2]}, {name: zfs}]")
    );
    assert_eq!(
        at(&doc, "cluster.inlineManifests"),
        &yaml("[{name: cni, contents: new}]")
    );
}

#[test]
fn lists_outside_the_keyed_paths_append_even_with_names() {
    let config = "machine:\n  files: [{path: /a, content: x}]\n";
    let doc = patched(config, &["machine:\n  files: [{path: /a, content: y}]\n"])
        .expect("applies")
        .remove(0);
    assert_eq!(
        at(&doc, "machine.files").as_sequence().map(Vec::len),
        Some(2)
    );
}

#[test]
fn delete_directive_removes_keys_list_elements_and_documents() {
    let docs = patched(
        CONFIG,
        &[r#"
machine:
  nodeLabels:
    $patch: delete
  network:
    interfaces:
      - interface: eth0
        vlans:
          - vlanId: 200
            $patch: delete
      - deviceSelector: {hardwareAddr: "aa:bb:*"}
        $patch: delete
---
apiVersion: v1alpha1
kind: LinkConfig
name: eth0
$patch: delete
"#],
    )
    .expect("applies");
    assert_eq!(docs.len(), 2);
    assert!(at(&docs[0], "machine").get("nodeLabels").is_none());
    let interfaces = at(&docs[0], "machine.network.interfaces");
    assert_eq!(interfaces.as_sequence().map(Vec::len), Some(1));
    assert_eq!(interfaces[0]["vlans"].as_sequence().map(Vec::len), Some(1));
    assert_eq!(interfaces[0]["vlans"][0]["vlanId"], 100);
    assert_eq!(docs[1]["kind"], "HostnameConfig");
}

#[test]
fn delete_directive_matching_nothing_is_an_error() {
    let cases = [
        (
            "machine:\n  kubelet:\n    $patch: delete\n",
            "v1alpha1 document",
            "machine.kubelet",
        ),
        (
            "machine:\n  network:\n    interfaces: [{interface: eth9, $patch: delete}]\n",
            "v1alpha1 document",
            "machine.network.interfaces[2]",
        ),
        (
            "apiVersion: v1alpha1\nkind: LinkConfig\nname: eth9\n$patch: delete\n",
            "LinkConfig document \"eth9\"",
            "the document root",
        ),
    ];
    for (patch, expected_document, expected_path) in cases {
        match patched(CONFIG, &[patch]) {
            Err(ConfigError::UnresolvedPatchDirective {
                document,
                path,
                directive,
            }) => {
                assert_eq!(
                    (document.as_str(), path.as_str(), directive.as_str()),
                    (expected_document, expected_path, "delete")
                );
            }
            other => panic!("{patch}: expected an unresolved directive, got {other:?}"),
        }
    }
}

#[test]
fn documents_match_by_kind_and_name_and_new_ones_are_added_at_the_end() {
    let docs = patched(
        CONFIG,
        &[r#"
apiVersion: v1alpha1
kind: LinkConfig
name: eth0
mtu: 1500
---
apiVersion: v1alpha1
kind: LinkConfig
name: eth1
mtu: 1400
---
apiVersion: v1alpha1
kind: TimeSyncConfig
ntp: {servers: [time.example]}
"#],
    )
    .expect("applies");
    let kinds: Vec<_> = docs
        .iter()
        .map(|doc| (doc["kind"].as_str(), doc["name"].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (None, None),
            (Some("LinkConfig"), Some("eth0")),
            (Some("HostnameConfig"), None),
            (Some("LinkConfig"), Some("eth1")),
            (Some("TimeSyncConfig"), None)
        ]
    );
    assert_eq!(docs[1]["mtu"], 1500);
    assert_eq!(docs[3]["mtu"], 1400);
}

#[test]
fn patches_apply_in_order_and_the_output_is_a_document_stream() {
    let config =
        "machine:\n  type: worker\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n";
    let patches = load_patches(&[
        "machine:\n  type: controlplane\n",
        r#"[{"op": "test", "path": "/machine/type", "value": "controlplane"}]"#,
        "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: n1\n",
    ])
    .expect("valid");
    let text = apply_patches(config, &patches).expect("applies");
    assert_eq!(
        text,
        "machine:\n  type: controlplane\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: n1\n"
    );
}

// ---- loading ----

struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("machineconfig-patch-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("temp dir is writable");
        Self(path)
    }

    fn arg(&self) -> String {
        format!("@{}", self.0.display())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn multi_document_patch_file_loads_from_at_path() {
    let file = TempFile::new(
        "multi.yaml",
        "machine:\n  network:\n    hostname: from-file\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\n",
    );
    let patch = Patch::from_arg(&file.arg()).expect("loads");
    assert_eq!(patch.source(), file.0.display().to_string());
    let docs = documents(&apply_patches(CONFIG, &[patch]).expect("applies"));
    assert_eq!(at(&docs[0], "machine.network.hostname"), "from-file");
    assert_eq!(docs[2]["auto"], "off");
}

#[test]
fn missing_patch_file_names_the_path() {
    let error = Patch::from_arg("@/nonexistent/dir/patch.yaml").expect_err("missing file");
    assert!(
        matches!(&error, ConfigError::PatchFileRead { path, .. } if path.to_str() == Some("/nonexistent/dir/patch.yaml"))
    );
    assert!(
        error
            .to_string()
            .starts_with("reading patch file /nonexistent/dir/patch.yaml: "),
        "{error}"
    );
}

#[test]
fn yaml_errors_name_the_patch_and_line() {
    let error = load_patches(&["machine: {}\n", "machine:\n  type: worker\n bad: [\n"])
        .expect_err("invalid YAML");
    match &error {
        ConfigError::PatchYaml { patch, line, .. } => {
            assert_eq!(patch, "inline patch 2");
            assert_eq!(*line, Some(3));
        }
        other => panic!("expected a YAML error, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("inline patch 2: invalid YAML: "),
        "{error}"
    );

    let file = TempFile::new("broken.yaml", "machine:\n  network: [\n");
    let error = Patch::from_arg(&file.arg()).expect_err("invalid YAML");
    assert!(
        matches!(&error, ConfigError::PatchYaml { patch, .. } if *patch == file.0.display().to_string()),
        "{error:?}"
    );
}

#[test]
fn malformed_patch_documents_are_rejected() {
    let error = Patch::parse("machine: {}\n---\n- op: remove\n  path: /x\n").expect_err("mixed");
    assert!(
        matches!(error, ConfigError::PatchDocument { document: 1, .. }),
        "{error:?}"
    );
    let error = Patch::parse("kind: [1]\n").expect_err("bad kind");
    assert!(
        error.to_string().contains("`kind` must be a string"),
        "{error}"
    );
    let error = Patch::parse("\n# only a comment\n").expect_err("empty");
    assert!(matches!(error, ConfigError::EmptyPatch { .. }), "{error:?}");
}
