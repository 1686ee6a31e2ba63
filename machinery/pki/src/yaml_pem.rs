//! Certificates and keys as they appear in YAML (machine config, secrets bundle, talosconfig):
//! each value is the base64 of the PEM text. In memory the PEM text itself is kept.
//! An empty string in YAML means "absent" (workers carry `key: ""`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A certificate and its private key, both optional (a worker's `machine.ca` has no key).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemCertificateAndKey {
    /// PEM text of the certificate.
    #[serde(default, with = "base64_pem", skip_serializing_if = "Option::is_none")]
    pub crt: Option<String>,
    /// PEM text of the private key.
    #[serde(default, with = "base64_pem", skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A certificate alone (accepted CAs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemCertificate {
    /// PEM text of the certificate.
    #[serde(default, with = "base64_pem", skip_serializing_if = "Option::is_none")]
    pub crt: Option<String>,
}

/// A private key alone (the Kubernetes service-account key).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PemKey {
    /// PEM text of the key.
    #[serde(default, with = "base64_pem", skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

mod base64_pem {
    use super::*;

    pub fn serialize<S: Serializer>(pem: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match pem {
            Some(text) => s.serialize_str(&STANDARD.encode(text)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let Some(encoded) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        if encoded.is_empty() {
            return Ok(None);
        }
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|e| serde::de::Error::custom(format!("not valid base64: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| serde::de::Error::custom("base64 does not decode to PEM text"))?;
        if !text.contains("-----BEGIN ") {
            return Err(serde::de::Error::custom(
                "base64 does not decode to PEM text (no -----BEGIN line)",
            ));
        }
        Ok(Some(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    #[test]
    fn round_trips_as_base64_of_pem() {
        let pair = PemCertificateAndKey {
            crt: Some(PEM.to_string()),
            key: None,
        };
        let yaml = serde_norway::to_string(&pair).unwrap();
        assert_eq!(yaml.trim(), format!("crt: {}", STANDARD.encode(PEM)));
        assert_eq!(
            serde_norway::from_str::<PemCertificateAndKey>(&yaml).unwrap(),
            pair
        );
    }

    #[test]
    fn empty_string_is_absent_and_garbage_is_rejected() {
        let pair: PemCertificateAndKey = serde_norway::from_str("crt: \"\"\nkey: \"\"").unwrap();
        assert_eq!(pair, PemCertificateAndKey::default());
        let err = serde_norway::from_str::<PemKey>("key: '%%%'").unwrap_err();
        assert!(err.to_string().contains("not valid base64"), "{err}");
        let err = serde_norway::from_str::<PemKey>(&format!("key: {}", STANDARD.encode("hello")))
            .unwrap_err();
        assert!(err.to_string().contains("PEM"), "{err}");
        assert!(serde_norway::from_str::<PemKey>("key: x\nother: 1").is_err());
    }
}
