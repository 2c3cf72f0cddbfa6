//! The head: every span not yet written to a block, in memory, per tenant and trace.
//!
//! Each tenant's traces are spread over [`SHARDS`] locks by a byte of the trace id, so concurrent batches
//! rarely contend, and a batch takes each shard lock once. Spans keep an `Arc` to the resource and scope they
//! arrived with (one per `ScopeSpans`, not per span), which is how [`Head::trace`] rebuilds OTLP's nesting.

use std::collections::HashMap;
use std::sync::Arc;

use clew_model::otlp::{InstrumentationScope, Resource, ResourceSpans, ScopeSpans, Span};
use clew_model::{Tenant, TraceId};
use parking_lot::RwLock;

use crate::metrics::HeadMetrics;

const SHARDS: usize = 32;

pub(crate) struct Head {
    tenants: RwLock<HashMap<Tenant, Arc<TenantHead>>>,
    metrics: HeadMetrics,
}

struct TenantHead {
    shards: Box<[RwLock<HashMap<TraceId, TraceEntry>>]>,
}

#[derive(Default)]
struct TraceEntry {
    spans: Vec<HeadSpan>,
    /// This trace's share of the head's bytes, so removing it later subtracts exactly what was added.
    bytes: u64,
}

#[derive(Clone)]
struct HeadSpan {
    span: Span,
    origin: Arc<ScopeOrigin>,
}

/// The `ScopeSpans` a span arrived in, minus its spans.
struct ScopeOrigin {
    resource: Arc<ResourceOrigin>,
    scope: Option<InstrumentationScope>,
    schema_url: String,
}

/// The `ResourceSpans` a span arrived in, minus its scopes.
struct ResourceOrigin {
    resource: Option<Resource>,
    schema_url: String,
}

/// Grouping key of a span waiting to be inserted: its shard, trace, and position in the batch (which keeps
/// the spans of a trace in arrival order).
type InsertKey = (usize, TraceId, usize);

impl Head {
    pub fn new(metrics: HeadMetrics) -> Self {
        Self { tenants: RwLock::default(), metrics }
    }

    /// Adds a batch's spans. `approx_bytes` is what the batch costs in memory terms (its encoded size); it is
    /// spread evenly over the spans. Spans whose trace id is not 16 bytes are skipped.
    pub fn insert(&self, tenant: &Tenant, resource_spans: Vec<ResourceSpans>, approx_bytes: u64) {
        let mut spans = Vec::new();
        let mut keys: Vec<InsertKey> = Vec::new();
        for rs in resource_spans {
            let resource = Arc::new(ResourceOrigin { resource: rs.resource, schema_url: rs.schema_url });
            for ss in rs.scope_spans {
                let origin = Arc::new(ScopeOrigin {
                    resource: Arc::clone(&resource),
                    scope: ss.scope,
                    schema_url: ss.schema_url,
                });
                for span in ss.spans {
                    let Some(trace_id) = TraceId::from_slice(&span.trace_id) else {
                        continue;
                    };
                    keys.push((shard_of(&trace_id), trace_id, spans.len()));
                    spans.push(Some(HeadSpan { span, origin: Arc::clone(&origin) }));
                }
            }
        }
        if spans.is_empty() {
            return;
        }
        // Sorting small keys rather than the spans themselves avoids moving ~250-byte structs around.
        keys.sort_unstable();
        let per_span = approx_bytes / spans.len() as u64 + size_of::<HeadSpan>() as u64;
        let tenant_head = self.tenant_head(tenant);

        let mut new_traces = 0i64;
        for shard_run in keys.chunk_by(|a, b| a.0 == b.0) {
            let mut shard = tenant_head.shards[shard_run[0].0].write();
            for trace_run in shard_run.chunk_by(|a, b| a.1 == b.1) {
                let entry = shard.entry(trace_run[0].1).or_insert_with(|| {
                    new_traces += 1;
                    TraceEntry::default()
                });
                entry.spans.reserve(trace_run.len());
                entry.spans.extend(trace_run.iter().filter_map(|&(_, _, i)| spans[i].take()));
                entry.bytes += per_span * trace_run.len() as u64;
            }
        }

        let count = spans.len() as u64;
        self.metrics.spans.inc_by(count as i64);
        self.metrics.traces.inc_by(new_traces);
        self.metrics.bytes.inc_by((per_span * count) as i64);
    }

