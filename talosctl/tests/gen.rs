//! `talosctl gen`, `validate`, `machineconfig patch`, `config info` and `completion`, run as a
//! user runs them.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::Path;
use std::process::{Command, Output};

fn talosctl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_talosctl"))
        .args(args)
        .current_dir(dir)
        .env_remove("TALOSCONFIG")
        .output()
        .expect("talosctl runs")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "talosctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn failed(output: Output) -> String {
    assert!(
        !output.status.success(),
        "talosctl unexpectedly succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).unwrap()
}

fn gen_config(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "gen",
        "config",
        "demo",
        "https://10.5.0.2:6443",
        "-o",
        "out",
    ];
    args.extend_from_slice(extra);
    talosctl(dir, &args)
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn generated_configs_validate_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(gen_config(dir.path(), &[]));
    for file in ["controlplane.yaml", "worker.yaml", "talosconfig"] {
        assert!(out.contains(&format!("Created out/{file}")), "{out}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("out").join(file))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    for mode in ["metal", "cloud", "container"] {
        for file in ["out/controlplane.yaml", "out/worker.yaml"] {
            let stdout = ok(talosctl(
                dir.path(),
                &["validate", "--config", file, "--mode", mode, "--strict"],
            ));
            assert_eq!(stdout.trim(), format!("{file} is valid for {mode} mode"));
        }
    }
    let controlplane = read(dir.path().join("out/controlplane.yaml"));
    let worker = read(dir.path().join("out/worker.yaml"));
    assert!(controlplane.contains("type: controlplane") && worker.contains("type: worker"));
    assert!(controlplane.contains("endpoint: https://10.5.0.2:6443"));
    assert!(controlplane.contains("kind: HostnameConfig"));
    // Workers never get CA keys.
    let config = machineconfig::Config::from_yaml(&worker).unwrap();
    let v1 = config.v1alpha1.unwrap();
    assert!(
        v1.machine
            .as_ref()
            .unwrap()
            .ca
            .as_ref()
            .unwrap()
            .key
            .is_none()
    );
    assert!(
        v1.cluster
            .as_ref()
            .unwrap()
            .ca
            .as_ref()
            .unwrap()
            .key
            .is_none()
    );
}

#[test]
fn existing_files_need_force_and_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    ok(gen_config(dir.path(), &[]));
    let before = read(dir.path().join("out/controlplane.yaml"));
    let err = failed(gen_config(dir.path(), &[]));
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(read(dir.path().join("out/controlplane.yaml")), before);
    ok(gen_config(dir.path(), &["--force"]));
    assert_ne!(read(dir.path().join("out/controlplane.yaml")), before);
}

#[test]
fn with_secrets_reuses_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    ok(talosctl(
        dir.path(),
        &["gen", "secrets", "-o", "secrets.yaml"],
    ));
    let err = failed(talosctl(
        dir.path(),
        &["gen", "secrets", "-o", "secrets.yaml"],
    ));
    assert!(err.contains("already exists"), "{err}");
    ok(gen_config(dir.path(), &["--with-secrets", "secrets.yaml"]));
    let bundle = pki::SecretsBundle::from_yaml(&read(dir.path().join("secrets.yaml"))).unwrap();
    let config = machineconfig::Config::from_yaml(&read(dir.path().join("out/controlplane.yaml")))
        .unwrap()
        .v1alpha1
        .unwrap();
    let cluster = config.cluster.unwrap();
    assert_eq!(cluster.id.as_deref(), Some(bundle.cluster.id.as_str()));
    assert_eq!(cluster.ca.unwrap(), bundle.certs.k8s);
    assert_eq!(config.machine.unwrap().ca.unwrap(), bundle.certs.os);
}

#[test]
fn bad_inputs_are_named_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["gen", "config", "demo", "10.5.0.2:6443", "-o", "out"],
            "endpoint",
        ),
        (
            &["gen", "config", "demo", "http://10.5.0.2:6443", "-o", "out"],
            "https",
        ),
        (
            &[
                "gen",
                "config",
                "demo",
                "https://x:6443",
                "-o",
                "out",
                "--kubernetes-version",
                "latest",
            ],
            "kubernetes-version",
        ),
        (
            &[
                "gen",
                "config",
                "demo",
                "https://x:6443",
                "-o",
                "out",
                "--config-patch",
                "machine: [",
            ],
            "inline patch 1",
        ),
        (
            &[
                "gen",
                "config",
                "demo",
                "https://x:6443",
                "-o",
                "out",
                "--config-patch",
                "@missing.yaml",
            ],
            "missing.yaml",
        ),
        (
            &[
                "gen",
                "config",
                "demo",
                "https://x:6443",
                "-o",
                "out",
                "--config-patch",
                "machine:\n  colour: blue",
            ],
            "colour",
        ),
        (
            &[
                "gen",
                "config",
                "demo",
                "https://x:6443",
                "-o",
                "out",
                "--config-patch-worker",
                "cluster:\n  network:\n    podSubnets: [10.0.0.0/33]",
            ],
            "podSubnets",
        ),
    ];
    for (args, expected) in cases {
        let err = failed(talosctl(dir.path(), args));
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!dir.path().join("out").exists(), "{args:?} wrote files");
    }
}

