//! The service dependency graph over a time range, from stored traces ([`clew_analysis::service_graph`]):
//! - native `GET /api/v1/dependencies?start=&end=`: every edge with its connection type, requests, errors and
//!   client/server latency quantiles;
//! - Jaeger's `GET /api/dependencies?endTs=&lookback=` (milliseconds): `{"data": [{parent, child, callCount}]}`;
//! - Zipkin's `GET /api/v2/dependencies?endTs=&lookback=` (milliseconds) on the Zipkin port:
//!   `[{parent, child, callCount, errorCount}]`.

use std::collections::BTreeMap;

use axum::extract::{Query as Params, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clew_analysis::service_graph::{Edge, ServiceGraph};
use clew_analysis::sketch::Sketch;
use clew_query::Query;
use clew_query::search::{SpanFilter, parse_time};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiError;
use crate::native::tenant;
use crate::trace_scan::{for_each_trace, now_millis};

const MS: u64 = 1_000_000;
/// Jaeger's and Zipkin's default lookback: one day.
const DEFAULT_LOOKBACK_MS: u64 = 86_400_000;
/// The native API's default range: the last hour.
const DEFAULT_RANGE_NANOS: u64 = 3_600_000_000_000;

/// `/dependencies` under the native `/api/v1`.
pub(crate) fn native_router() -> Router<Query> {
    Router::new().route("/dependencies", get(native))
}

/// Jaeger's `/api/dependencies` on the query port.
pub(crate) fn jaeger_router() -> Router<Query> {
    Router::new().route("/api/dependencies", get(jaeger))
}

/// Zipkin's `/api/v2/dependencies` on the Zipkin port.
pub(crate) fn zipkin_router() -> Router<Query> {
    Router::new().route("/api/v2/dependencies", get(zipkin))
}

async fn graph(query: &Query, headers: &HeaderMap, start: u64, end: u64) -> Result<Vec<Edge>, ApiError> {
    if start > end {
        return Err(ApiError::bad_request("the range starts after it ends"));
    }
    let tenant = tenant(headers)?;
    let mut graph = ServiceGraph::new(Some((start, end)));
    // Every edge starts at a client or producer span, but a kind filter cannot say "either", so read all traces.
    for_each_trace(query, &tenant, SpanFilter::default(), start, end, |trace| graph.add_trace(trace)).await?;
    Ok(graph.edges())
}

#[derive(Deserialize)]
struct NativeParams {
    start: Option<String>,
    end: Option<String>,
}

async fn native(
    State(query): State<Query>,
    Params(params): Params<NativeParams>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let time = |name: &str, value: &Option<String>| {
        value.as_deref().map(parse_time).transpose().map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
    };
    let end = time("end", &params.end)?.unwrap_or(now_millis() * MS);
    let start = time("start", &params.start)?.unwrap_or(end.saturating_sub(DEFAULT_RANGE_NANOS));
    let edges = graph(&query, &headers, start, end).await?;
    let latency = |s: &Sketch| {
        if s.count() == 0 {
            return Value::Null;
        }
        json!({
            "count": s.count(),
            "mean": s.sum() / s.count() as f64,
            "p50": s.quantile(0.5),
            "p90": s.quantile(0.9),
            "p99": s.quantile(0.99),
        })
    };
    let edges: Vec<Value> = edges
        .iter()
        .map(|e| {
            json!({
                "client": e.client,
                "server": e.server,
                "connectionType": e.connection.label(),
                "calls": e.stats.calls,
                "errors": e.stats.errors,
                "clientSeconds": latency(&e.stats.client),
                "serverSeconds": latency(&e.stats.server),
            })
        })
        .collect();
    Ok(Json(json!({ "start": start.to_string(), "end": end.to_string(), "edges": edges })))
}

#[derive(Deserialize)]
struct RangeParams {
    #[serde(rename = "endTs")]
    end_ts: Option<String>,
    lookback: Option<String>,
}

impl RangeParams {
    /// `(start, end)` in Unix nanoseconds from `endTs` and `lookback` in milliseconds.
    fn range(&self, end_required: bool) -> Result<(u64, u64), ApiError> {
        let millis = |name: &str, value: &Option<String>| {
            value
                .as_deref()
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| ApiError::bad_request(format!("{name}: {v:?} is not a number of milliseconds")))
                })
                .transpose()
        };
        let end = match millis("endTs", &self.end_ts)? {
            Some(end) => end,
            None if end_required => return Err(ApiError::bad_request("endTs is required")),
            None => now_millis(),
        };
        let lookback = millis("lookback", &self.lookback)?.unwrap_or(DEFAULT_LOOKBACK_MS);
        let end = end.checked_mul(MS).ok_or_else(|| ApiError::bad_request("endTs is too large"))?;
        Ok((end.saturating_sub(lookback.saturating_mul(MS)), end))
    }
}

/// Sums edges by (client, server) over connection types, sorted.
fn links(edges: &[Edge]) -> BTreeMap<(&str, &str), (u64, u64)> {
    let mut links: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for e in edges {
        let link = links.entry((e.client.as_str(), e.server.as_str())).or_default();
        link.0 += e.stats.calls;
        link.1 += e.stats.errors;
    }
    links
}

async fn jaeger(
    State(query): State<Query>,
    Params(params): Params<RangeParams>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (start, end) = params.range(false)?;
    let edges = graph(&query, &headers, start, end).await?;
    let data: Vec<Value> = links(&edges)
        .into_iter()
        .map(|((parent, child), (calls, _))| json!({"parent": parent, "child": child, "callCount": calls}))
        .collect();
    let total = data.len();
    Ok(Json(json!({"data": data, "total": total, "limit": 0, "offset": 0, "errors": null})))
}

async fn zipkin(State(query): State<Query>, Params(params): Params<RangeParams>, headers: HeaderMap) -> Response {
    let result = async {
        let (start, end) = params.range(true)?;
        graph(&query, &headers, start, end).await
    }
    .await;
    match result {
        Ok(edges) => {
            let data: Vec<Value> = links(&edges)
                .into_iter()
                .map(|((parent, child), (calls, errors))| {
                    let mut link = json!({"parent": parent, "child": child, "callCount": calls});
                    if errors > 0 {
                        link["errorCount"] = json!(errors);
                    }
                    link
                })
                .collect();
            Json(data).into_response()
        }
        // Zipkin answers errors in plain text.
        Err(err) => (err.status, err.message).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(end: Option<&str>, lookback: Option<&str>, end_required: bool) -> Result<(u64, u64), ApiError> {
        RangeParams { end_ts: end.map(str::to_string), lookback: lookback.map(str::to_string) }.range(end_required)
    }

    #[test]
    fn ranges_are_end_and_lookback_in_milliseconds() {
        assert_eq!(range(Some("5000"), Some("2000"), true).unwrap(), (3_000 * MS, 5_000 * MS));
        assert_eq!(range(Some("5000"), Some("9000"), true).unwrap(), (0, 5_000 * MS), "clamped at the epoch");
        let (start, end) = range(Some("100000000000"), None, true).unwrap();
        assert_eq!(end - start, DEFAULT_LOOKBACK_MS * MS);
        assert!(range(None, None, true).unwrap_err().message.contains("endTs is required"));
        assert!(range(None, None, false).is_ok(), "Jaeger defaults to now");
        assert!(range(Some("soon"), None, false).unwrap_err().message.contains("endTs"));
    }
}
