//! The `Kubeconfig` RPC's payload: a gzip-compressed tar holding one regular file named
//! `kubeconfig` (mode 0600), streamed as `common.Data` chunks.

use std::io::Read as _;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use machineconfig::Config;
use time::{Duration, OffsetDateTime};

use crate::KubernetesError;
use crate::kubeconfig::admin_kubeconfig;

/// The entry's name inside the archive.
pub const KUBECONFIG_ENTRY: &str = "kubeconfig";

/// A gzip tar with one regular file `kubeconfig` (mode 0600, modified now) holding `contents`.
pub fn kubeconfig_tar_gz(contents: &[u8]) -> Result<Vec<u8>, KubernetesError> {
    let io = |step| move |source| KubernetesError::Archive { step, source };
    let mut header = tar::Header::new_ustar();
    header
        .set_path(KUBECONFIG_ENTRY)
        .map_err(io("naming the entry"))?;
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o600);
    header.set_size(contents.len() as u64);
    header.set_mtime(u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0));
    header.set_cksum();
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    builder
        .append(&header, contents)
        .map_err(io("writing the entry"))?;
    builder
        .into_inner()
        .map_err(io("finishing the tar stream"))?
        .finish()
        .map_err(io("finishing the gzip stream"))
}

/// The contents of the regular file `kubeconfig` in a gzip tar (the client's side of the
/// `Kubeconfig` RPC).
pub fn extract_kubeconfig(tar_gz: &[u8]) -> Result<Vec<u8>, KubernetesError> {
    let io = |step| move |source| KubernetesError::Archive { step, source };
    let mut archive = tar::Archive::new(GzDecoder::new(tar_gz));
    let mut names = Vec::new();
    for entry in archive.entries().map_err(io("reading the tar stream"))? {
        let mut entry = entry.map_err(io("reading the tar stream"))?;
        let name = entry
            .path()
            .map_err(io("reading an entry name"))?
            .to_string_lossy()
            .into_owned();
        let is_file = entry.header().entry_type().is_file();
        if is_file && name.trim_start_matches("./") == KUBECONFIG_ENTRY {
            let mut contents = Vec::new();
            entry
                .read_to_end(&mut contents)
                .map_err(io("reading the kubeconfig entry"))?;
            return Ok(contents);
        }
        names.push(name);
    }
    Err(KubernetesError::NoKubeconfigInArchive {
        entries: if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        },
    })
}

/// What machined streams for the `Kubeconfig` RPC: [`admin_kubeconfig`] with a client
/// certificate valid for `ttl`, packed by [`kubeconfig_tar_gz`].
pub fn admin_kubeconfig_tar_gz(config: &Config, ttl: Duration) -> Result<Vec<u8>, KubernetesError> {
    kubeconfig_tar_gz(admin_kubeconfig(config, ttl)?.as_bytes())
}
