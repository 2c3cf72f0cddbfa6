//! OTLP spans as Zipkin v2 JSON spans, as the OpenTelemetry collector's Zipkin exporter translates them: the
//! resource's `service.name` is the local endpoint, `peer.service` and the peer address the remote one, kind
//! upper-case (absent for internal spans, which get the tag `span.kind=internal`), times in microseconds, every
//! attribute (resource, scope, span) a string tag, status as `otel.status_code` and `error`, events as
//! annotations and links as `otlp.link.N` tags. Clew's Zipkin receiver reads all of it back.

use std::collections::BTreeMap;
use std::net::IpAddr;

use clew_model::otlp::{Span as OtlpSpan, TracesData};
use serde::Serialize;

use crate::compat::{attributes_json, short_trace_id, value_text};

/// The local service name of a resource without `service.name`, as the collector names it.
pub(crate) const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Span {
    pub trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Unix microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// Microseconds, at least 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_endpoint: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_endpoint: Option<Endpoint>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Endpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Annotation {
    /// Unix microseconds.
    pub timestamp: u64,
    pub value: String,
}

/// Every span of a stored trace, in start order.
pub(crate) fn spans(data: &TracesData) -> Vec<Span> {
    let mut out = Vec::new();
    for resource_spans in &data.resource_spans {
        let resource = resource_spans.resource.as_ref();
        let service = clew_model::service_name(resource).unwrap_or(NO_SERVICE_NAME);
        let base: BTreeMap<String, String> = resource
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|kv| kv.key != "service.name")
            .map(|kv| (kv.key.clone(), value_text(kv.value.as_ref())))
            .collect();
        for scope_spans in &resource_spans.scope_spans {
            let mut scoped = base.clone();
            if let Some(scope) = &scope_spans.scope {
                if !scope.name.is_empty() {
                    scoped.insert("otel.scope.name".into(), scope.name.clone());
                }
                if !scope.version.is_empty() {
                    scoped.insert("otel.scope.version".into(), scope.version.clone());
                }
            }
            out.extend(scope_spans.spans.iter().map(|span| convert(span, service, scoped.clone())));
        }
    }
    out.sort_by_key(|s| s.timestamp.unwrap_or(0));
    out
}

fn convert(span: &OtlpSpan, service: &str, mut tags: BTreeMap<String, String>) -> Span {
    for kv in &span.attributes {
        tags.insert(kv.key.clone(), value_text(kv.value.as_ref()));
    }
    if !span.trace_state.is_empty() {
        tags.insert("w3c.tracestate".into(), span.trace_state.clone());
    }
    let kind = match span.kind {
        2 => Some("SERVER"),
        3 => Some("CLIENT"),
        4 => Some("PRODUCER"),
        5 => Some("CONSUMER"),
        1 => {
            tags.insert("span.kind".into(), "internal".into());
            None
        }
        _ => None,
    };
    let local = endpoint(
        &mut tags,
        Some(service.to_owned()),
        ["net.host.ip", "network.local.address"],
        ["net.host.port", "network.local.port"],
    );
    let remote_service = tags.remove("peer.service");
    let remote = endpoint(
        &mut tags,
        remote_service,
        ["net.peer.ip", "network.peer.address"],
        ["net.peer.port", "network.peer.port"],
    );
    let status = span.status.as_ref();
    match status.map(|s| s.code) {
        Some(2) => {
            tags.insert("error".into(), "true".into());
            tags.insert("otel.status_code".into(), "ERROR".into());
        }
        code => {
            // Only an error status marks a Zipkin span failed; a leftover `error` attribute would too.
            tags.remove("error");
            if code == Some(1) {
                tags.insert("otel.status_code".into(), "OK".into());
            }
        }
    }
    if let Some(status) = status.filter(|s| s.code != 0 && !s.message.is_empty()) {
        tags.insert("otel.status_description".into(), status.message.clone());
    }
    let annotations = span
        .events
        .iter()
        .map(|event| Annotation {
            timestamp: event.time_unix_nano / 1000,
            value: if event.attributes.is_empty() && event.dropped_attributes_count == 0 {
                event.name.clone()
            } else {
                format!("{}|{}|{}", event.name, attributes_json(&event.attributes), event.dropped_attributes_count)
            },
        })
        .collect();
    for (i, link) in span.links.iter().enumerate() {
        tags.insert(
            format!("otlp.link.{i}"),
            format!(
                "{}|{}|{}|{}|{}",
                hex::encode(&link.trace_id),
                hex::encode(&link.span_id),
                link.trace_state,
                attributes_json(&link.attributes),
                link.dropped_attributes_count
            ),
        );
    }
    let parent = (!span.parent_span_id.is_empty() && span.parent_span_id.iter().any(|&b| b != 0))
        .then(|| hex::encode(&span.parent_span_id));
    let timestamp = (span.start_time_unix_nano != 0).then_some(span.start_time_unix_nano / 1000);
    let duration = match span.end_time_unix_nano.checked_sub(span.start_time_unix_nano) {
        Some(nanos) if span.end_time_unix_nano != 0 && nanos > 0 => Some((nanos / 1000).max(1)),
        _ => None,
    };
    Span {
        trace_id: short_trace_id(&span.trace_id),
        parent_id: parent,
        id: hex::encode(&span.span_id),
        kind,
        name: Some(span.name.clone()).filter(|n| !n.is_empty()),
        timestamp,
        duration,
        local_endpoint: local,
        remote_endpoint: remote,
        annotations,
        tags,
    }
}

