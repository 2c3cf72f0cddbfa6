//! Analyses of one trace on the native API: `GET /api/v1/traces/{id}/critical-path` and `.../stats`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use clew_model::TraceId;
use clew_model::otlp::TracesData;
use clew_query::Query;
use serde_json::{Value, json};

use crate::ApiError;
use crate::native::tenant;

pub(crate) fn router() -> Router<Query> {
    Router::new()
        .route("/traces/{trace_id}/critical-path", get(critical_path))
        .route("/traces/{trace_id}/stats", get(stats))
}

/// The whole trace of the request's tenant: 400 for a malformed id, 404 when no span of it is stored.
async fn load_trace(query: &Query, trace_id: &str, headers: &HeaderMap) -> Result<TracesData, ApiError> {
    let tenant = tenant(headers)?;
    let id = TraceId::parse_hex(trace_id).map_err(|err| ApiError::bad_request(err.to_string()))?;
    query
        .trace_by_id(&tenant, &id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("trace {id} not found")))
}

/// `{"spans": [{"spanId", "segments": [{"startUnixNano", "endUnixNano"}]}]}`, spans in path order; times are
/// strings, as OTLP/JSON writes 64-bit integers.
async fn critical_path(
    State(query): State<Query>,
    Path(trace_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let trace = load_trace(&query, &trace_id, &headers).await?;
    let path = clew_analysis::critical_path(&trace.resource_spans);
    let spans: Vec<Value> = path
        .spans
        .iter()
        .map(|span| {
            let segments: Vec<Value> = span
                .segments
                .iter()
                .map(|s| {
                    json!({"startUnixNano": s.start_unix_nano.to_string(), "endUnixNano": s.end_unix_nano.to_string()})
                })
                .collect();
            json!({"spanId": span.span_id.to_string(), "segments": segments})
        })
        .collect();
    Ok(Json(json!({ "spans": spans })))
}

/// `{"services": [{"service", "count", "totalNanos", "selfNanos"}], "operations": [{"service", "name", ...}]}`.
async fn stats(
    State(query): State<Query>,
    Path(trace_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let trace = load_trace(&query, &trace_id, &headers).await?;
    let stats = clew_analysis::stats(&trace.resource_spans);
    let services: Vec<Value> = stats
        .services
        .iter()
        .map(|s| {
            let t = &s.totals;
            json!({"service": s.service, "count": t.count, "totalNanos": t.total_nanos, "selfNanos": t.self_nanos})
        })
        .collect();
    let operations: Vec<Value> = stats
        .operations
        .iter()
        .map(|o| {
            let t = &o.totals;
            json!({
                "service": o.service,
                "name": o.name,
                "count": t.count,
                "totalNanos": t.total_nanos,
                "selfNanos": t.self_nanos,
            })
        })
        .collect();
    Ok(Json(json!({ "services": services, "operations": operations })))
}
