//! Oracle Cloud Infrastructure: IMDS v2, every request with `Authorization: Bearer Oracle`:
//! `/opc/v2/instance/` (JSON: hostname, id, shape, canonical region, availability and fault
//! domain, `metadata.user_data` in base64) and `/opc/v2/vnics/` (per VNIC its MAC, private
//! address, subnet and virtual router).
//!
//! VNIC n is `ethN`, left to DHCP (as upstream; the VNIC document names the address DHCP
//! gives); provider id `oci://ID`; zone the availability domain, lower-cased.

use serde::Deserialize;

use super::netconfig::NetworkConfig;
use super::{Instance, MAX_DOCUMENT, decode_base64, get, get_required, json, problem, value};
use crate::controllers::PlatformMetadataSpec;
use crate::error::MachinedError;

const PLATFORM: &str = "oracle";
const AUTHORIZATION: (&str, &str) = ("Authorization", "Bearer Oracle");
/// Most VNICs read.
const MAX_VNICS: usize = 64;

/// Reads IMDS v2 at `base`.
pub fn fetch(base: &str) -> Result<Instance, MachinedError> {
    let instance = get_required(
        PLATFORM,
        &format!("{base}/opc/v2/instance/"),
        &[AUTHORIZATION],
    )?;
    let vnics = get(
        PLATFORM,
        &format!("{base}/opc/v2/vnics/"),
        &[AUTHORIZATION],
        MAX_DOCUMENT,
    )?;
    parse(&instance, vnics.as_deref())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    id: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    shape: String,
    #[serde(default)]
    canonical_region_name: String,
    #[serde(default)]
    availability_domain: String,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    user_data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vnic {
    #[serde(default)]
    mac_addr: String,
}

/// The instance document and the VNIC list → the instance, with its user data.
pub fn parse(raw: &[u8], vnics: Option<&[u8]>) -> Result<Instance, MachinedError> {
    let document: Document = json(PLATFORM, "instance", raw)?;
    let id = value(PLATFORM, "id", &document.id)?;
    if id.is_empty() {
        return Err(problem(PLATFORM, "instance: no id"));
    }
    let mut network = NetworkConfig::default();
    if let Some(raw) = vnics {
        let vnics: Vec<Vnic> = json(PLATFORM, "vnics", raw)?;
        if vnics.len() > MAX_VNICS {
            return Err(problem(PLATFORM, format!("vnics: more than {MAX_VNICS}")));
        }
        for (index, vnic) in vnics.iter().enumerate() {
            value(PLATFORM, "vnics macAddr", &vnic.mac_addr)?;
            network.dhcp.push(format!("eth{index}"));
        }
    }
    let user_data = decode_base64(
        PLATFORM,
        "metadata.user_data",
        document.metadata.user_data.as_bytes(),
    )?;
    let metadata = PlatformMetadataSpec {
        platform: PLATFORM.into(),
        hostname: value(PLATFORM, "hostname", &document.hostname)?,
        region: value(
            PLATFORM,
            "canonicalRegionName",
            &document.canonical_region_name,
        )?
        .to_ascii_lowercase(),
        zone: value(
            PLATFORM,
            "availabilityDomain",
            &document.availability_domain,
        )?
        .to_ascii_lowercase(),
        instance_type: value(PLATFORM, "shape", &document.shape)?,
        provider_id: format!("oci://{id}"),
        instance_id: id,
        ..PlatformMetadataSpec::default()
    };
    Ok(Instance {
        metadata,
        network: network.bounded(PLATFORM)?,
        user_data,
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testserver::{serve, table};
    use super::*;

    const INSTANCE: &[u8] = include_bytes!("testdata/oracle-instance.json");
    const VNICS: &[u8] = include_bytes!("testdata/oracle-vnics.json");

    #[test]
    fn the_documents_give_the_instance_its_network_and_user_data() {
        let instance = parse(INSTANCE, Some(VNICS)).unwrap();
        let m = &instance.metadata;
        assert_eq!(m.hostname, "talos-oci-1");
        assert_eq!(m.instance_id, "ocid1.instance.oc1.phx.abyhqljexample");
        assert_eq!(m.provider_id, "oci://ocid1.instance.oc1.phx.abyhqljexample");
        assert_eq!(m.instance_type, "VM.Standard.E4.Flex");
        assert_eq!(
            (m.region.as_str(), m.zone.as_str()),
            ("us-phoenix-1", "uocm:phx-ad-1")
        );
        assert_eq!(instance.network.dhcp, ["eth0", "eth1"]);
        assert_eq!(
            instance.user_data.as_deref(),
            Some(&b"version: v1alpha1\nmachine:\n  type: worker\n"[..])
        );
    }

    #[test]
    fn bad_documents_are_clear_errors() {
        let error = parse(br#"{"id":""}"#, None).unwrap_err().to_string();
        assert!(error.contains("no id"), "{error}");
        let error = parse(br#"{"id":"a","metadata":{"user_data":"%%%"}}"#, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not base64"), "{error}");
        let error = parse(br#"{"id":"a"}"#, Some(br#"[{"macAddr":"\u001b"}]"#))
            .unwrap_err()
            .to_string();
        assert!(error.contains("control characters"), "{error}");
    }

    #[test]
    fn fetch_sends_the_authorization_header() {
        let (base, _) = serve(
            table(&[
                ("GET /opc/v2/instance/", INSTANCE),
                ("GET /opc/v2/vnics/", VNICS),
            ]),
            vec![("GET /opc/", "Authorization: Bearer Oracle")],
        );
        let instance = fetch(&base).unwrap();
        assert_eq!(instance.metadata.hostname, "talos-oci-1");
        assert_eq!(instance.network.dhcp.len(), 2);
    }
}
