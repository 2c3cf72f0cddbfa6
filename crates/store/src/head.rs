//! The head: every span not yet written to a block, in memory, per tenant and trace.
//!
//! Each acknowledged request stays in memory as the bytes it arrived in (a [`Chunk`], shared by its spans);
//! a span is a ~24-byte entry pointing into its chunk. That costs a fraction of decoded structs in memory and
//! nothing at insert time; spans are decoded only when read. Each tenant's traces are spread over [`SHARDS`]
//! locks by a byte of the trace id, so concurrent batches rarely contend, and a batch takes each shard lock
//! once.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use clew_model::otlp::{InstrumentationScope, Resource, ResourceSpans, ScopeSpans, Span};
use clew_model::wire::ScopeGroup;
use clew_model::{SamplingDecision, SpanBatch, Tenant, TraceId};
use parking_lot::RwLock;
use prost::Message;

use crate::hold::Undecided;
use crate::metrics::HeadMetrics;

const SHARDS: usize = 32;

pub(crate) struct Head {
    tenants: RwLock<HashMap<Tenant, Arc<TenantHead>>>,
    /// Content taken out by [`Head::seal`] and being written to blocks: still read until released.
    sealed: RwLock<Vec<Arc<Sealed>>>,
    metrics: HeadMetrics,
}

/// A frozen part of the head, on its way into blocks.
pub(crate) struct Sealed {
    tenants: Vec<(Tenant, Vec<HashMap<TraceId, TraceEntry>>)>,
    spans: u64,
    traces: u64,
    bytes: u64,
}

impl Sealed {
    pub fn tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.tenants.iter().map(|(tenant, _)| tenant)
    }

    /// The tenant's traces by id with their number of spans, in id order.
    pub fn trace_sizes(&self, tenant: &Tenant) -> Vec<(TraceId, usize)> {
        let mut sizes: Vec<(TraceId, usize)> = self.entries(tenant).map(|(id, e)| (*id, e.spans.len())).collect();
        sizes.sort_unstable();
        sizes
    }

    /// The spans of the tenant's traces `wanted` accepts, decoded and grouped by the resource and scope they
    /// arrived with; spans of traces kept by a consistent probabilistic decision carry its `th` in their tracestate.
    #[cfg(test)]
    pub fn resource_spans_where(&self, tenant: &Tenant, wanted: impl Fn(&TraceId) -> bool) -> Vec<ResourceSpans> {
        let entries = || self.entries(tenant).filter(|(id, _)| wanted(id));
        let spans = entries().flat_map(|(_, entry)| entry.spans.iter().cloned()).collect();
        let mut out = regroup(spans);
        let thresholds: HashMap<TraceId, &str> =
            entries().filter_map(|(id, entry)| Some((*id, entry.decision.as_ref()?.threshold.as_deref()?))).collect();
        if !thresholds.is_empty() {
            let spans = out.iter_mut().flat_map(|rs| &mut rs.scope_spans).flat_map(|ss| &mut ss.spans);
            for span in spans {
                if let Some(th) = TraceId::from_slice(&span.trace_id).and_then(|id| thresholds.get(&id)) {
                    clew_model::sampling::apply_ot_threshold([span], th);
                }
            }
        }
        out
    }

    /// The spans of the tenant's traces `wanted` accepts, as the bytes they arrived in, for a block.
    pub fn source_where(&self, tenant: &Tenant, wanted: impl Fn(&TraceId) -> bool) -> crate::block::SpanSource<'_> {
        let mut source = crate::block::SpanSource::default();
        let mut origins: HashMap<(*const Chunk, u32), u32> = HashMap::new();
        let shards = self.tenants.iter().filter(|(t, _)| t == tenant).flat_map(|(_, shards)| shards.iter());
        for (_, entry) in shards.flat_map(|s| s.iter()).filter(|(id, _)| wanted(id)) {
            for span in &entry.spans {
                let chunk = span.chunk.as_ref();
                let origin = *origins.entry((chunk as *const Chunk, span.group)).or_insert_with(|| {
                    let group = &chunk.groups[span.group as usize];
                    source.origin(crate::block::OriginBytes {
                        resource: group.resource.as_ref().map(|r| chunk.slice(r)),
                        resource_schema_url: chunk.slice(&group.resource_schema_url),
                        scope: group.scope.as_ref().map(|r| chunk.slice(r)),
                        scope_schema_url: chunk.slice(&group.scope_schema_url),
                    })
                });
                source.push(chunk.slice(&span.span), origin);
            }
        }
        source
    }

    /// The sampling decisions of the tenant's sealed traces, for the block they are written to.
    pub fn decisions(&self, tenant: &Tenant) -> HashMap<TraceId, Arc<SamplingDecision>> {
        self.entries(tenant).filter_map(|(id, entry)| Some((*id, Arc::clone(entry.decision.as_ref()?)))).collect()
    }

    fn entries<'a>(&'a self, tenant: &'a Tenant) -> impl Iterator<Item = (&'a TraceId, &'a TraceEntry)> {
        self.tenants
            .iter()
            .filter(move |(t, _)| t == tenant)
            .flat_map(|(_, shards)| shards.iter().flat_map(|s| s.iter()))
    }

    fn decision(&self, tenant: &Tenant, trace_id: &TraceId) -> Option<Arc<SamplingDecision>> {
        self.tenants
            .iter()
            .filter(|(t, _)| t == tenant)
            .find_map(|(_, shards)| shards[shard_of(trace_id)].get(trace_id)?.decision.clone())
    }

    fn trace(&self, tenant: &Tenant, trace_id: &TraceId) -> Vec<HeadSpan> {
        self.tenants
            .iter()
            .filter(|(t, _)| t == tenant)
            .filter_map(|(_, shards)| shards[shard_of(trace_id)].get(trace_id))
            .flat_map(|entry| entry.spans.iter().cloned())
            .collect()
    }
}

