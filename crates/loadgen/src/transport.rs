//! Sending encoded OTLP requests: gRPC (through tonic with a pass-through codec, so the pre-encoded bytes go
//! out as they are) or HTTP with protobuf or JSON bodies.

use bytes::{Buf, BufMut, Bytes};
use clew_model::otlp::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

impl std::str::FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" | "http-protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" | "http-json" => Ok(Protocol::HttpJson),
            other => Err(format!("unknown protocol {other:?}; choose grpc, http/protobuf or http/json")),
        }
    }
}

/// What the server said about one request.
pub enum Outcome {
    /// Accepted; `rejected` spans refused through partial success.
    Acknowledged { rejected: u64 },
    /// Refused as a whole (status or transport error).
    Failed(String),
    /// Refused for now (gRPC `UNAVAILABLE`/`RESOURCE_EXHAUSTED`, HTTP 429/502/503/504, a transport error):
    /// an OpenTelemetry exporter sends such a request again after a backoff.
    Retryable(String),
}

#[derive(Clone)]
pub enum Sender {
    Grpc(tonic::client::Grpc<Channel>),
    Http { client: reqwest::Client, url: String, json: bool },
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid endpoint {0:?}: {1}")]
    Endpoint(String, String),
}

impl Sender {
    /// `endpoint` is the server's base URL, e.g. `http://127.0.0.1:4317` (gRPC) or `http://127.0.0.1:4318`.
    pub fn connect(protocol: Protocol, endpoint: &str) -> Result<Self, TransportError> {
        match protocol {
            Protocol::Grpc => {
                let channel = Channel::from_shared(endpoint.to_string())
                    .map_err(|e| TransportError::Endpoint(endpoint.into(), e.to_string()))?
                    .connect_lazy();
                Ok(Sender::Grpc(tonic::client::Grpc::new(channel).max_decoding_message_size(16 << 20)))
            }
            Protocol::HttpProtobuf | Protocol::HttpJson => Ok(Sender::Http {
                client: reqwest::Client::new(),
                url: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
                json: protocol == Protocol::HttpJson,
            }),
        }
    }

    pub async fn send(&mut self, body: Bytes, tenant: Option<&str>) -> Outcome {
        match self {
            Sender::Grpc(grpc) => {
                if let Err(err) = grpc.ready().await {
                    return Outcome::Retryable(format!("gRPC channel not ready: {err}"));
                }
                let mut request = tonic::Request::new(body);
                if let Some(tenant) = tenant.and_then(|t| t.parse().ok()) {
                    request.metadata_mut().insert("x-scope-orgid", tenant);
                }
                let path =
                    http::uri::PathAndQuery::from_static("/opentelemetry.proto.collector.trace.v1.TraceService/Export");
                match grpc.unary(request, path, PassThroughCodec).await {
                    Ok(response) => Outcome::Acknowledged { rejected: rejected(response.get_ref()) },
                    Err(status) => {
                        let message = format!("{:?}: {}", status.code(), status.message());
                        match status.code() {
                            tonic::Code::Unavailable | tonic::Code::ResourceExhausted => Outcome::Retryable(message),
                            _ => Outcome::Failed(message),
                        }
                    }
                }
            }
            Sender::Http { client, url, json } => {
                let (body, content_type) = if *json {
                    match ExportTraceServiceRequest::decode(&body[..]).map(|r| serde_json::to_vec(&r)) {
                        Ok(Ok(json)) => (json, "application/json"),
                        _ => return Outcome::Failed("could not re-encode the request as JSON".into()),
                    }
                } else {
                    (body.to_vec(), "application/x-protobuf")
                };
                let mut request = client.post(url.as_str()).header("content-type", content_type).body(body);
                if let Some(tenant) = tenant {
                    request = request.header("X-Scope-OrgID", tenant);
                }
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(err) => return Outcome::Retryable(err.to_string()),
                };
                let status = response.status();
                let bytes = response.bytes().await.unwrap_or_default();
                if !status.is_success() {
                    let message = format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
                    return match status.as_u16() {
                        429 | 502 | 503 | 504 => Outcome::Retryable(message),
                        _ => Outcome::Failed(message),
                    };
                }
                let reply = if *json {
                    serde_json::from_slice::<serde_json::Value>(&bytes).ok().map(|v| {
                        v.pointer("/partialSuccess/rejectedSpans")
                            .and_then(|n| n.as_u64().or_else(|| n.as_str().and_then(|s| s.parse().ok())))
                            .unwrap_or(0)
                    })
                } else {
                    ExportTraceServiceResponse::decode(&bytes[..]).ok().map(|r| rejected(&r))
                };
                Outcome::Acknowledged { rejected: reply.unwrap_or(0) }
            }
        }
    }
}

fn rejected(response: &ExportTraceServiceResponse) -> u64 {
    response.partial_success.as_ref().map(|p| p.rejected_spans.max(0) as u64).unwrap_or(0)
}

/// Sends already-encoded request bytes and decodes the response with prost.
#[derive(Clone, Copy, Default)]
struct PassThroughCodec;

impl Codec for PassThroughCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PassThroughCodec;
    type Decoder = PassThroughCodec;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl Encoder for PassThroughCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for PassThroughCodec {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let bytes = src.copy_to_bytes(src.remaining());
        ExportTraceServiceResponse::decode(bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("undecodable response: {e}")))
    }
}
