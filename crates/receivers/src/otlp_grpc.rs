//! OTLP/gRPC `TraceService/Export`, as a plain HTTP/2 handler.
//!
//! A unary gRPC call is one length-prefixed message in, one out, and a status in the trailers. Handling the
//! framing here (rather than through generated tonic services) lets every failure carry the status OTLP asks
//! for — INVALID_ARGUMENT for undecodable data, RESOURCE_EXHAUSTED past the size limit, UNAVAILABLE with
//! `RetryInfo` under overload — and keeps the raw request bytes in our hands.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use clew_model::Tenant;
use clew_model::otlp::ExportTraceServiceResponse;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body::Frame;
use prost::Message;

use crate::rpc_status::RpcStatus;
use crate::{IngestError, Protocol, Receivers, body, otlp_codec};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const GRPC_CONTENT_TYPE: &str = "application/grpc";
/// The five-byte gRPC message prefix: compressed flag and big-endian length.
const FRAME_HEADER: usize = 5;

pub(crate) fn router(receivers: Arc<Receivers>) -> Router {
    Router::new().route(EXPORT_PATH, post(export)).with_state(receivers)
}

async fn export(State(receivers): State<Arc<Receivers>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match handle(&receivers, &parts.headers, body).await {
        Ok(reply) => ok_response(&reply),
        Err(refusal) => {
            receivers.failed(Protocol::OtlpGrpc, &refusal.error);
            error_response(&refusal.error)
        }
    }
}

async fn handle(
    receivers: &Receivers,
    headers: &HeaderMap,
    body: Body,
) -> Result<ExportTraceServiceResponse, body::Refusal> {
    let limit = receivers.config.max_request_bytes;
    let tenant = match Tenant::from_header(headers.get("x-scope-orgid").map(|v| v.to_str().unwrap_or("\u{fffd}"))) {
        Ok(tenant) => tenant,
        Err(err) => return Err(body::refuse_after_draining(body, err.into()).await),
    };
    let framed = body::read_limited(body, limit.saturating_add(FRAME_HEADER)).await.map_err(|err| match err {
        IngestError::TooLarge { .. } => IngestError::TooLarge { limit },
        other => other,
    })?;
    let message = unframe(framed, headers, limit)?;
    let batch = otlp_codec::decode_protobuf(tenant, message)?;
    let accepted = receivers.ingest(Protocol::OtlpGrpc, batch).await.map_err(IngestError::from)?;
    Ok(otlp_codec::response(&accepted))
}

/// Takes the single message out of a unary request body, decompressing it if the frame says so.
fn unframe(framed: Bytes, headers: &HeaderMap, limit: usize) -> Result<Bytes, IngestError> {
    if framed.len() < FRAME_HEADER {
        return Err(IngestError::BadBody(format!(
            "truncated gRPC message: {} bytes, shorter than the 5-byte frame header",
            framed.len()
        )));
    }
    let compressed = framed[0];
    let declared = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]) as usize;
    if declared > limit {
        return Err(IngestError::TooLarge { limit });
    }
    let payload = framed.slice(FRAME_HEADER..);
    if payload.len() != declared {
        return Err(IngestError::BadBody(format!(
            "gRPC frame declares {declared} bytes but {} arrived",
            payload.len()
        )));
    }
    match compressed {
        0 => Ok(payload),
        1 => {
            let encoding = headers.get("grpc-encoding").and_then(|v| v.to_str().ok()).unwrap_or("identity");
            match encoding {
                "gzip" => body::gunzip(&payload, limit).map(Bytes::from),
                "identity" => Err(IngestError::BadBody("compressed message without grpc-encoding".into())),
                other => Err(IngestError::UnsupportedEncoding(other.to_string())),
            }
        }
        flag => Err(IngestError::BadBody(format!("invalid gRPC compressed flag {flag}"))),
    }
}

fn ok_response(reply: &ExportTraceServiceResponse) -> Response {
    let mut frame = BytesMut::with_capacity(FRAME_HEADER + reply.encoded_len());
    frame.put_u8(0);
    frame.put_u32(reply.encoded_len() as u32);
    // Encoding into a buffer sized from encoded_len cannot run out of space.
    let _ = reply.encode(&mut frame);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames: [Result<Frame<Bytes>, Infallible>; 2] =
        [Ok(Frame::data(frame.freeze())), Ok(Frame::trailers(trailers))];
    let body = Body::new(http_body_util::StreamBody::new(futures::stream::iter(frames)));
    let mut response = Response::new(body);
    set_grpc_headers(response.headers_mut());
    response
}

/// A "trailers-only" response: the status travels in the headers and the body is empty.
fn error_response(err: &IngestError) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    set_grpc_headers(headers);
    headers.insert("grpc-status", HeaderValue::from(err.grpc_code()));
    if let Ok(message) = HeaderValue::from_str(&percent_encode(&err.to_string())) {
        headers.insert("grpc-message", message);
    }
    if let Some(delay) = err.retry_after() {
        let details = RpcStatus::new(err.grpc_code(), err.to_string()).with_retry_after(delay).encode_to_vec();
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(details);
        if let Ok(value) = HeaderValue::from_str(&encoded) {
            headers.insert("grpc-status-details-bin", value);
        }
    }
    response
}

fn set_grpc_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(GRPC_CONTENT_TYPE));
    headers.insert("grpc-accept-encoding", HeaderValue::from_static("gzip,identity"));
}

/// gRPC's grpc-message encoding: printable ASCII except '%' is sent as is, every other byte as %XX.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, payload: &[u8]) -> Bytes {
        let mut out = vec![flag];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        Bytes::from(out)
    }

    #[test]
    fn unframes_a_plain_message() {
        let message = unframe(frame(0, b"abc"), &HeaderMap::new(), 10).unwrap();
        assert_eq!(&message[..], b"abc");
    }

    #[test]
    fn rejects_short_and_inconsistent_frames() {
        assert!(matches!(unframe(Bytes::from_static(b"\0\0"), &HeaderMap::new(), 10), Err(IngestError::BadBody(_))));
        let mut truncated = frame(0, b"abcdef").to_vec();
        truncated.truncate(8);
        assert!(matches!(unframe(Bytes::from(truncated), &HeaderMap::new(), 10), Err(IngestError::BadBody(_))));
    }

    #[test]
    fn refuses_declared_lengths_past_the_limit() {
        assert!(matches!(unframe(frame(0, &[0; 20]), &HeaderMap::new(), 10), Err(IngestError::TooLarge { limit: 10 })));
    }

    #[test]
    fn percent_encodes_non_ascii() {
        assert_eq!(percent_encode("a%b é"), "a%25b %C3%A9");
    }
}
