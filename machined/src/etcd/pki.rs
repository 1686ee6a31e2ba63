//! etcd's certificates, issued on the node from `cluster.etcd.ca`: server and peer certificates
//! (ServerAuth + ClientAuth, the node's address, 127.0.0.1, localhost and hostname as SANs) and
//! an admin client certificate machined uses to talk to etcd. Keys follow the CA's algorithm
//! (ECDSA P-256 for upstream's etcd CA).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use atomicfile::Overwrite;
use pki::{
    CertificateAuthority, ExtendedKeyUsage, LeafCertificate, PemCertificateAndKey, SubjectAltNames,
    Validity,
};

use crate::error::MachinedError;

/// Lifetime of the certificates issued here (re-issued at every start of etcd).
const TTL: time::Duration = time::Duration::hours(24 * 365);

/// Where etcd's certificates live.
#[derive(Clone, Debug)]
pub struct EtcdPki {
    dir: PathBuf,
}

impl EtcdPki {
    pub fn new(dir: PathBuf) -> Self {
        EtcdPki { dir }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn server(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("server.crt"), self.dir.join("server.key"))
    }
    pub fn peer(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("peer.crt"), self.dir.join("peer.key"))
    }
    pub fn admin(&self) -> (PathBuf, PathBuf) {
        (self.dir.join("admin.crt"), self.dir.join("admin.key"))
    }

    /// Issues and writes every certificate for a node named `hostname` at `address`.
    pub fn issue(
        &self,
        ca: &PemCertificateAndKey,
        hostname: &str,
        address: IpAddr,
    ) -> Result<(), MachinedError> {
        let authority = CertificateAuthority::from_pair(ca)?;
        let names = SubjectAltNames {
            dns_names: vec![hostname.to_string(), "localhost".to_string()],
            ip_addresses: vec![address, IpAddr::from([127, 0, 0, 1])],
        };
        let both = [ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth];
        let client = [ExtendedKeyUsage::ClientAuth];
        let no_names = SubjectAltNames::default();
        std::fs::create_dir_all(&self.dir).map_err(MachinedError::io("creating", &self.dir))?;
        write(&self.ca(), authority.certificate_pem(), 0o644)?;
        for ((crt, key), common_name, usages, names) in [
            (self.server(), hostname, &both[..], &names),
            (self.peer(), hostname, &both[..], &names),
            (self.admin(), "talos-rs", &client[..], &no_names),
        ] {
            let leaf = LeafCertificate {
                common_name,
                organizations: &[],
                extended_key_usages: usages,
                subject_alt_names: names,
                key_encipherment: true,
            };
            let issued = authority.issue_leaf(&leaf, Validity::from_now(TTL))?;
            write(&crt, issued.crt.as_deref().unwrap_or_default(), 0o644)?;
            write(&key, issued.key.as_deref().unwrap_or_default(), 0o600)?;
        }
        Ok(())
    }

    /// Whether every certificate here is valid by the clock now.
    pub fn valid_now(&self) -> bool {
        let now = time::OffsetDateTime::now_utc();
        [self.server().0, self.peer().0, self.admin().0]
            .iter()
            .all(|crt| {
                std::fs::read_to_string(crt).is_ok_and(|pem| {
                    pki::CertificateInfo::from_pem(&pem)
                        .is_ok_and(|info| info.check_validity(now).is_ok())
                })
            })
    }

    /// The admin client identity (certificate and key PEM) and the CA.
    pub fn admin_identity(&self) -> Result<(String, String, String), MachinedError> {
        let read =
            |path: &Path| std::fs::read_to_string(path).map_err(MachinedError::io("reading", path));
        let (crt, key) = self.admin();
        Ok((read(&self.ca())?, read(&crt)?, read(&key)?))
    }
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), MachinedError> {
    Ok(atomicfile::write(
        path,
        text.as_bytes(),
        mode,
        Overwrite::Allow,
    )?)
}
