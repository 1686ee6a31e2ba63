//! Runtime document kinds: full documents round-trip, unknown fields are refused, invalid
//! values are reported with the kind and field, named kinds refuse duplicates.

mod documents_support;

use documents_support::*;
use machineconfig::documents::Document;

const GROUP: &str = "runtime";

/// (fixture, kind, named).
const KINDS: &[(&str, &str, bool)] = &[
    ("etc_file.yaml", "EtcFileConfig", true),
    ("event_sink.yaml", "EventSinkConfig", false),
    ("extension_service.yaml", "ExtensionServiceConfig", true),
    ("kernel_module.yaml", "KernelModuleConfig", true),
    ("kmsg_log.yaml", "KmsgLogConfig", true),
    ("oom.yaml", "OOMConfig", false),
    ("security_profile.yaml", "SecurityProfileConfig", false),
    ("sysfs.yaml", "SysfsConfig", false),
    ("udev_rules.yaml", "UdevRulesConfig", false),
    ("unattended_install.yaml", "UnattendedInstallConfig", false),
    ("watchdog_timer.yaml", "WatchdogTimerConfig", false),
];

#[test]
fn full_documents_round_trip() {
    for (file, kind, _) in KINDS {
        assert_valid_round_trip(&fixture(GROUP, file), kind);
    }
}

#[test]
fn decoded_values() {
    let config = assert_valid_round_trip(&fixture(GROUP, "etc_file.yaml"), "EtcFileConfig");
    let Document::EtcFile(etc) = &config.documents[0] else {
        panic!("not an EtcFileConfig");
    };
    assert_eq!(etc.mode.map(|m| m.0), Some(0o600));
    assert!(etc.contents.starts_with("InitiatorName="));

    let config = assert_valid_round_trip(
        &fixture(GROUP, "watchdog_timer.yaml"),
        "WatchdogTimerConfig",
    );
    let Document::WatchdogTimer(watchdog) = &config.documents[0] else {
        panic!("not a WatchdogTimerConfig");
    };
    assert_eq!(
        watchdog.timeout.as_ref().map(|t| t.as_duration().as_secs()),
        Some(90)
    );
}

#[test]
fn unknown_fields_are_rejected() {
    for (file, _, _) in KINDS {
        assert_unknown_top_level_field(&fixture(GROUP, file));
    }
    let (line, path, message) = decode_error(
        "apiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: x\nconfigFiles:\n  - content: a\n    mountpath: /x\n",
    );
    assert_eq!(
        (line, path.as_str()),
        (Some(6), "configFiles[0].mountpath"),
        "{message}"
    );
    let (line, path, _) = decode_error(
        "apiVersion: v1alpha1\nkind: UnattendedInstallConfig\nprovisioning:\n  diskSelector:\n    matches: 'true'\n",
    );
    assert_eq!(
        (line, path.as_str()),
        (Some(5), "provisioning.diskSelector.matches")
    );
}

#[test]
fn wrong_types_are_rejected() {
    let (line, path, _) = decode_error(
        "apiVersion: v1alpha1\nkind: SecurityProfileConfig\nworkloadIsolation: sometimes\n",
    );
    assert_eq!((line, path.as_str()), (Some(3), "workloadIsolation"));
    let (_, path, message) = decode_error(
        "apiVersion: v1alpha1\nkind: WatchdogTimerConfig\ndevice: /dev/watchdog\ntimeout: -5s\n",
    );
    assert_eq!(path, "timeout");
    assert!(message.contains("negative"), "{message}");
    let (_, path, _) = decode_error(
        "apiVersion: v1alpha1\nkind: EtcFileConfig\nname: a.conf\nmode: 0o99\ncontents: x\n",
    );
    assert_eq!(path, "mode");
}

