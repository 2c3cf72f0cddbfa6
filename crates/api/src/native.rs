//! Clew's native API (`/api/v1`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clew_model::{Tenant, TraceId};
use clew_query::Query;

use crate::ApiError;

pub(crate) fn router() -> Router<Query> {
    Router::new()
        .route("/traces/{trace_id}", get(trace_by_id))
        .route("/flush", post(flush))
        .route("/blocks", get(blocks))
}

/// Reads the tenant from `X-Scope-OrgID` (absent: the default tenant).
pub(crate) fn tenant(headers: &HeaderMap) -> Result<Tenant, ApiError> {
    let value = headers.get("x-scope-orgid").map(|v| v.to_str().unwrap_or("\u{fffd}"));
    Tenant::from_header(value).map_err(|err| ApiError::bad_request(format!("invalid X-Scope-OrgID header: {err}")))
}

/// Optional time window of trace by id, as Tempo's: unix seconds or RFC 3339.
#[derive(serde::Deserialize)]
pub(crate) struct TimeWindow {
    start: Option<String>,
    end: Option<String>,
}

impl TimeWindow {
    /// Both bounds in Unix nanoseconds (a missing one is open), or `None` without any.
    fn parse(&self) -> Result<Option<(u64, u64)>, ApiError> {
        let bound = |name: &str, value: &Option<String>, open: u64| match value {
            None => Ok(open),
            Some(text) => {
                clew_query::search::parse_time(text).map_err(|err| ApiError::bad_request(format!("{name}: {err}")))
            }
        };
        if self.start.is_none() && self.end.is_none() {
            return Ok(None);
        }
        let (from, to) = (bound("start", &self.start, 0)?, bound("end", &self.end, u64::MAX)?);
        if from > to {
            return Err(ApiError::bad_request("start is after end"));
        }
        Ok(Some((from, to)))
    }
}

/// `GET /api/v1/traces/{id}[?start=&end=]`: the trace as OTLP JSON (`{"resourceSpans": [...]}`), the same
/// encoding OTLP/HTTP uses, so any OTLP tool can read it. A time window skips the blocks outside it.
async fn trace_by_id(
    State(query): State<Query>,
    Path(trace_id): Path<String>,
    axum::extract::Query(window): axum::extract::Query<TimeWindow>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let tenant = tenant(&headers)?;
    let id = TraceId::parse_hex(&trace_id).map_err(|err| ApiError::bad_request(err.to_string()))?;
    let window = window.parse()?;
    let trace = query
        .trace_by_id_within(&tenant, &id, window)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("trace {id} not found")))?;
    let body = serde_json::to_vec(&trace).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `POST /api/v1/flush`: cuts the head into blocks now; answers what was written.
async fn flush(State(query): State<Query>) -> Result<Response, ApiError> {
    let report = query.flush().await.map_err(ApiError::internal)?;
    let body = serde_json::json!({
        "blocks": report.blocks,
        "spans": report.spans,
        "walSegmentsRemoved": report.wal_segments_removed,
    });
    Ok(axum::Json(body).into_response())
}

/// `GET /api/v1/blocks`: the tenant's blocks, oldest first, with their time range, counts and sizes.
async fn blocks(State(query): State<Query>, headers: HeaderMap) -> Result<Response, ApiError> {
    let tenant = tenant(&headers)?;
    let blocks: Vec<serde_json::Value> = query
        .blocks(&tenant)
        .iter()
        .map(|meta| {
            serde_json::json!({
                "blockId": meta.block_id,
                "minStartUnixNano": meta.min_start_unix_nano.to_string(),
                "maxEndUnixNano": meta.max_end_unix_nano.to_string(),
                "traces": meta.trace_count,
                "spans": meta.span_count,
                "bytes": meta.spans_file.bytes + meta.traces_file.bytes,
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "blocks": blocks })).into_response())
}