/// An endpoint from a service name and the first address and port tags present (which are then removed).
fn endpoint(
    tags: &mut BTreeMap<String, String>,
    service: Option<String>,
    ip_keys: [&str; 2],
    port_keys: [&str; 2],
) -> Option<Endpoint> {
    let mut out = Endpoint { service_name: service.filter(|s| !s.is_empty()), ..Endpoint::default() };
    if let Some(key) = ip_keys.iter().find(|k| tags.get(**k).is_some_and(|v| v.parse::<IpAddr>().is_ok())) {
        match tags.remove(*key).and_then(|v| v.parse::<IpAddr>().ok()) {
            Some(IpAddr::V4(ip)) => out.ipv4 = Some(ip.to_string()),
            Some(IpAddr::V6(ip)) => out.ipv6 = Some(ip.to_string()),
            None => {}
        }
    }
    if let Some(key) = port_keys.iter().find(|k| tags.get(**k).is_some_and(|v| v.parse::<u16>().is_ok_and(|p| p > 0))) {
        out.port = tags.remove(*key).and_then(|v| v.parse().ok());
    }
    (out != Endpoint::default()).then_some(out)
}

#[cfg(test)]
mod tests {
    use clew_model::otlp::any_value::Value;
    use clew_model::otlp::{
        AnyValue, InstrumentationScope, KeyValue, Resource, ResourceSpans, ScopeSpans, Status,
        span::{Event, Link},
    };