struct TenantHead {
    shards: Box<[RwLock<HashMap<TraceId, TraceEntry>>]>,
}

#[derive(Default)]
struct TraceEntry {
    spans: Vec<HeadSpan>,
    /// This trace's share of the head's bytes, so removing it later subtracts exactly what was added.
    bytes: u64,
    /// Why tail sampling kept it, once decided; written with it into its block.
    decision: Option<Arc<SamplingDecision>>,
}

/// One request's bytes and the scope groups of its index.
struct Chunk {
    request: Bytes,
    groups: Vec<ScopeGroup>,
}

impl Chunk {
    fn slice(&self, range: &Range<u32>) -> &[u8] {
        self.request.get(range.start as usize..range.end as usize).unwrap_or_default()
    }

    fn text(&self, range: &Range<u32>) -> String {
        String::from_utf8_lossy(self.slice(range)).into_owned()
    }
}

#[derive(Clone)]
struct HeadSpan {
    chunk: Arc<Chunk>,
    span: Range<u32>,
    group: u32,
}

/// Grouping key of a span waiting to be inserted: its shard, trace, and position in the batch (which keeps
/// the spans of a trace in arrival order).
type InsertKey = (usize, TraceId, usize);

impl Head {
    pub fn new(metrics: HeadMetrics) -> Self {
        Self { tenants: RwLock::default(), sealed: RwLock::default(), metrics }
    }

    /// Takes everything in the head but the `held` traces (waiting for a sampling decision) out to be written to
    /// blocks; it stays readable (and counted) until [`Head::release`]. `None` when nothing is taken.
    pub fn seal(&self, held: &Undecided) -> Option<Arc<Sealed>> {
        let tenants: Vec<(Tenant, Arc<TenantHead>)> =
            self.tenants.read().iter().map(|(t, h)| (t.clone(), Arc::clone(h))).collect();
        let mut sealed = Sealed { tenants: Vec::new(), spans: 0, traces: 0, bytes: 0 };
        for (tenant, head) in tenants {
            let mut held_by_shard: Vec<Vec<TraceId>> = vec![Vec::new(); SHARDS];
            for id in held.get(&tenant).into_iter().flatten() {
                held_by_shard[shard_of(id)].push(*id);
            }
            let shards: Vec<HashMap<TraceId, TraceEntry>> = (head.shards.iter().zip(&held_by_shard))
                .map(|(shard, held)| {
                    // Under the shard's lock, so a drop of a held trace cannot slip between taking and putting back.
                    let mut live = shard.write();
                    let mut taken = std::mem::take(&mut *live);
                    for id in held {
                        if let Some(entry) = taken.remove(id) {
                            live.insert(*id, entry);
                        }
                    }
                    taken
                })
                .collect();
            for entry in shards.iter().flat_map(|shard| shard.values()) {
                sealed.spans += entry.spans.len() as u64;
                sealed.traces += 1;
                sealed.bytes += entry.bytes;
            }
            if shards.iter().any(|shard| !shard.is_empty()) {
                sealed.tenants.push((tenant, shards));
            }
        }
        if sealed.spans == 0 {
            return None;
        }
        let sealed = Arc::new(sealed);
        self.sealed.write().push(Arc::clone(&sealed));
        Some(sealed)
    }

