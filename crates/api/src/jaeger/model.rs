//! Jaeger's JSON trace model (what Jaeger UI reads from `/api/traces`), built from OTLP the way Jaeger's OTLP
//! translator does: resource → process (service name and tags), span kind, status and scope → span tags,
//! parent → `CHILD_OF` reference, links → `FOLLOWS_FROM`, events → logs, times in microseconds.

use std::collections::HashMap;

use base64::Engine;
use clew_model::otlp::{KeyValue as OtlpKeyValue, Span as OtlpSpan, TracesData, any_value::Value};
use serde::Serialize;
use serde_json::Value as Json;

use crate::compat::{short_trace_id, value_text};

/// The process name Jaeger gives a resource without `service.name`.
pub(crate) const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

#[derive(Debug, Serialize)]
pub(crate) struct Trace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<Span>,
    pub processes: HashMap<String, Process>,
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Span {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    pub operation_name: String,
    pub references: Vec<Reference>,
    /// Unix microseconds.
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    pub tags: Vec<KeyValue>,
    pub logs: Vec<Log>,
    #[serde(rename = "processID")]
    pub process_id: String,
    pub warnings: Option<Vec<String>>,
    /// Exact duration, for search conditions.
    #[serde(skip)]
    pub duration_nanos: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Reference {
    pub ref_type: &'static str,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Process {
    pub service_name: String,
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct KeyValue {
    pub key: String,
    /// `string`, `bool`, `int64`, `float64` or `binary`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: Json,
}

#[derive(Debug, Serialize)]
pub(crate) struct Log {
    /// Unix microseconds.
    pub timestamp: u64,
    pub fields: Vec<KeyValue>,
}

impl KeyValue {
    fn string(key: &str, value: &str) -> Self {
        Self { key: key.to_owned(), kind: "string", value: Json::from(value) }
    }

    /// A typed tag from an OTLP attribute; arrays and maps become their JSON text, as Jaeger stores them.
    fn from_otlp(kv: &OtlpKeyValue) -> Self {
        let (kind, value) = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => ("string", Json::from(s.as_str())),
            Some(Value::BoolValue(b)) => ("bool", Json::from(*b)),
            Some(Value::IntValue(i)) => ("int64", Json::from(*i)),
            Some(Value::DoubleValue(d)) => ("float64", Json::from(*d)),
            Some(Value::BytesValue(b)) => ("binary", Json::from(base64::engine::general_purpose::STANDARD.encode(b))),
            _ => ("string", Json::from(value_text(kv.value.as_ref()))),
        };
        Self { key: kv.key.clone(), kind, value }
    }

    /// The value as text, as Jaeger's tag search compares it.
    pub(crate) fn text(&self) -> String {
        match &self.value {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

/// Lowercase span kind name of an OTLP kind number, as Jaeger's `span.kind` tag spells it.
pub(crate) fn kind_tag(kind: i32) -> Option<&'static str> {
    match kind {
        1 => Some("internal"),
        2 => Some("server"),
        3 => Some("client"),
        4 => Some("producer"),
        5 => Some("consumer"),
        _ => None,
    }
}

fn micros(nanos: u64) -> u64 {
    nanos / 1000
}

/// Converts one stored trace (all its resource and scope groups) to Jaeger's model. Identical processes share an
/// id (`p1`, `p2`, … in order of first use).
pub(crate) fn trace(data: &TracesData) -> Trace {
    let mut processes: Vec<Process> = Vec::new();
    let mut spans = Vec::new();
    let mut trace_id = String::new();
    for resource_spans in &data.resource_spans {
        let resource = resource_spans.resource.as_ref();
        let attributes = resource.map(|r| r.attributes.as_slice()).unwrap_or_default();
        let mut process = Process {
            service_name: clew_model::service_name(resource).unwrap_or(NO_SERVICE_NAME).to_owned(),
            tags: attributes.iter().filter(|kv| kv.key != "service.name").map(KeyValue::from_otlp).collect(),
        };
        process.tags.sort_by(|a, b| a.key.cmp(&b.key));
        let index = match processes.iter().position(|p| *p == process) {
            Some(i) => i,
            None => {
                processes.push(process);
                processes.len() - 1
            }
        };
        let process_id = format!("p{}", index + 1);
        for scope_spans in &resource_spans.scope_spans {
            let scope = scope_spans.scope.as_ref();
            let mut scope_tags = Vec::new();
            if let Some(scope) = scope {
                if !scope.name.is_empty() {
                    scope_tags.push(KeyValue::string("otel.scope.name", &scope.name));
                }
                if !scope.version.is_empty() {
                    scope_tags.push(KeyValue::string("otel.scope.version", &scope.version));
                }
            }
            for span in &scope_spans.spans {
                let converted = convert_span(span, &scope_tags, &process_id);
                if trace_id.is_empty() {
                    trace_id = converted.trace_id.clone();
                }
                spans.push(converted);
            }
        }
    }
    spans.sort_by_key(|s| s.start_time);
    let processes = processes.into_iter().enumerate().map(|(i, p)| (format!("p{}", i + 1), p)).collect();
    Trace { trace_id, spans, processes, warnings: None }
}

fn convert_span(span: &OtlpSpan, scope_tags: &[KeyValue], process_id: &str) -> Span {
    let trace_id = short_trace_id(&span.trace_id);
    let mut references = Vec::new();
    if !span.parent_span_id.is_empty() && span.parent_span_id.iter().any(|&b| b != 0) {
        references.push(Reference {
            ref_type: "CHILD_OF",
            trace_id: trace_id.clone(),
            span_id: hex::encode(&span.parent_span_id),
        });
    }
    for link in &span.links {
        references.push(Reference {
            ref_type: "FOLLOWS_FROM",
            trace_id: short_trace_id(&link.trace_id),
            span_id: hex::encode(&link.span_id),
        });
    }
    let mut tags: Vec<KeyValue> = scope_tags.to_vec();
    tags.extend(span.attributes.iter().map(KeyValue::from_otlp));
    if let Some(kind) = kind_tag(span.kind) {
        tags.push(KeyValue::string("span.kind", kind));
    }
    if let Some(status) = &span.status {
        match status.code {
            1 => tags.push(KeyValue::string("otel.status_code", "OK")),
            2 => {
                tags.push(KeyValue { key: "error".into(), kind: "bool", value: Json::Bool(true) });
                tags.push(KeyValue::string("otel.status_code", "ERROR"));
            }
            _ => {}
        }
        if !status.message.is_empty() {
            tags.push(KeyValue::string("otel.status_description", &status.message));
        }
    }
    if !span.trace_state.is_empty() {
        tags.push(KeyValue::string("w3c.tracestate", &span.trace_state));
    }
    // Sorted by key, as Jaeger's query service adjusts them: stable whatever order storage keeps attributes in.
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    let logs = span
        .events
        .iter()
        .map(|event| {
            let mut fields = Vec::new();
            if !event.name.is_empty() && !event.attributes.iter().any(|kv| kv.key == "event") {
                fields.push(KeyValue::string("event", &event.name));
            }
            let mut attributes: Vec<KeyValue> = event.attributes.iter().map(KeyValue::from_otlp).collect();
            attributes.sort_by(|a, b| a.key.cmp(&b.key));
            fields.extend(attributes);
            Log { timestamp: micros(event.time_unix_nano), fields }
        })
        .collect();
    let duration_nanos = span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano);
    Span {
        trace_id,
        span_id: hex::encode(&span.span_id),
        operation_name: span.name.clone(),
        references,
        start_time: micros(span.start_time_unix_nano),
        duration: micros(duration_nanos),
        tags,
        logs,
        process_id: process_id.to_owned(),
        warnings: None,
        duration_nanos,
    }
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::{
        InstrumentationScope, Resource, ResourceSpans, ScopeSpans, Status,
        span::{Event, Link},
    };

    use clew_model::otlp::AnyValue;

    use super::*;

    fn kv(key: &str, value: Value) -> OtlpKeyValue {
        OtlpKeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }

    fn sample() -> TracesData {
        let root = OtlpSpan {
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            name: "GET /x".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_123_456_789,
            end_time_unix_nano: 1_700_000_000_223_456_789,
            attributes: vec![
                kv("http.status_code", Value::IntValue(500)),
                kv("ratio", Value::DoubleValue(0.25)),
                kv("cached", Value::BoolValue(false)),
                kv("raw", Value::BytesValue(vec![0xff])),
            ],
            status: Some(Status { code: 2, message: "boom".into() }),
            events: vec![Event {
                time_unix_nano: 1_700_000_000_200_000_000,
                name: "exception".into(),
                attributes: vec![kv("exception.message", Value::StringValue("bad".into()))],
                dropped_attributes_count: 0,
            }],
            trace_state: "k=v".into(),
            ..Default::default()
        };
        let child = OtlpSpan {
            trace_id: vec![0xab; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![1; 8],
            name: "SELECT".into(),
            kind: 3,
            start_time_unix_nano: 1_700_000_000_130_000_000,
            end_time_unix_nano: 1_700_000_000_130_000_500,
            links: vec![Link { trace_id: vec![0xcd; 16], span_id: vec![3; 8], ..Default::default() }],
            ..Default::default()
        };
        let resource = |service: &str| {
            Some(Resource {
                attributes: vec![
                    kv("service.name", Value::StringValue(service.into())),
                    kv("host.name", Value::StringValue("h1".into())),
                ],
                ..Default::default()
            })
        };
        let scope = Some(InstrumentationScope { name: "lib".into(), version: "1.2".into(), ..Default::default() });
        TracesData {
            resource_spans: vec![
                ResourceSpans {
                    resource: resource("api"),
                    scope_spans: vec![ScopeSpans { scope: scope.clone(), spans: vec![root], ..Default::default() }],
                    ..Default::default()
                },
                ResourceSpans {
                    resource: resource("db"),
                    scope_spans: vec![ScopeSpans { scope, spans: vec![child], ..Default::default() }],
                    ..Default::default()
                },
            ],
        }
    }

    fn tag<'a>(span: &'a Span, key: &str) -> Option<&'a KeyValue> {
        span.tags.iter().find(|t| t.key == key)
    }

    #[test]
    fn converts_like_jaeger() {
        let trace = trace(&sample());
        assert_eq!(trace.trace_id, "ab".repeat(16));
        assert_eq!(trace.processes.len(), 2);
        let root = &trace.spans[0];
        assert_eq!(root.operation_name, "GET /x");
        assert_eq!(root.start_time, 1_700_000_000_123_456);
        assert_eq!(root.duration, 100_000);
        assert!(root.references.is_empty());
        let process = &trace.processes[&root.process_id];
        assert_eq!(process.service_name, "api");
        assert_eq!(process.tags, vec![KeyValue::string("host.name", "h1")]);
        assert_eq!(tag(root, "http.status_code").map(|t| (t.kind, t.value.clone())), Some(("int64", 500.into())));
        assert_eq!(tag(root, "ratio").map(|t| t.kind), Some("float64"));
        assert_eq!(tag(root, "cached").map(|t| (t.kind, t.value.clone())), Some(("bool", false.into())));
        assert_eq!(tag(root, "raw").map(|t| (t.kind, t.value.clone())), Some(("binary", "/w==".into())));
        assert_eq!(tag(root, "span.kind").map(|t| t.value.clone()), Some("server".into()));
        assert_eq!(tag(root, "error").map(|t| (t.kind, t.value.clone())), Some(("bool", true.into())));
        assert_eq!(tag(root, "otel.status_code").map(|t| t.value.clone()), Some("ERROR".into()));
        assert_eq!(tag(root, "otel.status_description").map(|t| t.value.clone()), Some("boom".into()));
        assert_eq!(tag(root, "otel.scope.name").map(|t| t.value.clone()), Some("lib".into()));
        assert_eq!(tag(root, "otel.scope.version").map(|t| t.value.clone()), Some("1.2".into()));
        assert_eq!(tag(root, "w3c.tracestate").map(|t| t.value.clone()), Some("k=v".into()));
        assert_eq!(root.logs.len(), 1);
        assert_eq!(root.logs[0].timestamp, 1_700_000_000_200_000);
        assert_eq!(root.logs[0].fields[0], KeyValue::string("event", "exception"));
        assert_eq!(root.logs[0].fields[1], KeyValue::string("exception.message", "bad"));

        let child = &trace.spans[1];
        assert_eq!(child.duration, 0, "500ns truncates to 0µs");
        assert_eq!(child.references.len(), 2);
        assert_eq!(
            (child.references[0].ref_type, child.references[0].span_id.as_str()),
            ("CHILD_OF", "0101010101010101")
        );
        assert_eq!(child.references[1].ref_type, "FOLLOWS_FROM");
        assert_eq!(child.references[1].trace_id, "cd".repeat(16));
        assert_eq!(trace.processes[&child.process_id].service_name, "db");
        assert!(tag(child, "error").is_none() && tag(child, "otel.status_code").is_none());

        let json = serde_json::to_value(&trace).unwrap();
        let span = &json["spans"][0];
        for field in
            ["traceID", "spanID", "operationName", "references", "startTime", "duration", "tags", "logs", "processID"]
        {
            assert!(span.get(field).is_some(), "span field {field} missing");
        }
        assert!(span["warnings"].is_null() && json["warnings"].is_null());
        assert!(span.get("durationNanos").is_none() && span.get("duration_nanos").is_none());
    }

    #[test]
    fn identical_resources_share_a_process_and_short_ids_print_short() {
        let mut data = sample();
        data.resource_spans[1].resource = data.resource_spans[0].resource.clone();
        for rs in &mut data.resource_spans {
            for ss in &mut rs.scope_spans {
                for span in &mut ss.spans {
                    span.trace_id = [vec![0; 8], vec![0x12; 8]].concat();
                }
            }
        }
        data.resource_spans[0].resource.as_mut().unwrap().attributes.retain(|kv| kv.key != "service.name");
        data.resource_spans[1].resource.as_mut().unwrap().attributes.retain(|kv| kv.key != "service.name");
        let trace = trace(&data);
        assert_eq!(trace.processes.len(), 1);
        assert_eq!(trace.processes["p1"].service_name, NO_SERVICE_NAME);
        assert_eq!(trace.trace_id, "1212121212121212");
    }
}
