//! Search over the head: spans are decoded per trace and the filter evaluated on each.

use clew_model::otlp::{ResourceSpans, status};
use clew_model::{Tenant, service_name};

use super::{AttrScope, IdMap, SpanFilter, TraceAcc, Traces};
use crate::block::attrs::Scalar;
use crate::head::Head;

/// Adds the number of matching spans of each head trace to `matched`, the summary of each matching head
/// part to `parts`, and where every head trace starts to `starts`.
pub(super) fn scan(
    head: &Head,
    tenant: &Tenant,
    filter: &SpanFilter,
    matched: &mut IdMap<u64>,
    parts: &mut Traces,
    starts: &mut IdMap<u64>,
) {
    head.for_each_trace(tenant, |id, resource_spans| {
        let start = resource_spans
            .iter()
            .flat_map(|rs| rs.scope_spans.iter().flat_map(|ss| &ss.spans))
            .map(|span| span.start_time_unix_nano)
            .min();
        if let Some(start) = start {
            starts.entry(*id).and_modify(|s| *s = (*s).min(start)).or_insert(start);
        }
        let hits = count_matches(&resource_spans, filter);
        if hits > 0 {
            *matched.entry(*id).or_default() += hits;
            parts.entry(*id).or_default().merge(summarise(&resource_spans));
        }
    });
}

pub(super) fn count_matches(resource_spans: &[ResourceSpans], filter: &SpanFilter) -> u64 {
    let mut hits = 0;
    for rs in resource_spans {
        let service = service_name(rs.resource.as_ref());
        let resource_attrs = rs.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default();
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            let status = span.status.as_ref().map_or(0, |s| s.code);
            let duration = span.end_time_unix_nano.wrapping_sub(span.start_time_unix_nano) as i64;
            if !filter.matches_fixed(service, &span.name, span.kind, status, duration) {
                continue;
            }
            let lookup = |key: &str, scope: Option<AttrScope>| {
                let on_span = || span.attributes.iter().find(|kv| kv.key == key);
                let on_resource = || resource_attrs.iter().find(|kv| kv.key == key);
                let found = match scope {
                    Some(AttrScope::Span) => on_span(),
                    Some(AttrScope::Resource) => on_resource(),
                    None => on_span().or_else(on_resource),
                };
                found.map(|kv| Scalar::of(kv.value.as_ref()))
            };
            if filter.matches_attrs(lookup) {
                hits += 1;
            }
        }
    }
    hits
}

/// The summary of a part of a trace.
pub(super) fn summarise(resource_spans: &[ResourceSpans]) -> TraceAcc {
    let mut acc = TraceAcc::default();
    for rs in resource_spans {
        let service = service_name(rs.resource.as_ref()).unwrap_or_default();
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            let error = span.status.as_ref().is_some_and(|s| s.code == status::StatusCode::Error as i32);
            acc.add_span(
                span.start_time_unix_nano,
                span.end_time_unix_nano.max(span.start_time_unix_nano),
                service,
                &span.name,
                span.parent_span_id.is_empty(),
                error,
            );
        }
    }
    acc
}
