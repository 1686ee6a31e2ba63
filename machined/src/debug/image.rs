//! The store of debug images: container images imported through `ImageService.Import` that are
//! not installers (any image: upstream's debug images are arbitrary and unsigned).
//!
//! An import reads an OCI image layout tarball (`index.json`, `blobs/sha256/…`, as
//! `docker save` from Docker 25 and `skopeo copy oci-archive:` write) or a legacy `docker save`
//! tarball (`manifest.json` naming a config and layer files). Every JSON document is bounded,
//! every OCI blob checked against its digest, the layers (plain or gzip tar) copied out, bounded
//! in size and count, into `<store>/<digest>/layer-N` beside `image.json` (name, digest, the
//! config's entrypoint, command, environment and working directory).
//!
//! [`unpack`] lays the layers over each other into a fresh root filesystem for one run: at most
//! [`MAX_ENTRIES`] entries and [`MAX_UNPACKED`] bytes, an entry with `..` or leading out of the
//! root (through a symlink) refused, whiteouts (`.wh.NAME`, `.wh..wh..opq`) applied, device
//! nodes and FIFOs skipped (the container gets the host's `/dev`).
//!
//! The store lives in memory (`/system/var`), as upstream's `inmem` containerd: debug images
//! are gone after a reboot, and together they may hold at most [`MAX_STORE_BYTES`] of layers.
//! Upgrade never looks here.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::MachinedError;
use crate::upgrade::images;

/// The largest JSON document (index, manifest, config) read from an image.
const JSON_LIMIT: u64 = 256 * 1024;
/// How many small documents an image tarball may carry.
const MAX_DOCUMENTS: usize = 1024;
/// How many layers an image may have.
const MAX_LAYERS: usize = 128;
/// The most bytes of layers (as stored) one image may carry.
const MAX_LAYER_BYTES: u64 = 512 << 20;
/// The most bytes of layers the whole store (in memory) may hold.
const MAX_STORE_BYTES: u64 = 1 << 30;
/// The most entries one root filesystem may get from its layers.
pub const MAX_ENTRIES: u64 = 200_000;
/// The most bytes one root filesystem may get from its layers.
pub const MAX_UNPACKED: u64 = 1 << 30;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// One stored debug image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DebugImage {
    pub name: String,
    pub digest: String,
    /// Bytes of its layers as stored.
    pub size: u64,
    /// Seconds since the epoch.
    pub imported: i64,
    pub layers: usize,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    #[serde(skip)]
    pub dir: PathBuf,
}

impl DebugImage {
    fn layer(&self, index: usize) -> PathBuf {
        self.dir.join(format!("layer-{index}"))
    }

