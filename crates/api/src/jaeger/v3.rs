//! Jaeger's stable `/api/v3` HTTP API (the gateway of `jaeger.api_v3.QueryService`): traces as OTLP JSON inside
//! `{"result": ...}`, listings as `{"services": [...]}` and `{"operations": [{name, spanKind}]}`, errors as
//! `{"error": {"httpCode", "message"}}`. Parameters take their canonical camelCase names (`query.serviceName`)
//! and the older snake_case ones (`query.service_name`), as Jaeger does.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clew_model::otlp::TracesData;
use clew_query::Query;
use serde_json::json;

use super::model;
use super::params::{SpanConditions, parse_tags};
use crate::ApiError;
use crate::compat::{parse_go_duration, parse_rfc3339, parse_trace_id};
use crate::native::tenant;

/// Default number of traces of a search without `query.searchDepth`, and the most one returns.
const DEFAULT_DEPTH: usize = 20;
const MAX_DEPTH: usize = 1000;

pub(super) fn router() -> Router<Query> {
    Router::new()
        .route("/api/v3/traces/{trace_id}", get(get_trace))
        .route("/api/v3/traces", get(find_traces))
        .route("/api/v3/services", get(services))
        .route("/api/v3/operations", get(operations))
}

/// Jaeger's gateway error: `{"error": {"httpCode": 400, "message": "..."}}`.
struct V3Error(ApiError);

impl From<ApiError> for V3Error {
    fn from(err: ApiError) -> Self {
        Self(err)
    }
}

impl IntoResponse for V3Error {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "httpCode": self.0.status.as_u16(), "message": self.0.message } });
        (self.0.status, axum::Json(body)).into_response()
    }
}

fn malformed(param: &str, err: impl std::fmt::Display) -> V3Error {
    V3Error(ApiError::bad_request(format!("malformed parameter {param}: {err}")))
}

fn not_found() -> V3Error {
    V3Error(ApiError { status: StatusCode::NOT_FOUND, message: "No traces found".into() })
}

/// Query parameters by name; a parameter is looked up by its canonical name, then its older alias.
struct Params(HashMap<String, String>);

impl Params {
    fn new(raw: &Option<String>) -> Self {
        let mut map = HashMap::new();
        for (key, value) in form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes()).into_owned() {
            // The first value wins, as Go's url.Values.Get; empty values count as absent.
            if !value.is_empty() {
                map.entry(key).or_insert(value);
            }
        }
        Self(map)
    }

    /// The value and the name it was given under.
    fn get<'a>(&'a self, names: &[&'a str]) -> Option<(&'a str, &'a str)> {
        names.iter().find_map(|name| self.0.get(*name).map(|v| (*name, v.as_str())))
    }

    fn time(&self, names: &[&str]) -> Result<Option<u64>, V3Error> {
        self.get(names)
            .map(|(name, value)| {
                parse_rfc3339(value).ok_or_else(|| {
                    malformed(name, format!("{value:?} is not an RFC 3339 time like 2024-01-02T03:04:05.123456789Z"))
                })
            })
            .transpose()
    }

    fn duration(&self, names: &[&str]) -> Result<Option<u64>, V3Error> {
        self.get(names).map(|(name, value)| parse_go_duration(value).map_err(|e| malformed(name, e))).transpose()
    }

    fn flag(&self, names: &[&str]) -> Result<bool, V3Error> {
        match self.get(names) {
            None => Ok(false),
            Some((_, "true" | "1" | "t" | "TRUE" | "True")) => Ok(true),
            Some((_, "false" | "0" | "f" | "FALSE" | "False")) => Ok(false),
            Some((name, value)) => Err(malformed(name, format!("{value:?} is not a boolean"))),
        }
    }
}

