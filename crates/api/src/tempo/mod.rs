//! Grafana Tempo's HTTP API (port 3200), so Grafana's Tempo data source and Tempo clients work against Clew.
//!
//! Shapes follow Tempo: trace JSON in `batches` (v1) or `trace.resourceSpans` (v2) with base64 ids and enum names
//! as Tempo's protobuf JSON marshaller writes them, protobuf on `Accept: application/protobuf`, and errors as
//! plain-text bodies.

mod search;
mod tags;
mod trace;
mod trace_json;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clew_model::Tenant;
use clew_query::Query;

/// Routes of the Tempo port.
pub fn router(query: Query) -> Router {
    Router::new()
        .route("/api/traces/{trace_id}", get(trace::v1))
        .route("/api/v2/traces/{trace_id}", get(trace::v2))
        .route("/api/search", get(search::search))
        .route("/api/search/tags", get(tags::names_v1))
        .route("/api/v2/search/tags", get(tags::names_v2))
        .route("/api/search/tag/{tag}/values", get(tags::values_v1))
        .route("/api/v2/search/tag/{tag}/values", get(tags::values_v2))
        .route("/api/echo", get(|| async { "echo" }))
        .route("/ready", get(|| async { "ready" }))
        .route("/api/status/buildinfo", get(buildinfo))
        .with_state(query)
}

/// An error as Tempo sends it: a status and a plain-text message.
#[derive(Debug)]
pub(crate) struct TempoError {
    status: StatusCode,
    message: String,
}

impl TempoError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    pub(crate) fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "Tempo API query failed");
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, message: err.to_string() }
    }
}

impl IntoResponse for TempoError {
    fn into_response(self) -> Response {
        (self.status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.message + "\n").into_response()
    }
}

pub(crate) fn tenant(headers: &HeaderMap) -> Result<Tenant, TempoError> {
    crate::native::tenant(headers).map_err(|e| TempoError::bad_request(e.message))
}

/// `GET /api/status/buildinfo`, in the shape of Prometheus-style build info that Tempo serves.
async fn buildinfo() -> Response {
    axum::Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
    .into_response()
}
