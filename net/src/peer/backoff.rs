//! Reconnect delays: exponential, capped, with "equal jitter" from a seeded generator.
//!
//! Delay number n (from 0) is drawn uniformly from `[d/2, d]` where
//! `d = min(initial * 2^n, max)`. Jitter spreads reconnect storms after a partition heals;
//! the generator is seeded so runs are reproducible.

use std::time::Duration;

/// SplitMix64: a tiny, well-mixed 64-bit generator (Steele, Lea, Flood 2014).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// State of the reconnect delay for one peer.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    rng: SplitMix64,
}

impl Backoff {
    /// A backoff starting at `initial`, doubling up to `max`.
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            initial,
            max,
            current: initial,
            rng: SplitMix64::new(seed),
        }
    }

    /// The delay to wait before the next attempt; advances the exponent.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.current.min(self.max);
        self.current = (self.current * 2).min(self.max);
        let half = ceiling / 2;
        let span = (ceiling - half).as_nanos() as u64;
        let jitter = if span == 0 {
            0
        } else {
            self.rng.next_u64() % (span + 1)
        };
        half + Duration::from_nanos(jitter)
    }

    /// Back to the initial delay (after a success).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_bounds_and_caps() {
        let initial = Duration::from_millis(50);
        let max = Duration::from_millis(400);
        let mut b = Backoff::new(initial, max, 7);
        let ceilings = [50, 100, 200, 400, 400, 400];
        for ceiling in ceilings {
            let d = b.next_delay();
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} not in [{:?}, {ceiling:?}]",
                ceiling / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= initial);
    }

    #[test]
    fn seeded_and_jittered() {
        let run = |seed| {
            let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10), seed);
            (0..8).map(|_| b.next_delay()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
