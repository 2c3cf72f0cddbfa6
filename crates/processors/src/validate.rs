//! Span validation: drops spans that are malformed or over the configured limits and reports them as
//! OTLP partial success, so the valid rest of a request is still kept.
//!
//! The common case costs no decoding: the facts the wire scan recorded per span decide. Only a batch with a
//! bad span is decoded, filtered and encoded again.

use std::sync::Arc;

use clew_model::otlp::{KeyValue, ResourceSpans, Span, any_value};
use clew_model::wire::SpanFacts;
use clew_model::{Accepted, SinkError, SpanBatch, SpanSink};
use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Per-span limits. A span past any of them is rejected as a whole (never silently truncated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_attributes_per_span: usize,
    pub max_attribute_value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_attributes_per_span: 256, max_attribute_value_bytes: 64 * 1024 }
    }
}

/// Why a span was rejected; the label of `clew_spans_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Reason {
    InvalidTraceId,
    InvalidSpanId,
    InvalidParentId,
    EndBeforeStart,
    TooManyAttributes,
    ValueTooLong,
}

impl Reason {
    fn label(self) -> &'static str {
        match self {
            Reason::InvalidTraceId => "invalid_trace_id",
            Reason::InvalidSpanId => "invalid_span_id",
            Reason::InvalidParentId => "invalid_parent_id",
            Reason::EndBeforeStart => "end_before_start",
            Reason::TooManyAttributes => "too_many_attributes",
            Reason::ValueTooLong => "attribute_value_too_long",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Checks every span of a batch, forwards the valid ones and adds its rejections to the next stage's answer.
pub struct Validator {
    limits: Limits,
    next: Arc<dyn SpanSink>,
    rejected: Family<ReasonLabel, Counter>,
}

impl Validator {
    pub fn new(limits: Limits, next: Arc<dyn SpanSink>, registry: &mut Registry) -> Self {
        let rejected = Family::<ReasonLabel, Counter>::default();
        registry.register("clew_spans_rejected", "Spans rejected by validation, by reason", rejected.clone());
        Self { limits, next, rejected }
    }

    /// Removes invalid spans in place; returns how many were removed and a message naming the first problem.
    fn filter(&self, resource_spans: &mut Vec<ResourceSpans>) -> (u64, Option<String>) {
        let mut rejected = 0u64;
        let mut first_problem = None;
        for rs in resource_spans.iter_mut() {
            for ss in rs.scope_spans.iter_mut() {
                ss.spans.retain(|span| match check_span(span, &self.limits) {
                    Ok(()) => true,
                    Err((reason, message)) => {
                        rejected += 1;
                        self.rejected.get_or_create(&ReasonLabel { reason: reason.label() }).inc();
                        first_problem.get_or_insert(message);
                        false
                    }
                });
            }
            rs.scope_spans.retain(|ss| !ss.spans.is_empty());
        }
        resource_spans.retain(|rs| !rs.scope_spans.is_empty());
        (rejected, first_problem)
    }
}

impl SpanSink for Validator {
    fn consume(&self, batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
        let all_valid = batch.index().spans.iter().all(|facts| facts_are_valid(facts, &self.limits));
        let filtered = if all_valid { Ok((batch, 0, None)) } else { self.filter_batch(batch) };
        Box::pin(async move {
            let (batch, rejected, problem) = filtered?;
            let mut accepted = if batch.is_empty() { Accepted::all() } else { self.next.consume(batch).await? };
            if rejected > 0 {
                accepted.rejected_spans += rejected;
                let problem = problem.unwrap_or_default();
                accepted.message =
                    if accepted.message.is_empty() { problem } else { format!("{problem}; {}", accepted.message) };
            }
            Ok(accepted)
        })
    }
}

type Filtered = (SpanBatch, u64, Option<String>);

impl Validator {
    /// The slow path: decode, drop the bad spans, encode what is left.
    fn filter_batch(&self, batch: SpanBatch) -> Result<Filtered, SinkError> {
        let mut resource_spans =
            batch.decode().map_err(|err| SinkError::Invalid(format!("undecodable spans: {err}")))?;
        let (rejected, problem) = self.filter(&mut resource_spans);
        let batch = SpanBatch::from_resource_spans(batch.tenant, resource_spans)
            .map_err(|err| SinkError::Internal(format!("re-encoding the valid spans: {err}")))?;
        Ok((batch, rejected, problem))
    }
}

/// The same rules as [`check_span`], on the facts of the wire scan.
fn facts_are_valid(facts: &SpanFacts, limits: &Limits) -> bool {
    facts.trace_id_len == 16
        && facts.trace_id != [0; 16]
        && facts.span_id_len == 8
        && facts.span_id != [0; 8]
        && (facts.parent_span_id_len == 0 || facts.parent_span_id_len == 8)
        && facts.end_unix_nano >= facts.start_unix_nano
        && facts.attribute_count as usize <= limits.max_attributes_per_span
        && facts.longest_value as usize <= limits.max_attribute_value_bytes
}

fn check_span(span: &Span, limits: &Limits) -> Result<(), (Reason, String)> {
    let who = || span_label(span);
    if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
        return Err((
            Reason::InvalidTraceId,
            format!("{}: trace id must be 16 bytes and not all zero, got {} bytes", who(), span.trace_id.len()),
        ));
    }
    if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
        return Err((
            Reason::InvalidSpanId,
            format!("{}: span id must be 8 bytes and not all zero, got {} bytes", who(), span.span_id.len()),
        ));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Err((
            Reason::InvalidParentId,
            format!("{}: parent span id must be empty or 8 bytes, got {} bytes", who(), span.parent_span_id.len()),
        ));
    }
    if span.end_time_unix_nano < span.start_time_unix_nano {
        return Err((
            Reason::EndBeforeStart,
            format!(
                "{}: end time {} is before start time {}",
                who(),
                span.end_time_unix_nano,
                span.start_time_unix_nano
            ),
        ));
    }
    if span.attributes.len() > limits.max_attributes_per_span {
        return Err((
            Reason::TooManyAttributes,
            format!(
                "{}: {} attributes exceed the limit of {}",
                who(),
                span.attributes.len(),
                limits.max_attributes_per_span
            ),
        ));
    }
    let all_attributes = span
        .attributes
        .iter()
        .chain(span.events.iter().flat_map(|e| &e.attributes))
        .chain(span.links.iter().flat_map(|l| &l.attributes));
    for kv in all_attributes {
        if let Some(len) = oversized_value(kv, limits.max_attribute_value_bytes) {
            return Err((
                Reason::ValueTooLong,
                format!(
                    "{}: attribute {:?} has a value of {} bytes, over the limit of {}",
                    who(),
                    kv.key,
                    len,
                    limits.max_attribute_value_bytes
                ),
            ));
        }
    }
    Ok(())
}

