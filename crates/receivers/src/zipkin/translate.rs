//! [`ZipkinSpan`]s into OTLP, following the OpenTelemetry collector's `zipkinv2` translator
//! (pkg/translator/zipkin/zipkinv2/to_translator.go) with its default settings: tags stay strings, and the
//! network attributes keep their older names (`net.host.ip`, `net.peer.ip`, `peer.service`).
//!
//! Deliberate differences, each to keep data the collector loses or to refuse less:
//! - Spans are grouped by their whole resource (service name plus resource-convention tags), not by service name
//!   alone, so every span keeps its own resource tags; the collector takes them from the first span of each
//!   service and drops the rest, and drops them all for spans without a service.
//! - Scopes are grouped by name and version; `otel.scope.*` is read as well as the legacy `otel.library.*`.
//! - `otel.status_code` also accepts `OK`/`ERROR`/`UNSET`, the values OpenTelemetry's own Zipkin exporters write.
//! - An annotation or `otlp.link.N` tag that is not in OpenTelemetry's `…|{json}|dropped` form is kept as it is
//!   (the whole value as the event name; the tag as an attribute) instead of failing the request or being cut.
//! - A missing timestamp is flagged for protobuf too (the collector only flags it for JSON).

use std::collections::BTreeMap;
use std::net::IpAddr;

use clew_model::otlp::{self, any_value, span, status};

use super::{Endpoint, Kind, ZipkinDecodeError, ZipkinSpan};

/// Tag naming the resource attribute that holds the local service name (written by the collector's Zipkin
/// exporter when the name came from somewhere other than `service.name`).
const SERVICE_NAME_SOURCE: &str = "otlp.service.name.source";
/// Marks a span whose Zipkin timestamp was absent; its start time is then the Unix epoch.
const START_TIME_ABSENT: &str = "otel.zipkin.absentField.startTime";
/// How many `otlp.link.N` tags are read, counting from 0 and stopping at the first gap.
const MAX_LINKS: usize = 128;

/// Tags that belong to the resource rather than the span: the resource semantic conventions (v1.6.1, as the
/// translator uses them) and the OpenCensus leftovers it treats the same way.
const RESOURCE_KEYS: &[&str] = &[
    "aws.ecs.cluster.arn",
    "aws.ecs.container.arn",
    "aws.ecs.launchtype",
    "aws.ecs.task.arn",
    "aws.ecs.task.family",
    "aws.ecs.task.revision",
    "aws.eks.cluster.arn",
    "aws.log.group.arns",
    "aws.log.group.names",
    "aws.log.stream.arns",
    "aws.log.stream.names",
    "cloud.account.id",
    "cloud.availability_zone",
    "cloud.platform",
    "cloud.provider",
    "cloud.region",
    "container.id",
    "container.image.name",
    "container.image.tag",
    "container.name",
    "container.runtime",
    "deployment.environment",
    "device.id",
    "device.model.identifier",
    "device.model.name",
    "faas.id",
    "faas.instance",
    "faas.max_memory",
    "faas.name",
    "faas.version",
    "host.arch",
    "host.id",
    "host.image.id",
    "host.image.name",
    "host.image.version",
    "host.name",
    "host.type",
    "k8s.cluster.name",
    "k8s.container.name",
    "k8s.cronjob.name",
    "k8s.cronjob.uid",
    "k8s.daemonset.name",
    "k8s.daemonset.uid",
    "k8s.deployment.name",
    "k8s.deployment.uid",
    "k8s.job.name",
    "k8s.job.uid",
    "k8s.namespace.name",
    "k8s.node.name",
    "k8s.node.uid",
    "k8s.pod.name",
    "k8s.pod.uid",
    "k8s.replicaset.name",
    "k8s.replicaset.uid",
    "k8s.statefulset.name",
    "k8s.statefulset.uid",
    "opencensus.exporterversion",
    "opencensus.resourcetype",
    "opencensus.starttime",
    "os.description",
    "os.name",
    "os.type",
    "os.version",
    "process.command",
    "process.command_args",
    "process.command_line",
    "process.executable.name",
    "process.executable.path",
    "process.owner",
    "process.pid",
    "process.runtime.description",
    "process.runtime.name",
    "process.runtime.version",
    "service.instance.id",
    "service.name",
    "service.namespace",
    "service.version",
    "telemetry.auto.version",
    "telemetry.sdk.language",
    "telemetry.sdk.name",
    "telemetry.sdk.version",
    "webengine.description",
    "webengine.name",
    "webengine.version",
];

