//! RED over a time range from stored traces: per service (and span name, when grouped by operation) and time
//! bucket, the number of spans (rate), how many failed (error ratio) and their durations in a mergeable
//! [`Sketch`] (p50/p90/p99). Spans are placed by their start time. Spans come one by one, or pre-aggregated
//! per interval (the store's per-block RED summaries) when the interval falls inside one time bucket; the
//! caller passes each span once.

use std::collections::BTreeMap;

use clew_model::otlp::ResourceSpans;
use clew_model::service_name;

use crate::sketch::Sketch;

/// What to count.
#[derive(Debug, Clone, PartialEq)]
pub struct RedRequest {
    /// Unix nanoseconds; spans starting in `[start, end)` count.
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// Width of a time bucket, nanoseconds (> 0).
    pub step_nanos: u64,
    /// Only these services (empty: all).
    pub services: Vec<String>,
    /// Only this span name.
    pub operation: Option<String>,
    /// Only these OTLP span kinds (empty: all).
    pub kinds: Vec<i32>,
    /// One series per (service, span name) instead of per service.
    pub group_by_operation: bool,
}

/// Counts of one time bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedBucket {
    pub calls: u64,
    pub errors: u64,
    /// Durations in seconds.
    pub durations: Sketch,
}

impl RedBucket {
    pub fn error_ratio(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.errors as f64 / self.calls as f64)
    }
}

/// One series: a service, or a service and span name, with one bucket per step from the start.
#[derive(Debug, Clone, PartialEq)]
pub struct RedSeries {
    pub service: String,
    pub operation: Option<String>,
    pub buckets: Vec<RedBucket>,
}

impl RedSeries {
    /// All buckets merged: the whole range.
    pub fn total(&self) -> RedBucket {
        let mut total = RedBucket::default();
        for b in &self.buckets {
            total.calls += b.calls;
            total.errors += b.errors;
            total.durations.merge(&b.durations);
        }
        total
    }
}

/// The service of spans whose resource has no `service.name`.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// What RED needs to know about one span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanFacts<'a> {
    /// The resource's `service.name`, if any.
    pub service: Option<&'a str>,
    pub name: &'a str,
    /// OTLP span kind.
    pub kind: i32,
    /// Status code ERROR.
    pub error: bool,
    pub start_unix_nano: u64,
    /// End − start, 0 when the end is before the start.
    pub duration_nanos: u64,
}

/// Spans pre-aggregated over an interval starting at `start_unix_nano`: `calls` of them, their durations
/// bucketed by [`clew_model::latency_buckets`] as `zeros` and (bucket, count) pairs, summing to `sum_seconds`.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval<L> {
    pub start_unix_nano: u64,
    pub calls: u64,
    pub zeros: u64,
    pub latency_buckets: L,
    pub sum_seconds: f64,
}

/// Accumulates spans (from traces, one by one, or pre-aggregated per interval) into RED series.
#[derive(Debug)]
pub struct Red {
    request: RedRequest,
    buckets: usize,
    /// Service → span name (empty unless grouping by operation) → buckets.
    series: BTreeMap<String, BTreeMap<String, Vec<RedBucket>>>,
}

impl Red {
    pub fn new(request: RedRequest) -> Self {
        let step = request.step_nanos.max(1);
        let span = request.end_unix_nano.saturating_sub(request.start_unix_nano);
        let buckets = span.div_ceil(step).max(1) as usize;
        Self { request: RedRequest { step_nanos: step, ..request }, buckets, series: BTreeMap::new() }
    }

    /// The start of bucket `i`, Unix nanoseconds.
    pub fn bucket_start(&self, i: usize) -> u64 {
        self.request.start_unix_nano + i as u64 * self.request.step_nanos
    }

