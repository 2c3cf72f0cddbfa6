//! Zipkin v2 ingest: `POST /api/v2/spans`, a JSON array or a protobuf `ListOfSpans`, answered with 202 once the
//! spans are durable. Errors are plain text, as Zipkin's own server sends them.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clew_model::Tenant;
use http::{HeaderMap, StatusCode, header};

use crate::{IngestError, Protocol, Receivers, body, zipkin};

pub(crate) fn router(receivers: Arc<Receivers>) -> Router {
    Router::new().route("/api/v2/spans", post(export).fallback(method_not_allowed)).with_state(receivers)
}

async fn export(State(receivers): State<Arc<Receivers>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match handle(&receivers, &parts.headers, body).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(err) => {
            receivers.failed(Protocol::Zipkin, &err);
            let mut response = (err.http_status(), err.to_string()).into_response();
            if let Some(delay) = err.retry_after() {
                response.headers_mut().insert(header::RETRY_AFTER, delay.as_secs().max(1).into());
            }
            response
        }
    }
}

async fn handle(receivers: &Receivers, headers: &HeaderMap, body: Body) -> Result<(), IngestError> {
    let limit = receivers.config.max_request_bytes;
    let tenant = Tenant::from_header(headers.get("x-scope-orgid").map(|v| v.to_str().unwrap_or("\u{fffd}")))?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let coding = body::content_coding(headers)?;
    let data = body::decode(body::read_limited(body, limit).await?, coding, limit)?;
    let resource_spans = match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => zipkin::decode_proto(&data),
        // Zipkin's reporters sometimes send no or a generic content type with JSON.
        "application/json" | "" | "text/plain" => zipkin::decode_json(&data),
        _ => return Err(IngestError::UnsupportedMediaType(content_type.to_string())),
    }
    .map_err(|err| IngestError::decode("Zipkin", err))?;
    // Zipkin has no partial success: rejected spans are only counted (clew_spans_rejected_total).
    receivers.ingest(Protocol::Zipkin, tenant, resource_spans).await?;
    Ok(())
}

async fn method_not_allowed() -> Response {
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")], "method not allowed: use POST /api/v2/spans")
        .into_response()
}
