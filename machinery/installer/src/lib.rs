//! The installer image: what `talosctl upgrade --image` installs.
//!
//! An installer is an OCI image layout ("oci-layout", `index.json`, `blobs/sha256/…`) packed
//! in one tar file, as `docker save`/`skopeo copy oci-archive:` produce. It has one manifest
//! with one layer; the layer holds upstream's installer paths `usr/install/amd64/vmlinuz` and
//! `usr/install/amd64/initramfs.img`. The release (e.g. `v0.1.0`) is the config's
//! `org.opencontainers.image.version` label, the name the index's
//! `org.opencontainers.image.ref.name` annotation.
//!
//! [`write`] builds one (same inputs, same bytes); [`unpack`] reads one that came from outside
//! the node: every JSON document is size-bounded, every blob checked against its digest, the
//! kernel and initramfs bounded and written to files, nothing else extracted.
//!
//! A signed installer also holds cosign's signature of its manifest, as `cosign save` lays it
//! out: a second manifest, named `sha256-<hex>.sig` in the index, whose one layer is the
//! simple-signing payload with the signature in its annotation (ECDSA randomises signatures, so
//! a signed installer's bytes differ from build to build). [`unpack`] returns the signatures it
//! finds; checking them against keys is the caller's.
//!
//! [`cpio`] writes the initramfs's newc archives (xtask; tests append an overlay archive,
//! which the kernel unpacks over the first).

pub mod cpio;
mod error;
mod read;
mod write;

pub use error::InstallerError;
pub use read::{Limits, Signature, Unpacked, unpack};
pub use write::{Installer, write};

/// The kernel's path inside the layer.
pub const KERNEL_PATH: &str = "usr/install/amd64/vmlinuz";
/// The initramfs's path inside the layer.
pub const INITRAMFS_PATH: &str = "usr/install/amd64/initramfs.img";
/// The config label holding the release.
pub const RELEASE_LABEL: &str = "org.opencontainers.image.version";
/// The index annotation holding the image name.
pub const NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_GZIP_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The registry and repository of an image name (`ghcr.io/talos-rs/installer:v1` →
/// `ghcr.io/talos-rs/installer`): what cosign's payload names and verification rules match.
pub fn repository_of(name: &str) -> &str {
    let name = name.split_once('@').map_or(name, |(before, _)| before);
    let last_slash = name.rfind('/').map_or(0, |at| at + 1);
    match name[last_slash..].rfind(':') {
        Some(colon) => &name[..last_slash + colon],
        None => name,
    }
}

/// `sha256:<hex>` of `data`.
fn digest_of(data: &[u8]) -> String {
    digest_text(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn digest_text(sha256: &[u8]) -> String {
    let mut text = String::from("sha256:");
    for byte in sha256 {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn repositories_drop_tag_and_digest_but_not_a_registry_port() {
        use super::repository_of;
        assert_eq!(
            repository_of("ghcr.io/talos-rs/installer:v1"),
            "ghcr.io/talos-rs/installer"
        );
        assert_eq!(
            repository_of("localhost:5000/installer"),
            "localhost:5000/installer"
        );
        assert_eq!(repository_of("installer@sha256:ab"), "installer");
        assert_eq!(repository_of("installer"), "installer");
    }
}
