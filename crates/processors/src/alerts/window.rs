//! A rule's value over a sliding window. Span metrics are cumulative since start, so each evaluation keeps a
//! snapshot of the matching series' counters and subtracts the newest snapshot at least one window old: the
//! p99 and error ratio are those of the recent window, not of the whole uptime.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::span_metrics::{Exemplar, SeriesView};

use super::condition::Metric;

/// What a rule watches: one service, optionally one span name and one span kind.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub service: String,
    pub operation: Option<String>,
    /// The span-metrics label value (`SPAN_KIND_SERVER`).
    pub kind: Option<&'static str>,
}

impl Matcher {
    pub fn matches(&self, series: &SeriesView) -> bool {
        series.service == Some(self.service.as_str())
            && self.operation.as_deref().is_none_or(|op| series.span_name == Some(op))
            && self.kind.is_none_or(|kind| series.kind == Some(kind))
    }
}

/// The counters of one matching series at one evaluation.
#[derive(Debug, Clone)]
pub struct SeriesSample {
    /// The series' label values: its identity across snapshots.
    pub key: Box<[Box<str>]>,
    /// Status ERROR.
    pub failing: bool,
    pub calls: u64,
    pub buckets: Vec<u64>,
    pub sum: f64,
    /// The latest span of each bucket.
    pub exemplars: Vec<Option<Exemplar>>,
}

impl SeriesSample {
    pub fn of(series: &SeriesView) -> Self {
        Self {
            key: series.values.into(),
            failing: series.status == Some("STATUS_CODE_ERROR"),
            calls: series.calls,
            buckets: series.bucket_counts.to_vec(),
            sum: series.duration_sum,
            exemplars: series.bucket_exemplars.to_vec(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Counts {
    calls: u64,
    buckets: Vec<u64>,
    sum: f64,
}

struct Snapshot {
    at: Instant,
    series: HashMap<Box<[Box<str>]>, Counts>,
}

/// A span to look at: the latest of a bucket that grew within the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Example {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub seconds: f64,
    pub failing: bool,
    /// Unix seconds of the span's end.
    pub timestamp: f64,
}

/// Sums over the window.
#[derive(Debug, Clone, Default)]
pub struct WindowTotals {
    pub calls: u64,
    pub errors: u64,
    /// Per bucket (not cumulative).
    pub buckets: Vec<u64>,
    pub sum: f64,
    /// The time the sums cover: the window, or less while the server is younger than it.
    pub seconds: f64,
    pub examples: Vec<Example>,
}

/// Example traces per notification.
pub const MAX_EXAMPLES: usize = 5;

pub struct Window {
    length: Duration,
    snapshots: VecDeque<Snapshot>,
}

impl Window {
    /// Counting starts at `start` from nothing (the span metrics start with the server).
    pub fn new(length: Duration, start: Instant) -> Self {
        Self { length, snapshots: VecDeque::from([Snapshot { at: start, series: HashMap::new() }]) }
    }

    /// Records this evaluation's samples and returns the sums since the newest snapshot at least a window old.
    pub fn advance(&mut self, now: Instant, samples: &[SeriesSample], failing_only: bool) -> WindowTotals {
        let series = samples
            .iter()
            .map(|s| (s.key.clone(), Counts { calls: s.calls, buckets: s.buckets.clone(), sum: s.sum }))
            .collect();
        self.snapshots.push_back(Snapshot { at: now, series });
        let oldest_wanted = now.checked_sub(self.length);
        while let (Some(cutoff), Some(second)) = (oldest_wanted, self.snapshots.get(1))
            && second.at <= cutoff
        {
            self.snapshots.pop_front();
        }
        let base = &self.snapshots[0];
        let mut totals = WindowTotals { seconds: now.duration_since(base.at).as_secs_f64(), ..Default::default() };
        let empty = Counts::default();
        for sample in samples {
            let before = base.series.get(&sample.key).unwrap_or(&empty);
            let calls = sample.calls.saturating_sub(before.calls);
            if calls == 0 {
                continue;
            }
            totals.calls += calls;
            if sample.failing {
                totals.errors += calls;
            }
            totals.sum += (sample.sum - before.sum).max(0.0);
            totals.buckets.resize(sample.buckets.len(), 0);
            for (i, count) in sample.buckets.iter().enumerate() {
                let grew = count.saturating_sub(before.buckets.get(i).copied().unwrap_or(0));
                totals.buckets[i] += grew;
                if let (true, Some(Some(e))) = (grew > 0, sample.exemplars.get(i)) {
                    totals.examples.push(Example {
                        trace_id: e.trace_id,
                        span_id: e.span_id,
                        seconds: e.value,
                        failing: sample.failing,
                        timestamp: e.timestamp,
                    });
                }
            }
        }
        // Error rules show failing spans only (while there are any); then the slowest first, then the newest.
        if failing_only && totals.examples.iter().any(|e| e.failing) {
            totals.examples.retain(|e| e.failing);
        }
        totals.examples.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then(b.timestamp.total_cmp(&a.timestamp)));
        let mut seen = Vec::new();
        totals.examples.retain(|e| {
            let new = !seen.contains(&e.trace_id);
            seen.push(e.trace_id);
            new
        });
        totals.examples.truncate(MAX_EXAMPLES);
        totals
    }
}

impl WindowTotals {
    /// The metric's value; `None` when the window has no spans to compute it from.
    pub fn value(&self, metric: Metric, bounds: &[f64]) -> Option<f64> {
        let per_second = |n: u64| (self.seconds > 0.0).then(|| n as f64 / self.seconds);
        match metric {
            Metric::Rate => per_second(self.calls),
            Metric::ErrorRate => per_second(self.errors),
            Metric::ErrorRatio => (self.calls > 0).then(|| self.errors as f64 / self.calls as f64),
            Metric::Avg => (self.calls > 0).then(|| self.sum / self.calls as f64),
            Metric::Quantile(q) => quantile(q, bounds, &self.buckets),
        }
    }
}

/// Prometheus' `histogram_quantile`: linear interpolation within the bucket holding the rank; the `+Inf` bucket
/// answers its lower bound (the largest finite bound).
pub fn quantile(q: f64, bounds: &[f64], counts: &[u64]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, &count) in counts.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let Some(&upper) = bounds.get(i) else { return bounds.last().copied() };
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            return Some(lower + (upper - lower) * (rank - below as f64) / count as f64);
        }
        below += count;
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: [f64; 3] = [0.1, 0.5, 1.0];

