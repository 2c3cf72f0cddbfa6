//! `GET /api/v1/traceql`: a TraceQL query over the tenant's traces, newest first.
//!
//! Parameters: `q` (required), `limit` (default 20, at most 1,000), `start`/`end` (bounds on the trace start:
//! Unix seconds or RFC 3339), `minDuration`/`maxDuration` (whole trace), `spss` (spans shown per spanset,
//! default 3). A query that does not parse gets 400 with the position and what was expected.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clew_query::Query;
use clew_query::search::{parse_duration, parse_time};
use clew_query::traceql::{DEFAULT_SPSS, MAX_LIMIT, TraceQlError, TraceQlRequest};
use serde_json::json;

use crate::ApiError;
use crate::native::tenant;
use crate::traceql_json::native_trace;

pub(crate) fn router() -> Router<Query> {
    Router::new().route("/traceql", get(traceql))
}

async fn traceql(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers)?;
    let mut request = TraceQlRequest::new("");
    let mut spss = DEFAULT_SPSS;
    let mut q = None;
    for (key, value) in form_urlencoded::parse(raw.as_deref().unwrap_or_default().as_bytes()) {
        let bad = |what: String| ApiError::bad_request(format!("invalid parameter {key}: {what}"));
        match key.as_ref() {
            "q" => q = Some(value.into_owned()),
            "limit" => {
                request.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(format!("{value:?} is not a number from 1 to {MAX_LIMIT}")))?;
            }
            "spss" => spss = value.parse().map_err(|_| bad(format!("{value:?} is not a number")))?,
            "start" => request.start_min_unix_nano = Some(parse_time(&value).map_err(bad)?),
            "end" => request.start_max_unix_nano = Some(parse_time(&value).map_err(bad)?),
            "minDuration" => request.min_trace_duration_nanos = Some(parse_duration(&value).map_err(bad)?),
            "maxDuration" => request.max_trace_duration_nanos = Some(parse_duration(&value).map_err(bad)?),
            _ => return Err(ApiError::bad_request(format!("unknown parameter {key:?}"))),
        }
    }
    request.query =
        q.filter(|q| !q.trim().is_empty()).ok_or_else(|| ApiError::bad_request("parameter q is required"))?;
    let result = query.traceql(&tenant, &request).await.map_err(|err| match err {
        TraceQlError::Parse(e) => ApiError::bad_request(e.to_string()),
        TraceQlError::Store(e) => ApiError::internal(e),
    })?;
    let traces: Vec<_> = result.traces.iter().map(|t| native_trace(t, spss)).collect();
    Ok(axum::Json(json!({ "traces": traces, "inspectedTraces": result.inspected_traces })).into_response())
}
