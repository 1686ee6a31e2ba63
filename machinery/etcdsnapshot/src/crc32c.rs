//! CRC-32C (Castagnoli), the checksum etcd's snapshot status reports.

/// The reflected Castagnoli polynomial.
const POLYNOMIAL: u32 = 0x82F6_3B78;

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// A running CRC-32C.
#[derive(Debug, Default)]
pub struct Crc32c {
    state: u32,
}

impl Crc32c {
    pub fn update(&mut self, bytes: &[u8]) {
        let mut crc = !self.state;
        for &byte in bytes {
            crc = TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
        }
        self.state = !crc;
    }

    pub fn finish(&self) -> u32 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::Crc32c;

    #[test]
    fn check_value_and_incremental_updates() {
        let mut whole = Crc32c::default();
        whole.update(b"123456789");
        assert_eq!(whole.finish(), 0xE306_9283);
        let mut parts = Crc32c::default();
        parts.update(b"1234");
        parts.update(b"");
        parts.update(b"56789");
        assert_eq!(parts.finish(), 0xE306_9283);
    }
}