    fn sample(name: &str, failing: bool, buckets: [u64; 4], exemplar_ids: [u8; 4]) -> SeriesSample {
        let exemplars = exemplar_ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                (id != 0).then(|| Exemplar {
                    trace_id: [id; 16],
                    span_id: [id; 8],
                    value: [0.05, 0.3, 0.8, 2.0][i],
                    timestamp: id as f64,
                })
            })
            .collect();
        SeriesSample {
            key: vec![Box::from(name), Box::from(if failing { "ERROR" } else { "UNSET" })].into(),
            failing,
            calls: buckets.iter().sum(),
            buckets: buckets.to_vec(),
            sum: buckets.iter().zip([0.05, 0.3, 0.8, 2.0]).map(|(n, s)| *n as f64 * s).sum(),
            exemplars,
        }
    }

    #[test]
    fn quantiles_interpolate_like_histogram_quantile() {
        assert_eq!(quantile(0.5, &BOUNDS, &[0, 0, 0, 0]), None);
        // 10 spans in (0.5, 1]: the median is halfway through that bucket.
        assert_eq!(quantile(0.5, &BOUNDS, &[0, 0, 10, 0]), Some(0.75));
        // 90 fast, 10 in (0.5, 1]: p99 is 90% into the slow bucket.
        let p99 = quantile(0.99, &BOUNDS, &[90, 0, 10, 0]).unwrap();
        assert!((p99 - 0.95).abs() < 1e-9, "{p99}");
        assert_eq!(quantile(0.99, &BOUNDS, &[1, 0, 0, 5]), Some(1.0));
    }

    #[test]
    fn the_window_subtracts_the_snapshot_a_window_old() {
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let mut window = Window::new(Duration::from_secs(2), t0);
        // 10 slow calls in the first second.
        let slow = sample("op", false, [0, 0, 10, 0], [0, 0, 1, 0]);
        let totals = window.advance(t0 + second, std::slice::from_ref(&slow), false);
        assert_eq!((totals.calls, totals.seconds), (10, 1.0));
        assert_eq!(totals.value(Metric::Rate, &BOUNDS), Some(10.0));
        assert_eq!(totals.examples.len(), 1);
        // Then 10 fast ones: both in the 2s window.
        let mixed = sample("op", false, [10, 0, 10, 0], [2, 0, 1, 0]);
        let totals = window.advance(t0 + 2 * second, std::slice::from_ref(&mixed), false);
        assert_eq!(totals.calls, 20);
        assert_eq!(totals.examples[0].trace_id, [1; 16], "the slowest first");
        // A second later the slow ones are older than the window; their bucket did not grow, so no example.
        let later = sample("op", false, [20, 0, 10, 0], [3, 0, 1, 0]);
        let totals = window.advance(t0 + 3 * second, std::slice::from_ref(&later), false);
        assert_eq!((totals.calls, totals.buckets.clone()), (20, vec![20, 0, 0, 0]));
        assert_eq!(totals.seconds, 2.0);
        assert!(totals.value(Metric::Quantile(0.99), &BOUNDS).unwrap() <= 0.1);
        assert_eq!(totals.examples.iter().map(|e| e.trace_id[0]).collect::<Vec<_>>(), vec![3]);
        // Nothing new: no spans, no latency.
        let totals = window.advance(t0 + 5 * second, std::slice::from_ref(&later), false);
        assert_eq!(totals.calls, 0);
        assert_eq!(totals.value(Metric::Quantile(0.99), &BOUNDS), None);
        assert_eq!(totals.value(Metric::Rate, &BOUNDS), Some(0.0));
    }

    #[test]
    fn error_rules_show_failing_spans() {
        let t0 = Instant::now();
        let mut window = Window::new(Duration::from_secs(60), t0);
        let ok = sample("op", false, [0, 0, 0, 3], [0, 0, 0, 7]);
        let failed = sample("op", true, [1, 0, 0, 0], [9, 0, 0, 0]);
        let totals = window.advance(t0 + Duration::from_secs(1), &[ok.clone(), failed.clone()], true);
        assert_eq!((totals.calls, totals.errors), (4, 1));
        assert_eq!(totals.value(Metric::ErrorRatio, &BOUNDS), Some(0.25));
        assert_eq!(totals.examples.iter().map(|e| e.trace_id[0]).collect::<Vec<_>>(), vec![9]);
        let mut window = Window::new(Duration::from_secs(60), t0);
        let totals = window.advance(t0 + Duration::from_secs(1), &[ok, failed], false);
        assert_eq!(totals.examples[0].trace_id[0], 7, "latency rules: slowest first");
    }
}
