//! Trace by id: `GET /api/traces/{id}` (v1: `{"batches": [...]}`) and `GET /api/v2/traces/{id}`
//! (`{"trace": {...}, "status": "COMPLETE"}`), JSON or protobuf (`Accept: application/protobuf`).

use axum::extract::{Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use clew_model::TraceId;
use clew_model::otlp::TracesData;
use clew_query::Query;
use prost::Message;
use serde_json::{Value, json};

use super::{TempoError, tenant, trace_json};

const PROTOBUF: &str = "application/protobuf";

#[derive(serde::Deserialize)]
pub(super) struct Window {
    start: Option<String>,
    end: Option<String>,
}

impl Window {
    /// Tempo's `start`/`end` (Unix seconds) narrow the blocks read.
    fn parse(&self) -> Result<Option<(u64, u64)>, TempoError> {
        if self.start.is_none() && self.end.is_none() {
            return Ok(None);
        }
        let bound = |name: &str, value: &Option<String>, open: u64| match value {
            None => Ok(open),
            Some(text) => clew_query::search::parse_time(text)
                .map_err(|err| TempoError::bad_request(format!("invalid {name}: {err}"))),
        };
        let (from, to) = (bound("start", &self.start, 0)?, bound("end", &self.end, u64::MAX)?);
        if from > to {
            return Err(TempoError::bad_request("invalid start: start must not be after end"));
        }
        Ok(Some((from, to)))
    }
}

async fn find(query: &Query, headers: &HeaderMap, id: &str, window: &Window) -> Result<TracesData, TempoError> {
    let tenant = tenant(headers)?;
    let trace_id = TraceId::parse_hex(id).map_err(|err| TempoError::bad_request(format!("invalid trace id: {err}")))?;
    query
        .trace_by_id_within(&tenant, &trace_id, window.parse()?)
        .await
        .map_err(TempoError::internal)?
        .ok_or_else(|| TempoError::not_found(format!("trace not found: {trace_id}")))
}

fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains(PROTOBUF))
}

fn protobuf(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, PROTOBUF)], body).into_response()
}

fn tempo_resource_spans(trace: &TracesData) -> Result<Value, TempoError> {
    let mut value = serde_json::to_value(&trace.resource_spans).map_err(TempoError::internal)?;
    trace_json::to_tempo(&mut value);
    Ok(value)
}

pub(super) async fn v1(
    State(query): State<Query>,
    Path(id): Path<String>,
    UrlQuery(window): UrlQuery<Window>,
    headers: HeaderMap,
) -> Result<Response, TempoError> {
    let trace = find(&query, &headers, &id, &window).await?;
    if wants_protobuf(&headers) {
        // Tempo's `Trace` message has the same field number and type as OTLP's `TracesData`.
        return Ok(protobuf(trace.encode_to_vec()));
    }
    Ok(axum::Json(json!({ "batches": tempo_resource_spans(&trace)? })).into_response())
}

pub(super) async fn v2(
    State(query): State<Query>,
    Path(id): Path<String>,
    UrlQuery(window): UrlQuery<Window>,
    headers: HeaderMap,
) -> Result<Response, TempoError> {
    let trace = find(&query, &headers, &id, &window).await?;
    if wants_protobuf(&headers) {
        // TraceByIDResponse { Trace trace = 1; TraceByIDMetrics metrics = 2; PartialStatus status = 3 (COMPLETE = 0) }
        let inner = trace.encode_to_vec();
        let mut body = Vec::with_capacity(inner.len() + 8);
        prost::encoding::bytes::encode(1, &inner, &mut body);
        return Ok(protobuf(body));
    }
    let body = json!({
        "trace": { "resourceSpans": tempo_resource_spans(&trace)? },
        "metrics": {},
        "status": "COMPLETE",
    });
    Ok(axum::Json(body).into_response())
}