    pub fn add_trace(&mut self, trace: &[ResourceSpans]) {
        for resource_spans in trace {
            let service = service_name(resource_spans.resource.as_ref());
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                self.add_span(&SpanFacts {
                    service,
                    name: &span.name,
                    kind: span.kind,
                    error: span.status.as_ref().is_some_and(|s| s.code == 2),
                    start_unix_nano: span.start_time_unix_nano,
                    duration_nanos: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano),
                });
            }
        }
    }

    /// Counts one span if the request wants it.
    pub fn add_span(&mut self, span: &SpanFacts<'_>) {
        let start = span.start_unix_nano;
        if start < self.request.start_unix_nano || start >= self.request.end_unix_nano {
            return;
        }
        let Some(bucket) = self.bucket_for(span.service, span.name, span.kind, start) else { return };
        bucket.calls += 1;
        if span.error {
            bucket.errors += 1;
        }
        bucket.durations.add(span.duration_nanos as f64 / 1e9);
    }

    /// Whether the request counts spans of this service, span name and kind at all.
    pub fn wants(&self, service: Option<&str>, name: &str, kind: i32) -> bool {
        let r = &self.request;
        let service = service.unwrap_or(UNKNOWN_SERVICE);
        (r.services.is_empty() || r.services.iter().any(|s| s == service))
            && r.operation.as_ref().is_none_or(|op| op == name)
            && (r.kinds.is_empty() || r.kinds.contains(&kind))
    }

    /// Whether spans pre-aggregated over `[start, start + width)` (Unix nanoseconds) can be counted as a
    /// whole: the interval is outside the requested range or inside one of its buckets.
    pub fn takes_interval(&self, start: u64, width: u64) -> bool {
        let r = &self.request;
        let end = start.saturating_add(width);
        if end <= r.start_unix_nano || start >= r.end_unix_nano {
            return true;
        }
        start >= r.start_unix_nano
            && end <= r.end_unix_nano
            && (start - r.start_unix_nano) / r.step_nanos == (end - 1 - r.start_unix_nano) / r.step_nanos
    }

    /// Counts spans of one service, span name, kind and status (failed when `error`) pre-aggregated per
    /// interval of `width` nanoseconds, each of which [`Red::takes_interval`] accepted.
    pub fn add_intervals<L: IntoIterator<Item = (i32, u64)>>(
        &mut self,
        (service, name, kind, error): (Option<&str>, &str, i32, bool),
        width: u64,
        intervals: impl IntoIterator<Item = Interval<L>>,
    ) {
        let (range_start, range_end, step) =
            (self.request.start_unix_nano, self.request.end_unix_nano, self.request.step_nanos);
        let Some(buckets) = self.series_for(service, name, kind) else { return };
        for interval in intervals {
            let start = interval.start_unix_nano;
            if interval.calls == 0 || start.saturating_add(width) <= range_start || start >= range_end {
                continue;
            }
            let bucket = &mut buckets[((start - range_start) / step) as usize];
            bucket.calls += interval.calls;
            if error {
                bucket.errors += interval.calls;
            }
            bucket.durations.add_bucketed(interval.zeros, interval.latency_buckets, interval.sum_seconds);
        }
    }

    /// The bucket a span of this service, name and kind starting at `start` (inside the range) counts in, if
    /// the request wants it.
    fn bucket_for(&mut self, service: Option<&str>, name: &str, kind: i32, start: u64) -> Option<&mut RedBucket> {
        let i = ((start - self.request.start_unix_nano) / self.request.step_nanos) as usize;
        self.series_for(service, name, kind).map(|buckets| &mut buckets[i])
    }

    /// The buckets spans of this service, name and kind count in, if the request wants them.
    fn series_for(&mut self, service: Option<&str>, name: &str, kind: i32) -> Option<&mut Vec<RedBucket>> {
        if !self.wants(service, name, kind) {
            return None;
        }
        let operation = if self.request.group_by_operation { name } else { "" };
        let n = self.buckets;
        // Looked up by reference first: no allocation per span or summary cell once the series exists.
        let service = service.unwrap_or(UNKNOWN_SERVICE);
        if !self.series.contains_key(service) {
            self.series.insert(service.to_string(), BTreeMap::new());
        }
        let operations = self.series.get_mut(service).expect("inserted above");
        if !operations.contains_key(operation) {
            operations.insert(operation.to_string(), vec![RedBucket::default(); n]);
        }
        operations.get_mut(operation)
    }

    /// The series, sorted by service then span name.
    pub fn finish(self) -> Vec<RedSeries> {
        let by_operation = self.request.group_by_operation;
        self.series
            .into_iter()
            .flat_map(|(service, operations)| {
                operations.into_iter().map(move |(operation, buckets)| RedSeries {
                    service: service.clone(),
                    operation: by_operation.then_some(operation),
                    buckets,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::Status;
    use clew_model::otlp::span::SpanKind;

    use super::*;
    use crate::test_support::{span, trace, with_kind};

    const S: u64 = 1_000_000_000;

    fn request(group_by_operation: bool) -> RedRequest {
        RedRequest {
            start_unix_nano: 100 * S,
            end_unix_nano: 160 * S,
            step_nanos: 30 * S,
            services: Vec::new(),
            operation: None,
            kinds: Vec::new(),
            group_by_operation,
        }
    }

    fn failed(mut s: clew_model::otlp::Span) -> clew_model::otlp::Span {
        s.status = Some(Status { code: 2, message: String::new() });
        s
    }

    #[test]
    fn counts_calls_errors_and_durations_per_bucket() {
        let t = trace(vec![
            (
                "api",
                vec![
                    with_kind(span(1, None, "GET", 100 * S, 100 * S + S / 10), SpanKind::Server),
                    with_kind(failed(span(2, None, "GET", 129 * S, 129 * S + S / 2)), SpanKind::Server),
                    with_kind(span(3, None, "POST", 130 * S, 131 * S), SpanKind::Server),
                    // Outside the range: before, and at the end (exclusive).
                    span(4, None, "GET", 99 * S, 100 * S),
                    span(5, None, "GET", 160 * S, 161 * S),
                ],
            ),
            ("db", vec![with_kind(span(6, Some(1), "SELECT", 101 * S, 101 * S + S / 100), SpanKind::Client)]),
        ]);
        let mut red = Red::new(request(false));
        red.add_trace(&t);
        let series = red.finish();
        assert_eq!(series.len(), 2);
        let api = &series[0];
        assert_eq!((api.service.as_str(), api.operation.as_deref()), ("api", None));
        assert_eq!(api.buckets.iter().map(|b| (b.calls, b.errors)).collect::<Vec<_>>(), vec![(2, 1), (1, 0)]);
        let p99 = api.buckets[0].durations.quantile(0.99).unwrap();
        assert!((p99 - 0.5).abs() < 0.005, "{p99}");
        assert_eq!(api.total().calls, 3);
        assert_eq!(api.total().error_ratio(), Some(1.0 / 3.0));

        let mut by_op = Red::new(RedRequest { kinds: vec![2], group_by_operation: true, ..request(true) });
        by_op.add_trace(&t);
        let names: Vec<_> =
            by_op.finish().into_iter().map(|s| (s.total().calls, s.operation.unwrap())).map(|(c, o)| (o, c)).collect();
        assert_eq!(names, vec![("GET".to_string(), 2), ("POST".to_string(), 1)]);
    }
}
