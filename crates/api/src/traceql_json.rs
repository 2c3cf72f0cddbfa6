//! TraceQL results as JSON, shared by Tempo's `/api/search` and Clew's `/api/v1/traceql`: matched spans with
//! the attributes the query tested or selected, `spss` spans per spanset at most.

use clew_query::traceql::FoundTrace;
use clew_traceql::ast::Field;
use clew_traceql::eval::{MatchedSpanset, Value};
use serde_json::{Value as Json, json};

/// An attribute key as Tempo shows it: attributes without their scope, intrinsics by name.
fn field_key(field: &Field) -> String {
    match field {
        Field::Attribute(a) => a.name.clone(),
        Field::Intrinsic(i) => i.name().to_owned(),
    }
}

/// A value in OTLP's JSON `AnyValue` form.
pub(crate) fn any_value(value: &Value) -> Json {
    match value {
        Value::Nil => json!({}),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Int(i) => json!({ "intValue": i.to_string() }),
        Value::Duration(d) => json!({ "intValue": d.to_string() }),
        Value::Float(f) => json!({ "doubleValue": f }),
        Value::String(s) => json!({ "stringValue": s }),
        Value::Status(_) | Value::Kind(_) => json!({ "stringValue": value.to_string() }),
        Value::Array(items) => json!({ "arrayValue": { "values": items.iter().map(any_value).collect::<Vec<_>>() } }),
    }
}

/// One spanset: `spans` (at most `spss`), `matched` (how many in all), and the `by()` groups and aggregates
/// as attributes.
pub(crate) fn spanset(set: &MatchedSpanset, spss: usize) -> Json {
    let spans: Vec<Json> = set
        .spans
        .iter()
        .take(spss)
        .map(|span| {
            let attributes: Vec<Json> = span
                .attributes
                .iter()
                .map(|(field, value)| json!({ "key": field_key(field), "value": any_value(value) }))
                .collect();
            let mut out = json!({
                "spanID": hex::encode(&span.span_id),
                "name": span.name,
                "startTimeUnixNano": span.start_time_unix_nano.to_string(),
                "durationNanos": span.duration_nanos.to_string(),
            });
            if let Some(service) = &span.service_name {
                out["serviceName"] = json!(service);
            }
            if !attributes.is_empty() {
                out["attributes"] = json!(attributes);
            }
            out
        })
        .collect();
    let attributes: Vec<Json> = set
        .group
        .iter()
        .chain(&set.aggregates)
        .map(|(name, value)| json!({ "key": name, "value": any_value(value) }))
        .collect();
    let mut out = json!({ "spans": spans, "matched": set.spans.len() });
    if !attributes.is_empty() {
        out["attributes"] = json!(attributes);
    }
    out
}

/// A trace in Tempo's search result shape.
pub(crate) fn tempo_trace(trace: &FoundTrace, spss: usize) -> Json {
    let sets: Vec<Json> = trace.matched.spansets.iter().map(|s| spanset(s, spss)).collect();
    let mut out = json!({
        "traceID": trace.trace_id.to_string(),
        "rootServiceName": if trace.root_service.is_empty() { "<root span not yet received>" } else { &trace.root_service },
        "rootTraceName": trace.root_name,
        "startTimeUnixNano": trace.start_unix_nano.to_string(),
        "durationMs": trace.duration_nanos / 1_000_000,
    });
    let stats: serde_json::Map<String, Json> = trace
        .service_stats
        .iter()
        .map(|(service, spans, errors)| {
            let mut stat = json!({ "spanCount": spans });
            if *errors > 0 {
                stat["errorCount"] = json!(errors);
            }
            (service.clone(), stat)
        })
        .collect();
    out["serviceStats"] = Json::Object(stats);
    if let Some(first) = sets.first() {
        out["spanSet"] = first.clone();
    }
    out["spanSets"] = json!(sets);
    out
}

/// A trace in Clew's native shape (camelCase, full summary).
pub(crate) fn native_trace(trace: &FoundTrace, spss: usize) -> Json {
    json!({
        "traceId": trace.trace_id.to_string(),
        "rootServiceName": trace.root_service,
        "rootSpanName": trace.root_name,
        "startTimeUnixNano": trace.start_unix_nano.to_string(),
        "durationNanos": trace.duration_nanos.to_string(),
        "spanCount": trace.span_count,
        "errorCount": trace.error_count,
        "services": trace.services,
        "spanSets": trace.matched.spansets.iter().map(|s| spanset(s, spss)).collect::<Vec<_>>(),
    })
}
