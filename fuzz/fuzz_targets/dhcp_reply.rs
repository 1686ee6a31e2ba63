//! DHCP server replies, as networkd's client and machined's boot read them off the wire.
#![no_main]

use libfuzzer_sys::fuzz_target;
use dhcp::Reply;

const MAC: [u8; 6] = [2, 0, 0, 0, 0, 7];

fuzz_target!(|data: &[u8]| {
    // Give the fuzzer the transaction and address the client expects, so it gets past them.
    let mut packet = data.to_vec();
    if packet.len() >= 240 {
        packet[0] = 2;
        packet[4..8].copy_from_slice(&42u32.to_be_bytes());
        packet[28..34].copy_from_slice(&MAC);
        packet[236..240].copy_from_slice(&[99, 130, 83, 99]);
    }
    for candidate in [data, &packet[..]] {
        if let Some(lease) = Reply::parse(candidate, 42, &MAC).and_then(|r| r.lease(0)) {
            assert!(lease.renew_seconds >= 1);
            assert!(lease.renew_seconds < lease.rebind_seconds);
            assert!(lease.rebind_seconds <= lease.lease_seconds);
        }
    }
});
