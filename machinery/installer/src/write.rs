//! Writing an installer image layout tarball, byte for byte the same for the same inputs.

use std::io::Write;

use serde_json::json;

use crate::{
    CONFIG_MEDIA_TYPE, INITRAMFS_PATH, InstallerError, KERNEL_PATH, LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE, NAME_ANNOTATION, RELEASE_LABEL, digest_of,
};

/// What goes into an installer.
#[derive(Debug)]
pub struct Installer<'a> {
    /// The image name, e.g. `ghcr.io/talos-rs/installer:v0.1.0`.
    pub name: &'a str,
    /// The release the image installs, e.g. `v0.1.0`.
    pub release: &'a str,
    pub kernel: &'a [u8],
    pub initramfs: &'a [u8],
    /// Signs the manifest in cosign's format when set.
    pub signer: Option<&'a cosign::SigningKey>,
}

/// Writes `installer` as an OCI image layout tarball.
pub fn write(out: impl Write, installer: &Installer) -> Result<(), InstallerError> {
    let layer = layer(installer)?;
    let layer_digest = digest_of(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": { RELEASE_LABEL: installer.release } },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
    }))
    .map_err(|e| InstallerError::Invalid(e.to_string()))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": digest_of(&config), "size": config.len() },
        "layers": [{ "mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": layer.len() }],
    }))
    .map_err(|e| InstallerError::Invalid(e.to_string()))?;
    let mut manifests = vec![json!({
        "mediaType": MANIFEST_MEDIA_TYPE,
        "digest": digest_of(&manifest),
        "size": manifest.len(),
        "annotations": { NAME_ANNOTATION: installer.name },
    })];
    let mut blobs = vec![config, manifest, layer];
    if let Some(signer) = installer.signer {
        let manifest_digest = digest_of(&blobs[1]);
        let signature = signature_blobs(installer.name, &manifest_digest, signer)?;
        manifests.push(json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": digest_of(&signature[1]),
            "size": signature[1].len(),
            "annotations": { NAME_ANNOTATION: cosign::signature_tag(&manifest_digest) },
        }));
        blobs.extend(signature);
    }
    let index = serde_json::to_vec(&json!({ "schemaVersion": 2, "manifests": manifests }))
        .map_err(|e| InstallerError::Invalid(e.to_string()))?;

    let mut tar = tar::Builder::new(out);
    append(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    append(&mut tar, "index.json", &index)?;
    for blob in &blobs {
        let name = format!("blobs/sha256/{}", &digest_of(blob)["sha256:".len()..]);
        append(&mut tar, &name, blob)?;
    }
    tar.into_inner()
        .and_then(|mut out| out.flush())
        .map_err(InstallerError::io("writing the installer"))
}

/// cosign's signature of the manifest `digest`: its config, manifest and payload blobs.
fn signature_blobs(
    name: &str,
    digest: &str,
    signer: &cosign::SigningKey,
) -> Result<[Vec<u8>; 3], InstallerError> {
    let payload = cosign::payload(crate::repository_of(name), digest);
    let signature = signer
        .sign(&payload)
        .map_err(|e| InstallerError::Invalid(format!("signing the manifest: {e}")))?;
    let payload_digest = digest_of(&payload);
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [payload_digest] },
    }))
    .map_err(|e| InstallerError::Invalid(e.to_string()))?;
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": digest_of(&config), "size": config.len() },
        "layers": [{
            "mediaType": cosign::PAYLOAD_MEDIA_TYPE,
            "digest": payload_digest,
            "size": payload.len(),
            "annotations": { cosign::SIGNATURE_ANNOTATION: signature },
        }],
    }))
    .map_err(|e| InstallerError::Invalid(e.to_string()))?;
    Ok([config, manifest, payload])
}

/// The layer: a tar of the kernel and the initramfs at upstream's installer paths.
fn layer(installer: &Installer) -> Result<Vec<u8>, InstallerError> {
    let mut tar = tar::Builder::new(Vec::new());
    for dir in ["usr/", "usr/install/", "usr/install/amd64/"] {
        let mut header = header(0, 0o755);
        header.set_entry_type(tar::EntryType::Directory);
        tar.append_data(&mut header, dir, std::io::empty())
            .map_err(InstallerError::io("writing the layer"))?;
    }
    append(&mut tar, KERNEL_PATH, installer.kernel)?;
    append(&mut tar, INITRAMFS_PATH, installer.initramfs)?;
    tar.into_inner()
        .map_err(InstallerError::io("writing the layer"))
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: &[u8],
) -> Result<(), InstallerError> {
    let mut header = header(data.len() as u64, 0o644);
    tar.append_data(&mut header, path, data)
        .map_err(InstallerError::io(format!("writing {path}")))
}

fn header(size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}
