//! `image talos-bundle`, `image k8s-bundle` and `image cache-create`: client-only, checked on
//! the built binary against golden lists written from upstream v1.13.0's image names.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::path::Path;
use std::process::Output;

fn talosctl(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_talosctl"))
        .args(args)
        .env_remove("TALOSCONFIG")
        .env("HOME", "/nonexistent")
        .output()
        .expect("talosctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn talos_bundle_lists_upstreams_images_of_a_release() {
    let output = talosctl(&["image", "talos-bundle", "v1.12.3"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), fixture("talos-bundle-v1.12.3.txt"));
    // Extensions and overlays need ghcr.io: said on stderr, not in the list.
    assert!(
        text(&output.stderr).contains("cannot reach"),
        "{}",
        text(&output.stderr)
    );
    let quiet = talosctl(&[
        "image",
        "talos-bundle",
        "v1.12.3",
        "--extensions=false",
        "--overlays=false",
    ]);
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet.stderr));
    // This talosctl's own release by default.
    let current = text(&talosctl(&["image", "talos-bundle"]).stdout);
    assert!(
        current.starts_with("ghcr.io/siderolabs/installer:v1.13.0\n"),
        "{current}"
    );

    for (tag, error) in [
        ("1.12.0", "must have \"v\" prefix"),
        (
            "v1.10.0",
            "must be between v1.11.0-alpha.0 (inclusive) and v1.14.0 (exclusive)",
        ),
        ("vlatest", "tag must be a valid semver"),
    ] {
        let output = talosctl(&["image", "talos-bundle", tag]);
        assert!(!output.status.success());
        assert!(
            text(&output.stderr).contains(error),
            "{tag}: {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn k8s_bundle_lists_the_default_kubernetes_images_and_takes_versions() {
    let output = talosctl(&["image", "k8s-bundle"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), fixture("k8s-bundle.txt"));
    // Upstream's alias, and versions read tolerantly ("1.34" is v1.34.0).
    let other = text(
        &talosctl(&[
            "image",
            "default",
            "--k8s-version",
            "1.34",
            "--etcd-version",
            "3.5.21",
        ])
        .stdout,
    );
    assert!(
        other.contains("registry.k8s.io/kube-apiserver:v1.34.0\n"),
        "{other}"
    );
    assert!(
        other.contains("ghcr.io/siderolabs/kubelet:v1.34.0\n"),
        "{other}"
    );
    assert!(other.contains("registry.k8s.io/etcd:v3.5.21\n"), "{other}");
    let bad = talosctl(&["image", "k8s-bundle", "--k8s-version", "latest"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("invalid semantic version"),
        "{}",
        text(&bad.stderr)
    );
}

/// An OCI image layout tarball of one manifest blob named `name`.
fn layout_tarball(dir: &Path, name: &str, blob: &[u8], digest_hex: &str) -> String {
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{digest_hex}","size":{},"annotations":{{"io.containerd.image.name":"{name}"}}}}]}}"#,
        blob.len()
    );
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in [
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".to_string(), index.into_bytes()),
        (format!("blobs/sha256/{digest_hex}"), blob.to_vec()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, data.as_slice())
            .unwrap();
    }
    let path = dir.join(format!("{digest_hex}.tar"));
    std::fs::write(&path, builder.into_inner().unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn cache_create_refuses_registries_and_merges_local_layouts() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cache_arg = cache.to_str().unwrap();
    let output = talosctl(&[
        "image",
        "cache-create",
        "--images",
        "ghcr.io/siderolabs/kubelet:v1.35.0",
        "--image-cache-path",
        cache_arg,
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("talos-rs hosts cannot reach"),
        "{}",
        text(&output.stderr)
    );
    assert!(!cache.exists());

    let (a, b) = ("a".repeat(64), "b".repeat(64));
    let first = layout_tarball(dir.path(), "example.org/a:1", b"{}", &a);
    let second = layout_tarball(dir.path(), "example.org/b:1", b"{ }", &b);
    let images = format!("{first},{second}");
    let output = talosctl(&[
        "image",
        "cache-create",
        "--images",
        &images,
        "--image-cache-path",
        cache_arg,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.join("index.json")).unwrap()).unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["io.containerd.image.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(names, ["example.org/a:1", "example.org/b:1"]);
    assert_eq!(
        std::fs::read(cache.join("blobs/sha256").join(&b)).unwrap(),
        b"{ }"
    );
    assert!(cache.join("oci-layout").is_file());

    let again = talosctl(&[
        "image",
        "cache-create",
        "--images",
        &first,
        "--image-cache-path",
        cache_arg,
    ]);
    assert!(
        text(&again.stderr).contains("already exists, use --force"),
        "{}",
        text(&again.stderr)
    );
    let forced = talosctl(&[
        "image",
        "cache-create",
        "--images",
        &first,
        "--image-cache-path",
        cache_arg,
        "--force",
    ]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(!cache.join("blobs/sha256").join(&b).exists());
}
