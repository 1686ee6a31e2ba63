//! The NTP packet (RFC 5905 section 7.3, used in SNTP client mode as RFC 4330 describes) and
//! the clock arithmetic of one client/server exchange.
//!
//! Timestamps are NTP's 64-bit fixed point (32 bits of seconds since 1900, 32 bits of fraction).
//! Differences are taken modulo 2^64 and read as signed, as RFC 5905 does, so the math stays
//! right across the 2036 era rollover as long as the two clocks are within 68 years.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of an NTP packet without extension fields or MAC.
pub const PACKET_LEN: usize = 48;

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// NTP version we speak.
pub const VERSION: u8 = 4;

/// Mode 3: a client request.
pub const MODE_CLIENT: u8 = 3;
/// Mode 4: a server reply.
pub const MODE_SERVER: u8 = 4;

/// Leap indicator 3: the server's clock is not synchronised.
pub const LEAP_ALARM: u8 = 3;

/// An NTP timestamp: 32.32 fixed-point seconds since 1900 (modulo the era).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The NTP timestamp of a wall-clock instant (the era is dropped).
    pub fn from_system_time(time: SystemTime) -> Self {
        let (seconds, nanos) = match time.duration_since(UNIX_EPOCH) {
            Ok(since) => (
                NTP_UNIX_OFFSET.wrapping_add(since.as_secs()),
                since.subsec_nanos(),
            ),
            Err(before) => {
                let before = before.duration();
                let mut seconds = NTP_UNIX_OFFSET.wrapping_sub(before.as_secs());
                let mut nanos = before.subsec_nanos();
                if nanos > 0 {
                    seconds = seconds.wrapping_sub(1);
                    nanos = 1_000_000_000 - nanos;
                }
                (seconds, nanos)
            }
        };
        let fraction = (u64::from(nanos) << 32) / 1_000_000_000;
        NtpTimestamp(((seconds & 0xffff_ffff) << 32) | fraction)
    }

    /// Whether the field is all zero (RFC 5905: "unknown" or "not set").
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// `a - b` in nanoseconds, modulo 2^64 fixed-point and read as signed.
pub fn difference_nanos(a: NtpTimestamp, b: NtpTimestamp) -> i64 {
    fixed_32_32_to_nanos(i128::from(a.0.wrapping_sub(b.0) as i64))
}

/// A signed 32.32 fixed-point value in nanoseconds (rounded towards minus infinity).
fn fixed_32_32_to_nanos(value: i128) -> i64 {
    // |value| < 2^64 here, so the product fits i128 and the result fits i64 (±292 years).
    ((value * 1_000_000_000) >> 32) as i64
}

/// A 16.16 fixed-point duration (root delay, root dispersion) in nanoseconds.
pub fn short_to_nanos(value: u32) -> i64 {
    ((i64::from(value)) * 1_000_000_000) >> 16
}

/// One NTP packet, header fields only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// Leap indicator (2 bits).
    pub leap: u8,
    /// Version number (3 bits).
    pub version: u8,
    /// Association mode (3 bits).
    pub mode: u8,
    /// Stratum: 0 is a kiss-o'-death, 1 a primary server, 2..15 secondary.
    pub stratum: u8,
    /// Poll exponent (log2 seconds).
    pub poll: i8,
    /// Precision exponent (log2 seconds).
    pub precision: i8,
    /// Round-trip delay to the reference clock, 16.16 seconds.
    pub root_delay: u32,
    /// Dispersion to the reference clock, 16.16 seconds.
    pub root_dispersion: u32,
    /// Reference identifier (a kiss code when stratum is 0).
    pub reference_id: [u8; 4],
    /// When the server's clock was last set.
    pub reference: NtpTimestamp,
    /// Origin: the client's transmit timestamp echoed back (T1).
    pub origin: NtpTimestamp,
    /// When the request arrived at the server (T2).
    pub receive: NtpTimestamp,
    /// When the reply left the server (T3), or the client's send time in a request.
    pub transmit: NtpTimestamp,
}

impl Packet {
    /// A client request carrying `transmit` as its transmit timestamp; every other field zero,
    /// as RFC 4330 section 5 recommends.
    pub fn client_request(transmit: NtpTimestamp) -> Self {
        Packet {
            version: VERSION,
            mode: MODE_CLIENT,
            transmit,
            ..Packet::default()
        }
    }

