//! `talosctl image talos-bundle|k8s-bundle|cache-create`: client-only image lists and the
//! offline image cache, as upstream's.
//!
//! The bundles print upstream's image references (the values of upstream Talos v1.13.0; the
//! Kubernetes version is the project's default, as `gen config` uses). `talos-bundle` lists
//! extensions and overlays by fetching their manifests from ghcr.io, which talos-rs hosts
//! cannot reach: it says so on stderr and prints the rest. `cache-create` pulls images from
//! their registries, which talos-rs hosts cannot reach either: it refuses unless every
//! `--images` entry is a local OCI image layout tarball, whose blobs and manifests it then
//! merges into one OCI image layout directory (`--layout oci`).

use std::collections::BTreeSet;
use std::io::{BufRead as _, Read as _};
use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use machineconfig::generate::{DEFAULT_KUBERNETES_VERSION, DEFAULT_TALOS_VERSION};

/// The registry and user of upstream's images.
const REGISTRY: &str = "ghcr.io/siderolabs";
/// The oldest release `talos-bundle` lists.
const BUNDLE_MINIMUM: semver::Version = semver::Version::new(1, 11, 0);
/// Releases before this one still had the legacy installer image.
const LEGACY_INSTALLER_MAXIMUM: semver::Version = semver::Version::new(1, 14, 0);
/// Upstream v1.13.0's component versions.
const FLANNEL_VERSION: &str = "v0.28.4";
const COREDNS_VERSION: &str = "v1.14.2";
const ETCD_VERSION: &str = "v3.6.9";
const KUBE_NETWORK_POLICIES_VERSION: &str = "v1.0.0";
const SANDBOX_IMAGE: &str = "registry.k8s.io/pause:3.10.1";
/// The largest JSON document read from a tarball.
const JSON_LIMIT: u64 = 1 << 20;

#[derive(Debug, Args)]
pub struct TalosBundleArgs {
    /// The release to list (default: this talosctl's)
    #[arg(value_name = "talos-version")]
    version: Option<String>,
    /// Include images that belong to Talos overlays
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    overlays: bool,
    /// Include images that belong to Talos extensions
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    extensions: bool,
}

