//! Hand-built traces for the unit tests: span ids are one repeated byte, times small numbers.

use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, any_value, span::SpanKind};

pub fn span(id: u8, parent: Option<u8>, name: &str, start: u64, end: u64) -> Span {
    Span {
        trace_id: vec![7; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        ..Default::default()
    }
}

pub fn with_kind(mut span: Span, kind: SpanKind) -> Span {
    span.kind = kind as i32;
    span
}

/// One resource per `(service, spans)`.
pub fn trace(services: Vec<(&str, Vec<Span>)>) -> Vec<ResourceSpans> {
    services
        .into_iter()
        .map(|(service, spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.into())) }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        })
        .collect()
}
