//! What cloud providers' metadata services and provisioning media answer (aws, azure, gcp,
//! openstack, hcloud, digital-ocean, vultr, upcloud, oracle, exoscale, akamai, alibabacloud,
//! scaleway, cloudstack, equinixMetal, cloud-init network configs; Azure's ovf-env.xml and
//! wire-server goal state; OpenNebula's context.sh and its shell-quoting parser): the first byte
//! picks the parser, the rest is the document. Each ends in an instance or an error, never a
//! panic; an accepted instance holds no control characters, and a health report built from an
//! accepted goal state carries its values escaped (no element beyond the template's).
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use machined::MachinedError;
use machined::os::cloud::{
    Instance, akamai, alibabacloud, aws, azure, cloudstack, digitalocean, equinixmetal, exoscale,
    gcp, hcloud, netconfig, opennebula, openstack, oracle, scaleway, shellvars, upcloud, vultr,
};

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

fuzz_target!(|data: &[u8]| {
    let Some((selector, document)) = data.split_first() else {
        return;
    };
    match selector % 18 {
        0 => clean(gcp::parse(document)),
        1 => clean(digitalocean::parse(document)),
        2 => clean(openstack::parse(document, None, None, None)),
        3 => clean(openstack::parse(
            b"{\"uuid\":\"u\"}",
            Some(document),
            None,
            None,
        )),
        4 => clean(hcloud::parse(document, Some(document))),
        5 => {
            let _ = netconfig::parse("nocloud", document)
                .map(|network| network.machine_network(&BTreeMap::new()));
        }
        6 => clean(azure::parse(document, Some(document))),
        7 => {
            let values = BTreeMap::from([
                ("instance-id", document.to_vec()),
                ("hostname", document.to_vec()),
                ("local-hostname", document.to_vec()),
                ("public-ipv4", document.to_vec()),
            ]);
            clean(aws::parse(&values));
            clean(exoscale::parse(&values));
            let mut values = values;
            values.insert("dns-conf/nameservers", document.to_vec());
            values.insert("eipv4", document.to_vec());
            clean(alibabacloud::parse(&values));
        }
        8 => {
            let _ = azure::custom_data(document);
        }
        10 => clean(vultr::parse(document)),
        11 => clean(upcloud::parse(document)),
        12 => clean(oracle::parse(document, Some(document))),
        13 => clean(akamai::parse(document, Some(document))),
        14 => clean(scaleway::parse(document)),
        15 => {
            let parsed = equinixmetal::parse(document);
            if let Ok(instance) = &parsed {
                let _ = instance.network.machine_network(&BTreeMap::new());
            }
            clean(parsed);
        }
        16 => {
            let _ = shellvars::parse("opennebula", "context.sh", document);
            clean(opennebula::parse(document));
        }
        17 => clean(cloudstack::parse(&BTreeMap::from([
            ("instance-id", document.to_vec()),
            ("local-hostname", document.to_vec()),
            ("service-offering", document.to_vec()),
            ("availability-zone", document.to_vec()),
            ("public-ipv4", document.to_vec()),
        ]))),
        _ => {
            if let Ok(goal) = azure::goal_state(document) {
                let empty = azure::GoalState {
                    incarnation: String::new(),
                    container_id: String::new(),
                    instance_id: String::new(),
                };
                let elements = |report: &str| report.matches('<').count();
                assert_eq!(
                    elements(&azure::health_report(&goal)),
                    elements(&azure::health_report(&empty))
                );
            }
        }
    }
});
