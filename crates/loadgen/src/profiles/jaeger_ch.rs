//! The `jaeger-ch` profile, the shape of Jaeger's published ClickHouse benchmark: traces of 10 spans (a root and
//! nine children of the root) over 10 services with about 20 span names each; 11 string attributes per span,
//! keys drawn without replacement from 97, values uniformly from 1,000; random ids; log-normal durations with a
//! median of 5 ms; start times spread over days. The information content of this data is known (~34 bytes per
//! span), which is what storage figures are held against, so every span is drawn afresh.

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use rand_distr::{Distribution, LogNormal};

use super::{Request, SentTrace, Workload, WorkloadConfig};
use crate::proto::{put_bytes, put_fixed64, put_message, put_str, put_uint};
use crate::request::{RequestBuilder, Service};

pub const SPANS_PER_TRACE: usize = 10;
const SERVICES: usize = 10;
const NAMES_PER_SERVICE: usize = 20;
const ATTRIBUTE_KEYS: usize = 97;
const ATTRIBUTE_VALUES: usize = 1000;
const ATTRIBUTES_PER_SPAN: usize = 11;
const SERVICE_NAMES: [&str; SERVICES] =
    ["frontend", "auth", "cart", "checkout", "payment", "inventory", "shipping", "email", "search", "catalog"];
const VERBS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const RESOURCES: [&str; 4] = ["items", "orders", "users", "sessions"];

pub struct JaegerCh {
    config: WorkloadConfig,
    rng: SmallRng,
    services: Vec<Service>,
    span_names: Vec<Vec<String>>,
    /// `attribute_pairs[key * 1000 + value]`: the encoded `KeyValue` (with its field-9 key and length).
    attribute_pairs: Vec<Vec<u8>>,
    duration: LogNormal<f64>,
    builder: RequestBuilder,
    sent: u64,
}

impl JaegerCh {
    pub fn new(config: WorkloadConfig) -> Self {
        let services = SERVICE_NAMES.iter().map(|name| Service::new(name, &[])).collect();
        let span_names = SERVICE_NAMES
            .iter()
            .map(|service| {
                (0..NAMES_PER_SERVICE)
                    .map(|i| format!("{} /{}/{}/{i}", VERBS[i % VERBS.len()], service, RESOURCES[i % RESOURCES.len()]))
                    .collect()
            })
            .collect();
        let mut attribute_pairs = Vec::with_capacity(ATTRIBUTE_KEYS * ATTRIBUTE_VALUES);
        for key in 0..ATTRIBUTE_KEYS {
            for value in 0..ATTRIBUTE_VALUES {
                let mut pair = Vec::with_capacity(40);
                crate::proto::put_string_attribute(
                    &mut pair,
                    9,
                    &format!("app.attr_{key:02}"),
                    &format!("value-{value:04}"),
                );
                attribute_pairs.push(pair);
            }
        }
        Self {
            rng: SmallRng::seed_from_u64(config.seed),
            config,
            services,
            span_names,
            attribute_pairs,
            // Median 5 ms (e^mu), a long right tail.
            duration: LogNormal::new((5e6f64).ln(), 1.0).expect("valid log-normal parameters"),
            builder: RequestBuilder::new(SERVICES),
            sent: 0,
        }
    }

    fn write_trace(&mut self) -> SentTrace {
        let mut trace_id = [0u8; 16];
        self.rng.fill_bytes(&mut trace_id);
        let spread = (self.config.spread_days * 86_400e9) as u64;
        let start = self.config.now_unix_nano.saturating_sub(self.rng.random_range(0..spread.max(1)));
        let mut root_id = [0u8; 8];
        self.rng.fill_bytes(&mut root_id);

        let mut root_end = start + 1;
        for _ in 1..SPANS_PER_TRACE {
            let child_start = start + self.rng.random_range(0..2_000_000u64);
            let child_end = child_start + self.duration.sample(&mut self.rng) as u64;
            root_end = root_end.max(child_end);
            let kind = [1, 2, 3][self.rng.random_range(0..3usize)];
            self.write_span(&trace_id, Some(&root_id), child_start, child_end, kind);
        }
        root_end += self.rng.random_range(0..1_000_000u64);
        self.write_root(&trace_id, &root_id, start, root_end);
        SentTrace { trace_id, start_unix_nano: start }
    }

    fn write_root(&mut self, trace_id: &[u8; 16], root_id: &[u8; 8], start: u64, end: u64) {
        let service = self.rng.random_range(0..SERVICES);
        self.write_encoded(service, trace_id, root_id, None, start, end, 2);
    }

