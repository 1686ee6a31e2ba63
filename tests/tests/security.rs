//! What the node API refuses, with the gRPC code a client sees, and that nothing changes.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use std::path::PathBuf;

use machineconfig::Config;
use pki::{CertificateAuthority, Validity};
use tests::{Cluster, eventually, failure, success};
use time::{Duration, OffsetDateTime};

/// The cluster's Talos CA (from the generated control plane config).
fn talos_ca(cluster: &Cluster) -> pki::PemCertificateAndKey {
    let config = Config::from_yaml(&cluster.controlplane_config()).unwrap();
    config.v1alpha1.unwrap().machine.unwrap().ca.unwrap()
}

/// A talosconfig holding a client certificate with `roles`, valid in `validity`, signed by `ca`
/// (and trusting `trust`).
fn talosconfig_with(
    cluster: &Cluster,
    name: &str,
    ca: &pki::PemCertificateAndKey,
    trust: &pki::PemCertificateAndKey,
    roles: &[&str],
    validity: Validity,
) -> PathBuf {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    let client = CertificateAuthority::from_pair(ca)
        .unwrap()
        .issue_client_certificate("test", &roles, validity)
        .unwrap();
    let mut config = talosconfig::Talosconfig::default();
    let context = talosconfig::Context::new(
        vec![cluster.nodes[0].address.to_string()],
        trust.crt.as_deref().unwrap(),
        client.crt.as_deref().unwrap(),
        client.key.as_deref().unwrap(),
    );
    config.add(name, context).unwrap();
    config.use_context(name).unwrap();
    let path = cluster.dir.path().join(format!("talosconfig-{name}"));
    config.save(&path, atomicfile::Overwrite::Allow).unwrap();
    path
}

