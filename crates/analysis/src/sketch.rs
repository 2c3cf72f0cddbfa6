//! A mergeable quantile sketch with bounded relative error (the DDSketch idea): a value v > 0 is counted in
//! bucket ⌈log_γ v⌉ with γ = (1 + α) / (1 − α), so any quantile it reports is within α = 1 % of a true value.
//! Two sketches merge by adding bucket counts, so time buckets and shards combine exactly. The bucket scheme
//! is [`clew_model::latency_buckets`], which the store's per-block RED summaries use too.

use clew_model::latency_buckets::{bucket_of_seconds, representative};

/// Relative accuracy of reported quantiles.
pub const RELATIVE_ACCURACY: f64 = clew_model::latency_buckets::RELATIVE_ACCURACY;

/// The counts live in one dense array over the range of bucket indexes seen (DDSketch's dense store): adding
/// or merging is an array add, which matters when RED merges thousands of pre-aggregated histograms. A range
/// of durations from 1 µs to 100 s is about 920 buckets.
#[derive(Debug, Clone, Default)]
pub struct Sketch {
    /// `counts[i]` counts bucket `offset + i`.
    offset: i32,
    counts: Vec<u64>,
    zeros: u64,
    count: u64,
    sum: f64,
}

impl PartialEq for Sketch {
    fn eq(&self, other: &Self) -> bool {
        (self.zeros, self.count, self.sum) == (other.zeros, other.count, other.sum)
            && self.buckets().0.eq(other.buckets().0)
    }
}

impl Sketch {
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        match bucket_of_seconds(value) {
            Some(bucket) => *self.slot(bucket) += 1,
            None => self.zeros += 1,
        }
    }

    /// Adds counts already bucketed by [`clew_model::latency_buckets`]: `zeros` values counted as zero,
    /// `buckets` as (bucket index, count) pairs, and `sum` of all the values (seconds).
    pub fn add_bucketed(&mut self, zeros: u64, buckets: impl IntoIterator<Item = (i32, u64)>, sum: f64) {
        let mut count = zeros;
        for (bucket, n) in buckets {
            *self.slot(bucket) += n;
            count += n;
        }
        self.zeros += zeros;
        self.count += count;
        self.sum += sum;
    }

    /// The non-empty (bucket index, count) pairs, by index, and the count of zeros.
    pub fn buckets(&self) -> (impl Iterator<Item = (i32, u64)> + '_, u64) {
        let pairs = self.counts.iter().enumerate().filter(|(_, n)| **n > 0);
        (pairs.map(|(i, n)| (self.offset + i as i32, *n)), self.zeros)
    }

    /// The counter of a bucket, growing the array to reach it.
    fn slot(&mut self, bucket: i32) -> &mut u64 {
        self.cover(bucket, bucket);
        &mut self.counts[(bucket - self.offset) as usize]
    }

    /// Grows the array to cover buckets `low..=high`.
    fn cover(&mut self, low: i32, high: i32) {
        if self.counts.is_empty() {
            self.offset = low;
            self.counts.resize((high - low) as usize + 1, 0);
            return;
        }
        if low < self.offset {
            let grow = (self.offset - low) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = low;
        }
        let needed = (high - self.offset) as usize + 1;
        if needed > self.counts.len() {
            self.counts.resize(needed, 0);
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        if !other.counts.is_empty() {
            self.cover(other.offset, other.offset + other.counts.len() as i32 - 1);
            let start = (other.offset - self.offset) as usize;
            for (mine, theirs) in self.counts[start..].iter_mut().zip(&other.counts) {
                *mine += theirs;
            }
        }
        self.zeros += other.zeros;
        self.count += other.count;
        self.sum += other.sum;
    }

    /// Removes what `other` added, `other` having been merged in before (a sliding window drops its oldest
    /// part this way).
    pub fn subtract(&mut self, other: &Sketch) {
        for (bucket, count) in other.buckets().0 {
            let i = bucket - self.offset;
            if let Some(mine) = usize::try_from(i).ok().and_then(|i| self.counts.get_mut(i)) {
                *mine = mine.saturating_sub(count);
            }
        }
        self.zeros = self.zeros.saturating_sub(other.zeros);
        self.count = self.count.saturating_sub(other.count);
        self.sum -= other.sum;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The value at quantile `q` in [0, 1] by the nearest-rank definition (the ⌈q·n⌉-th smallest), or `None`
    /// when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).saturating_sub(1);
        if rank < self.zeros {
            return Some(0.0);
        }
        let mut seen = self.zeros;
        for (bucket, count) in self.buckets().0 {
            seen += count;
            if seen > rank {
                return Some(representative(bucket));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_relative_accuracy() {
        let mut sketch = Sketch::default();
        for i in 1..=1000 {
            sketch.add(i as f64 / 1000.0);
        }
        for (q, exact) in [(0.5, 0.5), (0.9, 0.9), (0.99, 0.99), (0.0, 0.001), (1.0, 1.0)] {
            let got = sketch.quantile(q).unwrap();
            assert!((got - exact).abs() <= exact * RELATIVE_ACCURACY + 1e-12, "q{q}: {got} vs {exact}");
        }
        assert_eq!(sketch.count(), 1000);
        assert_eq!(Sketch::default().quantile(0.5), None);
    }

    #[test]
    fn merging_equals_adding_everything_to_one() {
        let (mut a, mut b, mut all) = (Sketch::default(), Sketch::default(), Sketch::default());
        for i in 0..100 {
            let v = (i * 37 % 101) as f64 / 7.0;
            if i % 2 == 0 {
                a.add(v)
            } else {
                b.add(v)
            }
            all.add(v);
        }
        let a_alone = a.clone();
        a.merge(&b);
        assert_eq!(a.buckets().0.collect::<Vec<_>>(), all.buckets().0.collect::<Vec<_>>());
        let mut window = a.clone();
        window.subtract(&a_alone);
        let pairs = |s: &Sketch| s.buckets().0.collect::<Vec<_>>();
        assert_eq!((pairs(&window), window.count, window.zeros), (pairs(&b), b.count, b.zeros));
        assert_eq!((a.count, a.zeros), (all.count, all.zeros));
        assert_eq!(a.quantile(0.9), all.quantile(0.9));
    }

    #[test]
    fn the_dense_store_grows_both_ways_and_merges_any_ranges() {
        let values = [1.0, 1e-6, 250.0, 0.0, 0.003, 1.0];
        let (mut low, mut high, mut all) = (Sketch::default(), Sketch::default(), Sketch::default());
        let mut expected = std::collections::BTreeMap::new();
        for (i, v) in values.iter().enumerate() {
            if i % 2 == 0 {
                high.add(*v)
            } else {
                low.add(*v)
            }
            all.add(*v);
            if let Some(b) = bucket_of_seconds(*v) {
                *expected.entry(b).or_insert(0u64) += 1;
            }
        }
        let expected: Vec<(i32, u64)> = expected.into_iter().collect();
        assert_eq!(all.buckets().0.collect::<Vec<_>>(), expected);
        assert_eq!(all.buckets().1, 1);
        let mut merged = Sketch::default();
        merged.merge(&high);
        merged.merge(&low);
        merged.merge(&Sketch::default());
        assert_eq!(merged, all);
        let mut bucketed = Sketch::default();
        bucketed.add_bucketed(1, expected.iter().rev().copied(), all.sum());
        assert_eq!(bucketed.buckets().0.collect::<Vec<_>>(), expected);
        assert_eq!((bucketed.count(), bucketed.quantile(0.5)), (all.count(), all.quantile(0.5)));
    }
}