    fn write_span(&mut self, trace_id: &[u8; 16], parent: Option<&[u8; 8]>, start: u64, end: u64, kind: u64) {
        let mut span_id = [0u8; 8];
        self.rng.fill_bytes(&mut span_id);
        let service = self.rng.random_range(0..SERVICES);
        self.write_encoded(service, trace_id, &span_id, parent, start, end, kind);
    }

    #[allow(clippy::too_many_arguments)]
    fn write_encoded(
        &mut self,
        service: usize,
        trace_id: &[u8; 16],
        span_id: &[u8; 8],
        parent: Option<&[u8; 8]>,
        start: u64,
        end: u64,
        kind: u64,
    ) {
        let name_index = self.rng.random_range(0..NAMES_PER_SERVICE);
        let keys = rand::seq::index::sample(&mut self.rng, ATTRIBUTE_KEYS, ATTRIBUTES_PER_SPAN);
        let mut pairs = [0usize; ATTRIBUTES_PER_SPAN];
        for (slot, key) in pairs.iter_mut().zip(keys.iter()) {
            *slot = key * ATTRIBUTE_VALUES + self.rng.random_range(0..ATTRIBUTE_VALUES);
        }
        let name = &self.span_names[service][name_index];
        let attribute_pairs = &self.attribute_pairs;
        let buf = self.builder.span_buffer(service);
        put_message(buf, 2, |span| {
            put_bytes(span, 1, trace_id);
            put_bytes(span, 2, span_id);
            if let Some(parent) = parent {
                put_bytes(span, 4, parent);
            }
            put_str(span, 5, name);
            put_uint(span, 6, kind);
            put_fixed64(span, 7, start);
            put_fixed64(span, 8, end);
            for pair in pairs {
                span.extend_from_slice(&attribute_pairs[pair]);
            }
        });
    }
}

impl Workload for JaegerCh {
    fn next_request(&mut self, batch_spans: usize) -> Option<Request> {
        let mut traces = Vec::new();
        while self.builder.span_count() + SPANS_PER_TRACE <= batch_spans.max(SPANS_PER_TRACE) {
            if self.config.traces.is_some_and(|limit| self.sent >= limit) {
                break;
            }
            traces.push(self.write_trace());
            self.sent += 1;
        }
        if traces.is_empty() {
            return None;
        }
        let spans = self.builder.span_count();
        let mut body = Vec::with_capacity(spans * 600);
        self.builder.finish(&self.services, &mut body);
        Some(Request { body, spans, traces })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clew_model::otlp::ExportTraceServiceRequest;
    use prost::Message;
    use std::collections::HashSet;

    fn config(seed: u64, traces: u64) -> WorkloadConfig {
        WorkloadConfig { seed, traces: Some(traces), spread_days: 10.0, now_unix_nano: 1_800_000_000_000_000_000 }
    }

    #[test]
    fn requests_decode_and_have_the_documented_shape() {
        let mut workload = JaegerCh::new(config(7, 25));
        let request = workload.next_request(100).unwrap();
        assert_eq!(request.spans, 100);
        assert_eq!(request.traces.len(), 10);
        let decoded = ExportTraceServiceRequest::decode(&request.body[..]).unwrap();
        let spans: Vec<_> =
            decoded.resource_spans.iter().flat_map(|rs| &rs.scope_spans).flat_map(|ss| &ss.spans).collect();
        assert_eq!(spans.len(), 100);
        for span in &spans {
            assert_eq!(span.attributes.len(), ATTRIBUTES_PER_SPAN);
            let keys: HashSet<_> = span.attributes.iter().map(|kv| &kv.key).collect();
            assert_eq!(keys.len(), ATTRIBUTES_PER_SPAN, "keys drawn without replacement");
            assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        }
        let roots = spans.iter().filter(|s| s.parent_span_id.is_empty()).count();
        assert_eq!(roots, 10);
        // Every child's parent is its trace's root.
        let root_ids: HashSet<_> = spans.iter().filter(|s| s.parent_span_id.is_empty()).map(|s| &s.span_id).collect();
        assert!(spans.iter().filter(|s| !s.parent_span_id.is_empty()).all(|s| root_ids.contains(&s.parent_span_id)));
        // The remaining traces, then the end.
        assert_eq!(workload.next_request(100).unwrap().traces.len(), 10);
        assert_eq!(workload.next_request(100).unwrap().traces.len(), 5);
        assert!(workload.next_request(100).is_none());
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = JaegerCh::new(config(42, 10)).next_request(100).unwrap().body;
        let b = JaegerCh::new(config(42, 10)).next_request(100).unwrap().body;
        let c = JaegerCh::new(config(43, 10)).next_request(100).unwrap().body;
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