#[test]
fn patches_reach_the_right_machine_types() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("worker-patch.yaml"),
        "machine:\n  nodeLabels:\n    role: worker-1\n",
    )
    .unwrap();
    ok(gen_config(
        dir.path(),
        &[
            "--config-patch",
            r#"[{"op": "add", "path": "/machine/certSANs/-", "value": "api.example.org"}]"#,
            "--config-patch-worker",
            "@worker-patch.yaml",
        ],
    ));
    let controlplane = read(dir.path().join("out/controlplane.yaml"));
    let worker = read(dir.path().join("out/worker.yaml"));
    assert!(controlplane.contains("api.example.org") && worker.contains("api.example.org"));
    assert!(worker.contains("role: worker-1") && !controlplane.contains("worker-1"));
}

#[test]
fn validate_reports_paths_lines_and_every_error() {
    let dir = tempfile::tempdir().unwrap();
    ok(gen_config(dir.path(), &[]));
    let good = read(dir.path().join("out/controlplane.yaml"));

    let unknown = good.replacen("  certSANs:", "  colour: blue\n  certSANs:", 1);
    let line = unknown.lines().position(|l| l.contains("colour")).unwrap() + 1;
    std::fs::write(dir.path().join("unknown.yaml"), unknown).unwrap();
    let err = failed(talosctl(
        dir.path(),
        &["validate", "-c", "unknown.yaml", "-m", "metal"],
    ));
    assert!(err.contains("machine") && err.contains("colour"), "{err}");
    assert!(err.contains(&format!("line {line}")), "{err}");

    let broken = good
        .replace("10.244.0.0/16", "10.244.0.0/99")
        .replace("https://10.5.0.2:6443", "not a url");
    std::fs::write(dir.path().join("broken.yaml"), broken).unwrap();
    let err = failed(talosctl(
        dir.path(),
        &["validate", "-c", "broken.yaml", "-m", "cloud"],
    ));
    assert!(err.contains("2 errors"), "{err}");
    assert!(err.contains("cluster.network.podSubnets[0]"), "{err}");
    assert!(err.contains("cluster.controlPlane.endpoint"), "{err}");

    let err = failed(talosctl(
        dir.path(),
        &["validate", "-c", "out/worker.yaml", "-m", "moon"],
    ));
    assert!(err.contains("moon"), "{err}");
    let err = failed(talosctl(
        dir.path(),
        &["validate", "-c", "nope.yaml", "-m", "metal"],
    ));
    assert!(err.contains("nope.yaml"), "{err}");
}

#[test]
fn machineconfig_patch_prints_or_writes_the_result() {
    let dir = tempfile::tempdir().unwrap();
    ok(gen_config(dir.path(), &[]));
    let stdout = ok(talosctl(
        dir.path(),
        &[
            "machineconfig",
            "patch",
            "out/worker.yaml",
            "-p",
            "machine:\n  env:\n    A: b",
        ],
    ));
    let patched = machineconfig::Config::from_yaml(&stdout).unwrap();
    let machine = patched.v1alpha1.unwrap().machine.unwrap();
    assert_eq!(machine.env.get("A").map(String::as_str), Some("b"));

    ok(talosctl(
        dir.path(),
        &[
            "mc",
            "patch",
            "out/worker.yaml",
            "-p",
            "machine:\n  env:\n    A: c",
            "-o",
            "p.yaml",
        ],
    ));
    assert!(read(dir.path().join("p.yaml")).contains("A: c"));
    let err = failed(talosctl(
        dir.path(),
        &[
            "mc",
            "patch",
            "out/worker.yaml",
            "-p",
            r#"[{"op":"remove","path":"/nope"}]"#,
        ],
    ));
    assert!(err.contains("/nope"), "{err}");
}