    /// Drops sealed content once it is in durable blocks.
    pub fn release(&self, sealed: &Arc<Sealed>) {
        self.sealed.write().retain(|s| !Arc::ptr_eq(s, sealed));
        self.metrics.spans.dec_by(sealed.spans as i64);
        self.metrics.traces.dec_by(sealed.traces as i64);
        self.metrics.bytes.dec_by(sealed.bytes as i64);
    }

    /// Adds a batch's spans. Spans whose trace id is not 16 bytes are skipped.
    pub fn insert(&self, batch: SpanBatch) {
        let (tenant, request, index) = batch.into_parts();
        let chunk = Arc::new(Chunk { request, groups: index.groups });
        let mut keys: Vec<InsertKey> = index
            .spans
            .iter()
            .enumerate()
            .filter(|(_, facts)| facts.trace_id_len == 16)
            .map(|(i, facts)| {
                let trace_id = TraceId(facts.trace_id);
                (shard_of(&trace_id), trace_id, i)
            })
            .collect();
        if keys.is_empty() {
            return;
        }
        keys.sort_unstable();
        let count = keys.len() as u64;
        let per_span = chunk.request.len() as u64 / count + size_of::<HeadSpan>() as u64;
        let tenant_head = self.tenant_head(&tenant);

        let mut new_traces = 0i64;
        for shard_run in keys.chunk_by(|a, b| a.0 == b.0) {
            let mut shard = tenant_head.shards[shard_run[0].0].write();
            for trace_run in shard_run.chunk_by(|a, b| a.1 == b.1) {
                let entry = shard.entry(trace_run[0].1).or_insert_with(|| {
                    new_traces += 1;
                    TraceEntry::default()
                });
                entry.spans.reserve(trace_run.len());
                entry.spans.extend(trace_run.iter().map(|&(_, _, i)| HeadSpan {
                    chunk: Arc::clone(&chunk),
                    span: index.spans[i].range.clone(),
                    group: index.spans[i].group,
                }));
                entry.bytes += per_span * trace_run.len() as u64;
            }
        }

        self.metrics.spans.inc_by(count as i64);
        self.metrics.traces.inc_by(new_traces);
        self.metrics.bytes.inc_by((per_span * count) as i64);
    }

    /// Forgets traces (dropped by sampling). Parts already sealed for a cut are on their way into a block and
    /// stay.
    pub fn remove(&self, tenant: &Tenant, trace_ids: &[TraceId]) {
        let Some(tenant_head) = self.tenants.read().get(tenant).cloned() else { return };
        let (mut spans, mut traces, mut bytes) = (0i64, 0i64, 0i64);
        for id in trace_ids {
            if let Some(entry) = tenant_head.shards[shard_of(id)].write().remove(id) {
                spans += entry.spans.len() as i64;
                traces += 1;
                bytes += entry.bytes as i64;
            }
        }
        self.metrics.spans.dec_by(spans);
        self.metrics.traces.dec_by(traces);
        self.metrics.bytes.dec_by(bytes);
    }

    /// Records why sampling kept traces, on their live entries (a kept trace was held in the head until its
    /// decision, so its entry is live; a trace with no span in the head has nothing to record it on).
    pub fn set_decisions(&self, tenant: &Tenant, kept: Vec<(TraceId, SamplingDecision)>) {
        let Some(tenant_head) = self.tenants.read().get(tenant).cloned() else { return };
        for (id, decision) in kept {
            if let Some(entry) = tenant_head.shards[shard_of(&id)].write().get_mut(&id) {
                entry.decision = Some(Arc::new(decision));
            }
        }
    }

    /// Why sampling kept the trace, if the head holds its decision (live or sealed).
    pub fn decision(&self, tenant: &Tenant, trace_id: &TraceId) -> Option<Arc<SamplingDecision>> {
        if let Some(tenant_head) = self.tenants.read().get(tenant).cloned()
            && let Some(decision) =
                tenant_head.shards[shard_of(trace_id)].read().get(trace_id).and_then(|e| e.decision.clone())
        {
            return Some(decision);
        }
        self.sealed.read().iter().find_map(|sealed| sealed.decision(tenant, trace_id))
    }

