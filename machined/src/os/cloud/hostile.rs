//! Every parser fed damaged versions of its fixtures: truncations and byte changes (a fixed
//! pseudo-random sequence, so a failure reproduces). Each must answer `Ok` or `Err`, never
//! panic, and never accept a value with control characters.

use std::collections::BTreeMap;

use super::{
    Instance, akamai, alibabacloud, aws, azure, cloudstack, digitalocean, equinixmetal, exoscale,
    gcp, hcloud, netconfig, opennebula, openstack, oracle, scaleway, shellvars, upcloud, vultr,
};
use crate::error::MachinedError;

/// A small linear congruential generator (Knuth's MMIX constants).
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// `count` damaged copies of `fixture`.
fn damaged(fixture: &[u8], seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut sequence = Sequence(seed);
    let interesting = [
        0u8, b'"', b':', b'\n', b'{', b'[', b'-', 0x1b, 0xff, b'9', b'/', b'\'', b'\\', b'=',
    ];
    (0..count)
        .map(|_| {
            let mut bytes = fixture.to_vec();
            match sequence.next() % 3 {
                0 => bytes.truncate(sequence.next() as usize % (fixture.len() + 1)),
                _ => {
                    for _ in 0..1 + sequence.next() % 4 {
                        let at = sequence.next() as usize % bytes.len().max(1);
                        let byte = interesting[sequence.next() as usize % interesting.len()];
                        if let Some(slot) = bytes.get_mut(at) {
                            *slot = byte;
                        }
                    }
                }
            }
            bytes
        })
        .collect()
}

fn clean(instance: Result<Instance, MachinedError>) {
    if let Ok(instance) = instance {
        let m = &instance.metadata;
        for value in [
            &m.hostname,
            &m.instance_id,
            &m.instance_type,
            &m.region,
            &m.zone,
        ] {
            assert!(!value.chars().any(char::is_control), "{value:?}");
        }
    }
}

#[test]
fn damaged_documents_are_errors_or_clean_instances_never_panics() {
    let count = 3000;
    for bytes in damaged(include_bytes!("testdata/gcp.json"), 1, count) {
        clean(gcp::parse(&bytes));
    }
    for bytes in damaged(include_bytes!("testdata/digitalocean.json"), 2, count) {
        clean(digitalocean::parse(&bytes));
    }
    let network = include_bytes!("testdata/openstack-network_data.json");
    for bytes in damaged(
        include_bytes!("testdata/openstack-meta_data.json"),
        3,
        count,
    ) {
        clean(openstack::parse(&bytes, Some(network), None, None));
    }
    let meta = include_bytes!("testdata/openstack-meta_data.json");
    for bytes in damaged(network, 4, count) {
        clean(openstack::parse(
            meta,
            Some(&bytes),
            Some(&bytes[..bytes.len().min(8)]),
            None,
        ));
    }
    let hcloud_network = include_bytes!("testdata/hcloud-network-config.yaml");
    for bytes in damaged(include_bytes!("testdata/hcloud-metadata.yaml"), 5, count) {
        clean(hcloud::parse(&bytes, Some(hcloud_network)));
    }
    for fixture in [
        &include_bytes!("testdata/network-config-v1.yaml")[..],
        include_bytes!("testdata/network-config-v2.yaml"),
        hcloud_network,
    ] {
        for bytes in damaged(fixture, 6, count) {
            let _ = netconfig::parse("nocloud", &bytes)
                .map(|network| network.machine_network(&BTreeMap::new()));
        }
    }
    let interfaces = include_bytes!("testdata/azure-interfaces.json");
    for bytes in damaged(include_bytes!("testdata/azure-compute.json"), 8, count) {
        clean(azure::parse(&bytes, Some(interfaces)));
    }
    let compute = include_bytes!("testdata/azure-compute.json");
    for bytes in damaged(interfaces, 9, count) {
        clean(azure::parse(compute, Some(&bytes)));
    }
    for bytes in damaged(include_bytes!("testdata/azure-ovf-env.xml"), 10, count) {
        let _ = azure::custom_data(&bytes);
    }
    for bytes in damaged(include_bytes!("testdata/azure-goalstate.xml"), 11, count) {
        if let Ok(goal) = azure::goal_state(&bytes) {
            let report = azure::health_report(&goal);
            assert!(roxmltree::Document::parse(&report).is_ok(), "{report}");
        }
    }
    for bytes in damaged(include_bytes!("testdata/vultr.json"), 12, count) {
        clean(vultr::parse(&bytes));
    }
    for bytes in damaged(include_bytes!("testdata/upcloud.json"), 13, count) {
        clean(upcloud::parse(&bytes));
    }
    let vnics = include_bytes!("testdata/oracle-vnics.json");
    for bytes in damaged(include_bytes!("testdata/oracle-instance.json"), 14, count) {
        clean(oracle::parse(&bytes, Some(vnics)));
    }
    let akamai_network = include_bytes!("testdata/akamai-network.json");
    for bytes in damaged(include_bytes!("testdata/akamai-instance.json"), 15, count) {
        clean(akamai::parse(&bytes, Some(akamai_network)));
    }
    for bytes in damaged(include_bytes!("testdata/scaleway.json"), 16, count) {
        clean(scaleway::parse(&bytes));
    }
    for bytes in damaged(include_bytes!("testdata/equinixmetal.json"), 17, count) {
        if let Ok(instance) = equinixmetal::parse(&bytes) {
            let _ = instance.network.machine_network(&BTreeMap::new());
            clean(Ok(instance));
        }
    }
    let context = include_bytes!("testdata/opennebula-context.sh");
    for bytes in damaged(context, 18, count) {
        let _ = shellvars::parse("opennebula", "context.sh", &bytes);
        clean(opennebula::parse(&bytes));
    }
    for bytes in damaged(b"6a1f0c2e-93b4-4d1e-a7c5-2f8e9b0d4c31", 19, 200) {
        clean(cloudstack::parse(&BTreeMap::from([
            ("instance-id", bytes.clone()),
            ("local-hostname", bytes.clone()),
            ("service-offering", bytes.clone()),
            ("public-ipv4", bytes),
        ])));
    }
    for bytes in damaged(b"100.100.2.136\n100.100.2.138", 20, 200) {
        clean(alibabacloud::parse(&BTreeMap::from([
            ("instance-id", b"i-bp1".to_vec()),
            ("hostname", bytes.clone()),
            ("eipv4", bytes.clone()),
            ("dns-conf/nameservers", bytes),
        ])));
    }
    for bytes in damaged(b"i-0abc1234def567890", 7, 200) {
        clean(aws::parse(&BTreeMap::from([
            ("instance-id", bytes.clone()),
            ("hostname", bytes.clone()),
            ("public-ipv4", bytes.clone()),
        ])));
        clean(exoscale::parse(&BTreeMap::from([
            ("instance-id", bytes.clone()),
            ("local-hostname", bytes.clone()),
            ("public-ipv4", bytes),
        ])));
    }
}
