//! apid's TLS material, written by machined into apid's TLS directory: `ca.crt` (the CAs
//! accepted for client certificates), `server.crt`/`server.key`, and on control planes
//! `client.crt`/`client.key` (Organization `os:impersonator`, for forwarding to other nodes).
//!
//! With a config, control planes issue everything from `machine.ca`. Workers get their serving
//! certificate from trustd, which is not part of talos-rs yet: they are refused here. Without a
//! config (maintenance) a throw-away CA is made per boot and no client certificate is asked for.

use std::net::IpAddr;
use std::path::Path;

use atomicfile::Overwrite;
use machineconfig::Config;
use pki::{CertificateAuthority, PemCertificateAndKey, SubjectAltNames, Validity};

use crate::error::MachinedError;

/// Everything apid needs to serve, and which mode it serves in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApidTls {
    pub maintenance: bool,
    accepted_cas: String,
    server: PemCertificateAndKey,
    client: Option<PemCertificateAndKey>,
}

/// What the certificates are issued for; new certificates are issued only when it changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInputs {
    pub hostname: String,
    pub addresses: Vec<IpAddr>,
    /// `machine.ca`, `machine.acceptedCAs` and `machine.certSANs` of the active config; `None`
    /// in maintenance.
    pub config: Option<(PemCertificateAndKey, Vec<String>, Vec<String>)>,
}

impl TlsInputs {
    pub fn new(hostname: String, addresses: Vec<IpAddr>, config: Option<&Config>) -> Self {
        let config = config
            .and_then(|c| c.v1alpha1.as_ref()?.machine.as_ref())
            .map(|machine| {
                let accepted = machine
                    .accepted_cas
                    .iter()
                    .filter_map(|ca| ca.crt.clone())
                    .collect();
                (
                    machine.ca.clone().unwrap_or_default(),
                    accepted,
                    machine.cert_sans.clone(),
                )
            });
        TlsInputs {
            hostname,
            addresses,
            config,
        }
    }

    /// Issues apid's certificates for these inputs.
    pub fn issue(&self) -> Result<ApidTls, MachinedError> {
        let validity = Validity::from_now(pki::SERVER_CERTIFICATE_TTL);
        let Some((ca, accepted, cert_sans)) = &self.config else {
            let ca = pki::generate_ca(pki::CaKind::Talos, Validity::from_now(pki::CA_TTL))?;
            let authority = CertificateAuthority::from_pair(&ca)?;
            let server = authority.issue_server_certificate(
                &self.hostname,
                &self.subject_alt_names(&[]),
                validity,
            )?;
            return Ok(ApidTls {
                maintenance: true,
                accepted_cas: String::new(),
                server,
                client: None,
            });
        };
        if ca.key.is_none() {
            return Err(MachinedError::FailedPrecondition(
                "worker nodes get their apid certificate from trustd, which talos-rs does not \
                 provide yet: run control plane configs"
                    .into(),
            ));
        }
        let authority = CertificateAuthority::from_pair(ca)?;
        let server = authority.issue_server_certificate(
            &self.hostname,
            &self.subject_alt_names(cert_sans),
            validity,
        )?;
        let client = authority.issue_client_certificate(
            &self.hostname,
            &["os:impersonator".to_string()],
            validity,
        )?;
        let mut accepted_cas = authority.certificate_pem().to_string();
        for crt in accepted {
            accepted_cas.push_str(crt);
        }
        Ok(ApidTls {
            maintenance: false,
            accepted_cas,
            server,
            client: Some(client),
        })
    }

    /// `machine.certSANs`, the node's addresses, 127.0.0.1 and the hostname.
    fn subject_alt_names(&self, cert_sans: &[String]) -> SubjectAltNames {
        let mut names = SubjectAltNames::default();
        let loopback = IpAddr::from([127, 0, 0, 1]);
        for ip in self.addresses.iter().copied().chain([loopback]) {
            if !names.ip_addresses.contains(&ip) {
                names.ip_addresses.push(ip);
            }
        }
        for san in cert_sans.iter().chain([&self.hostname]) {
            match san.parse::<IpAddr>() {
                Ok(ip) if !names.ip_addresses.contains(&ip) => names.ip_addresses.push(ip),
                Ok(_) => {}
                Err(_) if !names.dns_names.contains(san) => names.dns_names.push(san.clone()),
                Err(_) => {}
            }
        }
        names
    }
}

impl ApidTls {
    /// Writes the files atomically into `dir` (keys 0600); files this mode does not use
    /// (`ca.crt` in maintenance, the client pair on workers and in maintenance) are removed.
    pub fn write(&self, dir: &Path) -> Result<(), MachinedError> {
        let accepted = (!self.accepted_cas.is_empty()).then_some(self.accepted_cas.as_str());
        let client = self.client.as_ref().map(pem_pair);
        let (server_crt, server_key) = pem_pair(&self.server);
        let files = [
            ("server.crt", Some(server_crt), 0o644),
            ("server.key", Some(server_key), 0o600),
            ("ca.crt", accepted, 0o644),
            ("client.crt", client.map(|(crt, _)| crt), 0o644),
            ("client.key", client.map(|(_, key)| key), 0o600),
        ];
        for (name, contents, mode) in files {
            let path = dir.join(name);
            match contents {
                Some(contents) => {
                    atomicfile::write(&path, contents.as_bytes(), mode, Overwrite::Allow)?
                }
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(MachinedError::io("removing", path)(e));
                    }
                    _ => {}
                },
            }
        }
        Ok(())
    }
}

fn pem_pair(pair: &PemCertificateAndKey) -> (&str, &str) {
    (
        pair.crt.as_deref().unwrap_or_default(),
        pair.key.as_deref().unwrap_or_default(),
    )
}
