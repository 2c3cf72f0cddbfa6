//! Jaeger's query APIs on the query port: the HTTP JSON API Jaeger UI and Grafana's Jaeger data source call
//! (`/api/services`, `/api/operations`, `/api/traces`, in Jaeger's JSON model inside `{data, total, limit, offset,
//! errors}`), and the stable `/api/v3` endpoints (see [`v3`]). Unlike Jaeger, a search needs no service name.

mod model;
mod params;
mod v3;

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clew_query::Query;
use serde_json::{Value, json};

use crate::ApiError;
use crate::compat::{parse_trace_id, short_trace_id};
use crate::native::tenant;

/// Routes of Jaeger's APIs (paths are absolute: `/api/...`, `/api/v3/...`).
pub fn router() -> Router<Query> {
    Router::new()
        .route("/api/services", get(services))
        .route("/api/services/{service}/operations", get(service_operations))
        .route("/api/operations", get(operations))
        .route("/api/traces", get(find_traces))
        .route("/api/traces/{trace_id}", get(get_trace))
        .merge(v3::router())
}

/// An error in the shape of Jaeger's HTTP JSON API: `{"data": null, ..., "errors": [{"code", "msg"}]}`.
struct JaegerError(ApiError);

impl From<ApiError> for JaegerError {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl JaegerError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self(ApiError::bad_request(message))
    }
}

impl IntoResponse for JaegerError {
    fn into_response(self) -> Response {
        let body = json!({
            "data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{ "code": self.0.status.as_u16(), "msg": self.0.message }],
        });
        (self.0.status, axum::Json(body)).into_response()
    }
}

/// Jaeger's success envelope.
fn structured(data: Value, total: usize) -> Response {
    axum::Json(json!({ "data": data, "total": total, "limit": 0, "offset": 0, "errors": null })).into_response()
}

fn pairs(raw: &Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes()).into_owned().collect()
}

fn internal(err: impl std::fmt::Display) -> JaegerError {
    JaegerError(ApiError::internal(err))
}

/// `GET /api/services`
async fn services(State(query): State<Query>, headers: HeaderMap) -> Result<Response, JaegerError> {
    let services = query.services(&tenant(&headers)?).await.map_err(internal)?;
    let total = services.len();
    Ok(structured(json!(services), total))
}

/// `GET /api/services/{service}/operations`: the span names of a service.
async fn service_operations(
    State(query): State<Query>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> Result<Response, JaegerError> {
    let operations = query.operations(&tenant(&headers)?, &service).await.map_err(internal)?;
    let names: BTreeSet<String> = operations.into_iter().map(|o| o.name).collect();
    let total = names.len();
    Ok(structured(json!(names), total))
}

/// `GET /api/operations?service=&spanKind=`: names with their kind (`server`, ..., empty when unspecified).
async fn operations(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, JaegerError> {
    let tenant = tenant(&headers)?;
    let (mut service, mut kind) = (None, None);
    for (key, value) in pairs(&raw) {
        match key.as_str() {
            "service" => service = Some(value).filter(|v| !v.is_empty()),
            "spanKind" if value.is_empty() => {}
            "spanKind" => {
                let parsed = clew_query::search::parse_kind(&value)
                    .map_err(|_| JaegerError::bad_request(format!("unsupported span kind: '{value}'")))?;
                kind = Some(parsed);
            }
            _ => {}
        }
    }
    let service = service.ok_or_else(|| JaegerError::bad_request("parameter 'service' is required"))?;
    let operations = query.operations(&tenant, &service).await.map_err(internal)?;
    let data: Vec<Value> = operations
        .iter()
        .filter(|o| kind.is_none_or(|k| k == o.kind))
        .map(|o| json!({ "name": o.name, "spanKind": model::kind_tag(o.kind).unwrap_or("") }))
        .collect();
    let total = data.len();
    Ok(structured(Value::Array(data), total))
}

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or_default()
}

/// `GET /api/traces?service=&operation=&tags=&start=&end=&minDuration=&maxDuration=&limit=&lookback=` (or
/// `traceID=` repeated): whole traces in Jaeger's model, newest first.
async fn find_traces(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, JaegerError> {
    let tenant = tenant(&headers)?;
    let request = params::parse(&pairs(&raw), now_nanos()).map_err(JaegerError::bad_request)?;
    let mut traces = Vec::new();
    let mut errors = Vec::new();
    if !request.trace_ids.is_empty() {
        for id in &request.trace_ids {
            match query.trace_by_id(&tenant, id).await.map_err(internal)? {
                Some(trace) => traces.push(model::trace(&trace)),
                None => errors.push(json!({ "msg": "trace not found", "traceID": short_trace_id(&id.0) })),
            }
        }
    } else {
        let mut search = request.conditions.to_search(request.limit);
        search.start_min = request.start_min;
        search.start_max = request.start_max;
        let found = search.run(&query, &tenant, |trace| request.conditions.matches(&model::trace(trace))).await?;
        traces.extend(found.iter().map(model::trace));
    }
    // Jaeger leaves `total` at 0 for traces; errors name the ids not found.
    let mut body = json!({ "data": traces, "total": 0, "limit": 0, "offset": 0, "errors": null });
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    Ok(axum::Json(body).into_response())
}

/// `GET /api/traces/{id}`: one trace in Jaeger's model; 404 `trace not found` as Jaeger answers.
async fn get_trace(
    State(query): State<Query>,
    Path(trace_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, JaegerError> {
    let tenant = tenant(&headers)?;
    let id = parse_trace_id(&trace_id).map_err(JaegerError::bad_request)?;
    let trace =
        query.trace_by_id(&tenant, &id).await.map_err(internal)?.ok_or_else(|| {
            JaegerError(ApiError { status: StatusCode::NOT_FOUND, message: "trace not found".into() })
        })?;
    Ok(structured(json!([model::trace(&trace)]), 0))
}