/// The length of the first string or bytes value (at any nesting depth) longer than `max`.
fn oversized_value(kv: &KeyValue, max: usize) -> Option<usize> {
    fn walk(value: &any_value::Value, max: usize) -> Option<usize> {
        match value {
            any_value::Value::StringValue(s) if s.len() > max => Some(s.len()),
            any_value::Value::BytesValue(b) if b.len() > max => Some(b.len()),
            any_value::Value::ArrayValue(a) => {
                a.values.iter().filter_map(|v| v.value.as_ref()).find_map(|v| walk(v, max))
            }
            any_value::Value::KvlistValue(l) => l.values.iter().find_map(|kv| oversized_value(kv, max)),
            _ => None,
        }
    }
    walk(kv.value.as_ref()?.value.as_ref()?, max)
}

fn span_label(span: &Span) -> String {
    if span.span_id.is_empty() {
        format!("span {:?}", span.name)
    } else {
        format!("span {:?} ({})", span.name, hex_lower(&span.span_id))
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clew_model::Tenant;
    use clew_model::otlp::{AnyValue, ScopeSpans};
    use std::sync::Mutex;

    /// Records what reaches the next stage.
    #[derive(Default)]
    struct Collect(Mutex<Vec<SpanBatch>>);

    impl SpanSink for Collect {
        fn consume(&self, batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
            self.0.lock().unwrap().push(batch);
            Box::pin(async { Ok(Accepted::all()) })
        }
    }

    fn span(name: &str, trace: u8, span: u8) -> Span {
        Span {
            name: name.into(),
            trace_id: vec![trace; 16],
            span_id: vec![span; 8],
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            ..Default::default()
        }
    }

    fn attr(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    fn batch(spans: Vec<Span>) -> SpanBatch {
        SpanBatch::from_resource_spans(
            Tenant::default_tenant(),
            vec![ResourceSpans { scope_spans: vec![ScopeSpans { spans, ..Default::default() }], ..Default::default() }],
        )
        .unwrap()
    }

    fn run(limits: Limits, spans: Vec<Span>) -> (Accepted, Vec<String>) {
        let next = Arc::new(Collect::default());
        let validator = Validator::new(limits, next.clone(), &mut Registry::default());
        let accepted = futures::executor::block_on(validator.consume(batch(spans))).unwrap();
        let kept = next
            .0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|b| b.decode().unwrap())
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans.into_iter().map(|s| s.name))
            .collect();
        (accepted, kept)
    }

    #[test]
    fn keeps_valid_spans_and_counts_the_rest() {
        let mut short_trace = span("short-trace", 1, 1);
        short_trace.trace_id.truncate(4);
        let zero_span = span("zero-span", 1, 0);
        let mut backwards = span("backwards", 1, 3);
        backwards.end_time_unix_nano = 5;
        let mut bad_parent = span("bad-parent", 1, 4);
        bad_parent.parent_span_id = vec![1, 2, 3];
        let (accepted, kept) =
            run(Limits::default(), vec![span("ok", 1, 9), short_trace, zero_span, backwards, bad_parent]);
        assert_eq!(kept, vec!["ok"]);
        assert_eq!(accepted.rejected_spans, 4);
        assert!(accepted.message.contains("short-trace"), "{}", accepted.message);
        assert!(accepted.message.contains("trace id"), "{}", accepted.message);
    }

    #[test]
    fn enforces_attribute_limits() {
        let limits = Limits { max_attributes_per_span: 2, max_attribute_value_bytes: 5 };
        let mut many = span("many", 1, 1);
        many.attributes = vec![attr("a", "1"), attr("b", "2"), attr("c", "3")];
        let mut long = span("long", 1, 2);
        long.attributes = vec![attr("a", "123456")];
        let mut nested = span("nested", 1, 3);
        nested.attributes = vec![KeyValue {
            key: "list".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::ArrayValue(clew_model::otlp::ArrayValue {
                    values: vec![AnyValue { value: Some(any_value::Value::StringValue("toolong".into())) }],
                })),
            }),
            ..Default::default()
        }];
        let mut fine = span("fine", 1, 4);
        fine.attributes = vec![attr("a", "12345"), attr("b", "x")];
        let (accepted, kept) = run(limits, vec![many, long, nested, fine]);
        assert_eq!(kept, vec!["fine"]);
        assert_eq!(accepted.rejected_spans, 3);
        assert!(accepted.message.contains("limit of 2"), "{}", accepted.message);
    }

    #[test]
    fn valid_batches_pass_through_untouched() {
        let next = Arc::new(Collect::default());
        let validator = Validator::new(Limits::default(), next.clone(), &mut Registry::default());
        let original = batch(vec![span("a", 1, 1), span("b", 1, 2)]);
        let accepted = futures::executor::block_on(validator.consume(original.clone())).unwrap();
        assert_eq!(accepted, Accepted::all());
        assert_eq!(next.0.lock().unwrap()[0], original, "the same bytes go on, not a re-encoding");
    }

    #[test]
    fn fact_check_and_span_check_agree() {
        let limits = Limits { max_attributes_per_span: 1, max_attribute_value_bytes: 3 };
        let mut cases = vec![span("ok", 1, 1), span("zero-trace", 0, 1), span("zero-span", 1, 0)];
        let mut parent = span("parent", 1, 2);
        parent.parent_span_id = vec![1; 4];
        let mut attrs = span("attrs", 1, 3);
        attrs.attributes = vec![attr("a", "1"), attr("b", "2")];
        let mut long = span("long", 1, 4);
        long.events = vec![clew_model::otlp::span::Event { attributes: vec![attr("a", "1234")], ..Default::default() }];
        let mut times = span("times", 1, 5);
        times.start_time_unix_nano = 30;
        cases.extend([parent, attrs, long, times]);
        for case in cases {
            let b = batch(vec![case.clone()]);
            let facts = &b.index().spans[0];
            assert_eq!(facts_are_valid(facts, &limits), check_span(&case, &limits).is_ok(), "{}", case.name);
        }
    }

    #[test]
    fn all_invalid_sends_nothing_downstream() {
        let (accepted, kept) = run(Limits::default(), vec![span("zero", 0, 1)]);
        assert!(kept.is_empty());
        assert_eq!(accepted.rejected_spans, 1);
    }
}
