//! One trace laid out for querying: its spans in a fixed order with their resource and scope, and the tree
//! built from parent span ids.

use std::collections::HashMap;

use clew_model::otlp::{AnyValue, InstrumentationScope, KeyValue, Resource, ResourceSpans, Span};

/// A span with the resource and instrumentation scope it was sent under.
pub(crate) struct SpanRef<'a> {
    pub span: &'a Span,
    pub resource: Option<&'a Resource>,
    pub scope: Option<&'a InstrumentationScope>,
}

pub(crate) struct TraceIndex<'a> {
    /// Ordered by start time, then span id, so every result lists spans the same way.
    pub spans: Vec<SpanRef<'a>>,
    pub parent: Vec<Option<usize>>,
    pub children: Vec<Vec<usize>>,
    /// The first span (in order) without a parent span id.
    pub root: Option<usize>,
    pub start: u64,
    pub end: u64,
}

impl<'a> TraceIndex<'a> {
    pub fn new(trace: &'a [ResourceSpans]) -> Self {
        let mut spans: Vec<SpanRef<'a>> = trace
            .iter()
            .flat_map(|rs| {
                rs.scope_spans.iter().flat_map(move |ss| {
                    ss.spans.iter().map(move |span| SpanRef {
                        span,
                        resource: rs.resource.as_ref(),
                        scope: ss.scope.as_ref(),
                    })
                })
            })
            .collect();
        spans.sort_by(|a, b| {
            (a.span.start_time_unix_nano, &a.span.span_id).cmp(&(b.span.start_time_unix_nano, &b.span.span_id))
        });
        let mut by_id: HashMap<&[u8], usize> = HashMap::with_capacity(spans.len());
        for (i, s) in spans.iter().enumerate() {
            by_id.entry(s.span.span_id.as_slice()).or_insert(i);
        }
        let parent: Vec<Option<usize>> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| by_id.get(s.span.parent_span_id.as_slice()).copied().filter(|&p| p != i))
            .collect();
        let mut children = vec![Vec::new(); spans.len()];
        for (i, p) in parent.iter().enumerate() {
            if let Some(p) = p {
                children[*p].push(i);
            }
        }
        let root = spans.iter().position(|s| s.span.parent_span_id.is_empty());
        let start = spans.iter().map(|s| s.span.start_time_unix_nano).min().unwrap_or(0);
        let end = spans.iter().map(|s| s.span.end_time_unix_nano).max().unwrap_or(0);
        Self { spans, parent, children, root, start, end }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// The ancestors of `i`, nearest first; stops after `len` steps so a cycle of bad parent ids cannot hang.
    pub fn ancestors(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let mut current = self.parent[i];
        let mut steps = 0;
        std::iter::from_fn(move || {
            let p = current?;
            steps += 1;
            if steps > self.spans.len() {
                return None;
            }
            current = self.parent[p];
            Some(p)
        })
    }

    /// The `service.name` of a span's resource.
    pub fn service_name(&self, i: usize) -> Option<&'a str> {
        let resource = self.spans[i].resource?;
        match find(&resource.attributes, "service.name")?.value.as_ref()? {
            clew_model::otlp::any_value::Value::StringValue(s) => Some(s),
            _ => None,
        }
    }
}

/// The value of `key` in an attribute list.
pub(crate) fn find<'k>(attributes: &'k [KeyValue], key: &str) -> Option<&'k AnyValue> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}
