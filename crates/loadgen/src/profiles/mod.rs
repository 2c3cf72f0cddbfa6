//! Workload profiles. Each is deterministic from its seed and writes OTLP protobuf requests directly.

mod jaeger_ch;
mod large;
mod microservices;
mod tree;

use std::time::{SystemTime, UNIX_EPOCH};

pub use jaeger_ch::JaegerCh;
pub use large::Large;
pub use microservices::Microservices;

/// A trace that was sent: its id and start, for `--ids-out` and the query benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentTrace {
    pub trace_id: [u8; 16],
    pub start_unix_nano: u64,
}

/// One request's worth of spans.
pub struct Request {
    pub body: Vec<u8>,
    pub spans: usize,
    /// Traces whose first span is in this request.
    pub traces: Vec<SentTrace>,
}

/// A source of requests. `next_request` returns `None` when the workload has sent its share.
pub trait Workload: Send {
    fn next_request(&mut self, batch_spans: usize) -> Option<Request>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Jaeger's ClickHouse benchmark shape: 10 spans per trace, 11 random string attributes per span.
    JaegerCh,
    /// Deep and wide call trees with semantic-convention attributes, events, links and 1% errors.
    Microservices,
    /// A few traces of 10,000 to 50,000 spans.
    Large,
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jaeger-ch" => Ok(Profile::JaegerCh),
            "microservices" => Ok(Profile::Microservices),
            "large" => Ok(Profile::Large),
            other => Err(format!("unknown profile {other:?}; choose jaeger-ch, microservices or large")),
        }
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Profile::JaegerCh => "jaeger-ch",
            Profile::Microservices => "microservices",
            Profile::Large => "large",
        })
    }
}

/// Settings every profile takes.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    pub seed: u64,
    /// Traces this workload sends; `None` for as many as asked (duration-bound runs).
    pub traces: Option<u64>,
    /// Trace start times are spread uniformly over this many days before `now_unix_nano`.
    pub spread_days: f64,
    pub now_unix_nano: u64,
}

impl WorkloadConfig {
    pub fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
    }
}

impl Profile {
    pub fn workload(self, config: WorkloadConfig) -> Box<dyn Workload> {
        match self {
            Profile::JaegerCh => Box::new(JaegerCh::new(config)),
            Profile::Microservices => Box::new(Microservices::new(config)),
            Profile::Large => Box::new(Large::new(config)),
        }
    }
}

/// Spans in every `jaeger-ch` trace (for progress totals).
pub fn jaeger_ch_spans_per_trace() -> u64 {
    jaeger_ch::SPANS_PER_TRACE as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use clew_model::otlp::{ExportTraceServiceRequest, Span};
    use prost::Message;
    use std::collections::{HashMap, HashSet};

    fn config(traces: u64) -> WorkloadConfig {
        WorkloadConfig { seed: 3, traces: Some(traces), spread_days: 1.0, now_unix_nano: 1_800_000_000_000_000_000 }
    }

    fn drain(mut workload: Box<dyn Workload>, batch: usize) -> (Vec<Span>, usize) {
        let mut spans = Vec::new();
        let mut requests = 0;
        while let Some(request) = workload.next_request(batch) {
            let decoded = ExportTraceServiceRequest::decode(&request.body[..]).expect("valid OTLP protobuf");
            let here: Vec<Span> =
                decoded.resource_spans.into_iter().flat_map(|rs| rs.scope_spans).flat_map(|ss| ss.spans).collect();
            assert_eq!(here.len(), request.spans);
            spans.extend(here);
            requests += 1;
        }
        (spans, requests)
    }

    fn by_trace(spans: &[Span]) -> HashMap<&[u8], Vec<&Span>> {
        let mut traces: HashMap<&[u8], Vec<&Span>> = HashMap::new();
        for span in spans {
            traces.entry(&span.trace_id).or_default().push(span);
        }
        traces
    }

    #[test]
    fn microservices_traces_are_whole_trees_with_some_errors() {
        let (spans, _) = drain(Profile::Microservices.workload(config(2000)), 500);
        let traces = by_trace(&spans);
        assert_eq!(traces.len(), 2000);
        let mut error_traces = 0;
        for spans in traces.values() {
            assert!((2..=200).contains(&spans.len()), "trace of {} spans", spans.len());
            let ids: HashSet<&[u8]> = spans.iter().map(|s| &s.span_id[..]).collect();
            assert_eq!(spans.iter().filter(|s| s.parent_span_id.is_empty()).count(), 1, "one root");
            assert!(spans.iter().all(|s| s.parent_span_id.is_empty() || ids.contains(&s.parent_span_id[..])));
            assert!(spans.iter().all(|s| s.end_time_unix_nano > s.start_time_unix_nano));
            if spans.iter().any(|s| s.status.as_ref().is_some_and(|st| st.code == 2)) {
                error_traces += 1;
            }
        }
        assert!((4..=60).contains(&error_traces), "{error_traces} error traces of 2000");
        assert!(spans.iter().any(|s| !s.events.is_empty()) && spans.iter().any(|s| !s.links.is_empty()));
    }

    #[test]
    fn large_traces_span_many_requests() {
        let (spans, requests) = drain(Profile::Large.workload(config(2)), 1000);
        let traces = by_trace(&spans);
        assert_eq!(traces.len(), 2);
        for spans in traces.values() {
            assert!((10_000..=50_000).contains(&spans.len()), "trace of {} spans", spans.len());
        }
        assert!(requests >= 20, "{requests} requests");
    }
}