    /// The trace's spans regrouped into the resources and scopes they arrived with, in arrival order of
    /// those groups; spans inside a scope sorted by (start time, span id). Empty if the head lacks the trace.
    pub fn trace(&self, tenant: &Tenant, trace_id: &TraceId) -> Vec<ResourceSpans> {
        let Some(tenant_head) = self.tenants.read().get(tenant).cloned() else {
            return Vec::new();
        };
        let spans = match tenant_head.shards[shard_of(trace_id)].read().get(trace_id) {
            Some(entry) => entry.spans.clone(),
            None => return Vec::new(),
        };
        regroup(spans)
    }

    pub fn spans(&self) -> u64 {
        self.metrics.spans.get().max(0) as u64
    }

    pub fn traces(&self) -> u64 {
        self.metrics.traces.get().max(0) as u64
    }

    pub fn bytes(&self) -> u64 {
        self.metrics.bytes.get().max(0) as u64
    }

    fn tenant_head(&self, tenant: &Tenant) -> Arc<TenantHead> {
        if let Some(head) = self.tenants.read().get(tenant) {
            return Arc::clone(head);
        }
        let mut tenants = self.tenants.write();
        Arc::clone(
            tenants
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(TenantHead { shards: (0..SHARDS).map(|_| RwLock::default()).collect() })),
        )
    }
}

/// The last byte is random both in W3C ids and in 64-bit ids left-padded with zeros.
fn shard_of(trace_id: &TraceId) -> usize {
    trace_id.0[15] as usize % SHARDS
}

