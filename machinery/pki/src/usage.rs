//! Extended key usages (RFC 5280 §4.2.1.12).

use std::fmt;

/// One purpose in a certificate's ExtendedKeyUsage extension.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ExtendedKeyUsage {
    /// `anyExtendedKeyUsage`.
    Any,
    /// TLS server authentication (`id-kp-serverAuth`).
    ServerAuth,
    /// TLS client authentication (`id-kp-clientAuth`); apid requires exactly this one.
    ClientAuth,
    /// `id-kp-codeSigning`.
    CodeSigning,
    /// `id-kp-emailProtection`.
    EmailProtection,
    /// `id-kp-timeStamping`.
    TimeStamping,
    /// `id-kp-OCSPSigning`.
    OcspSigning,
    /// Any other purpose, as a dotted OID.
    Other(String),
}

impl ExtendedKeyUsage {
    /// The purpose's OID as arcs, or `None` for an [`ExtendedKeyUsage::Other`] that is not a
    /// dotted OID.
    pub(crate) fn oid(&self) -> Option<Vec<u64>> {
        let kp = |n: u64| Some(vec![1, 3, 6, 1, 5, 5, 7, 3, n]);
        match self {
            ExtendedKeyUsage::Any => Some(vec![2, 5, 29, 37, 0]),
            ExtendedKeyUsage::ServerAuth => kp(1),
            ExtendedKeyUsage::ClientAuth => kp(2),
            ExtendedKeyUsage::CodeSigning => kp(3),
            ExtendedKeyUsage::EmailProtection => kp(4),
            ExtendedKeyUsage::TimeStamping => kp(8),
            ExtendedKeyUsage::OcspSigning => kp(9),
            ExtendedKeyUsage::Other(dotted) => dotted
                .split('.')
                .map(|arc| arc.parse().ok())
                .collect::<Option<Vec<u64>>>()
                .filter(|arcs| arcs.len() >= 2),
        }
    }

    /// The purposes listed in a parsed ExtendedKeyUsage extension, in a fixed order.
    pub(crate) fn from_parsed(parsed: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<Self> {
        let flags = [
            (parsed.any, ExtendedKeyUsage::Any),
            (parsed.server_auth, ExtendedKeyUsage::ServerAuth),
            (parsed.client_auth, ExtendedKeyUsage::ClientAuth),
            (parsed.code_signing, ExtendedKeyUsage::CodeSigning),
            (parsed.email_protection, ExtendedKeyUsage::EmailProtection),
            (parsed.time_stamping, ExtendedKeyUsage::TimeStamping),
            (parsed.ocsp_signing, ExtendedKeyUsage::OcspSigning),
        ];
        let known = flags
            .into_iter()
            .filter_map(|(present, usage)| present.then_some(usage));
        let others = parsed
            .other
            .iter()
            .map(|oid| ExtendedKeyUsage::Other(oid.to_id_string()));
        known.chain(others).collect()
    }
}

impl fmt::Display for ExtendedKeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtendedKeyUsage::Any => f.write_str("Any"),
            ExtendedKeyUsage::ServerAuth => f.write_str("ServerAuth"),
            ExtendedKeyUsage::ClientAuth => f.write_str("ClientAuth"),
            ExtendedKeyUsage::CodeSigning => f.write_str("CodeSigning"),
            ExtendedKeyUsage::EmailProtection => f.write_str("EmailProtection"),
            ExtendedKeyUsage::TimeStamping => f.write_str("TimeStamping"),
            ExtendedKeyUsage::OcspSigning => f.write_str("OCSPSigning"),
            ExtendedKeyUsage::Other(oid) => f.write_str(oid),
        }
    }
}