    /// The command the image runs without arguments of the caller's.
    pub fn default_args(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

fn invalid(reason: impl std::fmt::Display) -> MachinedError {
    MachinedError::InvalidArgument(format!("not a container image: {reason}"))
}

/// A layer to copy out of the tarball: its path in the tarball and the digest it must have
/// (none for a legacy `docker save` layer, named by its path).
struct LayerRef {
    path: String,
    digest: Option<String>,
}

/// What the documents say about the image.
struct Described {
    name: String,
    digest: String,
    config: Value,
    layers: Vec<LayerRef>,
}

/// Imports the tarball `tarball` into `store`, replacing an image of the same name. Blocking.
pub fn import(store: &Path, tarball: &Path) -> Result<DebugImage, MachinedError> {
    let documents = small_documents(tarball)?;
    let described = describe(&documents)?;
    let staging = store.join(format!(".import-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&staging).map_err(MachinedError::io("creating", &staging))?;
    let stored: u64 = list(store)?
        .iter()
        .filter(|image| image.name != described.name)
        .map(|image| image.size)
        .sum();
    let copied = copy_layers(tarball, &described.layers, &staging).and_then(|size| {
        if stored + size > MAX_STORE_BYTES {
            return Err(MachinedError::ResourceExhausted(format!(
                "the debug images would take {} bytes of memory, more than {MAX_STORE_BYTES}: \
                 remove some first (talosctl image remove)",
                stored + size
            )));
        }
        Ok(size)
    });
    let size = match copied {
        Ok(size) => size,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    let config = &described.config["config"];
    let strings = |key: &str| -> Vec<String> {
        config[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let image = DebugImage {
        name: described.name,
        digest: described.digest.clone(),
        size,
        imported: time::OffsetDateTime::now_utc().unix_timestamp(),
        layers: described.layers.len(),
        entrypoint: strings("Entrypoint"),
        cmd: strings("Cmd"),
        env: strings("Env"),
        working_dir: config["WorkingDir"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        dir: store.join(described.digest.replace(':', "-")),
    };
    let json =
        serde_json::to_vec_pretty(&image).map_err(|e| MachinedError::Internal(e.to_string()))?;
    let meta = staging.join("image.json");
    std::fs::write(&meta, json).map_err(MachinedError::io("writing", &meta))?;
    if let Some(old) = find(store, &image.name)? {
        let _ = std::fs::remove_dir_all(&old.dir);
    }
    let _ = std::fs::remove_dir_all(&image.dir);
    std::fs::rename(&staging, &image.dir).map_err(MachinedError::io("storing", &image.dir))?;
    Ok(image)
}

/// Every stored debug image, by name.
pub fn list(store: &Path) -> Result<Vec<DebugImage>, MachinedError> {
    images::list_store(store)
}

/// The debug image named `reference` (its name or digest).
pub fn find(store: &Path, reference: &str) -> Result<Option<DebugImage>, MachinedError> {
    images::find_in_store(store, reference)
}

impl images::StoredEntry for DebugImage {
    fn name(&self) -> &str {
        &self.name
    }
    fn digest(&self) -> &str {
        &self.digest
    }
    fn set_dir(&mut self, dir: PathBuf) {
        self.dir = dir;
    }
}

/// Every regular file of at most [`JSON_LIMIT`] bytes in the tarball, by normalised path.
fn small_documents(tarball: &Path) -> Result<BTreeMap<String, Vec<u8>>, MachinedError> {
    let mut documents = BTreeMap::new();
    let mut archive = open_archive(tarball)?;
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(|e| invalid(format!("reading the tarball: {e}")))?;
        if !entry.header().entry_type().is_file() || entry.size() > JSON_LIMIT {
            continue;
        }
        let name = normalised(&entry.path().map_err(invalid)?);
        if documents.len() == MAX_DOCUMENTS {
            return Err(invalid(format!(
                "more than {MAX_DOCUMENTS} small files in the tarball"
            )));
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| invalid(format!("reading {name}: {e}")))?;
        documents.insert(name, data);
    }
    Ok(documents)
}

fn open_archive(tarball: &Path) -> Result<tar::Archive<BufReader<File>>, MachinedError> {
    let file = File::open(tarball).map_err(MachinedError::io("opening", tarball))?;
    Ok(tar::Archive::new(BufReader::new(file)))
}

/// A tarball path without `./` or a leading `/`.
fn normalised(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn json(documents: &BTreeMap<String, Vec<u8>>, path: &str) -> Result<Value, MachinedError> {
    let data = documents
        .get(path)
        .ok_or_else(|| invalid(format!("{path} is missing or too large")))?;
    serde_json::from_slice(data).map_err(|e| invalid(format!("{path}: {e}")))
}

fn blob_path(digest: &str) -> Result<String, MachinedError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| invalid(format!("unsupported digest {digest:?}")))?;
    Ok(format!("blobs/sha256/{hex}"))
}

fn digest_field(descriptor: &Value, what: &str) -> Result<String, MachinedError> {
    descriptor["digest"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| invalid(format!("{what} has no digest")))
}

/// A blob of the layout, checked against its digest.
fn blob(documents: &BTreeMap<String, Vec<u8>>, digest: &str) -> Result<Value, MachinedError> {
    let path = blob_path(digest)?;
    let data = documents
        .get(&path)
        .ok_or_else(|| invalid(format!("{path} is missing or too large")))?;
    let actual = sha256_text(ring::digest::digest(&SHA256, data).as_ref());
    if actual != digest {
        return Err(invalid(format!("{path} does not match its digest")));
    }
    serde_json::from_slice(data).map_err(|e| invalid(format!("{path}: {e}")))
}

fn sha256_text(sha256: &[u8]) -> String {
    let hex: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn describe(documents: &BTreeMap<String, Vec<u8>>) -> Result<Described, MachinedError> {
    if documents.contains_key("index.json") {
        describe_layout(documents)
    } else if documents.contains_key("manifest.json") {
        describe_docker_save(documents)
    } else {
        Err(invalid(
            "neither index.json (an OCI image layout) nor manifest.json (docker save) in the tarball",
        ))
    }
}

fn describe_layout(documents: &BTreeMap<String, Vec<u8>>) -> Result<Described, MachinedError> {
    let index = json(documents, "index.json")?;
    let is_manifest = |d: &&Value| {
        let media = d["mediaType"].as_str().unwrap_or_default();
        let signature = d["annotations"][OCI_REF_NAME]
            .as_str()
            .is_some_and(|n| n.ends_with(".sig"));
        [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST].contains(&media) && !signature
    };
    let top = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(is_manifest)
        .ok_or_else(|| invalid("index.json lists no image manifest"))?;
    let name = top["annotations"][CONTAINERD_NAME]
        .as_str()
        .or_else(|| top["annotations"][OCI_REF_NAME].as_str())
        .map(str::to_string);
    let mut descriptor = top.clone();
    // An index of platforms (one level): the linux/amd64 manifest.
    if [OCI_INDEX, DOCKER_LIST].contains(&descriptor["mediaType"].as_str().unwrap_or_default()) {
        let nested = blob(documents, &digest_field(&descriptor, "the index")?)?;
        descriptor = nested["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["platform"]["os"] == "linux" && d["platform"]["architecture"] == "amd64")
            .cloned()
            .ok_or_else(|| invalid("the image index has no linux/amd64 manifest"))?;
    }
    let digest = digest_field(&descriptor, "the manifest")?;
    let manifest = blob(documents, &digest)?;
    let config = blob(documents, &digest_field(&manifest["config"], "the config")?)?;
    let layers = manifest["layers"]
        .as_array()
        .ok_or_else(|| invalid("the manifest has no layers"))?
        .iter()
        .map(|layer| {
            let digest = digest_field(layer, "a layer")?;
            Ok(LayerRef {
                path: blob_path(&digest)?,
                digest: Some(digest),
            })
        })
        .collect::<Result<Vec<_>, MachinedError>>()?;
    Ok(Described {
        name: name.unwrap_or_else(|| digest.clone()),
        digest,
        config,
        layers: bounded_layers(layers)?,
    })
}

fn describe_docker_save(documents: &BTreeMap<String, Vec<u8>>) -> Result<Described, MachinedError> {
    let manifests = json(documents, "manifest.json")?;
    let first = manifests
        .as_array()
        .and_then(|all| all.first())
        .ok_or_else(|| invalid("manifest.json lists no image"))?;
    let config_path = first["Config"]
        .as_str()
        .ok_or_else(|| invalid("manifest.json names no Config"))?;
    let config = json(documents, &normalised(Path::new(config_path)))?;
    let digest = sha256_text(
        ring::digest::digest(&SHA256, &documents[&normalised(Path::new(config_path))]).as_ref(),
    );
    let layers = first["Layers"]
        .as_array()
        .ok_or_else(|| invalid("manifest.json names no Layers"))?
        .iter()
        .map(|layer| {
            let path = layer
                .as_str()
                .ok_or_else(|| invalid("a layer of manifest.json is not a path"))?;
            Ok(LayerRef {
                path: normalised(Path::new(path)),
                digest: None,
            })
        })
        .collect::<Result<Vec<_>, MachinedError>>()?;
    let name = first["RepoTags"][0].as_str().map(str::to_string);
    Ok(Described {
        name: name.unwrap_or_else(|| digest.clone()),
        digest,
        config,
        layers: bounded_layers(layers)?,
    })
}

fn bounded_layers(layers: Vec<LayerRef>) -> Result<Vec<LayerRef>, MachinedError> {
    if layers.is_empty() {
        return Err(invalid("the image has no layers"));
    }
    if layers.len() > MAX_LAYERS {
        return Err(invalid(format!(
            "the image has {} layers, more than {MAX_LAYERS}",
            layers.len()
        )));
    }
    Ok(layers)
}

/// Copies every layer out of the tarball into `dest/layer-N`; returns their total size.
fn copy_layers(tarball: &Path, layers: &[LayerRef], dest: &Path) -> Result<u64, MachinedError> {
    let mut found = vec![false; layers.len()];
    let mut total = 0u64;
    let mut archive = open_archive(tarball)?;
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(|e| invalid(format!("reading the tarball: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = normalised(&entry.path().map_err(invalid)?);
        for (index, layer) in layers.iter().enumerate() {
            if layer.path != name || found[index] {
                continue;
            }
            total += entry.size();
            if total > MAX_LAYER_BYTES {
                return Err(invalid(format!(
                    "the layers are larger than {MAX_LAYER_BYTES} bytes"
                )));
            }
            let path = dest.join(format!("layer-{index}"));
            let mut out = File::create(&path).map_err(MachinedError::io("creating", &path))?;
            let mut hash = Context::new(&SHA256);
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let read = entry
                    .read(&mut buffer)
                    .map_err(|e| invalid(format!("reading {name}: {e}")))?;
                if read == 0 {
                    break;
                }
                hash.update(&buffer[..read]);
                out.write_all(&buffer[..read])
                    .map_err(MachinedError::io("writing", &path))?;
            }
            if let Some(expected) = &layer.digest {
                let actual = sha256_text(hash.finish().as_ref());
                if &actual != expected {
                    return Err(invalid(format!("{name} does not match its digest")));
                }
            }
            found[index] = true;
            // The same blob may be listed twice (an empty layer): copy it for each.
            let copied = path.clone();
            for (other, again) in layers.iter().enumerate().skip(index + 1) {
                if again.path == name && !found[other] {
                    let to = dest.join(format!("layer-{other}"));
                    std::fs::copy(&copied, &to).map_err(MachinedError::io("copying", &to))?;
                    found[other] = true;
                }
            }
            break;
        }
    }
    if let Some(missing) = found.iter().position(|found| !found) {
        return Err(invalid(format!(
            "layer {} is missing from the tarball",
            layers[missing].path
        )));
    }
    Ok(total)
}

/// Lays the image's layers over each other into `rootfs` (which must exist and be empty).
/// Blocking.
pub fn unpack(image: &DebugImage, rootfs: &Path) -> Result<(), MachinedError> {
    let root = rootfs
        .canonicalize()
        .map_err(MachinedError::io("resolving", rootfs))?;
    let mut budget = Budget {
        entries: MAX_ENTRIES,
        bytes: MAX_UNPACKED,
    };
    for index in 0..image.layers {
        let path = image.layer(index);
        let refused = |reason: String| {
            MachinedError::InvalidArgument(format!("image {}, layer {index}: {reason}", image.name))
        };
        let mut file = File::open(&path).map_err(MachinedError::io("opening", &path))?;
        let mut magic = [0u8; 2];
        let gzip = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
        drop(file);
        let file = BufReader::new(File::open(&path).map_err(MachinedError::io("opening", &path))?);
        let reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        unpack_layer(reader, &root, &mut budget).map_err(refused)?;
    }
    Ok(())
}

struct Budget {
    entries: u64,
    bytes: u64,
}

fn unpack_layer(reader: impl Read, root: &Path, budget: &mut Budget) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| format!("reading the layer: {e}"))?;
        budget.entries = budget
            .entries
            .checked_sub(1)
            .ok_or_else(|| format!("more than {MAX_ENTRIES} entries"))?;
        budget.bytes = budget
            .bytes
            .checked_sub(entry.size())
            .ok_or_else(|| format!("more than {MAX_UNPACKED} bytes"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(format!("{} leads out of the root", path.display()));
        }
        let relative = PathBuf::from(normalised(&path));
        let file_name = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(hidden) = file_name.strip_prefix(".wh.") {
            let parent = inside(root, relative.parent().unwrap_or(Path::new("")))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if hidden == ".wh..opq" {
                clear_dir(&parent).map_err(|e| format!("{}: {e}", path.display()))?;
            } else {
                remove_any(&parent.join(hidden)).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            continue;
        }
        use tar::EntryType as T;
        match entry.header().entry_type() {
            T::Regular | T::Continuous | T::Directory | T::Symlink | T::Link | T::GNUSparse => {
                if relative.as_os_str().is_empty() {
                    continue;
                }
                entry.unpack_in(root).map_err(|e| {
                    let cause = std::error::Error::source(&e)
                        .map(|c| format!(": {c}"))
                        .unwrap_or_default();
                    format!("{}: {e}{cause}", path.display())
                })?;
            }
            // Devices and FIFOs: the container has the host's /dev.
            _ => {}
        }
    }
    Ok(())
}

/// `root/relative`, resolved, if it stays inside `root` (a symlink may point elsewhere).
fn inside(root: &Path, relative: &Path) -> io::Result<PathBuf> {
    let resolved = root.join(relative).canonicalize()?;
    if resolved.starts_with(root) {
        Ok(resolved)
    } else {
        Err(io::Error::other("a whiteout leads out of the root"))
    }
}

fn clear_dir(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        remove_any(&entry?.path())?;
    }
    Ok(())
}

fn remove_any(path: &Path) -> io::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(error) => Err(error),
    };
    match result {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A header owned by root.
    fn root_header() -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_mode(0o755);
        header
    }

    /// A tar of `(path, contents)` files, directories when the contents are `None`.
    pub(crate) fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents) in entries {
            let mut header = root_header();
            match contents {
                Some(data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(data.len() as u64);
                    header.set_mode(0o755);
                    header.set_cksum();
                    builder.append_data(&mut header, path, *data).unwrap();
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_mode(0o755);
                    header.set_cksum();
                    builder.append_data(&mut header, path, io::empty()).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn sha(data: &[u8]) -> String {
        sha256_text(ring::digest::digest(&SHA256, data).as_ref())
    }

    /// An OCI image layout tarball named `name` with `layers`.
    pub(crate) fn layout(name: &str, layers: &[Vec<u8>]) -> Vec<u8> {
        let config = serde_json::json!({"config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}})
            .to_string()
            .into_bytes();
        let layer_descriptors: Vec<Value> = layers
            .iter()
            .map(|l| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(l), "size": l.len()}))
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
            "layers": layer_descriptors,
        })
        .to_string()
        .into_bytes();
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": sha(&manifest), "size": manifest.len(),
             "annotations": {CONTAINERD_NAME: name}}]})
        .to_string()
        .into_bytes();
        let blob = |data: &[u8]| format!("blobs/sha256/{}", &sha(data)[7..]);
        let mut files: Vec<(String, Vec<u8>)> = vec![
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".into(), index),
            (blob(&manifest), manifest.clone()),
            (blob(&config), config.clone()),
        ];
        files.extend(layers.iter().map(|l| (blob(l), l.clone())));
        let entries: Vec<(&str, Option<&[u8]>)> = files
            .iter()
            .map(|(p, d)| (p.as_str(), Some(d.as_slice())))
            .collect();
        tar_of(&entries)
    }

    #[test]
    fn imports_a_layout_and_lays_its_layers_with_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let base = tar_of(&[
            ("bin", None),
            ("bin/sh", Some(b"shell")),
            ("etc", None),
            ("etc/gone", Some(b"x")),
            ("opaque", None),
            ("opaque/old", Some(b"x")),
        ]);
        let top = tar_of(&[
            ("etc/.wh.gone", Some(b"")),
            ("opaque/.wh..wh..opq", Some(b"")),
            ("opaque/new", Some(b"y")),
        ]);
        let tarball = dir.path().join("image.tar");
        std::fs::write(&tarball, layout("example.org/debug:1", &[base, top])).unwrap();
        let store = dir.path().join("store");
        let image = import(&store, &tarball).unwrap();
        assert_eq!(image.name, "example.org/debug:1");
        assert_eq!(image.default_args(), ["/bin/sh"]);
        assert_eq!(
            find(&store, "example.org/debug:1").unwrap(),
            Some(image.clone())
        );
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        unpack(&image, &rootfs).unwrap();
        assert_eq!(std::fs::read(rootfs.join("bin/sh")).unwrap(), b"shell");
        assert!(!rootfs.join("etc/gone").exists());
        assert!(rootfs.join("etc").is_dir());
        assert!(!rootfs.join("opaque/old").exists());
        assert_eq!(std::fs::read(rootfs.join("opaque/new")).unwrap(), b"y");
    }

