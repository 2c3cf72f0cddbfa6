//! Calls and duration per series (service, span name, kind, status code and configured dimensions), bounded
//! by `max_series` with one overflow series.

use super::fast_hash::FastMap;
use super::openmetrics::{self, Counter, Exemplar, Histogram};

pub const CALLS: &str = "traces_span_metrics_calls";
pub const DURATION: &str = "traces_span_metrics_duration_seconds";

/// One label set's values, in the order of the configured label names; an empty value is left out.
#[derive(Debug, Clone)]
pub struct Series {
    pub values: Box<[Box<str>]>,
    pub calls: Counter,
    pub duration: Histogram,
}

impl Series {
    fn count(&mut self, bounds: &[f64], seconds: f64, exemplar: Option<Exemplar>) {
        self.calls.inc(exemplar.map(|e| Exemplar { value: 1.0, ..e }));
        self.duration.observe(bounds, seconds, exemplar);
    }
}

#[derive(Debug, Clone)]
pub struct RedState {
    /// Keyed by the label values joined by `\u{1f}`, so a lookup needs no allocation.
    series: FastMap<Box<str>, Series>,
    overflow: Option<Series>,
    max_series: usize,
}

impl RedState {
    pub fn new(max_series: usize) -> Self {
        Self { series: FastMap::default(), overflow: None, max_series }
    }

    /// Counts one span. `key` is scratch space.
    pub fn record(
        &mut self,
        values: &[&str],
        key: &mut String,
        bounds: &[f64],
        seconds: f64,
        exemplar: Option<Exemplar>,
    ) {
        key.clear();
        for v in values {
            key.push_str(v);
            key.push('\u{1f}');
        }
        if let Some(series) = self.series.get_mut(key.as_str()) {
            series.count(bounds, seconds, exemplar);
            return;
        }
        let new_series =
            |values: Box<[Box<str>]>| Series { values, calls: Counter::default(), duration: Histogram::new(bounds) };
        let series = if self.series.len() < self.max_series {
            let values = values.iter().map(|v| Box::<str>::from(*v)).collect();
            self.series.entry(key.as_str().into()).or_insert_with(|| new_series(values))
        } else {
            self.overflow.get_or_insert_with(|| new_series(Box::new([])))
        };
        series.count(bounds, seconds, exemplar);
    }

    /// Every series, the overflow one (with no values) last.
    pub fn series(&self) -> Vec<&Series> {
        let mut all: Vec<&Series> = self.series.values().collect();
        all.sort_by(|a, b| a.values.cmp(&b.values));
        all.extend(self.overflow.as_ref());
        all
    }

    /// Writes both families.
    pub fn encode(&self, out: &mut String, names: &[String], bounds: &[f64]) {
        let series = self.series();
        let labels_of = |s: &Series| -> Vec<(String, String)> {
            if s.values.is_empty() {
                return vec![("otel_metric_overflow".into(), "true".into())];
            }
            names
                .iter()
                .zip(s.values.iter())
                .filter(|(_, v)| !v.is_empty())
                .map(|(n, v)| (n.clone(), v.to_string()))
                .collect()
        };
        let labelled: Vec<(Vec<(String, String)>, &Series)> = series.iter().map(|s| (labels_of(s), *s)).collect();
        openmetrics::family_header(out, CALLS, "counter", "Spans seen, by service, span name, kind and status.", None);
        for (labels, s) in &labelled {
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            openmetrics::counter(out, CALLS, &pairs, &s.calls);
        }
        openmetrics::family_header(out, DURATION, "histogram", "Span durations (end - start).", Some("seconds"));
        for (labels, s) in &labelled {
            let pairs: Vec<(&str, &str)> = labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            openmetrics::histogram(out, DURATION, &pairs, bounds, &s.duration);
        }
    }
}
