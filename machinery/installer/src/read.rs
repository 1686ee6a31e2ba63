//! Reading an installer that came from outside the node: bounded, checked, two passes over the
//! tarball (small JSON blobs first, then the one layer, streamed).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use ring::digest::{Context, SHA256};
use serde_json::Value;

use crate::{
    INITRAMFS_PATH, InstallerError, KERNEL_PATH, LAYER_GZIP_MEDIA_TYPE, LAYER_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE, NAME_ANNOTATION, RELEASE_LABEL, digest_of, digest_text,
};

/// The largest JSON document (index, manifest, config) read.
const JSON_LIMIT: u64 = 64 * 1024;

/// How large the kernel and the initramfs may be.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub kernel: u64,
    pub initramfs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            kernel: 64 << 20,
            initramfs: 512 << 20,
        }
    }
}

/// An installer unpacked to a folder (`vmlinuz`, `initramfs.img`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unpacked {
    /// The index's name annotation, or the manifest digest without one.
    pub name: String,
    /// The release label; empty when the image has none.
    pub release: String,
    /// The manifest's digest.
    pub digest: String,
    /// The layer's size in bytes.
    pub size: u64,
    /// cosign's signatures of the manifest found beside it (none when unsigned).
    pub signatures: Vec<Signature>,
}

/// One cosign signature: the simple-signing payload and the base64 signature over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub payload: Vec<u8>,
    pub signature: String,
}

/// Unpacks the installer tarball `tarball` into `dest` (which must exist): `dest/vmlinuz` and
/// `dest/initramfs.img`.
pub fn unpack(tarball: &Path, dest: &Path, limits: Limits) -> Result<Unpacked, InstallerError> {
    let blobs = small_blobs(tarball)?;
    let index = blobs
        .get("index.json")
        .ok_or_else(|| invalid("no index.json"))?;
    let index: Value = parse_json("index.json", index)?;
    let manifests = index["manifests"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let is_signature = |d: &Value| {
        d["annotations"][NAME_ANNOTATION]
            .as_str()
            .is_some_and(|n| n.ends_with(".sig"))
    };
    let descriptor = manifests
        .iter()
        .find(|d| d["mediaType"] == MANIFEST_MEDIA_TYPE && !is_signature(d))
        .ok_or_else(|| invalid("index.json lists no image manifest"))?;
    let manifest_digest = digest_field(descriptor)?;
    let signature_tag = cosign::signature_tag(&manifest_digest);
    let signatures = manifests
        .iter()
        .filter(|d| d["annotations"][NAME_ANNOTATION] == signature_tag.as_str())
        .map(|d| signatures_in(&blobs, d))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let manifest: Value = parse_json("the manifest", blob(&blobs, &manifest_digest)?)?;
    let config: Value = parse_json(
        "the image config",
        blob(&blobs, &digest_field(&manifest["config"])?)?,
    )?;
    let layers = manifest["layers"]
        .as_array()
        .ok_or_else(|| invalid("the manifest has no layers"))?;
    let [layer] = layers.as_slice() else {
        return Err(invalid(format!(
            "the manifest has {} layers; an installer has one",
            layers.len()
        )));
    };
    let gzip = match layer["mediaType"].as_str() {
        Some(LAYER_MEDIA_TYPE) => false,
        Some(LAYER_GZIP_MEDIA_TYPE) => true,
        other => return Err(invalid(format!("unsupported layer media type {other:?}"))),
    };
    let layer_digest = digest_field(layer)?;
    let size = extract_layer(tarball, &layer_digest, gzip, dest, limits)?;
    let name = descriptor["annotations"][NAME_ANNOTATION]
        .as_str()
        .map_or_else(|| manifest_digest.clone(), str::to_string);
    let release = config["config"]["Labels"][RELEASE_LABEL]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Ok(Unpacked {
        name,
        release,
        digest: manifest_digest,
        size,
        signatures,
    })
}

/// The payload layers of a signature manifest and their signatures.
fn signatures_in(
    blobs: &BTreeMap<String, Vec<u8>>,
    descriptor: &Value,
) -> Result<Vec<Signature>, InstallerError> {
    let manifest: Value = parse_json(
        "the signature manifest",
        blob(blobs, &digest_field(descriptor)?)?,
    )?;
    let layers = manifest["layers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    layers
        .iter()
        .filter(|layer| layer["mediaType"] == cosign::PAYLOAD_MEDIA_TYPE)
        .take(8)
        .map(|layer| {
            let signature = layer["annotations"][cosign::SIGNATURE_ANNOTATION]
                .as_str()
                .ok_or_else(|| invalid("a signature layer has no signature annotation"))?;
            Ok(Signature {
                payload: blob(blobs, &digest_field(layer)?)?.to_vec(),
                signature: signature.to_string(),
            })
        })
        .collect()
}

fn invalid(message: impl Into<String>) -> InstallerError {
    InstallerError::Invalid(message.into())
}

fn parse_json(what: &str, data: &[u8]) -> Result<Value, InstallerError> {
    serde_json::from_slice(data).map_err(|e| invalid(format!("{what}: {e}")))
}

/// A descriptor's `sha256:<64 hex>` digest.
fn digest_field(descriptor: &Value) -> Result<String, InstallerError> {
    let digest = descriptor["digest"]
        .as_str()
        .ok_or_else(|| invalid("a descriptor has no digest"))?;
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| invalid(format!("unsupported digest {digest:?}")))?;
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

fn blob<'a>(
    blobs: &'a BTreeMap<String, Vec<u8>>,
    digest: &str,
) -> Result<&'a [u8], InstallerError> {
    let path = blob_path(digest);
    let data = blobs
        .get(&path)
        .ok_or_else(|| invalid(format!("{path} is missing or too large")))?;
    let actual = digest_of(data);
    if actual != digest {
        return Err(InstallerError::DigestMismatch { name: path, actual });
    }
    Ok(data)
}

fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", &digest["sha256:".len()..])
}

fn open(tarball: &Path) -> Result<tar::Archive<File>, InstallerError> {
    let file = File::open(tarball)
        .map_err(InstallerError::io(format!("opening {}", tarball.display())))?;
    Ok(tar::Archive::new(file))
}

/// The entries of at most [`JSON_LIMIT`] bytes, by normalised path.
fn small_blobs(tarball: &Path) -> Result<BTreeMap<String, Vec<u8>>, InstallerError> {
    let mut archive = open(tarball)?;
    let mut blobs = BTreeMap::new();
    let entries = archive.entries().map_err(read_error)?;
    for entry in entries {
        let mut entry = entry.map_err(read_error)?;
        if entry.header().entry_type() != tar::EntryType::Regular
            || entry.size() > JSON_LIMIT
            || blobs.len() >= 64
        {
            continue;
        }
        let path = entry_path(&entry)?;
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(read_error)?;
        blobs.insert(path, data);
    }
    Ok(blobs)
}

fn read_error(source: io::Error) -> InstallerError {
    InstallerError::Io {
        context: "reading the installer".into(),
        source,
    }
}

fn entry_path<R: Read>(entry: &tar::Entry<R>) -> Result<String, InstallerError> {
    let path = entry.path().map_err(read_error)?;
    let text = path.to_string_lossy();
    Ok(text.trim_start_matches("./").to_string())
}

/// Streams the layer `digest` out of the tarball: its kernel and initramfs go to `dest`, its
/// bytes are hashed and must match. Returns the layer's size.
fn extract_layer(
    tarball: &Path,
    digest: &str,
    gzip: bool,
    dest: &Path,
    limits: Limits,
) -> Result<u64, InstallerError> {
    let path = blob_path(digest);
    let mut archive = open(tarball)?;
    let entries = archive.entries().map_err(read_error)?;
    for entry in entries {
        let entry = entry.map_err(read_error)?;
        if entry_path(&entry)? != path {
            continue;
        }
        let mut hashing = Hashing {
            inner: entry,
            context: Context::new(&SHA256),
            count: 0,
        };
        let (kernel, initramfs) = if gzip {
            extract_files(flate2::read::GzDecoder::new(&mut hashing), dest, limits)?
        } else {
            extract_files(&mut hashing, dest, limits)?
        };
        io::copy(&mut hashing, &mut io::sink()).map_err(read_error)?;
        let actual = digest_text(hashing.context.finish().as_ref());
        if actual != digest {
            return Err(InstallerError::DigestMismatch { name: path, actual });
        }
        if !kernel {
            return Err(invalid(format!("the layer has no {KERNEL_PATH}")));
        }
        if !initramfs {
            return Err(invalid(format!("the layer has no {INITRAMFS_PATH}")));
        }
        return Ok(hashing.count);
    }
    Err(invalid(format!("{path} (the layer) is missing")))
}

