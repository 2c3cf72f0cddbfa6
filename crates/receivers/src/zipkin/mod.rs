//! Zipkin v2 decoding: a request body (JSON array or protobuf `ListOfSpans`) into OTLP resource spans.
//!
//! Both wire formats are first checked and read into one intermediate [`ZipkinSpan`]; a single translation then
//! maps it onto OTLP the way the OpenTelemetry collector's `zipkinv2` translator does, so spans look the same
//! whether they came to Clew directly or through a collector. Where this module knowingly differs from the
//! collector (mostly to keep data the collector drops), `translate.rs` says so.

use std::collections::BTreeMap;
use std::net::IpAddr;

use clew_model::otlp;

mod json;
mod proto;
mod translate;

#[cfg(test)]
mod tests;

/// Why a Zipkin request body was refused. The whole request is refused (HTTP 400): Zipkin has no partial
/// success. Span indexes count from 0 in the order of the request.
#[derive(Debug, thiserror::Error)]
pub enum ZipkinDecodeError {
    /// Not JSON, or not an array of span objects.
    #[error("invalid Zipkin JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A span object with a field of the wrong JSON type, or cut off.
    #[error("span {index}: {source}")]
    JsonSpan {
        index: usize,
        #[source]
        source: serde_json::Error,
    },
    /// Not a decodable `zipkin.proto3.ListOfSpans`.
    #[error("invalid Zipkin protobuf (expected zipkin.proto3.ListOfSpans): {0}")]
    Proto(#[source] prost::DecodeError),
    /// A span that decoded but breaks the Zipkin model: missing or malformed ids, bad addresses…
    #[error("span {index}: {reason}")]
    InvalidSpan { index: usize, reason: String },
}

impl ZipkinDecodeError {
    fn span(index: usize, reason: impl Into<String>) -> Self {
        Self::InvalidSpan { index, reason: reason.into() }
    }
}

/// Decodes a JSON array of Zipkin v2 spans (`POST /api/v2/spans`, `application/json`).
pub fn decode_json(body: &[u8]) -> Result<Vec<otlp::ResourceSpans>, ZipkinDecodeError> {
    translate::to_otlp(json::parse(body)?)
}

/// Decodes a protobuf `zipkin.proto3.ListOfSpans` (`POST /api/v2/spans`, `application/x-protobuf`).
pub fn decode_proto(body: &[u8]) -> Result<Vec<otlp::ResourceSpans>, ZipkinDecodeError> {
    translate::to_otlp(proto::parse(body)?)
}

/// One Zipkin v2 span as both wire formats carry it, already checked: ids are well-formed, times are still
/// Zipkin's microseconds.
#[derive(Debug, Clone, PartialEq)]
struct ZipkinSpan {
    /// Position in the request, for error messages.
    index: usize,
    /// 64-bit trace ids are already left-padded with zeros.
    trace_id: [u8; 16],
    id: [u8; 8],
    parent_id: Option<[u8; 8]>,
    name: String,
    kind: Kind,
    /// Epoch microseconds; `None` when absent (or 0, which Zipkin treats as absent).
    timestamp_us: Option<u64>,
    duration_us: u64,
    local_endpoint: Option<Endpoint>,
    remote_endpoint: Option<Endpoint>,
    annotations: Vec<Annotation>,
    /// Sorted, so that attributes come out in a stable order.
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Absent, or a value Zipkin does not define.
    Unspecified,
    Client,
    Server,
    Producer,
    Consumer,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Endpoint {
    /// Empty when absent.
    service_name: String,
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
    /// 0 when absent.
    port: u16,
}

#[derive(Debug, Clone, PartialEq)]
struct Annotation {
    timestamp_us: u64,
    value: String,
}
