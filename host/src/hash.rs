//! Cache keys: a stable 64-bit hash of bytes (the latency profiles' and the decoded-image
//! caches' file names), the same on every run and machine, unlike `std`'s seeded hasher.

/// 64-bit FNV-1a.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fnv1a_reference_values() {
        // The FNV reference: the empty string hashes to the offset basis, "a" to 0xaf63dc4c8601ec8c.
        assert_eq!(super::fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
