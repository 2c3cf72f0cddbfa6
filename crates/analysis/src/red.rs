//! RED over a time range from stored traces: per service (and span name, when grouped by operation) and time
//! bucket, the number of spans (rate), how many failed (error ratio) and their durations in a mergeable
//! [`Sketch`] (p50/p90/p99). Spans are placed by their start time; a span counts once however many traces
//! or blocks repeat it (callers pass whole deduplicated traces).

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

/// Accumulates traces into RED series.
#[derive(Debug)]
pub struct Red {
    request: RedRequest,
    buckets: usize,
    series: BTreeMap<(String, Option<String>), Vec<RedBucket>>,
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
        let r = &self.request;
        for resource_spans in trace {
            let service = service_name(resource_spans.resource.as_ref()).unwrap_or("unknown_service");
            if !r.services.is_empty() && !r.services.iter().any(|s| s == service) {
                continue;
            }
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                let start = span.start_time_unix_nano;
                if start < r.start_unix_nano || start >= r.end_unix_nano {
                    continue;
                }
                if r.operation.as_ref().is_some_and(|op| *op != span.name)
                    || (!r.kinds.is_empty() && !r.kinds.contains(&span.kind))
                {
                    continue;
                }
                let operation = r.group_by_operation.then(|| span.name.clone());
                let i = ((start - r.start_unix_nano) / r.step_nanos) as usize;
                let n = self.buckets;
                let series = self
                    .series
                    .entry((service.to_string(), operation))
                    .or_insert_with(|| vec![RedBucket::default(); n]);
                let bucket = &mut series[i];
                bucket.calls += 1;
                if span.status.as_ref().is_some_and(|s| s.code == 2) {
                    bucket.errors += 1;
                }
                let seconds = span.end_time_unix_nano.saturating_sub(start) as f64 / 1e9;
                bucket.durations.add(seconds);
            }
        }
    }

    /// The series, sorted by service then span name.
    pub fn finish(self) -> Vec<RedSeries> {
        self.series
            .into_iter()
            .map(|((service, operation), buckets)| RedSeries { service, operation, buckets })
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