fn talosctl_with(talosconfig: &PathBuf, node: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(tests::binary("talosctl"))
        .arg("--talosconfig")
        .arg(talosconfig)
        .args(["-n", node])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn bad_client_certificates_are_refused() {
    let cluster = Cluster::start(24, 2);
    let n3 = cluster.nodes[1].address.to_string();
    let ca = talos_ca(&cluster);
    let valid = Validity::from_now(Duration::hours(1));

    // No client certificate at all (the maintenance-mode client against a configured node).
    let err = failure(cluster.talosctl(&["-n", &n3, "version", "--insecure"]));
    assert!(err.contains("error") && !err.contains("Tag:"), "{err}");

    let other_ca = pki::generate_ca(pki::CaKind::Talos, valid).unwrap();
    let foreign = talosconfig_with(&cluster, "foreign", &other_ca, &ca, &["os:admin"], valid);
    let err = failure(talosctl_with(&foreign, &n3, &["version"]));
    assert!(
        err.contains("rpc error") || err.contains("connect"),
        "{err}"
    );

    let now = OffsetDateTime::now_utc();
    let past = Validity {
        not_before: now - Duration::days(2),
        not_after: now - Duration::days(1),
    };
    let expired = talosconfig_with(&cluster, "expired", &ca, &ca, &["os:admin"], past);
    let err = failure(talosctl_with(&expired, &n3, &["version"]));
    assert!(
        err.contains("rpc error") || err.contains("connect"),
        "{err}"
    );

    let admin = talosconfig_with(&cluster, "admin", &ca, &ca, &["os:admin"], valid);
    success(talosctl_with(&admin, &n3, &["version"]));
}

#[test]
fn roles_limit_what_callers_may_do_and_nothing_changes() {
    let cluster = Cluster::start(25, 2);
    let n3 = cluster.nodes[1].address.to_string();
    let ca = talos_ca(&cluster);
    let valid = Validity::from_now(Duration::hours(1));
    let reader = talosconfig_with(&cluster, "reader", &ca, &ca, &["os:reader"], valid);
    let before = cluster.nodes[1].persisted_config();

    success(talosctl_with(&reader, &n3, &["services"]));
    let err = failure(talosctl_with(&reader, &n3, &["reboot"]));
    assert!(err.contains("code = PermissionDenied"), "{err}");
    let config_file = cluster.dir.path().join("controlplane.yaml");
    let err = failure(talosctl_with(
        &reader,
        &n3,
        &["apply-config", "-f", config_file.to_str().unwrap()],
    ));
    assert!(err.contains("code = PermissionDenied"), "{err}");

    // A role string is one role: apid and machined must not read `x,os:admin` as admin (an
    // audit finding: machined split on commas and answered a dry run with the config's secrets).
    let smuggler = talosconfig_with(
        &cluster,
        "smuggler",
        &ca,
        &ca,
        &["os:reader", "x,os:admin"],
        valid,
    );
    success(talosctl_with(&smuggler, &n3, &["version"]));
    let err = failure(talosctl_with(
        &smuggler,
        &n3,
        &[
            "apply-config",
            "--dry-run",
            "-f",
            config_file.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("code = PermissionDenied"), "{err}");

    // An operator may reboot but not reset (talosctl has no reset yet: call the API).
    let operator = talosconfig_with(&cluster, "operator", &ca, &ca, &["os:operator"], valid);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        let config = talosconfig::Talosconfig::load(&operator).unwrap();
        let (name, context) = config.context(None).unwrap();
        let client = apiclient::Client::from_context(name, context, &[])
            .await
            .unwrap();
        let target = apiclient::NodeTarget::for_nodes(std::slice::from_ref(&n3));
        let request = target
            .request(proto::machine::ResetRequest::default())
            .unwrap();
        client.machine().reset(request).await.unwrap_err()
    });
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    assert_eq!(cluster.nodes[1].persisted_config(), before);
    success(cluster.talosctl(&["-n", &n3, "version"]));
}

#[test]
fn file_access_stays_inside_the_allowed_roots() {
    let cluster = Cluster::start(26, 2);
    let n3 = cluster.nodes[1].address.to_string();
    for path in [
        "/etc/passwd",
        "/var/../etc/passwd",
        "/system/../../etc/shadow",
    ] {
        let err = failure(cluster.talosctl(&["-n", &n3, "read", path]));
        assert!(
            err.contains("code = PermissionDenied"),
            "read {path}: {err}"
        );
        let err = failure(cluster.talosctl(&["-n", &n3, "list", path]));
        assert!(
            err.contains("code = PermissionDenied"),
            "list {path}: {err}"
        );
        let out = cluster.dir.path().join("copied");
        let err = failure(cluster.talosctl(&["-n", &n3, "copy", path, out.to_str().unwrap()]));
        assert!(
            err.contains("code = PermissionDenied"),
            "copy {path}: {err}"
        );
        assert!(!out.join("passwd").exists());
    }
    // Inside the roots everything works.
    let listing = success(cluster.talosctl(&["-n", &n3, "list", "/var"]));
    assert!(listing.contains("log"), "{listing}");
}

#[test]
fn apply_config_validates_persists_and_keeps_the_old_config_on_errors() {
    let cluster = Cluster::start(27, 2);
    let n3 = cluster.nodes[1].address.to_string();
    let before = cluster.nodes[1].persisted_config();
    let file = cluster.dir.path().join("controlplane.yaml");
    let file = file.to_str().unwrap();

    let invalid = "cluster:\n  network:\n    podSubnets: [10.244.0.0/99]";
    let err = failure(cluster.talosctl(&["-n", &n3, "apply-config", "-f", file, "-p", invalid]));
    assert!(err.contains("code = InvalidArgument"), "{err}");
    // Strategic merge appends to lists: the bad subnet is the second one.
    assert!(err.contains("cluster.network.podSubnets[1]"), "{err}");
    assert_eq!(cluster.nodes[1].persisted_config(), before);

    let patch = "machine:\n  certSANs: [api.example.org]";
    let dry = success(cluster.talosctl(&[
        "-n",
        &n3,
        "apply-config",
        "-f",
        file,
        "-p",
        patch,
        "--dry-run",
    ]));
    assert!(
        dry.contains("+  - api.example.org") || dry.contains("+- api.example.org"),
        "{dry}"
    );
    assert_eq!(cluster.nodes[1].persisted_config(), before);

    let applied = success(cluster.talosctl(&["-n", &n3, "apply-config", "-f", file, "-p", patch]));
    assert!(
        applied.contains("Applied configuration without a reboot"),
        "{applied}"
    );
    assert!(
        cluster.nodes[1]
            .persisted_config()
            .contains("api.example.org")
    );
    // apid reloaded its certificates and keeps answering.
    success(cluster.talosctl(&["-n", &n3, "version"]));
    // The new name is in the API's CertSANs and in apid's new serving certificate.
    let sans = success(cluster.talosctl(&["-n", &n3, "get", "certsans", "api", "-o", "yaml"]));
    assert!(
        sans.contains("- api.example.org") && sans.contains("secrets.APICertSANsController"),
        "{sans}"
    );
    eventually("apid's certificate to name api.example.org", || {
        cluster.nodes[1].serving_certificate().is_some_and(|der| {
            der.windows(b"api.example.org".len())
                .any(|w| w == b"api.example.org")
        })
    });

    // patch and edit read the active config through the resource API and apply it back.
    let patched = success(cluster.talosctl(&[
        "-n",
        &n3,
        "patch",
        "machineconfig",
        "-p",
        "machine:\n  env:\n    STAGE: patched",
    ]));
    assert!(
        patched.contains("Applied configuration without a reboot"),
        "{patched}"
    );
    assert!(
        cluster.nodes[1]
            .persisted_config()
            .contains("STAGE: patched")
    );
    let edited = std::process::Command::new(tests::binary("talosctl"))
        .arg("--talosconfig")
        .arg(cluster.talosconfig())
        .args([
            "-e",
            &cluster.nodes[0].address.to_string(),
            "-n",
            &n3,
            "edit",
            "machineconfig",
        ])
        .env("EDITOR", "sed -i s/patched$/edited/")
        .output()
        .unwrap();
    success(edited);
    assert!(
        cluster.nodes[1]
            .persisted_config()
            .contains("STAGE: edited")
    );

    // The config holds secrets: a reader may not read it.
    let ca = talos_ca(&cluster);
    let valid = Validity::from_now(Duration::hours(1));
    let reader = talosconfig_with(&cluster, "reader", &ca, &ca, &["os:reader"], valid);
    let err = failure(talosctl_with(
        &reader,
        &n3,
        &["patch", "mc", "-p", "machine: {}"],
    ));
    assert!(err.contains("PermissionDenied"), "{err}");
}
