//! DHCP client requests, as talosctl's server for QEMU clusters reads them off the bridge: an
//! answer, when there is one, is a reply to that client that its own parser accepts.
#![no_main]

use std::net::Ipv4Addr;

use dhcp::Reply;
use dhcp::server::{Binding, Request, answer};
use libfuzzer_sys::fuzz_target;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 5, 0, 1);

fuzz_target!(|data: &[u8]| {
    // Give the fuzzer a valid header too, so it reaches the options.
    let mut packet = data.to_vec();
    if packet.len() >= 240 {
        packet[..3].copy_from_slice(&[1, 1, 6]);
        packet[236..240].copy_from_slice(&[99, 130, 83, 99]);
    }
    for candidate in [data, &packet[..]] {
        let Some(request) = Request::parse(candidate) else {
            continue;
        };
        let binding = Binding {
            address: "10.5.0.2/24".parse().unwrap(),
            router: Some(SERVER),
            hostname: Some("node".into()),
            mtu: Some(1500),
            lease_seconds: 3600,
        };
        if let Some(reply) = answer(&request, Some(&binding), SERVER) {
            let parsed = Reply::parse(&reply, request.xid, &request.mac).expect("own reply");
            assert!(parsed.server == Some(SERVER));
        }
    }
});
