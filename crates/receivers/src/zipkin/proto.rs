//! Zipkin v2 protobuf (`zipkin.proto3.ListOfSpans`) into [`ZipkinSpan`]s.
//!
//! The messages are written out by hand from openzipkin/zipkin-api's `zipkin.proto` (field numbers checked
//! against it) so the build needs no protoc. In proto3 an absent field reads as its zero value, so empty bytes,
//! empty strings and zero numbers all mean "absent" here, as the Zipkin spec says.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use prost::Message;

use super::{Annotation, Endpoint, Kind, ZipkinDecodeError, ZipkinSpan};

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct ListOfSpans {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<Span>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct Span {
    /// 8 or 16 bytes, big-endian.
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub parent_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub id: Vec<u8>,
    #[prost(enumeration = "SpanKind", tag = "4")]
    pub kind: i32,
    #[prost(string, tag = "5")]
    pub name: String,
    /// Epoch microseconds.
    #[prost(fixed64, tag = "6")]
    pub timestamp: u64,
    /// Microseconds.
    #[prost(uint64, tag = "7")]
    pub duration: u64,
    #[prost(message, optional, tag = "8")]
    pub local_endpoint: Option<ProtoEndpoint>,
    #[prost(message, optional, tag = "9")]
    pub remote_endpoint: Option<ProtoEndpoint>,
    #[prost(message, repeated, tag = "10")]
    pub annotations: Vec<ProtoAnnotation>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub tags: BTreeMap<String, String>,
    #[prost(bool, tag = "12")]
    pub debug: bool,
    #[prost(bool, tag = "13")]
    pub shared: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub(super) enum SpanKind {
    Unspecified = 0,
    Client = 1,
    Server = 2,
    Producer = 3,
    Consumer = 4,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct ProtoEndpoint {
    #[prost(string, tag = "1")]
    pub service_name: String,
    /// 4 bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub ipv4: Vec<u8>,
    /// 16 bytes.
    #[prost(bytes = "vec", tag = "3")]
    pub ipv6: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub port: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct ProtoAnnotation {
    #[prost(fixed64, tag = "1")]
    pub timestamp: u64,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Decodes and checks a request body.
pub(super) fn parse(body: &[u8]) -> Result<Vec<ZipkinSpan>, ZipkinDecodeError> {
    let list = ListOfSpans::decode(body).map_err(ZipkinDecodeError::Proto)?;
    list.spans.into_iter().enumerate().map(|(index, span)| check(index, span)).collect()
}

fn check(index: usize, span: Span) -> Result<ZipkinSpan, ZipkinDecodeError> {
    let bad = |reason: String| ZipkinDecodeError::span(index, reason);
    let mut trace_id = [0u8; 16];
    match span.trace_id.len() {
        0 => return Err(bad("trace_id is missing".into())),
        // A 64-bit trace id is left-padded, as in JSON.
        8 => trace_id[8..].copy_from_slice(&span.trace_id),
        16 => trace_id.copy_from_slice(&span.trace_id),
        n => return Err(bad(format!("trace_id must be 8 or 16 bytes, got {n}"))),
    }
    let id = match span.id.len() {
        0 => return Err(bad("id is missing".into())),
        _ => span_id(&span.id).ok_or_else(|| bad(format!("id must be 8 bytes, got {}", span.id.len())))?,
    };
    let parent_id = match span.parent_id.len() {
        0 => None,
        n => Some(span_id(&span.parent_id).ok_or_else(|| bad(format!("parent_id must be 8 bytes, got {n}")))?),
    };
    let kind = match SpanKind::try_from(span.kind) {
        Ok(SpanKind::Client) => Kind::Client,
        Ok(SpanKind::Server) => Kind::Server,
        Ok(SpanKind::Producer) => Kind::Producer,
        Ok(SpanKind::Consumer) => Kind::Consumer,
        // Unknown enum numbers read as unspecified, as they do in zipkin-go.
        Ok(SpanKind::Unspecified) | Err(_) => Kind::Unspecified,
    };
    let local_endpoint = span.local_endpoint.map(|e| endpoint(e, "local_endpoint")).transpose().map_err(bad)?;
    let remote_endpoint = span.remote_endpoint.map(|e| endpoint(e, "remote_endpoint")).transpose().map_err(bad)?;
    let annotations =
        span.annotations.into_iter().map(|a| Annotation { timestamp_us: a.timestamp, value: a.value }).collect();
    Ok(ZipkinSpan {
        index,
        trace_id,
        id,
        parent_id,
        name: span.name,
        kind,
        timestamp_us: Some(span.timestamp).filter(|&t| t != 0),
        duration_us: span.duration,
        local_endpoint,
        remote_endpoint,
        annotations,
        tags: span.tags,
    })
}

fn span_id(bytes: &[u8]) -> Option<[u8; 8]> {
    bytes.try_into().ok()
}

fn endpoint(e: ProtoEndpoint, field: &str) -> Result<Endpoint, String> {
    let ipv4 = match <[u8; 4]>::try_from(e.ipv4.as_slice()) {
        _ if e.ipv4.is_empty() => None,
        Ok(octets) => Some(IpAddr::V4(Ipv4Addr::from(octets))),
        Err(_) => {
            return Err(format!("{field}.ipv4 must be 4 bytes, got {}", e.ipv4.len()));
        }
    };
    let ipv6 = match <[u8; 16]>::try_from(e.ipv6.as_slice()) {
        _ if e.ipv6.is_empty() => None,
        Ok(octets) => Some(IpAddr::V6(Ipv6Addr::from(octets))),
        Err(_) => {
            return Err(format!("{field}.ipv6 must be 16 bytes, got {}", e.ipv6.len()));
        }
    };
    let port =
        u16::try_from(e.port).map_err(|_| format!("{field}.port must be between 0 and 65535, got {}", e.port))?;
    Ok(Endpoint { service_name: e.service_name, ipv4, ipv6, port })
}