/// What decides which `ResourceSpans` a span lands in. Ordered like the collector orders its output: by local
/// service name, with no service sorting as the collector's placeholder name does.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct ResourceKey {
    sort_name: String,
    attributes: Vec<(String, String)>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct ScopeKey {
    name: String,
    version: String,
}

/// Translates checked spans, in request order, into resource spans.
pub(super) fn to_otlp(spans: Vec<ZipkinSpan>) -> Result<Vec<otlp::ResourceSpans>, ZipkinDecodeError> {
    let mut groups: BTreeMap<ResourceKey, BTreeMap<ScopeKey, Vec<otlp::Span>>> = BTreeMap::new();
    for mut zspan in spans {
        let resource = take_resource(&mut zspan);
        let scope = take_scope(&mut zspan.tags);
        let span = to_span(zspan)?;
        groups.entry(resource).or_default().entry(scope).or_default().push(span);
    }
    Ok(groups
        .into_iter()
        .map(|(resource, scopes)| otlp::ResourceSpans {
            resource: Some(otlp::Resource {
                attributes: resource.attributes.into_iter().map(|(k, v)| string_kv(k, v)).collect(),
                ..Default::default()
            }),
            scope_spans: scopes
                .into_iter()
                .map(|(scope, spans)| otlp::ScopeSpans {
                    scope: Some(otlp::InstrumentationScope {
                        name: scope.name,
                        version: scope.version,
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect())
}

/// Moves the resource's attributes out of the span: the local service name, then resource-convention tags
/// (which win over the endpoint's name, as in the collector).
fn take_resource(zspan: &mut ZipkinSpan) -> ResourceKey {
    let mut attributes = Vec::new();
    let service = zspan.local_endpoint.as_ref().map(|e| e.service_name.clone()).filter(|s| !s.is_empty());
    let source = zspan.tags.remove(SERVICE_NAME_SOURCE).filter(|s| !s.is_empty());
    if let Some(service) = &service {
        let key = source.unwrap_or_else(|| "service.name".to_string());
        upsert(&mut attributes, key, service.clone());
    }
    let keys: Vec<String> = zspan.tags.keys().filter(|k| RESOURCE_KEYS.contains(&k.as_str())).cloned().collect();
    for key in keys {
        if let Some(value) = zspan.tags.remove(&key) {
            upsert(&mut attributes, key, value);
        }
    }
    ResourceKey { sort_name: service.unwrap_or_else(|| "OTLPResourceNoServiceName".to_string()), attributes }
}

/// Reads and removes the instrumentation scope tags; the current names win over the legacy ones.
fn take_scope(tags: &mut BTreeMap<String, String>) -> ScopeKey {
    let mut pick = |current: &str, legacy: &str| {
        let current = tags.remove(current);
        let legacy = tags.remove(legacy);
        current.or(legacy).unwrap_or_default()
    };
    let name = pick("otel.scope.name", "otel.library.name");
    let version = pick("otel.scope.version", "otel.library.version");
    ScopeKey { name, version }
}

fn to_span(mut zspan: ZipkinSpan) -> Result<otlp::Span, ZipkinDecodeError> {
    let index = zspan.index;
    let tags = &mut zspan.tags;
    let trace_state = tags.remove("w3c.tracestate").unwrap_or_default();
    // A span naming itself as parent is a root (some tracers write it so); a zero parent is no parent.
    let parent_span_id = match zspan.parent_id {
        Some(parent) if parent != zspan.id && parent != [0; 8] => parent.to_vec(),
        _ => Vec::new(),
    };
    let kind = span_kind(zspan.kind, tags);
    let status = take_status(tags);
    let links = take_links(tags);

    let mut attributes: Vec<otlp::KeyValue> = std::mem::take(tags).into_iter().map(|(k, v)| string_kv(k, v)).collect();
    if let Some(local) = &zspan.local_endpoint {
        endpoint_attributes(&mut attributes, local, None, "net.host.ip", "net.host.port");
    }
    if let Some(remote) = &zspan.remote_endpoint {
        endpoint_attributes(&mut attributes, remote, Some("peer.service"), "net.peer.ip", "net.peer.port");
    }

    let too_large = |what: &str| ZipkinDecodeError::span(index, format!("{what} is too large"));
    let start = match zspan.timestamp_us {
        Some(us) => us.checked_mul(1000).ok_or_else(|| too_large("timestamp"))?,
        None => {
            upsert_value(&mut attributes, START_TIME_ABSENT, any_value::Value::BoolValue(true));
            0
        }
    };
    let end = zspan
        .duration_us
        .checked_mul(1000)
        .and_then(|d| start.checked_add(d))
        .ok_or_else(|| too_large("timestamp + duration"))?;
    let events = zspan
        .annotations
        .into_iter()
        .map(|a| {
            let time = a.timestamp_us.checked_mul(1000).ok_or_else(|| too_large("annotation timestamp"))?;
            Ok(event(time, a.value))
        })
        .collect::<Result<_, ZipkinDecodeError>>()?;

    Ok(otlp::Span {
        trace_id: zspan.trace_id.to_vec(),
        span_id: zspan.id.to_vec(),
        trace_state,
        parent_span_id,
        name: zspan.name,
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        events,
        links,
        status: Some(status),
        ..Default::default()
    })
}

/// Zipkin's four kinds map one to one. Without a kind, OpenTelemetry's Zipkin exporters mark internal spans with
/// `span.kind=internal`; that tag is consumed whatever its value, but only when the span has no Zipkin kind.
fn span_kind(kind: Kind, tags: &mut BTreeMap<String, String>) -> span::SpanKind {
    match kind {
        Kind::Client => span::SpanKind::Client,
        Kind::Server => span::SpanKind::Server,
        Kind::Producer => span::SpanKind::Producer,
        Kind::Consumer => span::SpanKind::Consumer,
        Kind::Unspecified => match tags.remove("span.kind").as_deref() {
            Some("internal") => span::SpanKind::Internal,
            _ => span::SpanKind::Unspecified,
        },
    }
}

/// `otel.status_code` (with `otel.status_description` as its message) sets the status; an `error` tag with any
/// value then makes it an error. `error=true` carries no more information and is removed; any other value (often
/// the error message) stays as an attribute, and the status message is left alone, as in the collector.
fn take_status(tags: &mut BTreeMap<String, String>) -> otlp::Status {
    let mut out = otlp::Status::default();
    if let Some(code) = tags.remove("otel.status_code") {
        out.code = match code.as_str() {
            "STATUS_CODE_OK" | "Ok" | "OK" => status::StatusCode::Ok,
            "STATUS_CODE_ERROR" | "Error" | "ERROR" => status::StatusCode::Error,
            // Unknown values count as unset, and the tag is still consumed.
            _ => status::StatusCode::Unset,
        } as i32;
        if let Some(message) = tags.remove("otel.status_description") {
            out.message = message;
        }
    }
    if let Some(error) = tags.get("error") {
        out.code = status::StatusCode::Error as i32;
        if error == "true" {
            tags.remove("error");
        }
    }
    out
}

/// Reads `otlp.link.0`, `otlp.link.1`, … (`traceId|spanId|tracestate|{json attributes}|dropped`), stopping at
/// the first missing index. A tag that does not parse is put back and ends up as a plain attribute.
fn take_links(tags: &mut BTreeMap<String, String>) -> Vec<span::Link> {
    let mut links = Vec::new();
    for i in 0..MAX_LINKS {
        let key = format!("otlp.link.{i}");
        let Some(value) = tags.remove(&key) else {
            break;
        };
        match parse_link(&value) {
            Some(link) => links.push(link),
            None => {
                tags.insert(key, value);
            }
        }
    }
    links
}

fn parse_link(value: &str) -> Option<span::Link> {
    let parts: Vec<&str> = value.split('|').collect();
    if parts.len() < 5 {
        return None;
    }
    let trace_id = link_id::<16>(parts[0])?;
    let span_id = link_id::<8>(parts[1])?;
    let (attributes, dropped) = json_attributes_and_dropped(&parts[3..])?;
    Some(span::Link {
        trace_id,
        span_id,
        trace_state: parts[2].to_string(),
        attributes,
        dropped_attributes_count: dropped,
        ..Default::default()
    })
}

/// A hex id in a link tag, optionally quoted; empty (and all-zero) means no id, which OTLP writes as empty bytes.
fn link_id<const N: usize>(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    if text.is_empty() {
        return Some(Vec::new());
    }
    let mut id = [0u8; N];
    hex::decode_to_slice(text, &mut id).ok()?;
    Some(if id == [0; N] { Vec::new() } else { id.to_vec() })
}

/// An annotation becomes an event named by its value, unless the value is OpenTelemetry's
/// `name|{json attributes}|dropped` encoding of an event with attributes.
fn event(time_unix_nano: u64, value: String) -> span::Event {
    if let Some((name, rest)) = value.split_once('|') {
        let parts: Vec<&str> = rest.split('|').collect();
        if parts.len() >= 2
            && let Some((attributes, dropped)) = json_attributes_and_dropped(&parts)
        {
            return span::Event {
                time_unix_nano,
                name: name.to_string(),
                attributes,
                dropped_attributes_count: dropped,
            };
        }
    }
    span::Event { time_unix_nano, name: value, ..Default::default() }
}

/// Parses `{json}|…|dropped`: everything but the last part, joined back with `|` (the JSON may contain it), is a
/// JSON object of attributes; the last part is the dropped-attribute count.
fn json_attributes_and_dropped(parts: &[&str]) -> Option<(Vec<otlp::KeyValue>, u32)> {
    let (dropped, json) = parts.split_last()?;
    let dropped = if !dropped.is_empty() && dropped.bytes().all(|b| b.is_ascii_digit()) {
        dropped.parse::<u32>().ok()?
    } else {
        return None;
    };
    let json = json.join("|");
    let object = match serde_json::from_str::<serde_json::Value>(&json).ok()? {
        serde_json::Value::Object(object) => object,
        serde_json::Value::Null => Default::default(),
        _ => return None,
    };
    let mut attributes: Vec<otlp::KeyValue> = object
        .into_iter()
        .filter_map(|(key, value)| {
            // JSON numbers are doubles to the collector: whole ones become ints. Arrays, objects and null are
            // dropped, as there.
            let value = match value {
                serde_json::Value::String(s) => any_value::Value::StringValue(s),
                serde_json::Value::Bool(b) => any_value::Value::BoolValue(b),
                serde_json::Value::Number(n) => {
                    let d = n.as_f64()?;
                    if d.fract() == 0.0 {
                        any_value::Value::IntValue(d as i64)
                    } else {
                        any_value::Value::DoubleValue(d)
                    }
                }
                _ => return None,
            };
            Some(key_value(key, value))
        })
        .collect();
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
    Some((attributes, dropped))
}

/// The endpoint's address, port and (for the remote side) service name. These overwrite tags of the same name.
fn endpoint_attributes(
    attributes: &mut Vec<otlp::KeyValue>,
    endpoint: &Endpoint,
    service_key: Option<&str>,
    ip_key: &str,
    port_key: &str,
) {
    if let Some(key) = service_key
        && !endpoint.service_name.is_empty()
    {
        upsert_value(attributes, key, any_value::Value::StringValue(endpoint.service_name.clone()));
    }
    // When both are set the IPv6 address wins, as in the collector.
    for ip in [endpoint.ipv4, endpoint.ipv6].into_iter().flatten() {
        upsert_value(attributes, ip_key, any_value::Value::StringValue(ip_text(ip)));
    }
    if endpoint.port > 0 {
        upsert_value(attributes, port_key, any_value::Value::IntValue(endpoint.port.into()));
    }
}

/// Formats an address as Go does: IPv4-mapped IPv6 addresses print as plain IPv4.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

fn key_value(key: impl Into<String>, value: any_value::Value) -> otlp::KeyValue {
    otlp::KeyValue { key: key.into(), value: Some(otlp::AnyValue { value: Some(value) }), ..Default::default() }
}

fn string_kv(key: String, value: String) -> otlp::KeyValue {
    key_value(key, any_value::Value::StringValue(value))
}

/// Sets `key`, replacing an earlier value in place (attribute keys must be unique).
fn upsert_value(attributes: &mut Vec<otlp::KeyValue>, key: &str, value: any_value::Value) {
    match attributes.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = Some(otlp::AnyValue { value: Some(value) }),
        None => attributes.push(key_value(key, value)),
    }
}

fn upsert(attributes: &mut Vec<(String, String)>, key: String, value: String) {
    match attributes.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => *v = value,
        None => attributes.push((key, value)),
    }
}
