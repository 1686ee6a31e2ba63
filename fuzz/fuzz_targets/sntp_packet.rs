//! SNTP replies, as timed reads them off the wire.
#![no_main]

use libfuzzer_sys::fuzz_target;
use timed::packet::{Packet, difference_nanos, short_to_nanos};

fuzz_target!(|data: &[u8]| {
    if let Some(packet) = Packet::decode(data) {
        let _ = packet.kiss_code();
        let _ = difference_nanos(packet.receive, packet.transmit);
        let _ = short_to_nanos(packet.root_delay);
        let _ = short_to_nanos(packet.root_dispersion);
        assert_eq!(Packet::decode(&packet.encode()).map(|p| p.encode()), Some(packet.encode()));
    }
});
