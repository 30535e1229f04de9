//! A latency histogram with bounded relative error, written for the bench tool.
//!
//! Values (microseconds) are counted in log-linear buckets: every power of two is split into
//! [`SUB_BUCKETS`] equal sub-buckets, so a bucket's width is at most 1/32 of its lower bound and
//! any reported percentile is within ~3 % above the true value (it reports the bucket's upper
//! bound, capped at the exact maximum). Values below `2 × SUB_BUCKETS` get one bucket each and
//! are exact. The whole `u64` range fits in 1,920 buckets, so recording is one array increment
//! and merging per-thread histograms is an element-wise sum.

/// Sub-buckets per power of two (a power of two itself).
pub const SUB_BUCKETS: u64 = 32;
const SUB_BITS: u32 = SUB_BUCKETS.trailing_zeros();
/// Number of buckets covering all of `u64`.
pub const BUCKETS: usize = ((64 - SUB_BITS) as usize) * SUB_BUCKETS as usize + SUB_BUCKETS as usize;

/// A histogram of `u64` samples (the bench records microseconds).
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket a value falls in.
pub fn bucket_of(v: u64) -> usize {
    if v < 2 * SUB_BUCKETS {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let exp = msb - SUB_BITS; // v >> exp lies in [SUB_BUCKETS, 2 × SUB_BUCKETS)
    (exp as usize) * SUB_BUCKETS as usize + (v >> exp) as usize
}

/// The inclusive range `[low, high]` of values counted in bucket `i`.
pub fn bucket_bounds(i: usize) -> (u64, u64) {
    let sub = SUB_BUCKETS as usize;
    if i < 2 * sub {
        return (i as u64, i as u64);
    }
    let exp = (i / sub - 1) as u32;
    let mantissa = (i % sub + sub) as u64;
    let low = mantissa << exp;
    let high = low + ((1u64 << exp) - 1);
    (low, high)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Counts one sample.
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.count += 1;
        self.sum += v as u128;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest sample (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Smallest sample (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// Arithmetic mean (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The `q`-quantile (`0.0 ..= 1.0`) by the nearest-rank rule: the smallest recorded value
    /// `v` such that at least `ceil(q × count)` samples are ≤ `v`, reported as the upper bound of
    /// its bucket but never above the exact maximum nor below the exact minimum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_bounds(i).1.clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_u64_range_without_gaps() {
        let mut expected_low = 0u64;
        for i in 0..BUCKETS {
            let (low, high) = bucket_bounds(i);
            assert_eq!(low, expected_low, "bucket {i}");
            assert!(high >= low);
            assert_eq!(bucket_of(low), i);
            assert_eq!(bucket_of(high), i);
            if i + 1 == BUCKETS {
                assert_eq!(high, u64::MAX);
            } else {
                expected_low = high + 1;
            }
        }
    }

    #[test]
    fn bucket_width_is_within_one_thirty_second() {
        for i in 2 * SUB_BUCKETS as usize..BUCKETS {
            let (low, high) = bucket_bounds(i);
            assert!((high - low) as f64 / low as f64 <= 1.0 / SUB_BUCKETS as f64);
        }
    }

    #[test]
    fn small_values_are_exact_percentiles() {
        let mut h = Histogram::new();
        for v in 1..=50 {
            h.record(v);
        }
        assert_eq!(h.count(), 50);
        assert_eq!(h.quantile(0.5), 25);
        assert_eq!(h.quantile(0.9), 45);
        assert_eq!(h.quantile(0.99), 50);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.quantile(1.0), 50);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 50);
        assert!((h.mean() - 25.5).abs() < 1e-9);
    }

    #[test]
    fn large_value_percentiles_are_within_bucket_error() {
        // 1..=100_000 µs: the true p-quantile is q × 100_000.
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for q in [0.5, 0.9, 0.99, 0.999] {
            let exact = (q * 100_000.0) as u64;
            let got = h.quantile(q);
            assert!(got >= exact, "q={q}: {got} < {exact}");
            assert!(
                (got - exact) as f64 <= exact as f64 / SUB_BUCKETS as f64,
                "q={q}: {got} too far above {exact}"
            );
        }
        assert_eq!(h.quantile(1.0), 100_000);
    }

    #[test]
    fn one_outlier_shows_only_in_the_top_quantile_and_max() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(1_000);
        }
        h.record(5_000_000);
        assert!(h.quantile(0.99) <= 1_000 + 1_000 / SUB_BUCKETS);
        assert!(h.quantile(0.99) >= 1_000);
        assert_eq!(h.quantile(0.9995), 5_000_000);
        assert_eq!(h.max(), 5_000_000);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        let mut all = Histogram::new();
        for v in 0..10_000u64 {
            let x = v * v % 77_777;
            if v % 3 == 0 {
                a.record(x)
            } else {
                b.record(x)
            }
            all.record(x);
        }
        a.merge(&b);
        assert_eq!(a.count(), all.count());
        assert_eq!(a.min(), all.min());
        assert_eq!(a.max(), all.max());
        for q in [0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(a.quantile(q), all.quantile(q));
        }
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.99), 0);
        assert_eq!(h.max(), 0);
        assert_eq!(h.min(), 0);
        assert_eq!(h.mean(), 0.0);
        let mut m = Histogram::new();
        m.merge(&h);
        assert_eq!(m.count(), 0);
    }
}