#[test]
fn raw_pki_commands_chain_into_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(talosctl(d, &["gen", "ca", "--organization", "talos"]));
    ok(talosctl(d, &["gen", "key", "--name", "admin"]));
    ok(talosctl(
        d,
        &[
            "gen",
            "csr",
            "--key",
            "admin.key",
            "--ip",
            "10.5.0.2",
            "--roles",
            "os:reader",
        ],
    ));
    ok(talosctl(
        d,
        &[
            "gen",
            "crt",
            "--ca",
            "talos",
            "--csr",
            "admin.csr",
            "--name",
            "admin",
            "--hours",
            "1",
        ],
    ));
    let crt = read(d.join("admin.crt"));
    pki::verify_signed_by(&crt, &read(d.join("talos.crt"))).unwrap();
    pki::verify_pair(
        &crt,
        &read(d.join("admin.key")),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let info = pki::CertificateInfo::from_pem(&crt).unwrap();
    assert_eq!(info.organizations, ["os:reader"]);
    assert_eq!(
        info.extended_key_usages,
        [pki::ExtendedKeyUsage::ClientAuth]
    );
    assert_eq!(
        read(d.join("talos.sha256")),
        pki::CertificateInfo::from_pem(&read(d.join("talos.crt")))
            .unwrap()
            .sha256_fingerprint
    );
    let err = failed(talosctl(d, &["gen", "key", "--name", "admin"]));
    assert!(err.contains("admin.key already exists"), "{err}");
    let err = failed(talosctl(
        d,
        &[
            "gen",
            "crt",
            "--ca",
            "nope",
            "--csr",
            "admin.csr",
            "--name",
            "x",
        ],
    ));
    assert!(err.contains("nope.crt"), "{err}");
    let err = failed(talosctl(
        d,
        &[
            "gen",
            "crt",
            "--ca",
            "talos",
            "--csr",
            "admin.key",
            "--name",
            "x",
        ],
    ));
    assert!(err.contains("admin.key"), "{err}");
}

#[test]
fn generated_talosconfig_holds_an_admin_certificate_for_a_year() {
    let dir = tempfile::tempdir().unwrap();
    ok(gen_config(dir.path(), &[]));
    let info = ok(talosctl(
        dir.path(),
        &["--talosconfig", "out/talosconfig", "config", "info"],
    ));
    assert!(info.contains("Current context:     demo"), "{info}");
    assert!(info.contains("Roles:               os:admin"), "{info}");
    assert!(info.contains("1 year from now"), "{info}");
    let json = ok(talosctl(
        dir.path(),
        &[
            "--talosconfig",
            "out/talosconfig",
            "config",
            "info",
            "-o",
            "json",
        ],
    ));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let not_after = time::OffsetDateTime::parse(
        value["certNotAfter"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (not_after - time::OffsetDateTime::now_utc()).whole_days();
    assert!((364..=365).contains(&days), "{days}");
}

/// What bash's completion offers for `line` (words separated by single spaces; a trailing
/// space completes a new word), through the script `talosctl completion bash` prints.
fn bash_completes(dir: &Path, line: &str) -> Vec<String> {
    let script = ok(talosctl(dir, &["completion", "bash"]));
    std::fs::write(dir.join("completion.bash"), script).unwrap();
    let words: Vec<&str> = line.split(' ').collect();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source completion.bash\n\
         COMP_WORDS=({words})\nCOMP_CWORD={cword}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         COMP_TYPE=9\n\
         _clap_complete_talosctl talosctl '{current}' '{previous}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" "),
        cword = words.len() - 1,
        current = words[words.len() - 1],
        previous = words[words.len().saturating_sub(2)],
    );
    let binary_dir = Path::new(env!("CARGO_BIN_EXE_talosctl")).parent().unwrap();
    let output = Command::new("bash")
        .arg("-c")
        .arg(program)
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                binary_dir.display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .env("TALOSCONFIG", dir.join("talosconfig"))
        .output()
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn completion_asks_talosctl_for_commands_contexts_nodes_and_services() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(talosctl(dir.path(), &["completion", shell]));
        assert!(
            script.contains("talosctl") && script.contains("COMPLETE"),
            "{shell}: {script}"
        );
    }
    std::fs::write(
        dir.path().join("talosconfig"),
        "context: beta\ncontexts:\n  alpha:\n    endpoints: [127.89.0.9]\n  beta:\n    endpoints: [127.89.0.2]\n    nodes: [127.89.0.3, 127.89.0.4]\n",
    )
    .unwrap();
    let dir = dir.path();
    assert_eq!(bash_completes(dir, "talosctl machinec"), ["machineconfig"]);
    assert_eq!(
        bash_completes(dir, "talosctl --context "),
        ["alpha", "beta"]
    );
    assert_eq!(
        bash_completes(dir, "talosctl version -n 127.89.0."),
        ["127.89.0.2", "127.89.0.3", "127.89.0.4"]
    );
    assert_eq!(bash_completes(dir, "talosctl logs ap"), ["apid"]);
    assert_eq!(bash_completes(dir, "talosctl service tr"), ["trustd"]);
    // No node answers on 127.89.0.2 (nothing listens): no resource types, no error shown.
    assert!(bash_completes(dir, "talosctl get mem").is_empty());
}