    /// The packet in wire form.
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut out = [0u8; PACKET_LEN];
        out[0] = ((self.leap & 0b11) << 6) | ((self.version & 0b111) << 3) | (self.mode & 0b111);
        out[1] = self.stratum;
        out[2] = self.poll.to_be_bytes()[0];
        out[3] = self.precision.to_be_bytes()[0];
        out[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        out[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        out[12..16].copy_from_slice(&self.reference_id);
        out[16..24].copy_from_slice(&self.reference.0.to_be_bytes());
        out[24..32].copy_from_slice(&self.origin.0.to_be_bytes());
        out[32..40].copy_from_slice(&self.receive.0.to_be_bytes());
        out[40..48].copy_from_slice(&self.transmit.0.to_be_bytes());
        out
    }

    /// Reads a packet; `None` when it is shorter than the 48-byte header. Extension fields
    /// and a MAC after the header are ignored.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let header: &[u8; PACKET_LEN] = bytes.get(..PACKET_LEN)?.try_into().ok()?;
        let u32_at = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let u64_at =
            |at: usize| NtpTimestamp((u64::from(u32_at(at)) << 32) | u64::from(u32_at(at + 4)));
        Some(Packet {
            leap: header[0] >> 6,
            version: (header[0] >> 3) & 0b111,
            mode: header[0] & 0b111,
            stratum: header[1],
            poll: i8::from_be_bytes([header[2]]),
            precision: i8::from_be_bytes([header[3]]),
            root_delay: u32_at(4),
            root_dispersion: u32_at(8),
            reference_id: [header[12], header[13], header[14], header[15]],
            reference: u64_at(16),
            origin: u64_at(24),
            receive: u64_at(32),
            transmit: u64_at(40),
        })
    }

    /// The kiss code of a kiss-o'-death packet (stratum 0), e.g. `RATE` or `DENY`.
    pub fn kiss_code(&self) -> String {
        self.reference_id
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() {
                    char::from(b)
                } else {
                    '?'
                }
            })
            .collect()
    }
}

/// The four timestamps of one exchange: T1 client send, T2 server receive, T3 server send,
/// T4 client receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Client transmit time (local clock).
    pub t1: NtpTimestamp,
    /// Server receive time (server clock).
    pub t2: NtpTimestamp,
    /// Server transmit time (server clock).
    pub t3: NtpTimestamp,
    /// Client receive time (local clock).
    pub t4: NtpTimestamp,
}

impl Exchange {
    /// Clock offset θ = ((T2 − T1) + (T3 − T4)) / 2 in nanoseconds: how far the server's clock
    /// is ahead of ours.
    pub fn offset_nanos(&self) -> i64 {
        let sum = i128::from(self.t2.0.wrapping_sub(self.t1.0) as i64)
            + i128::from(self.t3.0.wrapping_sub(self.t4.0) as i64);
        fixed_32_32_to_nanos(sum.div_euclid(2))
    }

    /// Round-trip delay δ = (T4 − T1) − (T3 − T2) in nanoseconds.
    pub fn delay_nanos(&self) -> i64 {
        let sum = i128::from(self.t4.0.wrapping_sub(self.t1.0) as i64)
            - i128::from(self.t3.0.wrapping_sub(self.t2.0) as i64);
        fixed_32_32_to_nanos(sum)
    }
}

