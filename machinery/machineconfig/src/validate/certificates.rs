//! Certificate contents: every CA in the config must parse, be a CA, be valid now, and match
//! its key where a key is given; keys must parse.

use pki::{CertificateInfo, PemCertificateAndKey, PrivateKey};
use time::{Duration, OffsetDateTime};

/// How far in the future a certificate's validity may start and still be accepted.
const CLOCK_SKEW: Duration = Duration::seconds(60);

use super::Findings;
use crate::v1alpha1::V1Alpha1Config;

pub(super) fn check(config: &V1Alpha1Config, now: OffsetDateTime, f: &mut Findings) {
    if let Some(machine) = &config.machine {
        if let Some(ca) = &machine.ca {
            check_authority("machine.ca", ca, now, f);
        }
        for (i, accepted) in machine.accepted_cas.iter().enumerate() {
            if let Some(crt) = &accepted.crt {
                check_certificate(&format!("machine.acceptedCAs[{i}].crt"), crt, now, f);
            }
        }
    }
    let Some(cluster) = &config.cluster else {
        return;
    };
    let authorities = [
        ("cluster.ca", cluster.ca.as_ref()),
        ("cluster.aggregatorCA", cluster.aggregator_ca.as_ref()),
        (
            "cluster.etcd.ca",
            cluster.etcd.as_ref().and_then(|etcd| etcd.ca.as_ref()),
        ),
    ];
    for (path, pair) in authorities {
        if let Some(pair) = pair {
            check_authority(path, pair, now, f);
        }
    }
    for (i, accepted) in cluster.accepted_cas.iter().enumerate() {
        if let Some(crt) = &accepted.crt {
            check_certificate(&format!("cluster.acceptedCAs[{i}].crt"), crt, now, f);
        }
    }
    if let Some(key) = cluster
        .service_account
        .as_ref()
        .and_then(|sa| sa.key.as_ref())
        && let Err(e) = PrivateKey::from_pem(key)
    {
        f.error("cluster.serviceAccount.key", e.to_string());
    }
}

/// A CA certificate and (optionally) its key.
fn check_authority(path: &str, pair: &PemCertificateAndKey, now: OffsetDateTime, f: &mut Findings) {
    let certificate = pair
        .crt
        .as_deref()
        .and_then(|crt| check_certificate(&format!("{path}.crt"), crt, now, f));
    let Some(key_pem) = &pair.key else {
        return;
    };
    match PrivateKey::from_pem(key_pem) {
        Err(e) => f.error(format!("{path}.key"), e.to_string()),
        Ok(key) => {
            if let Some(info) = certificate
                && !info.matches_key(&key)
            {
                f.error(path, "certificate does not match its key");
            }
        }
    }
}

/// Parses a CA certificate and checks it is a CA and valid at `now`.
fn check_certificate(
    path: &str,
    crt: &str,
    now: OffsetDateTime,
    f: &mut Findings,
) -> Option<CertificateInfo> {
    let info = match CertificateInfo::from_pem(crt) {
        Ok(info) => info,
        Err(e) => {
            f.error(path, e.to_string());
            return None;
        }
    };
    if !info.is_ca {
        f.error(path, "certificate is not a CA");
    }
    // A CA made moments ago elsewhere is not refused on a node whose clock runs slightly behind
    // (a VM's clock starts from an RTC with whole seconds): its validity may start up to
    // CLOCK_SKEW in the future.
    let at = if now < info.not_before && info.not_before <= now + CLOCK_SKEW {
        info.not_before
    } else {
        now
    };
    if let Err(e) = info.check_validity(at) {
        f.error(path, e.to_string());
    }
    Some(info)
}
