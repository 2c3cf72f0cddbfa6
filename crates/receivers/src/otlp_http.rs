//! OTLP/HTTP: `POST /v1/traces` with protobuf or JSON bodies, optionally gzip-compressed. Responses and errors
//! use the request's encoding, as the OTLP specification asks.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clew_model::Tenant;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prost::Message;

use crate::rpc_status::RpcStatus;
use crate::{IngestError, Protocol, Receivers, body, otlp_codec};

/// The two encodings OTLP/HTTP defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

pub(crate) fn router(receivers: Arc<Receivers>) -> Router {
    Router::new().route("/v1/traces", post(export).fallback(method_not_allowed)).with_state(receivers)
}

async fn export(State(receivers): State<Arc<Receivers>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let encoding = media_type(&parts.headers);
    let reply_encoding = *encoding.as_ref().unwrap_or(&Encoding::Json);
    let result = match encoding.and_then(|encoding| RequestHeaders::read(&parts.headers, encoding)) {
        Ok(headers) => handle(&receivers, headers, body).await,
        Err(err) => Err(body::refuse_after_draining(body, err).await),
    };
    match result {
        Ok(response) => response,
        Err(refusal) => {
            receivers.failed(Protocol::OtlpHttp, &refusal.error);
            let mut response = error_response(&refusal.error, reply_encoding);
            if refusal.close_connection {
                body::close_connection(&mut response);
            }
            response
        }
    }
}

/// What the headers say about a request, checked before its body is read.
struct RequestHeaders {
    encoding: Encoding,
    tenant: Tenant,
    coding: body::Coding,
}

impl RequestHeaders {
    fn read(headers: &HeaderMap, encoding: Encoding) -> Result<Self, IngestError> {
        Ok(Self {
            encoding,
            tenant: Tenant::from_header(header_str(headers, "x-scope-orgid"))?,
            coding: body::content_coding(headers)?,
        })
    }
}

async fn handle(receivers: &Receivers, headers: RequestHeaders, body: Body) -> Result<Response, body::Refusal> {
    let limit = receivers.config.max_request_bytes;
    let raw = body::read_limited(body, limit).await?;
    let data = body::decode(raw, headers.coding, limit)?;
    let batch = match headers.encoding {
        Encoding::Protobuf => otlp_codec::decode_protobuf(headers.tenant, data)?,
        Encoding::Json => otlp_codec::decode_json(headers.tenant, &data)?,
    };
    let accepted = receivers.ingest(Protocol::OtlpHttp, batch).await.map_err(IngestError::from)?;
    let reply = otlp_codec::response(&accepted);
    let body = match headers.encoding {
        Encoding::Protobuf => reply.encode_to_vec(),
        Encoding::Json => match &reply.partial_success {
            None => b"{}".to_vec(),
            Some(_) => serde_json::to_vec(&reply).unwrap_or_else(|_| b"{}".to_vec()),
        },
    };
    Ok(([(header::CONTENT_TYPE, headers.encoding.content_type())], body).into_response())
}

fn media_type(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let value = header_str(headers, header::CONTENT_TYPE.as_str()).unwrap_or("");
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(IngestError::UnsupportedMediaType(value.to_string())),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

fn error_response(err: &IngestError, encoding: Encoding) -> Response {
    let status = RpcStatus::new(err.grpc_code(), err.to_string());
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(&status).unwrap_or_default(),
    };
    let mut response = (err.http_status(), [(header::CONTENT_TYPE, encoding.content_type())], body).into_response();
    if let Some(delay) = err.retry_after() {
        let seconds = delay.as_secs().max(1);
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

async fn method_not_allowed(request: Request) -> Response {
    let drained = body::drain(request.into_body(), body::DRAIN_LIMIT).await;
    let status = RpcStatus::new(12, "method not allowed: use POST /v1/traces");
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "application/json"), (header::ALLOW, "POST")],
        serde_json::to_vec(&status).unwrap_or_default(),
    )
        .into_response();
    if !drained {
        body::close_connection(&mut response);
    }
    response
}
