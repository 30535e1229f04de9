//! A fast hasher for small integer keys (stream ids, timer ids) that the peer cannot choose
//! freely enough to matter: stream ids must increase, so hash flooding is not possible, and
//! SipHash's cost per lookup (several per call) is not worth paying.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hashing (the odd constant is 2^64 / golden ratio). The product's high bits
/// are well mixed; the rotation brings them to the low bits that pick the bucket.
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct IdHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(K);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(K);
    }
}

/// A map keyed by stream id (or any small integer id).
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn odd_ids_spread_over_low_bits() {
        // Stream ids are all odd: the bucket bits (low bits of the hash) must still vary.
        let b = BuildHasherDefault::<IdHasher>::default();
        let mut buckets = std::collections::HashSet::new();
        for id in (1u32..2048).step_by(2) {
            buckets.insert(b.hash_one(id) & 1023);
        }
        assert!(
            buckets.len() > 550,
            "{} of 1024 buckets used",
            buckets.len()
        );
        let mut m: IdMap<u32, u32> = IdMap::default();
        for id in 0..10_000 {
            m.insert(id, id * 2);
        }
        assert!((0..10_000).all(|id| m[&id] == id * 2));
    }
}