/// Writes the kernel and the initramfs of the layer tar `layer` to `dest`; whether each was
/// found.
fn extract_files(
    layer: impl Read,
    dest: &Path,
    limits: Limits,
) -> Result<(bool, bool), InstallerError> {
    let mut archive = tar::Archive::new(layer);
    let (mut kernel, mut initramfs) = (false, false);
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let (name, limit, found) = match entry_path(&entry)?.trim_start_matches('/') {
            KERNEL_PATH => ("vmlinuz", limits.kernel, &mut kernel),
            INITRAMFS_PATH => ("initramfs.img", limits.initramfs, &mut initramfs),
            _ => continue,
        };
        if entry.size() > limit {
            return Err(InstallerError::TooLarge {
                what: name.into(),
                limit,
            });
        }
        let target = dest.join(name);
        let mut file = File::create(&target)
            .map_err(InstallerError::io(format!("creating {}", target.display())))?;
        io::copy(&mut (&mut entry).take(limit), &mut file).map_err(read_error)?;
        file.flush().map_err(read_error)?;
        *found = true;
    }
    Ok((kernel, initramfs))
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    context: Context,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.context.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Installer, write};

    fn installer_file(dir: &Path, release: &str) -> std::path::PathBuf {
        let path = dir.join("installer.tar");
        let file = File::create(&path).unwrap();
        write(
            file,
            &Installer {
                name: "talos-rs/installer:test",
                release,
                kernel: b"kernel bytes",
                initramfs: b"initramfs bytes",
                signer: None,
            },
        )
        .unwrap();
        path
    }

    #[test]
    fn unpacks_what_write_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let tarball = installer_file(dir.path(), "v9.9.9");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let unpacked = unpack(&tarball, &out, Limits::default()).unwrap();
        assert_eq!(unpacked.name, "talos-rs/installer:test");
        assert_eq!(unpacked.release, "v9.9.9");
        assert!(unpacked.digest.starts_with("sha256:"));
        assert_eq!(std::fs::read(out.join("vmlinuz")).unwrap(), b"kernel bytes");
        assert_eq!(
            std::fs::read(out.join("initramfs.img")).unwrap(),
            b"initramfs bytes"
        );
    }

    #[test]
    fn a_signed_installer_carries_cosign_s_signature_of_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let key = cosign::SigningKey::generate().unwrap();
        let path = dir.path().join("signed.tar");
        write(
            File::create(&path).unwrap(),
            &Installer {
                name: "ghcr.io/talos-rs/installer:v1",
                release: "v1",
                kernel: b"k",
                initramfs: b"i",
                signer: Some(&key),
            },
        )
        .unwrap();
        let unpacked = unpack(&path, dir.path(), Limits::default()).unwrap();
        assert_eq!(unpacked.name, "ghcr.io/talos-rs/installer:v1");
        let [signature] = unpacked.signatures.as_slice() else {
            panic!("{:?}", unpacked.signatures);
        };
        key.public_key()
            .verify("payload", &signature.payload, &signature.signature)
            .unwrap();
        assert_eq!(
            cosign::payload_digest(&signature.payload).unwrap(),
            unpacked.digest
        );
        let unsigned = installer_file(dir.path(), "v1");
        let unpacked = unpack(&unsigned, dir.path(), Limits::default()).unwrap();
        assert!(unpacked.signatures.is_empty());
    }

    #[test]
    fn same_inputs_give_the_same_bytes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let read = |dir: &Path| std::fs::read(installer_file(dir, "v1")).unwrap();
        assert_eq!(read(a.path()), read(b.path()));
    }

    #[test]
    fn a_tampered_layer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tarball = installer_file(dir.path(), "v1");
        let mut bytes = std::fs::read(&tarball).unwrap();
        let at = bytes
            .windows(b"kernel bytes".len())
            .position(|w| w == b"kernel bytes")
            .unwrap();
        bytes[at] = b'K';
        std::fs::write(&tarball, bytes).unwrap();
        let err = unpack(&tarball, dir.path(), Limits::default()).unwrap_err();
        assert!(
            matches!(err, InstallerError::DigestMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn oversized_files_and_other_tarballs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tarball = installer_file(dir.path(), "v1");
        let small = Limits {
            kernel: 4,
            initramfs: 1 << 20,
        };
        let err = unpack(&tarball, dir.path(), small).unwrap_err();
        assert!(matches!(err, InstallerError::TooLarge { .. }), "{err}");

        let other = dir.path().join("other.tar");
        let mut builder = tar::Builder::new(File::create(&other).unwrap());
        let mut header = tar::Header::new_ustar();
        header.set_size(2);
        builder
            .append_data(&mut header, "hello", &b"hi"[..])
            .unwrap();
        builder.finish().unwrap();
        drop(builder);
        let err = unpack(&other, dir.path(), Limits::default()).unwrap_err();
        assert_eq!(err.to_string(), "not an installer image: no index.json");
        let err = unpack(
            &dir.path().join("missing.tar"),
            dir.path(),
            Limits::default(),
        );
        assert!(err.is_err());
    }
}
