//! rtnetlink replies as networkd receives them (links, addresses, routes, rules), parsed by the
//! netlink-packet-route crate networkd relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rtnetlink::packet_core::NetlinkMessage;
use rtnetlink::packet_route::RouteNetlinkMessage;

fuzz_target!(|data: &[u8]| {
    let _ = NetlinkMessage::<RouteNetlinkMessage>::deserialize(data);
});