#[derive(Debug, Args)]
pub struct K8sBundleArgs {
    /// Kubernetes semantic version
    #[arg(long, value_parser = semver_flag, default_value = DEFAULT_KUBERNETES_VERSION)]
    k8s_version: String,
    /// ETCD semantic version
    #[arg(long, value_parser = semver_flag, default_value = ETCD_VERSION)]
    etcd_version: String,
    /// Flannel CNI semantic version
    #[arg(long, value_parser = semver_flag, default_value = FLANNEL_VERSION)]
    flannel_version: String,
    /// CoreDNS semantic version
    #[arg(long, value_parser = semver_flag, default_value = COREDNS_VERSION)]
    coredns_version: String,
    /// kube-network-policies semantic version
    #[arg(long, value_parser = semver_flag, default_value = KUBE_NETWORK_POLICIES_VERSION)]
    kube_network_policies_version: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CacheLayout {
    Oci,
    Flat,
}

#[derive(Debug, Args)]
pub struct CacheCreateArgs {
    /// directory to save the image cache in OCI format
    #[arg(long, required = true)]
    image_cache_path: PathBuf,
    /// directory to save the image layer cache
    #[arg(long)]
    image_layer_cache_path: Option<PathBuf>,
    /// Specifies the cache layout format: "oci" for an OCI image layout directory, or "flat" for
    /// a registry-like flat file structure
    #[arg(long, value_enum, default_value = "oci")]
    layout: CacheLayout,
    /// platform(s) to cache (e.g. linux/amd64,linux/arm64), or "all" to cache every platform in
    /// the image index
    #[arg(long, value_delimiter = ',', default_value = "linux/amd64")]
    platform: Vec<String>,
    /// images to cache
    #[arg(long, value_delimiter = ',', required = true)]
    images: Vec<String>,
    /// allow insecure registries
    #[arg(long)]
    insecure: bool,
    /// force overwrite of existing image cache
    #[arg(long)]
    force: bool,
    /// pull and cache cosign signatures for images
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    cosign_signatures: bool,
}

/// A version as upstream's flags take it (`1.35`, `v1.35.0`), written back with a `v`.
fn semver_flag(text: &str) -> Result<String, String> {
    parse_tolerant(text).map(|v| format!("v{v}"))
}

/// Parses `v1.2.3`, `1.2`, `1`, with an optional pre-release, as upstream's ParseTolerant.
fn parse_tolerant(text: &str) -> Result<semver::Version, String> {
    let trimmed = text.trim().trim_start_matches('v');
    let (core, rest) = match trimmed.find(['-', '+']) {
        Some(at) => trimmed.split_at(at),
        None => (trimmed, ""),
    };
    let mut parts: Vec<&str> = core.split('.').collect();
    while parts.len() < 3 {
        parts.push("0");
    }
    semver::Version::parse(&format!("{}{rest}", parts.join(".")))
        .map_err(|e| format!("invalid semantic version {text:?}: {e}"))
}

pub fn talos_bundle(args: &TalosBundleArgs) -> anyhow::Result<()> {
    let current = parse_tolerant(DEFAULT_TALOS_VERSION).map_err(anyhow::Error::msg)?;
    let maximum = semver::Version::new(current.major, current.minor + 1, 0);
    let tag = match &args.version {
        None => DEFAULT_TALOS_VERSION.to_string(),
        Some(tag) => {
            anyhow::ensure!(
                tag.starts_with('v'),
                "invalid tag {tag:?}: must have \"v\" prefix"
            );
            let version = parse_tolerant(tag).map_err(|_| {
                anyhow::anyhow!("invalid argument {tag:?}: tag must be a valid semver")
            })?;
            // Pre-releases of the minimum count (upstream's minimum is 1.11.0-alpha.0).
            let base = semver::Version::new(version.major, version.minor, version.patch);
            anyhow::ensure!(
                base >= BUNDLE_MINIMUM && version < maximum,
                "invalid tag {tag:?}: must be between v{BUNDLE_MINIMUM}-alpha.0 (inclusive) and \
                 v{maximum} (exclusive)"
            );
            tag.clone()
        }
    };
    let version = parse_tolerant(&tag).map_err(anyhow::Error::msg)?;
    let mut names = Vec::new();
    if semver::Version::new(version.major, version.minor, version.patch) < LEGACY_INSTALLER_MAXIMUM
    {
        names.push("installer");
    }
    names.extend([
        "installer-base",
        "imager",
        "talos",
        "talosctl-all",
        "overlays",
        "extensions",
    ]);
    for name in names {
        println!("{REGISTRY}/{name}:{tag}");
    }
    for (wanted, what) in [(args.extensions, "extensions"), (args.overlays, "overlays")] {
        if wanted {
            eprintln!(
                "note: the official {what} of {tag} are listed in {REGISTRY}/{what}:{tag}, which \
                 talos-rs hosts cannot reach: not listed (--{what}=false to skip)"
            );
        }
    }
    Ok(())
}

pub fn k8s_bundle(args: &K8sBundleArgs) -> anyhow::Result<()> {
    let k8s = &args.k8s_version;
    for image in [
        format!("{REGISTRY}/flannel:{}", args.flannel_version),
        format!("registry.k8s.io/coredns/coredns:{}", args.coredns_version),
        format!("registry.k8s.io/etcd:{}", args.etcd_version),
        SANDBOX_IMAGE.to_string(),
        format!("registry.k8s.io/kube-apiserver:{k8s}"),
        format!("registry.k8s.io/kube-controller-manager:{k8s}"),
        format!("registry.k8s.io/kube-scheduler:{k8s}"),
        format!("registry.k8s.io/kube-proxy:{k8s}"),
        format!("{REGISTRY}/kubelet:{k8s}"),
        format!(
            "registry.k8s.io/networking/kube-network-policies:{}",
            args.kube_network_policies_version
        ),
    ] {
        println!("{image}");
    }
    Ok(())
}

pub fn cache_create(args: &CacheCreateArgs) -> anyhow::Result<()> {
    let mut images = args.images.clone();
    if images.first().map(String::as_str) == Some("-") {
        images = std::io::stdin()
            .lock()
            .lines()
            .map(|line| line.map(|l| l.trim().to_string()))
            .collect::<Result<Vec<_>, _>>()
            .context("reading the images from stdin")?;
        images.retain(|line| !line.is_empty());
    }
    anyhow::ensure!(!images.is_empty(), "no images specified");
    let path = &args.image_cache_path;
    if args.force {
        match std::fs::remove_dir_all(path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(error).with_context(|| {
                    format!(
                        "error removing existing image cache path {}",
                        path.display()
                    )
                });
            }
            _ => {}
        }
    }
    anyhow::ensure!(
        !path.exists(),
        "image cache path {} already exists, use --force to remove and use the path",
        path.display()
    );
    if let Some(remote) = images.iter().find(|image| !Path::new(image).is_file()) {
        anyhow::bail!(
            "cannot cache {remote}: cache-create pulls images from their registries, which \
             talos-rs hosts cannot reach; pass OCI image layout tarballs (--images=FILE.tar) \
             instead"
        );
    }
    anyhow::ensure!(
        args.layout == CacheLayout::Oci,
        "--layout flat needs the images' registries, which talos-rs hosts cannot reach: use \
         --layout oci with local tarballs"
    );
    let staging = path.with_extension("partial");
    let _ = std::fs::remove_dir_all(&staging);
    let built = build_layout(&images, &staging);
    match built {
        Ok(()) => std::fs::rename(&staging, path)
            .with_context(|| format!("moving the cache to {}", path.display())),
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

/// Merges the OCI image layout tarballs `tarballs` into the layout directory `dir`.
fn build_layout(tarballs: &[String], dir: &Path) -> anyhow::Result<()> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    let mut manifests = Vec::new();
    let mut seen = BTreeSet::new();
    for tarball in tarballs {
        let mut index = None;
        let file = std::fs::File::open(tarball).with_context(|| format!("opening {tarball}"))?;
        let mut archive = tar::Archive::new(std::io::BufReader::new(file));
        for entry in archive
            .entries()
            .with_context(|| format!("reading {tarball}"))?
        {
            let mut entry = entry.with_context(|| format!("reading {tarball}"))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path()?.into_owned();
            let parts: Vec<String> = path
                .components()
                .filter_map(|c| match c {
                    Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            match parts.as_slice() {
                [name] if name == "index.json" => {
                    anyhow::ensure!(
                        entry.size() <= JSON_LIMIT,
                        "{tarball}: index.json is too large"
                    );
                    let mut text = Vec::new();
                    entry.read_to_end(&mut text)?;
                    index = Some(
                        serde_json::from_slice::<Value>(&text)
                            .with_context(|| format!("{tarball}: index.json"))?,
                    );
                }
                [b, algorithm, hex]
                    if b == "blobs"
                        && algorithm == "sha256"
                        && hex.len() == 64
                        && hex.bytes().all(|c| c.is_ascii_hexdigit()) =>
                {
                    let target = blobs.join(hex);
                    if !target.exists() {
                        entry
                            .unpack(&target)
                            .with_context(|| format!("{tarball}: writing {}", target.display()))?;
                    }
                }
                _ => {}
            }
        }
        let index = index.with_context(|| {
            format!("{tarball} is not an OCI image layout tarball (no index.json)")
        })?;
        for manifest in index["manifests"].as_array().into_iter().flatten() {
            let digest = manifest["digest"].as_str().unwrap_or_default().to_string();
            if seen.insert(digest) {
                manifests.push(manifest.clone());
            }
        }
    }
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    std::fs::write(dir.join("index.json"), serde_json::to_vec_pretty(&index)?)?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_upstreams_flags_read_them() {
        assert_eq!(semver_flag("1.35").unwrap(), "v1.35.0");
        assert_eq!(semver_flag("v3.6.9").unwrap(), "v3.6.9");
        assert_eq!(semver_flag("1.36.0-alpha.1").unwrap(), "v1.36.0-alpha.1");
        assert!(semver_flag("latest").is_err());
    }
}