    /// The trace's spans regrouped into the resources and scopes they arrived with, in arrival order of
    /// those groups; spans inside a scope sorted by (start time, span id). Empty if the head lacks the trace.
    /// A consistent probabilistic decision's `th` is written into every span's tracestate.
    pub fn trace(&self, tenant: &Tenant, trace_id: &TraceId) -> Vec<ResourceSpans> {
        let mut out = self.trace_as_received(tenant, trace_id);
        if !out.is_empty()
            && let Some(th) = self.decision(tenant, trace_id).and_then(|d| d.threshold.clone())
        {
            clew_model::sampling::apply_ot_threshold_to_trace(&mut out, &th);
        }
        out
    }

    fn trace_as_received(&self, tenant: &Tenant, trace_id: &TraceId) -> Vec<ResourceSpans> {
        let mut spans = Vec::new();
        if let Some(tenant_head) = self.tenants.read().get(tenant).cloned()
            && let Some(entry) = tenant_head.shards[shard_of(trace_id)].read().get(trace_id)
        {
            spans.extend(entry.spans.iter().cloned());
        }
        for sealed in self.sealed.read().iter() {
            spans.extend(sealed.trace(tenant, trace_id));
        }
        regroup(spans)
    }

    /// Calls `visit` with each trace of the tenant (live and sealed parts separately) and its spans, decoded
    /// and regrouped as [`Head::trace`] does. Shard locks are held only to copy the span entries.
    pub(crate) fn for_each_trace(&self, tenant: &Tenant, mut visit: impl FnMut(&TraceId, Vec<ResourceSpans>)) {
        let mut parts: Vec<(TraceId, Vec<HeadSpan>)> = Vec::new();
        if let Some(tenant_head) = self.tenants.read().get(tenant).cloned() {
            for shard in tenant_head.shards.iter() {
                parts.extend(shard.read().iter().map(|(id, entry)| (*id, entry.spans.clone())));
            }
        }
        for sealed in self.sealed.read().iter() {
            for (_, shards) in sealed.tenants.iter().filter(|(t, _)| t == tenant) {
                parts.extend(shards.iter().flat_map(|s| s.iter()).map(|(id, entry)| (*id, entry.spans.clone())));
            }
        }
        for (id, spans) in parts {
            visit(&id, regroup(spans));
        }
    }

    /// Calls `visit` with each span of the tenant (live and sealed) as its encoded `Span` and the encoded
    /// `Resource` it came with, undecoded, for scans that need a few fields (historical RED).
    pub(crate) fn for_each_encoded_span(&self, tenant: &Tenant, mut visit: impl FnMut(&[u8], Option<&[u8]>)) {
        let mut spans: Vec<HeadSpan> = Vec::new();
        self.for_each_trace_spans(tenant, |entry| spans.extend(entry.spans.iter().cloned()));
        for HeadSpan { chunk, span, group } in &spans {
            let resource = chunk.groups.get(*group as usize).and_then(|g| g.resource.as_ref());
            visit(chunk.slice(span), resource.map(|r| chunk.slice(r)));
        }
    }