    use super::*;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue { key: key.into(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
    }

    fn data(spans: Vec<OtlpSpan>) -> TracesData {
        TracesData {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", Value::StringValue("frontend".into())),
                        kv("host.name", Value::StringValue("h1".into())),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope { name: "lib".into(), version: "2".into(), ..Default::default() }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn client_span_with_everything() {
        let span = OtlpSpan {
            trace_id: vec![0x4e; 16],
            span_id: vec![0xa2; 8],
            parent_span_id: vec![0x01; 8],
            name: "get /api".into(),
            kind: 3,
            start_time_unix_nano: 1_700_000_000_123_456_789,
            end_time_unix_nano: 1_700_000_000_125_956_789,
            attributes: vec![
                kv("peer.service", Value::StringValue("backend".into())),
                kv("net.peer.ip", Value::StringValue("10.0.0.2".into())),
                kv("net.peer.port", Value::IntValue(9000)),
                kv("net.host.ip", Value::StringValue("::1".into())),
                kv("http.status_code", Value::IntValue(500)),
                kv("error", Value::BoolValue(true)),
            ],
            status: Some(Status { code: 2, message: "backend exploded".into() }),
            events: vec![
                Event { time_unix_nano: 1_700_000_000_123_556_789, name: "ws".into(), ..Default::default() },
                Event {
                    time_unix_nano: 1_700_000_000_124_000_000,
                    name: "retry".into(),
                    attributes: vec![kv("n", Value::IntValue(2))],
                    dropped_attributes_count: 1,
                },
            ],
            links: vec![Link { trace_id: vec![0xcd; 16], span_id: vec![3; 8], ..Default::default() }],
            ..Default::default()
        };
        let spans = spans(&data(vec![span]));
        let s = &spans[0];
        assert_eq!(s.trace_id, "4e".repeat(16));
        assert_eq!(s.id, "a2".repeat(8));
        assert_eq!(s.parent_id.as_deref(), Some("0101010101010101"));
        assert_eq!(s.kind, Some("CLIENT"));
        assert_eq!(s.timestamp, Some(1_700_000_000_123_456));
        assert_eq!(s.duration, Some(2_500));
        assert_eq!(
            s.local_endpoint,
            Some(Endpoint { service_name: Some("frontend".into()), ipv6: Some("::1".into()), ..Endpoint::default() })
        );
        assert_eq!(
            s.remote_endpoint,
            Some(Endpoint {
                service_name: Some("backend".into()),
                ipv4: Some("10.0.0.2".into()),
                port: Some(9000),
                ..Endpoint::default()
            })
        );
        let tags: Vec<(&str, &str)> = s.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            tags,
            vec![
                ("error", "true"),
                ("host.name", "h1"),
                ("http.status_code", "500"),
                ("otel.scope.name", "lib"),
                ("otel.scope.version", "2"),
                ("otel.status_code", "ERROR"),
                ("otel.status_description", "backend exploded"),
                ("otlp.link.0", &format!("{}|{}||{{}}|0", "cd".repeat(16), "03".repeat(8))),
            ]
        );
        assert_eq!(
            s.annotations,
            vec![
                Annotation { timestamp: 1_700_000_000_123_556, value: "ws".into() },
                Annotation { timestamp: 1_700_000_000_124_000, value: r#"retry|{"n":2}|1"#.into() },
            ]
        );
    }

    #[test]
    fn internal_and_short_spans() {
        let span = OtlpSpan {
            trace_id: [vec![0; 8], vec![0x12; 8]].concat(),
            span_id: vec![7; 8],
            kind: 1,
            start_time_unix_nano: 1_000_000,
            end_time_unix_nano: 1_000_400,
            attributes: vec![kv("error", Value::StringValue("stale".into()))],
            status: Some(Status { code: 1, message: String::new() }),
            ..Default::default()
        };
        let spans = spans(&data(vec![span]));
        let s = &spans[0];
        assert_eq!(s.trace_id, "1212121212121212", "64-bit ids print as 16 hex digits");
        assert_eq!(s.kind, None);
        assert_eq!(s.name, None);
        assert_eq!(s.duration, Some(1), "durations round up to 1µs");
        assert_eq!(s.parent_id, None);
        assert_eq!(s.tags.get("span.kind").map(String::as_str), Some("internal"));
        assert_eq!(s.tags.get("otel.status_code").map(String::as_str), Some("OK"));
        assert!(!s.tags.contains_key("error"), "only an error status sets the error tag");
        let json = serde_json::to_value(s).unwrap();
        assert!(
            json.get("kind").is_none() && json.get("remoteEndpoint").is_none() && json.get("annotations").is_none()
        );
        assert_eq!(json["localEndpoint"]["serviceName"], "frontend");
    }
}
