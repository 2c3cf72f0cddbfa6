//! Assembles one `ExportTraceServiceRequest` from encoded spans, grouped by service so each service's spans sit
//! under one resource, as an SDK or collector would send them.

use crate::proto::{put_message, put_str, put_string_attribute};

/// A service of a workload: its pre-encoded `Resource` and `InstrumentationScope` messages.
pub struct Service {
    resource: Vec<u8>,
    scope: Vec<u8>,
}

impl Service {
    pub fn new(name: &str, extra_resource: &[(&str, &str)]) -> Self {
        let mut resource = Vec::new();
        put_string_attribute(&mut resource, 1, "service.name", name);
        for (key, value) in extra_resource {
            put_string_attribute(&mut resource, 1, key, value);
        }
        let mut scope = Vec::new();
        put_str(&mut scope, 1, "clew-loadgen");
        put_str(&mut scope, 2, env!("CARGO_PKG_VERSION"));
        Self { resource, scope }
    }
}

/// Per-service buffers of encoded spans, reused from one request to the next.
pub struct RequestBuilder {
    spans_by_service: Vec<Vec<u8>>,
    span_count: usize,
}

impl RequestBuilder {
    pub fn new(services: usize) -> Self {
        Self { spans_by_service: vec![Vec::new(); services], span_count: 0 }
    }

    /// The buffer to encode the next span of `service` into (as `ScopeSpans.spans`, field 2).
    pub fn span_buffer(&mut self, service: usize) -> &mut Vec<u8> {
        self.span_count += 1;
        &mut self.spans_by_service[service]
    }

    pub fn span_count(&self) -> usize {
        self.span_count
    }

    /// Writes the request into `out` and empties the builder.
    pub fn finish(&mut self, services: &[Service], out: &mut Vec<u8>) {
        for (service, spans) in services.iter().zip(self.spans_by_service.iter_mut()) {
            if spans.is_empty() {
                continue;
            }
            put_message(out, 1, |rs| {
                put_message(rs, 1, |r| r.extend_from_slice(&service.resource));
                put_message(rs, 2, |ss| {
                    put_message(ss, 1, |s| s.extend_from_slice(&service.scope));
                    ss.extend_from_slice(spans);
                });
            });
            spans.clear();
        }
        self.span_count = 0;
    }
}
