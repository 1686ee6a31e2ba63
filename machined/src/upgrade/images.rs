//! The node's installer images: imported tarballs unpacked into `<image_dir>/<id>/`
//! (`vmlinuz`, `initramfs.img`, `image.json`), found again by name or digest. An image is
//! stored only once its signature checks out ([`super::verify`]), so Upgrade installs only
//! verified images.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::MachinedError;

/// The largest image tarball accepted.
pub const MAX_IMPORT_SIZE: u64 = 1 << 30;

/// One stored image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredImage {
    pub name: String,
    pub digest: String,
    pub release: String,
    pub size: u64,
    /// Seconds since the epoch.
    pub imported: i64,
    #[serde(skip)]
    pub dir: PathBuf,
}

impl StoredImage {
    pub fn kernel(&self) -> PathBuf {
        self.dir.join("vmlinuz")
    }
    pub fn initramfs(&self) -> PathBuf {
        self.dir.join("initramfs.img")
    }
}

/// What an import found.
#[derive(Debug)]
pub enum Imported {
    Installer(StoredImage),
    /// The tarball is not an installer (why): nothing was stored.
    NotInstaller(String),
}

/// Unpacks the tarball `tarball` (received whole) into the store once `verify` accepts it;
/// replaces an image of the same name. Blocking.
pub fn import(
    store: &Path,
    tarball: &Path,
    verify: impl FnOnce(&installer::Unpacked) -> Result<(), MachinedError>,
) -> Result<Imported, MachinedError> {
    let staging = store.join(format!(".import-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&staging).map_err(MachinedError::io("creating", &staging))?;
    let unpacked = match installer::unpack(tarball, &staging, installer::Limits::default()) {
        Ok(unpacked) => unpacked,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return match error {
                installer::InstallerError::Invalid(_) | installer::InstallerError::Io { .. } => {
                    Ok(Imported::NotInstaller(error.to_string()))
                }
                other => Err(MachinedError::InvalidArgument(other.to_string())),
            };
        }
    };
    if let Err(error) = verify(&unpacked) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(error);
    }
    let dir = store.join(dir_name(&unpacked.digest));
    let image = StoredImage {
        name: unpacked.name,
        digest: unpacked.digest,
        release: unpacked.release,
        size: unpacked.size,
        imported: time::OffsetDateTime::now_utc().unix_timestamp(),
        dir,
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
    Ok(Imported::Installer(image))
}

/// An image of a store laid out as `<store>/<digest>/image.json` (dot folders are imports in
/// progress): the installers here, the debug images of [`crate::debug_image`].
pub trait StoredEntry: serde::de::DeserializeOwned {
    fn name(&self) -> &str;
    fn digest(&self) -> &str;
    /// Records the folder the entry was read from (not part of its `image.json`).
    fn set_dir(&mut self, dir: PathBuf);
}

impl StoredEntry for StoredImage {
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

/// Every entry of `store` whose `image.json` reads, by name.
pub fn list_store<T: StoredEntry>(store: &Path) -> Result<Vec<T>, MachinedError> {
    let entries = match std::fs::read_dir(store) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(MachinedError::io("reading", store)(error)),
    };
    let mut images: Vec<T> = Vec::new();
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let dir = entry.path();
        let Ok(text) = std::fs::read(dir.join("image.json")) else {
            continue;
        };
        if let Ok(mut image) = serde_json::from_slice::<T>(&text) {
            image.set_dir(dir);
            images.push(image);
        }
    }
    images.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(images)
}

/// The entry of `store` named `reference` (its name or digest).
pub fn find_in_store<T: StoredEntry>(
    store: &Path,
    reference: &str,
) -> Result<Option<T>, MachinedError> {
    Ok(list_store::<T>(store)?
        .into_iter()
        .find(|image| image.name() == reference || image.digest() == reference))
}

/// Every stored installer, by name.
pub fn list(store: &Path) -> Result<Vec<StoredImage>, MachinedError> {
    list_store(store)
}

/// The installer named `reference` (its name or digest).
pub fn find(store: &Path, reference: &str) -> Result<Option<StoredImage>, MachinedError> {
    find_in_store(store, reference)
}

fn dir_name(digest: &str) -> String {
    digest.replace(':', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_lists_finds_and_replaces_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("images");
        let write = |release: &str| {
            let path = dir.path().join(format!("{release}.tar"));
            installer::write(
                std::fs::File::create(&path).unwrap(),
                &installer::Installer {
                    name: "talos-rs/installer:latest",
                    release,
                    kernel: b"k",
                    initramfs: release.as_bytes(),
                    signer: None,
                },
            )
            .unwrap();
            path
        };
        let installer = |imported| match imported {
            Imported::Installer(image) => image,
            Imported::NotInstaller(why) => panic!("{why}"),
        };
        let first = installer(import(&store, &write("v1"), accept).unwrap());
        assert_eq!(
            find(&store, "talos-rs/installer:latest").unwrap(),
            Some(first.clone())
        );
        assert_eq!(find(&store, &first.digest).unwrap().unwrap().release, "v1");
        let second = installer(import(&store, &write("v2"), accept).unwrap());
        let all = list(&store).unwrap();
        assert_eq!(all, vec![second.clone()]);
        assert_eq!(std::fs::read(second.initramfs()).unwrap(), b"v2");

        let junk = dir.path().join("junk.tar");
        std::fs::write(&junk, b"not a tarball at all").unwrap();
        let Imported::NotInstaller(why) = import(&store, &junk, accept).unwrap() else {
            panic!("junk taken for an installer");
        };
        assert!(why.contains("installer"), "{why}");
        assert_eq!(list(&store).unwrap().len(), 1);
    }

    fn accept(_: &installer::Unpacked) -> Result<(), MachinedError> {
        Ok(())
    }

    #[test]
    fn a_refused_image_leaves_the_store_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("images");
        let path = dir.path().join("unsigned.tar");
        installer::write(
            std::fs::File::create(&path).unwrap(),
            &installer::Installer {
                name: "talos-rs/installer:v1",
                release: "v1",
                kernel: b"k",
                initramfs: b"i",
                signer: None,
            },
        )
        .unwrap();
        let key = cosign::SigningKey::generate().unwrap();
        let root = dir.path().join("root");
        let key_file = root.join(super::super::verify::DEFAULT_KEY);
        std::fs::create_dir_all(key_file.parent().unwrap()).unwrap();
        std::fs::write(&key_file, key.public_key().to_pem()).unwrap();
        let error = import(&store, &path, |unpacked| {
            let policy = super::super::verify::policy(&unpacked.name, None, &root)?;
            super::super::verify::check(unpacked, &policy)
        })
        .unwrap_err();
        assert!(error.to_string().contains("not signed"), "{error}");
        assert!(list(&store).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(&store).unwrap().count(), 0);
    }
}
