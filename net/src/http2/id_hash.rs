//! A fast keyed hasher for small integer keys (stream ids, timer ids).
//!
//! SipHash (std's default) costs tens of nanoseconds per lookup, and a unary call does several.
//! A plain multiplicative hash would be fast but predictable: a client choosing its (increasing)
//! stream ids could then pile thousands of open streams into one probe sequence. So each map gets
//! a random seed from std's `RandomState`, and keys are mixed with the seed by a folded 64×64→128
//! bit multiply (the high half folded into the low half, as wyhash/aHash do): every output bit
//! depends on every key and seed bit, and the seed is unknown to the peer.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// An odd constant (2^64 / golden ratio).
const K: u64 = 0x9e37_79b9_7f4a_7c15;

fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = (a as u128) * (b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Builds [`IdHasher`]s with this map's random seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdHashBuilder {
    seed: u64,
}

impl Default for IdHashBuilder {
    fn default() -> Self {
        IdHashBuilder {
            seed: std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1,
        }
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.seed)
    }
}

/// See the module documentation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = folded_multiply(self.0 ^ n, K);
    }
}

/// A map keyed by stream id (or any small integer id).
pub(crate) type IdMap<K, V> = HashMap<K, V, IdHashBuilder>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_ids_spread_over_low_bits_and_seeds_differ() {
        // Stream ids are all odd: the bucket bits (low bits of the hash) must still vary.
        let b = IdHashBuilder::default();
        let mut buckets = std::collections::HashSet::new();
        let mut tags = std::collections::HashSet::new();
        for id in (1u32..2048).step_by(2) {
            let h = b.hash_one(id);
            buckets.insert(h & 1023);
            tags.insert(h >> 57);
        }
        // 1,024 keys into 1,024 buckets: about 63 % filled when uniform.
        assert!(
            buckets.len() > 550,
            "{} of 1024 buckets used",
            buckets.len()
        );
        assert_eq!(
            tags.len(),
            128,
            "the top 7 bits (hashbrown's tags) vary too"
        );
        let other = IdHashBuilder::default();
        assert_ne!(
            b.hash_one(1u32),
            other.hash_one(1u32),
            "each map has its own seed"
        );
        let mut m: IdMap<u32, u32> = IdMap::default();
        for id in 0..10_000 {
            m.insert(id, id * 2);
        }
        assert!((0..10_000).all(|id| m[&id] == id * 2));
    }
}
