//! Zipkin v2 JSON (`[{"traceId": …}, …]`) into [`ZipkinSpan`]s.
//!
//! Field types follow zipkin-go, which the collector uses: `null` anywhere means absent, tag values must be
//! strings, ports fit in 16 bits, times are unsigned integers. Unknown fields are ignored.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use clew_model::TraceId;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};

use super::{Annotation, Endpoint, Kind, ZipkinDecodeError, ZipkinSpan};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonSpan {
    trace_id: Option<String>,
    id: Option<String>,
    parent_id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    timestamp: Option<u64>,
    duration: Option<u64>,
    // Read only so that a wrongly typed value is refused as zipkin-go refuses it; OTLP has no place for them.
    #[serde(rename = "debug")]
    _debug: Option<bool>,
    #[serde(rename = "shared")]
    _shared: Option<bool>,
    local_endpoint: Option<JsonEndpoint>,
    remote_endpoint: Option<JsonEndpoint>,
    // A `null` element is an annotation with no time and no value, as in zipkin-go.
    annotations: Option<Vec<Option<JsonAnnotation>>>,
    // A `null` value is an empty string, as in zipkin-go.
    tags: Option<BTreeMap<String, Option<String>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonEndpoint {
    service_name: Option<String>,
    ipv4: Option<String>,
    ipv6: Option<String>,
    port: Option<u16>,
}

#[derive(Deserialize)]
struct JsonAnnotation {
    timestamp: Option<u64>,
    value: Option<String>,
}

/// Parses and checks a request body. `null` array elements are skipped (the collector does the same) but still
/// count for the indexes in error messages.
pub(super) fn parse(body: &[u8]) -> Result<Vec<ZipkinSpan>, ZipkinDecodeError> {
    let current = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let spans = SpanArray { current: &current }
        .deserialize(&mut de)
        .and_then(|spans| de.end().map(|()| spans))
        .map_err(|source| match current.get() {
            Some(index) => ZipkinDecodeError::JsonSpan { index, source },
            None => ZipkinDecodeError::Json(source),
        })?;
    spans.into_iter().enumerate().filter_map(|(index, span)| span.map(|span| check(index, span))).collect()
}

/// Deserializes the top-level array while remembering which element is being read, so that a type error
/// deep inside a span can be reported as "span N: …" without double-wrapping serde_json's message.
struct SpanArray<'a> {
    current: &'a Cell<Option<usize>>,
}

impl<'de> DeserializeSeed<'de> for SpanArray<'_> {
    type Value = Vec<Option<JsonSpan>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for SpanArray<'_> {
    type Value = Vec<Option<JsonSpan>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of Zipkin v2 spans")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut spans = Vec::new();
        loop {
            self.current.set(Some(spans.len()));
            match seq.next_element()? {
                Some(span) => spans.push(span),
                None => break,
            }
        }
        self.current.set(None);
        Ok(spans)
    }
}

fn check(index: usize, span: JsonSpan) -> Result<ZipkinSpan, ZipkinDecodeError> {
    let bad = |reason: String| ZipkinDecodeError::span(index, reason);
    let trace_id = match span.trace_id.as_deref() {
        None | Some("") => return Err(bad("traceId is missing".into())),
        Some(hex) => {
            TraceId::parse_hex(hex).map_err(|_| bad(format!("traceId must be 16 or 32 hex characters, got {hex:?}")))?.0
        }
    };
    let id = match span.id.as_deref() {
        None | Some("") => return Err(bad("id is missing".into())),
        Some(hex) => span_id(hex).ok_or_else(|| bad(format!("id must be 16 hex characters, got {hex:?}")))?,
    };
    // zipkin-go reads an empty parentId as absent; anything else must be a real id.
    let parent_id = match span.parent_id.as_deref() {
        None | Some("") => None,
        Some(hex) => Some(span_id(hex).ok_or_else(|| bad(format!("parentId must be 16 hex characters, got {hex:?}")))?),
    };
    let local_endpoint = span.local_endpoint.map(|e| endpoint(e, "localEndpoint")).transpose().map_err(bad)?;
    let remote_endpoint = span.remote_endpoint.map(|e| endpoint(e, "remoteEndpoint")).transpose().map_err(bad)?;
    let annotations = span
        .annotations
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let a = a.unwrap_or(JsonAnnotation { timestamp: None, value: None });
            Annotation { timestamp_us: a.timestamp.unwrap_or(0), value: a.value.unwrap_or_default() }
        })
        .collect();
    let tags = span.tags.unwrap_or_default().into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
    Ok(ZipkinSpan {
        index,
        trace_id,
        id,
        parent_id,
        name: span.name.unwrap_or_default(),
        kind: kind(span.kind.as_deref().unwrap_or("")),
        timestamp_us: span.timestamp.filter(|&t| t != 0),
        duration_us: span.duration.unwrap_or(0),
        local_endpoint,
        remote_endpoint,
        annotations,
        tags,
    })
}

/// Exactly 16 hex digits (upper or lower case).
fn span_id(hex: &str) -> Option<[u8; 8]> {
    let mut out = [0u8; 8];
    hex::decode_to_slice(hex, &mut out).ok().map(|()| out)
}

/// Zipkin's kinds are upper case; anything else is treated as absent, like zipkin-go's undetermined kind.
fn kind(value: &str) -> Kind {
    match value {
        "CLIENT" => Kind::Client,
        "SERVER" => Kind::Server,
        "PRODUCER" => Kind::Producer,
        "CONSUMER" => Kind::Consumer,
        _ => Kind::Unspecified,
    }
}

fn endpoint(e: JsonEndpoint, field: &str) -> Result<Endpoint, String> {
    // zipkin-go parses either field as any IP address and treats "" as absent.
    let ip = |value: Option<String>, name: &str| match value.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => {
            text.parse::<IpAddr>().map(Some).map_err(|_| format!("{field}.{name} is not an IP address: {text:?}"))
        }
    };
    Ok(Endpoint {
        service_name: e.service_name.unwrap_or_default(),
        ipv4: ip(e.ipv4, "ipv4")?,
        ipv6: ip(e.ipv6, "ipv6")?,
        port: e.port.unwrap_or(0),
    })
}