/// `time` moved by a signed number of nanoseconds.
pub fn shift(time: SystemTime, nanos: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        time + magnitude
    } else {
        time - magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix_seconds: u64, nanos: u32) -> NtpTimestamp {
        NtpTimestamp::from_system_time(UNIX_EPOCH + Duration::new(unix_seconds, nanos))
    }

    #[test]
    fn unix_epoch_is_ntp_2208988800() {
        assert_eq!(at(0, 0).0, NTP_UNIX_OFFSET << 32);
        // Half a second is exactly 0x8000_0000 in the fraction.
        assert_eq!(at(0, 500_000_000).0 & 0xffff_ffff, 0x8000_0000);
    }

    #[test]
    fn times_before_1970_count_back_from_the_unix_epoch() {
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        let ts = NtpTimestamp::from_system_time(before);
        assert_eq!(ts.0 >> 32, NTP_UNIX_OFFSET - 2);
        assert_eq!(ts.0 & 0xffff_ffff, 0x8000_0000);
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let packet = Packet {
            leap: 1,
            version: 4,
            mode: MODE_SERVER,
            stratum: 8,
            poll: 6,
            precision: -20,
            root_delay: 0x0001_8000,
            root_dispersion: 0x0000_4000,
            reference_id: *b"LOCL",
            reference: NtpTimestamp(1),
            origin: NtpTimestamp(0x0102_0304_0506_0708),
            receive: NtpTimestamp(u64::MAX),
            transmit: NtpTimestamp(0x8000_0000_0000_0001),
        };
        let wire = packet.encode();
        assert_eq!(Packet::decode(&wire), Some(packet));
    }

    #[test]
    fn client_request_wire_form() {
        let wire = Packet::client_request(NtpTimestamp(0xdead_beef_0000_0001)).encode();
        // LI 0, VN 4, mode 3.
        assert_eq!(wire[0], 0b00_100_011);
        assert!(wire[1..40].iter().all(|&b| b == 0));
        assert_eq!(&wire[40..48], &[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1]);
    }

    #[test]
    fn decode_reads_header_fields_and_ignores_extensions() {
        let mut wire = vec![0u8; 68];
        wire[0] = 0b11_011_100; // LI 3, VN 3, mode 4
        wire[1] = 0;
        wire[2] = 0xfa; // poll -6
        wire[12..16].copy_from_slice(b"RATE");
        let packet = Packet::decode(&wire).unwrap();
        assert_eq!(
            (packet.leap, packet.version, packet.mode),
            (LEAP_ALARM, 3, MODE_SERVER)
        );
        assert_eq!(packet.poll, -6);
        assert_eq!(packet.kiss_code(), "RATE");
        assert_eq!(Packet::decode(&wire[..47]), None);
    }

    #[test]
    fn offset_and_delay_of_a_symmetric_exchange() {
        // Server 1.5 s ahead; 10 ms each way; server holds the request 2 ms.
        let base = 1_700_000_000;
        let exchange = Exchange {
            t1: at(base, 0),
            t2: at(base + 1, 510_000_000),
            t3: at(base + 1, 512_000_000),
            t4: at(base, 22_000_000),
        };
        assert!((exchange.offset_nanos() - 1_500_000_000).abs() <= 1);
        assert!((exchange.delay_nanos() - 20_000_000).abs() <= 1);
    }

    #[test]
    fn offset_is_negative_when_the_server_is_behind() {
        let base = 1_700_000_000;
        let exchange = Exchange {
            t1: at(base + 10, 0),
            t2: at(base, 5_000_000),
            t3: at(base, 5_000_000),
            t4: at(base + 10, 10_000_000),
        };
        assert!((exchange.offset_nanos() + 10_000_000_000).abs() <= 1);
        assert!((exchange.delay_nanos() - 10_000_000).abs() <= 1);
    }

    #[test]
    fn math_holds_across_the_2036_era_rollover() {
        // 2036-02-07 06:28:16 UTC is NTP second 2^32: the seconds field wraps to 0.
        let rollover = (1u64 << 32) - NTP_UNIX_OFFSET;
        let exchange = Exchange {
            t1: at(rollover - 1, 0),
            t2: at(rollover, 0),
            t3: at(rollover, 0),
            t4: at(rollover - 1, 0),
        };
        assert!(exchange.t2.0 < exchange.t1.0, "the era wrapped");
        assert!((exchange.offset_nanos() - 1_000_000_000).abs() <= 1);
        assert!(exchange.delay_nanos().abs() <= 1);
    }

    #[test]
    fn short_format_and_shift() {
        assert_eq!(short_to_nanos(0x0001_8000), 1_500_000_000);
        let now = UNIX_EPOCH + Duration::from_secs(100);
        assert_eq!(
            shift(now, -1_000_000_000),
            UNIX_EPOCH + Duration::from_secs(99)
        );
        assert_eq!(
            shift(now, 5),
            UNIX_EPOCH + Duration::from_nanos(100_000_000_005)
        );
    }
}