#[test]
fn client_version() {
    let dir = tempfile::tempdir().unwrap();
    let version = ok(talosctl(dir.path(), &["version", "--client"]));
    assert!(
        version.starts_with("Client:\n\tTag:         v"),
        "{version}"
    );
}

#[test]
fn gen_keypair_writes_a_self_signed_pair_named_after_the_organization() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(talosctl(
        d,
        &[
            "gen",
            "keypair",
            "--organization",
            "edge",
            "--ip",
            "10.5.0.9",
        ],
    ));
    let crt = read(d.join("edge.crt"));
    let key = pki::PrivateKey::from_pem(&read(d.join("edge.key"))).unwrap();
    let info = pki::CertificateInfo::from_pem(&crt).unwrap();
    assert_eq!(info.organizations, ["edge"]);
    assert!(info.is_ca);
    assert!(info.matches_key(&key));
    assert_eq!(key.algorithm(), pki::KeyAlgorithm::Ed25519);
    assert_eq!(
        info.ip_addresses,
        ["10.5.0.9".parse::<std::net::IpAddr>().unwrap()]
    );
    pki::verify_signed_by(&crt, &crt).unwrap();
    let days = (info.not_after - info.not_before).whole_days();
    assert!((364..=366).contains(&days), "{days}");

    // Existing files are left alone, as upstream; no organization is refused.
    let error = failed(talosctl(d, &["gen", "keypair", "--organization", "edge"]));
    assert!(error.contains("edge.crt"), "{error}");
    assert_eq!(read(d.join("edge.crt")), crt);
    let error = failed(talosctl(d, &["gen", "keypair"]));
    assert!(error.contains("--organization"), "{error}");
}

/// The example lines of an annotated config uncommented: each `# # title` starts an example,
/// a blank line ends it.
fn with_examples_uncommented(text: &str) -> String {
    let mut in_example = false;
    let mut out = String::new();
    for line in text.lines() {
        let content = line.trim_start();
        let indent = &line[..line.len() - content.len()];
        if content.starts_with("# # ") {
            in_example = true;
        } else if content.is_empty() {
            in_example = false;
            out.push('\n');
        } else if let Some(example) = content.strip_prefix("# ").filter(|_| in_example) {
            out.push_str(&format!("{indent}{example}\n"));
        } else {
            out.push_str(&format!("{line}\n"));
        }
    }
    out
}

fn documents(text: &str) -> Vec<serde_norway::Value> {
    use serde::Deserialize as _;
    serde_norway::Deserializer::from_str(text)
        .map(|document| serde_norway::Value::deserialize(document).unwrap())
        .collect()
}

#[test]
fn generated_configs_carry_docs_and_examples_that_change_nothing_until_uncommented() {
    let dir = tempfile::tempdir().unwrap();
    ok(talosctl(
        dir.path(),
        &["gen", "secrets", "-o", "secrets.yaml"],
    ));
    ok(gen_config(dir.path(), &["--with-secrets", "secrets.yaml"]));
    let plain_args = [
        "--with-secrets",
        "secrets.yaml",
        "--with-docs=false",
        "--with-examples=false",
        "-o",
        "plain",
    ];
    ok(talosctl(
        dir.path(),
        &[
            &["gen", "config", "demo", "https://10.5.0.2:6443"],
            &plain_args[..],
        ]
        .concat(),
    ));
    for file in ["controlplane.yaml", "worker.yaml"] {
        let annotated = read(dir.path().join("out").join(file));
        let plain = read(dir.path().join("plain").join(file));
        assert!(!plain.contains('#'), "{plain}");
        assert!(
            annotated.contains("  type: ") && annotated.contains(" # The machine's role"),
            "{annotated}"
        );
        assert!(annotated.contains("  # # NTP servers"), "{annotated}");
        // Comments only: the same documents.
        assert_eq!(documents(&annotated), documents(&plain), "{file}");

        // Every example, uncommented, is a field the config accepts.
        let uncommented = with_examples_uncommented(&annotated);
        let values = documents(&uncommented);
        assert_eq!(
            values[0]["machine"]["time"]["servers"][0].as_str(),
            Some("time.cloudflare.com"),
            "{uncommented}"
        );
        assert_eq!(
            values[0]["cluster"]["allowSchedulingOnControlPlanes"].as_bool(),
            Some(true),
            "{uncommented}"
        );
        std::fs::write(dir.path().join("examples.yaml"), &uncommented).unwrap();
        ok(talosctl(
            dir.path(),
            &["validate", "-c", "examples.yaml", "-m", "metal"],
        ));
    }
    // Only the documents are annotated: the talosconfig is not.
    assert!(!read(dir.path().join("out/talosconfig")).contains('#'));
}

