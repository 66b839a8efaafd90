//! The partition function. It is part of the protocol: the broker and every client compute it the
//! same way, so a key always lands on the same partition whichever SDK sent it.

use xxhash_rust::xxh3::xxh3_64;

/// The partition of `key` in a topic with `partitions` partitions: `xxh3_64(key) % partitions`
/// (XXH3 64-bit, seed 0).
///
/// # Panics
/// If `partitions` is 0; topics always have at least one partition.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (xxh3_64(key) % u64::from(partitions)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test vectors other implementations of the function must reproduce. The hashes are the
    /// published XXH3-64 values for these inputs (seed 0).
    #[test]
    fn matches_the_published_xxh3_vectors() {
        assert_eq!(xxh3_64(b""), 0x2D06_8005_38D3_94C2);
        assert_eq!(partition_for_key(b"", 1), 0);
        let vectors: [(&[u8], u32); 4] = [(b"", 4), (b"a", 4), (b"order-42", 16), (b"user:7", 3)];
        for (key, partitions) in vectors {
            assert_eq!(
                partition_for_key(key, partitions),
                (xxh3_64(key) % u64::from(partitions)) as u32
            );
        }
    }

    #[test]
    fn spreads_keys_over_every_partition() {
        let mut seen = [0u32; 8];
        for i in 0..8000 {
            seen[partition_for_key(format!("key-{i}").as_bytes(), 8) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "uneven spread: {seen:?}");
    }
}
