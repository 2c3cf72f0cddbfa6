//! A trace's spans flattened out of OTLP, each with its service and its parent resolved to an index.

use std::collections::HashMap;

use clew_model::otlp::{ResourceSpans, Span};
use clew_model::{SpanId, service_name};

/// Service name of spans whose resource has no `service.name`.
pub(crate) const UNKNOWN_SERVICE: &str = "unknown";

pub(crate) struct FlatSpan<'a> {
    pub span: &'a Span,
    pub service: &'a str,
    pub id: SpanId,
    /// Index of the parent span; `None` for a root and for an orphan (its parent is not in the trace).
    pub parent: Option<usize>,
    /// The span names a parent (an empty or all-zero parent id names none): without a parent in the trace,
    /// it is an orphan.
    pub names_parent: bool,
    pub start: u64,
    /// Never before `start`: a span ending before it starts is taken as instantaneous.
    pub end: u64,
}

/// The spans of one trace, in the order they come in, with their children by index.
pub(crate) struct TraceSpans<'a> {
    pub spans: Vec<FlatSpan<'a>>,
    pub children: Vec<Vec<usize>>,
}

impl<'a> TraceSpans<'a> {
    /// Spans without a valid 8-byte id are left out (nothing could name them); of spans sharing an id, the
    /// first is kept, as a trace read back may hold the same span twice.
    pub fn new(trace: &'a [ResourceSpans]) -> Self {
        let mut spans = Vec::new();
        let mut index: HashMap<SpanId, usize> = HashMap::new();
        for resource_spans in trace {
            let service = service_name(resource_spans.resource.as_ref()).unwrap_or(UNKNOWN_SERVICE);
            for span in resource_spans.scope_spans.iter().flat_map(|scope| &scope.spans) {
                let Some(id) = SpanId::from_slice(&span.span_id) else { continue };
                if index.contains_key(&id) {
                    continue;
                }
                index.insert(id, spans.len());
                let (start, end) = (span.start_time_unix_nano, span.end_time_unix_nano.max(span.start_time_unix_nano));
                let names_parent = span.parent_span_id.iter().any(|&b| b != 0);
                spans.push(FlatSpan { span, service, id, parent: None, names_parent, start, end });
            }
        }
        let mut children = vec![Vec::new(); spans.len()];
        for (i, flat) in spans.iter_mut().enumerate() {
            let parent = SpanId::from_slice(&flat.span.parent_span_id).and_then(|p| index.get(&p).copied());
            if let Some(parent) = parent.filter(|&p| p != i) {
                flat.parent = Some(parent);
                children[parent].push(i);
            }
        }
        Self { spans, children }
    }
}
