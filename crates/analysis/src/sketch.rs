//! A mergeable quantile sketch with bounded relative error (the DDSketch idea): a value v > 0 is counted in
//! bucket ⌈log_γ v⌉ with γ = (1 + α) / (1 − α), so any quantile it reports is within α = 1 % of a true value.
//! Two sketches merge by adding bucket counts, so time buckets and shards combine exactly.

use std::collections::BTreeMap;

/// Relative accuracy of reported quantiles.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Values at or below this (seconds) are counted as zero.
const MIN_VALUE: f64 = 1e-9;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    buckets: BTreeMap<i32, u64>,
    zeros: u64,
    count: u64,
    sum: f64,
}

fn gamma_ln() -> f64 {
    ((1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)).ln()
}

impl Sketch {
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        if value <= MIN_VALUE || !value.is_finite() {
            self.zeros += 1;
        } else {
            *self.buckets.entry((value.ln() / gamma_ln()).ceil() as i32).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        for (bucket, count) in &other.buckets {
            *self.buckets.entry(*bucket).or_default() += count;
        }
        self.zeros += other.zeros;
        self.count += other.count;
        self.sum += other.sum;
    }

    /// Removes what `other` added, `other` having been merged in before (a sliding window drops its oldest
    /// part this way).
    pub fn subtract(&mut self, other: &Sketch) {
        for (bucket, count) in &other.buckets {
            if let Some(mine) = self.buckets.get_mut(bucket) {
                *mine = mine.saturating_sub(*count);
                if *mine == 0 {
                    self.buckets.remove(bucket);
                }
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
        for (bucket, count) in &self.buckets {
            seen += count;
            if seen > rank {
                // The bucket's midpoint in relative terms: 2γ^i / (γ + 1).
                let gamma = gamma_ln().exp();
                return Some(2.0 * (*bucket as f64 * gamma_ln()).exp() / (gamma + 1.0));
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
        assert_eq!(a.buckets, all.buckets);
        let mut window = a.clone();
        window.subtract(&a_alone);
        assert_eq!((window.buckets.clone(), window.count, window.zeros), (b.buckets.clone(), b.count, b.zeros));
        assert_eq!((a.count, a.zeros), (all.count, all.zeros));
        assert_eq!(a.quantile(0.9), all.quantile(0.9));
    }
}