/// Rebuilds `ResourceSpans`/`ScopeSpans` by the identity of the origins the spans share.
fn regroup(spans: Vec<HeadSpan>) -> Vec<ResourceSpans> {
    let mut out: Vec<ResourceSpans> = Vec::new();
    let mut resources: HashMap<*const ResourceOrigin, usize> = HashMap::new();
    let mut scopes: HashMap<*const ScopeOrigin, (usize, usize)> = HashMap::new();
    for HeadSpan { span, origin } in spans {
        // The `Arc`s live in `spans` until the loop is done, so their addresses cannot be reused meanwhile.
        let (r, s) = *scopes.entry(Arc::as_ptr(&origin)).or_insert_with(|| {
            let resource = &origin.resource;
            let r = *resources.entry(Arc::as_ptr(resource)).or_insert_with(|| {
                out.push(ResourceSpans {
                    resource: resource.resource.clone(),
                    scope_spans: Vec::new(),
                    schema_url: resource.schema_url.clone(),
                });
                out.len() - 1
            });
            let scope_spans = &mut out[r].scope_spans;
            scope_spans.push(ScopeSpans {
                scope: origin.scope.clone(),
                spans: Vec::new(),
                schema_url: origin.schema_url.clone(),
            });
            (r, scope_spans.len() - 1)
        });
        out[r].scope_spans[s].spans.push(span);
    }
    for ss in out.iter_mut().flat_map(|rs| &mut rs.scope_spans) {
        ss.spans.sort_by(|a, b| (a.start_time_unix_nano, &a.span_id).cmp(&(b.start_time_unix_nano, &b.span_id)));
    }
    out
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::{AnyValue, KeyValue, any_value};

    use super::*;

    fn span(trace: u8, id: u8, start: u64) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("span-{id}"),
            start_time_unix_nano: start,
            end_time_unix_nano: start + 10,
            ..Default::default()
        }
    }

    fn resource(service: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![KeyValue {
                key: "service.name".into(),
                key_strindex: 0,
                value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.into())) }),
            }],
            ..Default::default()
        })
    }

    fn scope(name: &str) -> Option<InstrumentationScope> {
        Some(InstrumentationScope { name: name.into(), version: "1.0".into(), ..Default::default() })
    }

    fn tenant(id: &str) -> Tenant {
        Tenant::parse(id).unwrap()
    }

    #[test]
    fn regroups_spans_into_their_resources_and_scopes() {
        let head = Head::new(HeadMetrics::default());
        let batch = vec![
            ResourceSpans {
                resource: resource("frontend"),
                schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
                scope_spans: vec![
                    ScopeSpans {
                        scope: scope("http"),
                        schema_url: "scope-a".into(),
                        spans: vec![span(1, 3, 300), span(2, 9, 5), span(1, 1, 100)],
                    },
                    ScopeSpans { scope: scope("db"), schema_url: String::new(), spans: vec![span(1, 2, 200)] },
                ],
            },
            ResourceSpans {
                resource: resource("backend"),
                schema_url: String::new(),
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    schema_url: String::new(),
                    spans: vec![span(1, 5, 100), span(1, 4, 100)],
                }],
            },
        ];
        head.insert(&tenant("t"), batch, 1000);

        let got = head.trace(&tenant("t"), &TraceId([1; 16]));
        let expected = vec![
            ResourceSpans {
                resource: resource("frontend"),
                schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
                scope_spans: vec![
                    ScopeSpans {
                        scope: scope("http"),
                        schema_url: "scope-a".into(),
                        spans: vec![span(1, 1, 100), span(1, 3, 300)],
                    },
                    ScopeSpans { scope: scope("db"), schema_url: String::new(), spans: vec![span(1, 2, 200)] },
                ],
            },
            ResourceSpans {
                resource: resource("backend"),
                schema_url: String::new(),
                // Equal start times fall back to the span id.
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    schema_url: String::new(),
                    spans: vec![span(1, 4, 100), span(1, 5, 100)],
                }],
            },
        ];
        assert_eq!(got, expected);
        assert_eq!(head.trace(&tenant("t"), &TraceId([2; 16]))[0].scope_spans[0].spans, vec![span(2, 9, 5)]);
        assert_eq!(head.spans(), 6);
        assert_eq!(head.traces(), 2);
        assert!(head.bytes() >= 1000);
    }

    #[test]
    fn spans_of_one_trace_from_two_batches_keep_their_own_groups() {
        let head = Head::new(HeadMetrics::default());
        let batch = |id: u8| {
            vec![ResourceSpans {
                resource: resource("svc"),
                scope_spans: vec![ScopeSpans {
                    scope: scope("s"),
                    spans: vec![span(7, id, id as u64)],
                    ..Default::default()
                }],
                ..Default::default()
            }]
        };
        head.insert(&tenant("t"), batch(1), 10);
        head.insert(&tenant("t"), batch(2), 10);
        let got = head.trace(&tenant("t"), &TraceId([7; 16]));
        assert_eq!(got.len(), 2, "each request's resource stays its own group");
        assert_eq!(got[0].scope_spans[0].spans, vec![span(7, 1, 1)]);
        assert_eq!(got[1].scope_spans[0].spans, vec![span(7, 2, 2)]);
        assert_eq!(head.traces(), 1);
    }

    #[test]
    fn tenants_are_isolated_and_bad_trace_ids_skipped() {
        let head = Head::new(HeadMetrics::default());
        let one = |s: Span| {
            vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![s], ..Default::default() }],
                ..Default::default()
            }]
        };
        head.insert(&tenant("a"), one(span(1, 1, 1)), 10);
        head.insert(&tenant("b"), one(span(1, 2, 2)), 10);
        head.insert(&tenant("b"), one(Span { trace_id: vec![1; 3], ..span(1, 3, 3) }), 10);

        let a = head.trace(&tenant("a"), &TraceId([1; 16]));
        let b = head.trace(&tenant("b"), &TraceId([1; 16]));
        assert_eq!(a[0].scope_spans[0].spans, vec![span(1, 1, 1)]);
        assert_eq!(b[0].scope_spans[0].spans, vec![span(1, 2, 2)]);
        assert!(head.trace(&tenant("c"), &TraceId([1; 16])).is_empty());
        assert_eq!(head.spans(), 2);
        assert_eq!(head.traces(), 2);
    }
}
