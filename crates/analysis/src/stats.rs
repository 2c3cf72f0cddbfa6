//! Where a trace's time went, per service and per (service, span name): how many spans, their total time, and
//! their self time (the time a span was not covered by any of its children, children clipped to the span).

use std::collections::BTreeMap;

use clew_model::otlp::ResourceSpans;

use crate::spans::TraceSpans;

/// Count and times of a group of spans, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub count: u64,
    pub total_nanos: u64,
    pub self_nanos: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStats {
    pub service: String,
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationStats {
    pub service: String,
    pub name: String,
    pub totals: Totals,
}

/// Statistics of one trace; services sorted by name, operations by service then name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceStats {
    pub services: Vec<ServiceStats>,
    pub operations: Vec<OperationStats>,
}

/// Computes the statistics of a whole trace. A span's children are the spans naming it as parent, whatever their
/// kind: time a span spent waiting on asynchronous work it started is not its own work either.
pub fn stats(trace: &[ResourceSpans]) -> TraceStats {
    let trace = TraceSpans::new(trace);
    let mut services: BTreeMap<&str, Totals> = BTreeMap::new();
    let mut operations: BTreeMap<(&str, &str), Totals> = BTreeMap::new();
    for (i, span) in trace.spans.iter().enumerate() {
        let total = span.end - span.start;
        let children = trace.children[i].iter().map(|&c| (trace.spans[c].start, trace.spans[c].end));
        let own = total - covered(span.start, span.end, children);
        for totals in [
            services.entry(span.service).or_default(),
            operations.entry((span.service, span.span.name.as_str())).or_default(),
        ] {
            totals.count += 1;
            totals.total_nanos += total;
            totals.self_nanos += own;
        }
    }
    TraceStats {
        services: services
            .into_iter()
            .map(|(service, totals)| ServiceStats { service: service.into(), totals })
            .collect(),
        operations: operations
            .into_iter()
            .map(|((service, name), totals)| OperationStats { service: service.into(), name: name.into(), totals })
            .collect(),
    }
}

/// Length of the union of `intervals` clipped to `[start, end)`.
fn covered(start: u64, end: u64, intervals: impl Iterator<Item = (u64, u64)>) -> u64 {
    let mut clipped: Vec<(u64, u64)> =
        intervals.map(|(s, e)| (s.max(start), e.min(end))).filter(|(s, e)| s < e).collect();
    clipped.sort_unstable();
    let mut sum = 0;
    let mut reach = start;
    for (s, e) in clipped {
        let from = s.max(reach);
        if e > from {
            sum += e - from;
            reach = e;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{span, trace};

    #[test]
    fn self_time_excludes_the_union_of_children_clipped_to_the_span() {
        // root [0,100): children [10,40) and [30,60) overlap (union 50), one outlives it [90,130) (counts 10).
        let t = trace(vec![
            ("front", vec![span(1, None, "GET /", 0, 100), span(2, Some(1), "auth", 10, 40)]),
            ("back", vec![span(3, Some(1), "query", 30, 60), span(4, Some(1), "query", 90, 130)]),
        ]);
        let got = stats(&t);
        let totals = |count, total_nanos, self_nanos| Totals { count, total_nanos, self_nanos };
        assert_eq!(
            got.services,
            vec![
                ServiceStats { service: "back".into(), totals: totals(2, 70, 70) },
                ServiceStats { service: "front".into(), totals: totals(2, 130, 40 + 30) },
            ]
        );
        assert_eq!(
            got.operations,
            vec![
                OperationStats { service: "back".into(), name: "query".into(), totals: totals(2, 70, 70) },
                OperationStats { service: "front".into(), name: "GET /".into(), totals: totals(1, 100, 40) },
                OperationStats { service: "front".into(), name: "auth".into(), totals: totals(1, 30, 30) },
            ]
        );
    }

    #[test]
    fn empty_trace_has_no_stats() {
        assert_eq!(stats(&[]), TraceStats::default());
    }

    #[test]
    fn union_of_intervals() {
        assert_eq!(covered(0, 100, [(10, 20), (15, 30), (50, 60), (55, 58)].into_iter()), 30);
        assert_eq!(covered(10, 20, [(0, 100)].into_iter()), 10);
        assert_eq!(covered(10, 20, [(0, 5), (25, 30)].into_iter()), 0);
    }
}
