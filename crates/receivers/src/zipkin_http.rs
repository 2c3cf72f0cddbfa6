//! Zipkin v2 ingest: `POST /api/v2/spans`, a JSON array or a protobuf `ListOfSpans`, answered with 202 once the
//! spans are durable. Errors are plain text, as Zipkin's own server sends them.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clew_model::{SpanBatch, Tenant};
use http::{HeaderMap, StatusCode, header};

use crate::{IngestError, Protocol, Receivers, body, zipkin};

pub(crate) fn router(receivers: Arc<Receivers>) -> Router {
    Router::new().route("/api/v2/spans", post(export).fallback(method_not_allowed)).with_state(receivers)
}

async fn export(State(receivers): State<Arc<Receivers>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match handle(&receivers, &parts.headers, body).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(refusal) => {
            let err = refusal.error;
            receivers.failed(Protocol::Zipkin, &err);
            let mut response = (err.http_status(), err.to_string()).into_response();
            if refusal.close_connection {
                body::close_connection(&mut response);
            }
            if let Some(delay) = err.retry_after() {
                response.headers_mut().insert(header::RETRY_AFTER, delay.as_secs().max(1).into());
            }
            response
        }
    }
}

/// The body formats Zipkin reporters send.
enum Format {
    Json,
    Protobuf,
}

async fn handle(receivers: &Receivers, headers: &HeaderMap, body: Body) -> Result<(), body::Refusal> {
    let (tenant, format, coding) = match read_headers(headers) {
        Ok(parsed) => parsed,
        Err(err) => return Err(body::refuse_after_draining(body, err).await),
    };
    let limit = receivers.config.max_request_bytes;
    let data = body::decode(body::read_limited(body, limit).await?, coding, limit)?;
    let resource_spans = match format {
        Format::Protobuf => zipkin::decode_proto(&data),
        Format::Json => zipkin::decode_json(&data),
    }
    .map_err(|err| IngestError::decode("Zipkin", err))?;
    let batch =
        SpanBatch::from_resource_spans(tenant, resource_spans).map_err(|err| IngestError::decode("Zipkin", err))?;
    // Zipkin has no partial success: rejected spans are only counted (clew_spans_rejected_total).
    receivers.ingest(Protocol::Zipkin, batch).await.map_err(IngestError::from)?;
    Ok(())
}

fn read_headers(headers: &HeaderMap) -> Result<(Tenant, Format, body::Coding), IngestError> {
    let tenant = Tenant::from_header(headers.get("x-scope-orgid").map(|v| v.to_str().unwrap_or("\u{fffd}")))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let format = match content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
        "application/x-protobuf" | "application/protobuf" => Format::Protobuf,
        // Zipkin's reporters sometimes send no or a generic content type with JSON.
        "application/json" | "" | "text/plain" => Format::Json,
        _ => return Err(IngestError::UnsupportedMediaType(content_type.to_string())),
    };
    Ok((tenant, format, body::content_coding(headers)?))
}

async fn method_not_allowed(request: Request) -> Response {
    let drained = body::drain(request.into_body(), body::DRAIN_LIMIT).await;
    let mut response =
        (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")], "method not allowed: use POST /api/v2/spans")
            .into_response();
    if !drained {
        body::close_connection(&mut response);
    }
    response
}