    /// Calls `visit` with each trace entry of the tenant, live and sealed, under its shard's lock.
    fn for_each_trace_spans(&self, tenant: &Tenant, mut visit: impl FnMut(&TraceEntry)) {
        if let Some(tenant_head) = self.tenants.read().get(tenant).cloned() {
            for shard in tenant_head.shards.iter() {
                shard.read().values().for_each(&mut visit);
            }
        }
        for sealed in self.sealed.read().iter() {
            for (_, shards) in sealed.tenants.iter().filter(|(t, _)| t == tenant) {
                shards.iter().flat_map(|s| s.values()).for_each(&mut visit);
            }
        }
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

    /// Bytes of the head not yet sealed for a cut.
    pub fn live_bytes(&self) -> u64 {
        let sealed: u64 = self.sealed.read().iter().map(|s| s.bytes).sum();
        self.bytes().saturating_sub(sealed)
    }

    /// Tenants with live (not sealed) content.
    pub fn tenant_ids(&self) -> Vec<Tenant> {
        self.tenants.read().keys().cloned().collect()
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

/// Rebuilds `ResourceSpans`/`ScopeSpans`: spans of one request's resource and scope stay together, as sent.
fn regroup(spans: Vec<HeadSpan>) -> Vec<ResourceSpans> {
    let mut out: Vec<ResourceSpans> = Vec::new();
    let mut resources: HashMap<(*const Chunk, u32), usize> = HashMap::new();
    let mut scopes: HashMap<(*const Chunk, u32), (usize, usize)> = HashMap::new();
    for HeadSpan { chunk, span, group } in &spans {
        // Everything was checked by the wire scan on the way in; a failure here would be a bug, not bad input.
        let Ok(span) = Span::decode(chunk.slice(span)) else {
            tracing::error!("a span in the head failed to decode; skipping it");
            continue;
        };
        let Some(info) = chunk.groups.get(*group as usize) else { continue };
        // The chunks live in `spans` until the loop is done, so their addresses cannot be reused meanwhile.
        let chunk_ptr = Arc::as_ptr(chunk);
        let (r, s) = *scopes.entry((chunk_ptr, *group)).or_insert_with(|| {
            let r = *resources.entry((chunk_ptr, info.resource_index)).or_insert_with(|| {
                out.push(ResourceSpans {
                    resource: info.resource.as_ref().and_then(|r| Resource::decode(chunk.slice(r)).ok()),
                    scope_spans: Vec::new(),
                    schema_url: chunk.text(&info.resource_schema_url),
                });
                out.len() - 1
            });
            let scope_spans = &mut out[r].scope_spans;
            scope_spans.push(ScopeSpans {
                scope: info.scope.as_ref().and_then(|s| InstrumentationScope::decode(chunk.slice(s)).ok()),
                spans: Vec::new(),
                schema_url: chunk.text(&info.scope_schema_url),
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

    fn insert(head: &Head, tenant: &Tenant, resource_spans: Vec<ResourceSpans>) {
        head.insert(SpanBatch::from_resource_spans(tenant.clone(), resource_spans).unwrap());
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
        insert(&head, &tenant("t"), batch);

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
        assert!(head.bytes() >= 6 * size_of::<HeadSpan>() as u64);
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
        insert(&head, &tenant("t"), batch(1));
        insert(&head, &tenant("t"), batch(2));
        let got = head.trace(&tenant("t"), &TraceId([7; 16]));
        assert_eq!(got.len(), 2, "each request's resource stays its own group");
        assert_eq!(got[0].scope_spans[0].spans, vec![span(7, 1, 1)]);
        assert_eq!(got[1].scope_spans[0].spans, vec![span(7, 2, 2)]);
        assert_eq!(head.traces(), 1);
    }

    #[test]
    fn sealed_content_stays_readable_until_released() {
        let head = Head::new(HeadMetrics::default());
        let one = |s: Span| {
            vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![s], ..Default::default() }],
                ..Default::default()
            }]
        };
        insert(&head, &tenant("a"), one(span(1, 1, 1)));
        let sealed = head.seal(&Undecided::new()).unwrap();
        assert!(head.seal(&Undecided::new()).is_none(), "nothing new since");
        insert(&head, &tenant("a"), one(span(1, 2, 2)));
        let both = head.trace(&tenant("a"), &TraceId([1; 16]));
        assert_eq!(both.iter().map(|rs| rs.scope_spans[0].spans.len()).sum::<usize>(), 2);
        assert_eq!(sealed.resource_spans_where(&tenant("a"), |_| true)[0].scope_spans[0].spans, vec![span(1, 1, 1)]);
        assert_eq!(head.spans(), 2);
        head.release(&sealed);
        assert_eq!(head.spans(), 1);
        assert_eq!(head.trace(&tenant("a"), &TraceId([1; 16]))[0].scope_spans[0].spans, vec![span(1, 2, 2)]);
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
        insert(&head, &tenant("a"), one(span(1, 1, 1)));
        insert(&head, &tenant("b"), one(span(1, 2, 2)));
        insert(&head, &tenant("b"), one(Span { trace_id: vec![1; 3], ..span(1, 3, 3) }));

        let a = head.trace(&tenant("a"), &TraceId([1; 16]));
        let b = head.trace(&tenant("b"), &TraceId([1; 16]));
        assert_eq!(a[0].scope_spans[0].spans, vec![span(1, 1, 1)]);
        assert_eq!(b[0].scope_spans[0].spans, vec![span(1, 2, 2)]);
        assert!(head.trace(&tenant("c"), &TraceId([1; 16])).is_empty());
        assert_eq!(head.spans(), 2);
        assert_eq!(head.traces(), 2);
    }
}
