//! Zipkin's v2 query API (the one Zipkin's UI calls), served next to the Zipkin receiver on its port:
//! `/api/v2/services`, `/remoteServices`, `/spans`, `/traces`, `/trace/{traceId}`, `/traceMany`,
//! `/autocompleteKeys`, `/autocompleteValues`. Spans are Zipkin v2 JSON (see [`model`]); errors are plain text
//! with a 400 or 404 status, as Zipkin's server sends them.

mod model;
mod params;

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clew_query::Query;
use clew_query::search::{AttrCondition, AttrOp, Literal};
use clew_query::search::{SearchRequest, SpanFilter};

use crate::ApiError;
use crate::compat::parse_trace_id;
use crate::native::tenant;

/// Most values `autocompleteValues` returns.
const MAX_VALUES: usize = 1000;
/// Most `peer.service` values (the most frequent first) `remoteServices` checks, each with one store search.
const MAX_REMOTE_CANDIDATES: usize = 200;

/// Routes of Zipkin's query API (absolute paths under `/api/v2`).
pub fn router() -> Router<Query> {
    Router::new()
        .route("/api/v2/services", get(services))
        .route("/api/v2/remoteServices", get(remote_services))
        .route("/api/v2/spans", get(span_names))
        .route("/api/v2/traces", get(find_traces))
        .route("/api/v2/trace/{trace_id}", get(get_trace))
        .route("/api/v2/traceMany", get(trace_many))
        .route("/api/v2/autocompleteKeys", get(autocomplete_keys))
        .route("/api/v2/autocompleteValues", get(autocomplete_values))
}

/// A Zipkin error: the status and a plain-text message.
struct ZipkinError(ApiError);

impl From<ApiError> for ZipkinError {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl IntoResponse for ZipkinError {
    fn into_response(self) -> Response {
        (self.0.status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.0.message).into_response()
    }
}

fn bad_request(message: impl Into<String>) -> ZipkinError {
    ZipkinError(ApiError::bad_request(message))
}

fn internal(err: impl std::fmt::Display) -> ZipkinError {
    ZipkinError(ApiError::internal(err))
}

fn pairs(raw: &Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes()).into_owned().collect()
}

/// The non-empty value of a required parameter.
fn required(pairs: &[(String, String)], name: &str) -> Result<String, ZipkinError> {
    pairs
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.clone())
        .ok_or_else(|| bad_request(format!("{name} is required")))
}

fn json(value: impl serde::Serialize) -> Result<Response, ZipkinError> {
    Ok(axum::Json(serde_json::to_value(value).map_err(internal)?).into_response())
}

/// `GET /api/v2/services`: every local service name.
async fn services(State(query): State<Query>, headers: HeaderMap) -> Result<Response, ZipkinError> {
    json(query.services(&tenant(&headers)?).await.map_err(internal)?)
}

/// `GET /api/v2/spans?serviceName=`: the span names of a service.
async fn span_names(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ZipkinError> {
    let tenant = tenant(&headers)?;
    let service = required(&pairs(&raw), "serviceName")?;
    let operations = query.operations(&tenant, &service).await.map_err(internal)?;
    json(operations.into_iter().map(|o| o.name).filter(|n| !n.is_empty()).collect::<BTreeSet<_>>())
}

/// `GET /api/v2/remoteServices?serviceName=`: the remote service names (`peer.service`) of a service's spans.
/// Each known value is checked with a one-trace search scoped to the service.
async fn remote_services(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ZipkinError> {
    let tenant = tenant(&headers)?;
    let service = required(&pairs(&raw), "serviceName")?;
    let candidates = query.attribute_values(&tenant, "peer.service", MAX_REMOTE_CANDIDATES).await.map_err(internal)?;
    let mut remote = BTreeSet::new();
    for candidate in candidates {
        let filter = SpanFilter {
            service: Some(service.clone()),
            attrs: vec![AttrCondition {
                key: "peer.service".into(),
                op: AttrOp::Eq,
                value: Literal::Str(candidate.value.clone()),
            }],
            ..SpanFilter::default()
        };
        let request = SearchRequest { filter, limit: 1, ..SearchRequest::default() };
        if !query.search(&tenant, &request).await.map_err(internal)?.traces.is_empty() {
            remote.insert(candidate.value);
        }
    }
    json(remote)
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

/// `GET /api/v2/traces?serviceName=&remoteServiceName=&spanName=&annotationQuery=&minDuration=&maxDuration=
/// &endTs=&lookback=&limit=`: whole traces with a span matching every condition, newest first.
async fn find_traces(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ZipkinError> {
    let tenant = tenant(&headers)?;
    let request = params::parse(&pairs(&raw), now_millis()).map_err(bad_request)?;
    let search = request.to_search();
    let found = search.run(&query, &tenant, |trace| request.matches(&model::spans(trace))).await?;
    json(found.iter().map(model::spans).collect::<Vec<_>>())
}

/// `GET /api/v2/trace/{traceId}`: the trace's spans; 404 when unknown.
async fn get_trace(
    State(query): State<Query>,
    Path(trace_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ZipkinError> {
    let tenant = tenant(&headers)?;
    let id = parse_trace_id(&trace_id).map_err(bad_request)?;
    let trace = query.trace_by_id(&tenant, &id).await.map_err(internal)?.ok_or_else(|| {
        ZipkinError(ApiError { status: StatusCode::NOT_FOUND, message: format!("{trace_id} not found") })
    })?;
    json(model::spans(&trace))
}

/// `GET /api/v2/traceMany?traceIds=a,b`: the traces found among at least two distinct ids, in any order.
async fn trace_many(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ZipkinError> {
    let tenant = tenant(&headers)?;
    let list = required(&pairs(&raw), "traceIds")?;
    let mut ids = Vec::new();
    for text in list.split(',') {
        let id = parse_trace_id(text.trim()).map_err(|e| bad_request(format!("traceIds: {e}")))?;
        if ids.contains(&id) {
            return Err(bad_request(format!("traceIds: {text} is listed twice")));
        }
        ids.push(id);
    }
    if ids.len() < 2 {
        return Err(bad_request("traceIds must name at least two traces; use /api/v2/trace/{traceId} for one"));
    }
    let found = query.traces_within(&tenant, &ids, None).await.map_err(internal)?;
    json(ids.iter().filter_map(|id| found.get(id)).map(model::spans).collect::<Vec<_>>())
}

/// `GET /api/v2/autocompleteKeys`: the attribute keys that can be searched with `annotationQuery`.
async fn autocomplete_keys(State(query): State<Query>, headers: HeaderMap) -> Result<Response, ZipkinError> {
    let keys = query.attribute_keys(&tenant(&headers)?).await.map_err(internal)?;
    json(keys.into_iter().map(|k| k.key).filter(|k| k != "service.name").collect::<BTreeSet<_>>())
}

/// `GET /api/v2/autocompleteValues?key=`: the most frequent values of a key, as text.
async fn autocomplete_values(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ZipkinError> {
    let tenant = tenant(&headers)?;
    let key = required(&pairs(&raw), "key")?;
    let values = query.attribute_values(&tenant, &key, MAX_VALUES).await.map_err(internal)?;
    json(values.into_iter().map(|v| v.value).collect::<BTreeSet<_>>())
}