    #[test]
    fn refuses_junk_a_damaged_blob_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let junk = dir.path().join("junk.tar");
        std::fs::write(&junk, tar_of(&[("hello.txt", Some(b"hi"))])).unwrap();
        let error = import(&store, &junk).unwrap_err().to_string();
        assert!(error.contains("neither index.json"), "{error}");

        let layer = tar_of(&[("a", Some(b"a"))]);
        let mut bytes = layout("x:1", &[layer]);
        // Flip one byte of the layer's contents ("a" → "b") inside the tarball.
        let at = bytes.windows(1).rposition(|w| w == b"a").unwrap();
        bytes[at] = b'b';
        let damaged = dir.path().join("damaged.tar");
        std::fs::write(&damaged, bytes).unwrap();
        assert!(import(&store, &damaged).is_err());
        assert!(list(&store).unwrap().is_empty());

        // An absolute symlink, then a whiteout and a file through it: both stay inside.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"k").unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = root_header();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, "link", &outside).unwrap();
        let evil = builder.into_inner().unwrap();
        let whiteout = tar_of(&[("link/.wh.keep", Some(b""))]);
        let tarball = dir.path().join("evil.tar");
        std::fs::write(&tarball, layout("evil:1", &[evil, whiteout])).unwrap();
        let image = import(&store, &tarball).unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let error = unpack(&image, &rootfs).unwrap_err().to_string();
        assert!(error.contains("out of the root"), "{error}");
        assert!(outside.join("keep").exists());

        let mut raw = tar::Builder::new(Vec::new());
        let mut header = root_header();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(1);
        header.set_cksum();
        // `append_data` refuses `..`; write the name into the header directly.
        header.as_old_mut().name[..9].copy_from_slice(b"../escape");
        header.set_cksum();
        raw.append(&header, &b"x"[..]).unwrap();
        let escape = raw.into_inner().unwrap();
        let tarball = dir.path().join("escape.tar");
        std::fs::write(&tarball, layout("escape:1", &[escape])).unwrap();
        let image = import(&store, &tarball).unwrap();
        let rootfs = dir.path().join("rootfs2");
        std::fs::create_dir(&rootfs).unwrap();
        let error = unpack(&image, &rootfs).unwrap_err().to_string();
        assert!(error.contains("leads out of the root"), "{error}");
        assert!(!dir.path().join("escape").exists());
    }
}
