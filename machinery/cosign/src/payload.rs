//! Simple-signing payloads: what cosign signs for a container image.

use serde_json::{Value, json};

use crate::{CosignError, MAX_INPUT};

/// `critical.type` of a cosign image signature payload.
const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The payload cosign signs for the image `repository` (registry and repository, no tag) at
/// manifest digest `digest` (`sha256:<hex>`).
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    let document = json!({
        "critical": {
            "identity": { "docker-reference": repository },
            "image": { "docker-manifest-digest": digest },
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    });
    document.to_string().into_bytes()
}

/// The manifest digest a payload vouches for; an error unless it is a cosign image payload.
pub fn payload_digest(payload: &[u8]) -> Result<String, CosignError> {
    if payload.len() > MAX_INPUT {
        return Err(CosignError::Payload("is larger than 64 KiB".into()));
    }
    let document: Value = serde_json::from_slice(payload)
        .map_err(|e| CosignError::Payload(format!("is not JSON: {e}")))?;
    let critical = &document["critical"];
    if critical["type"] != SIGNATURE_TYPE {
        return Err(CosignError::Payload(format!(
            "has critical.type {}, not {SIGNATURE_TYPE:?}",
            critical["type"]
        )));
    }
    critical["image"]["docker-manifest-digest"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CosignError::Payload("has no critical.image.docker-manifest-digest".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_cosign_s_and_reads_back() {
        let text = payload("ghcr.io/talos-rs/installer", "sha256:ab");
        assert_eq!(
            String::from_utf8(text.clone()).unwrap(),
            "{\"critical\":{\"identity\":{\"docker-reference\":\"ghcr.io/talos-rs/installer\"},\
             \"image\":{\"docker-manifest-digest\":\"sha256:ab\"},\
             \"type\":\"cosign container image signature\"},\"optional\":null}"
        );
        assert_eq!(payload_digest(&text).unwrap(), "sha256:ab");
    }

    #[test]
    fn other_payloads_are_refused() {
        assert!(payload_digest(b"[]").is_err());
        assert!(payload_digest(b"not json").is_err());
        let other = br#"{"critical":{"type":"something else","image":{"docker-manifest-digest":"sha256:ab"}}}"#;
        let error = payload_digest(other).unwrap_err().to_string();
        assert!(error.contains("something else"), "{error}");
    }
}