fn otlp_result(data: &TracesData) -> Result<Response, V3Error> {
    let result = serde_json::to_value(data).map_err(ApiError::internal)?;
    let body = serde_json::to_vec(&json!({ "result": result })).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /api/v3/traces/{trace_id}[?startTime=&endTime=&rawTraces=]`
async fn get_trace(
    State(query): State<Query>,
    Path(trace_id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, V3Error> {
    let tenant = tenant(&headers)?;
    let id = parse_trace_id(&trace_id).map_err(|e| malformed("trace_id", e))?;
    let params = Params::new(&raw);
    let start = params.time(&["startTime", "start_time"])?;
    let end = params.time(&["endTime", "end_time"])?;
    // Clew returns traces as stored either way: it makes no adjustments.
    params.flag(&["rawTraces", "raw_traces"])?;
    let window = match (start, end) {
        (None, None) => None,
        (from, to) => Some((from.unwrap_or(0), to.unwrap_or(u64::MAX))),
    };
    let trace = query.trace_by_id_within(&tenant, &id, window).await.map_err(ApiError::internal)?;
    otlp_result(&trace.ok_or_else(not_found)?)
}

/// `GET /api/v3/traces?query.serviceName=&query.operationName=&query.attributes=&query.startTimeMin=&...`: every
/// matching trace's resource spans in one OTLP `TracesData`; 404 when none matches, as Jaeger.
async fn find_traces(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, V3Error> {
    let tenant = tenant(&headers)?;
    let params = Params::new(&raw);
    let mut conditions = SpanConditions {
        service: params.get(&["query.serviceName", "query.service_name"]).map(|(_, v)| v.to_owned()),
        operation: params.get(&["query.operationName", "query.operation_name"]).map(|(_, v)| v.to_owned()),
        min_duration_nanos: params.duration(&["query.durationMin", "query.duration_min"])?,
        max_duration_nanos: params.duration(&["query.durationMax", "query.duration_max"])?,
        ..SpanConditions::default()
    };
    if let Some((name, attributes)) = params.get(&["query.attributes"]) {
        conditions.tags = parse_tags(attributes).map_err(|e| malformed(name, e))?;
    }
    let start_min = params.time(&["query.startTimeMin", "query.start_time_min"])?;
    let start_max = params.time(&["query.startTimeMax", "query.start_time_max"])?;
    if let (Some(min), Some(max)) = (start_min, start_max)
        && min > max
    {
        return Err(V3Error(ApiError::bad_request("query.startTimeMin is after query.startTimeMax")));
    }
    let depth_names = ["query.searchDepth", "query.search_depth", "query.num_traces", "query.numTraces"];
    let limit = match params.get(&depth_names) {
        None => DEFAULT_DEPTH,
        Some((name, value)) => match value.parse::<i64>() {
            Ok(0) => DEFAULT_DEPTH,
            Ok(n) if n > 0 => (n as usize).min(MAX_DEPTH),
            _ => return Err(malformed(name, format!("{value:?} is not a positive integer"))),
        },
    };
    params.flag(&["query.rawTraces", "query.raw_traces"])?;
    let mut search = conditions.to_search(limit);
    search.start_min = start_min;
    search.start_max = start_max;
    let traces = search.run(&query, &tenant, |trace| conditions.matches(&model::trace(trace))).await?;
    if traces.is_empty() {
        return Err(not_found());
    }
    let combined = TracesData { resource_spans: traces.into_iter().flat_map(|t| t.resource_spans).collect() };
    otlp_result(&combined)
}

/// `GET /api/v3/services`
async fn services(State(query): State<Query>, headers: HeaderMap) -> Result<Response, V3Error> {
    let services = query.services(&tenant(&headers)?).await.map_err(ApiError::internal)?;
    Ok(axum::Json(json!({ "services": services })).into_response())
}

/// `GET /api/v3/operations?service=&spanKind=`: `spanKind` is `server`, `client`, `producer`, `consumer` or
/// `internal` (also for spans of unspecified kind, as Jaeger reports them).
async fn operations(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, V3Error> {
    let tenant = tenant(&headers)?;
    let params = Params::new(&raw);
    let (_, service) =
        params.get(&["service"]).ok_or_else(|| V3Error(ApiError::bad_request("parameter service is required")))?;
    let kind = params
        .get(&["spanKind", "span_kind"])
        .map(|(name, value)| clew_query::search::parse_kind(value).map_err(|e| malformed(name, e.message)))
        .transpose()?;
    let operations = query.operations(&tenant, service).await.map_err(ApiError::internal)?;
    let kind_name = |k: i32| model::kind_tag(k).unwrap_or("internal");
    let mut listed: Vec<(String, &'static str)> = operations
        .iter()
        .filter(|o| kind.is_none_or(|k| kind_name(k) == kind_name(o.kind)))
        .map(|o| (o.name.clone(), kind_name(o.kind)))
        .collect();
    listed.dedup();
    let operations: Vec<_> = listed.iter().map(|(name, kind)| json!({ "name": name, "spanKind": kind })).collect();
    Ok(axum::Json(json!({ "operations": operations })).into_response())
}