#[test]
fn invalid_values_are_reported() {
    let doc = |kind: &str, body: &str| format!("apiVersion: v1alpha1\nkind: {kind}\n{body}");
    assert_invalid(
        &doc("EtcFileConfig", "name: hosts\ncontents: x\n"),
        "EtcFileConfig \"hosts\".name",
        "managed by Talos",
    );
    assert_invalid(
        &doc("EtcFileConfig", "name: ../shadow\ncontents: x\n"),
        "EtcFileConfig \"../shadow\".name",
        "inside /etc",
    );
    assert_invalid(
        &doc("EtcFileConfig", "name: kubernetes/x.conf\ncontents: x\n"),
        "EtcFileConfig \"kubernetes/x.conf\".name",
        "managed by Talos",
    );
    assert_invalid(
        &doc("EtcFileConfig", "name: a/../cri/x.part\ncontents: x\n"),
        "EtcFileConfig \"a/../cri/x.part\".name",
        "/etc/cri/x.part is managed by Talos",
    );
    assert_invalid(
        &doc("EtcFileConfig", "contents: x\n"),
        "EtcFileConfig.name",
        "required",
    );
    assert_invalid(
        &doc(
            "EnvironmentConfig",
            "variables:\n  http_proxy: x\n  HTTP-PROXY: y\n",
        ),
        "EnvironmentConfig.variables.HTTP-PROXY",
        "invalid environment variable name \"HTTP-PROXY\"",
    );
    assert_invalid(
        &doc("EnvironmentConfig", "variables:\n  _9: \"a\\0b\"\n"),
        "EnvironmentConfig.variables._9",
        "NUL byte",
    );
    assert_invalid(
        &doc("EventSinkConfig", "endpoint: 10.0.0.1\n"),
        "EventSinkConfig.endpoint",
        "host:port",
    );
    assert_invalid(
        &doc("ExtensionServiceConfig", "name: nut\n"),
        "ExtensionServiceConfig \"nut\"",
        "configFiles or environment",
    );
    assert_invalid(
        &doc(
            "ExtensionServiceConfig",
            "name: nut\nconfigFiles:\n  - content: x\n",
        ),
        "ExtensionServiceConfig \"nut\".configFiles[0].mountPath",
        "required",
    );
    assert_invalid(
        &doc("KernelModuleConfig", "parameters: [a=1]\n"),
        "KernelModuleConfig.name",
        "required",
    );
    assert_invalid(
        &doc("KmsgLogConfig", "name: a\nurl: http://10.0.0.1:80\n"),
        "KmsgLogConfig \"a\".url",
        "tcp or udp",
    );
    assert_invalid(
        &doc("KmsgLogConfig", "name: a\nurl: tcp://10.0.0.1\n"),
        "KmsgLogConfig \"a\".url",
        "port",
    );
    assert_invalid(
        &doc("KmsgLogConfig", "name: a\nurl: tcp://10.0.0.1:5/logs\n"),
        "KmsgLogConfig \"a\".url",
        "path",
    );
    assert_invalid(
        &doc("KmsgLogConfig", "name: a\n"),
        "KmsgLogConfig \"a\".url",
        "required",
    );
    assert_invalid(
        &doc("OOMConfig", "triggerExpression: '(memory_full_avg10 > 1'\n"),
        "OOMConfig.triggerExpression",
        "never closed",
    );
    assert_invalid(
        &doc("OOMConfig", "cgroupRankingExpression: ''\n"),
        "OOMConfig.cgroupRankingExpression",
        "empty",
    );
    assert_invalid(
        &doc("SysfsConfig", "params:\n  '': x\n"),
        "SysfsConfig.params",
        "empty",
    );
    assert_invalid(
        &doc("UdevRulesConfig", "rules:\n  - ''\n"),
        "UdevRulesConfig.rules[0]",
        "empty",
    );
    assert_invalid(
        &doc("UnattendedInstallConfig", "installer:\n  image: x\n"),
        "UnattendedInstallConfig.provisioning.diskSelector.match",
        "required",
    );
    assert_invalid(
        &doc(
            "UnattendedInstallConfig",
            "provisioning:\n  diskSelector:\n    match: 'disk.model == \"x'\n",
        ),
        "UnattendedInstallConfig.provisioning.diskSelector.match",
        "unterminated",
    );
    assert_invalid(
        &doc("WatchdogTimerConfig", "timeout: 1m\n"),
        "WatchdogTimerConfig.device",
        "required",
    );
    assert_invalid(
        &doc(
            "WatchdogTimerConfig",
            "device: /dev/watchdog0\ntimeout: 5s\n",
        ),
        "WatchdogTimerConfig.timeout",
        "minimum",
    );
}

#[test]
fn unattended_install_without_an_image_is_a_warning() {
    assert_warning(
        "apiVersion: v1alpha1\nkind: UnattendedInstallConfig\nprovisioning:\n  diskSelector:\n    match: 'true'\n",
        "UnattendedInstallConfig.installer.image",
    );
}

#[test]
fn unattended_install_conflicts_with_machine_install() {
    let input = with_v1alpha1(
        "  install:\n    disk: /dev/sda\n",
        &fixture(GROUP, "unattended_install.yaml"),
    );
    assert_invalid(&input, "UnattendedInstallConfig", "machine.install");
    let fine = with_v1alpha1("", &fixture(GROUP, "unattended_install.yaml"));
    let errors = validation_errors(&fine);
    assert!(
        errors
            .iter()
            .all(|e| !e.path.starts_with("UnattendedInstallConfig")),
        "{errors:?}"
    );
}

#[test]
fn named_kinds_refuse_duplicates() {
    for (file, kind, named) in KINDS {
        if *named {
            assert_duplicate_refused(&fixture(GROUP, file), kind);
        }
    }
    // Different names coexist.
    let two = "apiVersion: v1alpha1\nkind: KernelModuleConfig\nname: a\n---\napiVersion: v1alpha1\nkind: KernelModuleConfig\nname: b\n";
    assert_eq!(
        machineconfig::Config::from_yaml(two)
            .expect("decodes")
            .documents
            .len(),
        2
    );
}
