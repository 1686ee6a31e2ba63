//! `talosctl debug` against a dev-mode node: the image is imported into the node's debug store
//! (any container image, unsigned, listed and removable), and the run itself is refused
//! clearly, since dev mode runs no containerd tasks. The run in a booted node is in image.rs.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns

use tests::{Cluster, failure, success};

/// A `docker save` tarball whose one layer holds `bin/true`.
fn tiny_image(dir: &std::path::Path) -> std::path::PathBuf {
    let add = |builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder.append_data(&mut header, name, data).unwrap();
    };
    let mut layer = tar::Builder::new(Vec::new());
    add(&mut layer, "bin/true", b"#!/bin/true\n");
    let layer = layer.into_inner().unwrap();
    let mut image = tar::Builder::new(Vec::new());
    add(
        &mut image,
        "manifest.json",
        br#"[{"Config":"config.json","RepoTags":["talos-rs/tiny:1"],"Layers":["layer.tar"]}]"#,
    );
    add(
        &mut image,
        "config.json",
        br#"{"config":{"Cmd":["/bin/true"]}}"#,
    );
    add(&mut image, "layer.tar", &layer);
    let path = dir.join("tiny.tar");
    std::fs::write(&path, image.into_inner().unwrap()).unwrap();
    path
}

#[test]
fn dev_mode_imports_the_image_and_refuses_the_run_clearly() {
    let cluster = Cluster::start(92, 1);
    let node = cluster.nodes[0].address.to_string();
    let dir = tempfile::tempdir().unwrap();
    let image = tiny_image(dir.path());
    let image = image.to_str().unwrap();

    let stderr = failure(cluster.talosctl(&["-n", &node, "debug", image]));
    assert!(
        stderr.contains("code = FailedPrecondition") && stderr.contains("dev mode"),
        "{stderr}"
    );
    let images = success(cluster.talosctl(&["-n", &node, "image", "list"]));
    assert!(images.contains("talos-rs/tiny:1"), "{images}");

    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"not an image at all").unwrap();
    let stderr = failure(cluster.talosctl(&["-n", &node, "debug", junk.to_str().unwrap()]));
    assert!(
        stderr.contains("failed to import image") && stderr.contains("not a container image"),
        "{stderr}"
    );
    let stderr = failure(cluster.talosctl(&["-n", &node, "debug", "example.org/missing:1"]));
    assert!(
        stderr.contains("failed to pull image") && stderr.contains("reach no registry"),
        "{stderr}"
    );
    let stderr = failure(cluster.talosctl(&["-n", &node, "debug"]));
    assert!(
        stderr.contains("an image tar path or reference is required"),
        "{stderr}"
    );

    success(cluster.talosctl(&["-n", &node, "image", "remove", "talos-rs/tiny:1"]));
    let images = success(cluster.talosctl(&["-n", &node, "image", "list"]));
    assert!(!images.contains("talos-rs/tiny:1"), "{images}");
}
