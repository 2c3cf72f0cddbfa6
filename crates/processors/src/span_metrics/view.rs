//! A read-only view of the live RED series for other stages (alert rules), so they need not parse `/metrics`.

use super::openmetrics::Exemplar;
use super::{Source, SpanMetricsHandle};

/// One RED series. A dimension excluded from the configuration is `None`.
#[derive(Debug)]
pub struct SeriesView<'a> {
    pub service: Option<&'a str>,
    pub span_name: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub status: Option<&'a str>,
    /// Every label value in configuration order, usable as the series' identity.
    pub values: &'a [Box<str>],
    pub calls: u64,
    /// The latest span counted (for a failing series: the latest failing span).
    pub calls_exemplar: Option<Exemplar>,
    /// Per duration bucket (not cumulative); the last is `+Inf`.
    pub bucket_counts: &'a [u64],
    /// The latest span of each bucket.
    pub bucket_exemplars: &'a [Option<Exemplar>],
    /// Sum of the durations, in seconds.
    pub duration_sum: f64,
}

impl SpanMetricsHandle {
    /// Upper bounds of the duration buckets, in seconds (`+Inf` implied).
    pub fn buckets(&self) -> &[f64] {
        &self.0.config.buckets
    }

    /// Whether a default dimension (`service.name`, `span.name`, `span.kind`, `status.code`) is kept.
    pub fn has_dimension(&self, name: &str) -> bool {
        let wanted = match name {
            "service.name" => |s: &Source| matches!(s, Source::Service),
            "span.name" => |s: &Source| matches!(s, Source::SpanName),
            "span.kind" => |s: &Source| matches!(s, Source::Kind),
            "status.code" => |s: &Source| matches!(s, Source::Status),
            _ => return false,
        };
        self.0.sources.iter().any(wanted)
    }

    /// Calls `visit` with every series but the overflow one, under the metrics lock (keep it short).
    pub fn for_each_series(&self, mut visit: impl FnMut(&SeriesView)) {
        let shared = &*self.0;
        let position = |wanted: fn(&Source) -> bool| shared.sources.iter().position(wanted);
        let service = position(|s| matches!(s, Source::Service));
        let span_name = position(|s| matches!(s, Source::SpanName));
        let kind = position(|s| matches!(s, Source::Kind));
        let status = position(|s| matches!(s, Source::Status));
        let red = shared.red.lock();
        for series in red.series() {
            if series.values.is_empty() {
                continue;
            }
            let value = |i: Option<usize>| i.and_then(|i| series.values.get(i)).map(|v| &**v);
            visit(&SeriesView {
                service: value(service),
                span_name: value(span_name),
                kind: value(kind),
                status: value(status),
                values: &series.values,
                calls: series.calls.value,
                calls_exemplar: series.calls.exemplar,
                bucket_counts: &series.duration.counts,
                bucket_exemplars: &series.duration.exemplars,
                duration_sum: series.duration.sum,
            });
        }
    }
}