/// DER tag-length-value.
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match body.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(body);
    out
}

#[test]
fn secureboot_keys_sign_a_pe_image_and_the_database_verifies_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(talosctl(
        d,
        &["gen", "secureboot", "uki", "--common-name", "Test UKI"],
    ));
    ok(talosctl(d, &["gen", "secureboot", "pcr"]));
    ok(talosctl(d, &["gen", "secureboot", "database"]));
    let out = d.join("_out");
    for file in [
        "uki-signing-cert.pem",
        "uki-signing-cert.der",
        "uki-signing-key.pem",
        "pcr-signing-key.pem",
        "db.auth",
        "KEK.auth",
        "PK.auth",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    let cert = pki::CertificateInfo::from_pem(&read(out.join("uki-signing-cert.pem"))).unwrap();
    assert_eq!(cert.common_name.as_deref(), Some("Test UKI"));
    assert!(cert.is_ca);

    // sbsign signs a PE image with the pair, sbverify checks it against the certificate.
    let signed = d.join("signed.efi");
    let status = Command::new("sbsign")
        .arg("--key")
        .arg(out.join("uki-signing-key.pem"))
        .arg("--cert")
        .arg(out.join("uki-signing-cert.pem"))
        .arg("--output")
        .arg(&signed)
        .arg("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
        .output()
        .expect("sbsign (sbsigntool, installed by scripts/setup.sh)");
    assert!(status.status.success(), "{status:?}");
    let verified = Command::new("sbverify")
        .arg("--cert")
        .arg(out.join("uki-signing-cert.pem"))
        .arg(&signed)
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");

    // db.auth: EFI_TIME, WIN_CERTIFICATE_UEFI_GUID with the PKCS#7, then the signature list;
    // openssl verifies the PKCS#7 over name, vendor GUID, attributes, time and list.
    let auth = std::fs::read(out.join("db.auth")).unwrap();
    let length = u32::from_le_bytes(auth[16..20].try_into().unwrap()) as usize;
    let (pkcs7, list) = (&auth[40..16 + length], &auth[16 + length..]);
    let signed_data_oid = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
    ];
    let content_info = der(0x30, &[&signed_data_oid[..], &der(0xa0, pkcs7)].concat());
    std::fs::write(d.join("db.p7"), content_info).unwrap();
    let mut content: Vec<u8> = "db".encode_utf16().flat_map(u16::to_le_bytes).collect();
    content.extend([
        0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65,
        0x6f,
    ]);
    content.extend(0x27u32.to_le_bytes());
    content.extend(&auth[..16]);
    content.extend(list);
    std::fs::write(d.join("db.content"), &content).unwrap();
    let openssl = Command::new("openssl")
        .args([
            "smime", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
        ])
        .arg("-in")
        .arg(d.join("db.p7"))
        .arg("-content")
        .arg(d.join("db.content"))
        .arg("-CAfile")
        .arg(out.join("uki-signing-cert.pem"))
        .output()
        .unwrap();
    assert!(openssl.status.success(), "{openssl:?}");
    let der_cert = std::fs::read(out.join("uki-signing-cert.der")).unwrap();
    assert!(list.ends_with(&der_cert));

    let err = failed(talosctl(d, &["gen", "secureboot", "pcr"]));
    assert!(err.contains("pcr-signing-key.pem already exists"), "{err}");
    let err = failed(talosctl(
        d,
        &[
            "gen",
            "secureboot",
            "-o",
            "other",
            "database",
            "--signing-key",
            "_out/pcr-signing-key.pem",
        ],
    ));
    assert!(err.contains("does not match"), "{err}");
}
