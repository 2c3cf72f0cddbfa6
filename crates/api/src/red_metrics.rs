//! RED over a time range from stored spans ([`clew_analysis::red`], read by [`crate::red_source`]):
//! - native `GET /api/v1/metrics/red?service=&operation=&kind=&start=&end=&step=`: per service (and span
//!   name, with `operation` or `groupByOperation=true`) and time bucket: calls, errors, rate, error ratio and
//!   p50/p90/p99 in seconds;
//! - Jaeger's monitor endpoints `GET /api/metrics/latencies`, `/calls`, `/errors` (and `/minstep`), with Jaeger
//!   SPM's parameters (`service` repeated, `endTs`, `lookback`, `step`, `ratePer` in milliseconds, `quantile`,
//!   `groupByOperation`, `spanKind` repeated, default `server`), answering a metrics family as Jaeger does. Each
//!   point covers the `ratePer` window ending at it, like the Prometheus queries behind Jaeger's own backend.

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use clew_analysis::red::{RedBucket, RedRequest, RedSeries};
use clew_query::Query;
use clew_query::search::{parse_duration, parse_kind, parse_time};
use serde_json::{Value, json};

use crate::ApiError;
use crate::native::tenant;
use crate::red_source::compute_red;
use crate::trace_scan::{now_millis, rfc3339};

const MS: u64 = 1_000_000;
/// Most time buckets one request may ask for.
const MAX_BUCKETS: u64 = 20_000;

/// `/metrics/red` under the native `/api/v1`.
pub(crate) fn native_router() -> Router<Query> {
    Router::new().route("/metrics/red", get(native))
}

/// Jaeger's monitor (SPM) endpoints on the query port.
pub(crate) fn jaeger_router() -> Router<Query> {
    Router::new()
        .route("/api/metrics/latencies", get(latencies))
        .route("/api/metrics/calls", get(calls))
        .route("/api/metrics/errors", get(errors))
        .route(
            "/api/metrics/minstep",
            get(|| async { Json(json!({"data": 1000, "total": 0, "limit": 0, "offset": 0, "errors": null})) }),
        )
}

/// The query string's pairs, repeated keys kept.
fn pairs(raw: &Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()).into_owned().collect()
}

fn one<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

fn all(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty()).collect()
}

fn bool_param(pairs: &[(String, String)], key: &str) -> Result<bool, ApiError> {
    match one(pairs, key) {
        None => Ok(false),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!("{key}: {other:?} is not true or false"))),
    }
}

/// Runs the analysis over the blocks (their RED summaries where they fit) and the head.
async fn compute(query: &Query, headers: &HeaderMap, request: RedRequest) -> Result<Vec<RedSeries>, ApiError> {
    let tenant = tenant(headers)?;
    let (series, reads) = compute_red(query, &tenant, request, true).await?;
    tracing::debug!(summaries = reads.summaries, scans = reads.scans, "historical RED");
    Ok(series)
}

async fn native(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let p = pairs(&raw);
    fn bad(name: &'static str) -> impl Fn(String) -> ApiError {
        move |e| ApiError::bad_request(format!("{name}: {e}"))
    }
    let end = one(&p, "end").map(parse_time).transpose().map_err(bad("end"))?.unwrap_or(now_millis() * MS);
    let start = one(&p, "start")
        .map(parse_time)
        .transpose()
        .map_err(bad("start"))?
        .unwrap_or(end.saturating_sub(3600 * 1_000_000_000));
    if start >= end {
        return Err(ApiError::bad_request("start must be before end"));
    }
    let step = match one(&p, "step") {
        Some(s) => parse_duration(s).map_err(bad("step"))?,
        None => end - start,
    };
    if step == 0 || (end - start).div_ceil(step) > MAX_BUCKETS {
        return Err(ApiError::bad_request(format!("step must be positive and give at most {MAX_BUCKETS} buckets")));
    }
    let kinds = all(&p, "kind")
        .iter()
        .map(|k| parse_kind(k))
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let operation = one(&p, "operation").map(str::to_string);
    let request = RedRequest {
        start_unix_nano: start,
        end_unix_nano: end,
        step_nanos: step,
        services: all(&p, "service"),
        group_by_operation: operation.is_some() || bool_param(&p, "groupByOperation")?,
        operation,
        kinds,
    };
    let series = compute(&query, &headers, request).await?;
    let step_secs = step as f64 / 1e9;
    let point = |start: u64, b: &RedBucket, seconds: f64| {
        json!({
            "start": start.to_string(),
            "calls": b.calls,
            "errors": b.errors,
            "rate": b.calls as f64 / seconds,
            "errorRatio": b.error_ratio(),
            "p50": b.durations.quantile(0.5),
            "p90": b.durations.quantile(0.9),
            "p99": b.durations.quantile(0.99),
        })
    };
    let series: Vec<Value> = series
        .iter()
        .map(|s| {
            let points: Vec<Value> =
                s.buckets.iter().enumerate().map(|(i, b)| point(start + i as u64 * step, b, step_secs)).collect();
            json!({
                "service": s.service,
                "operation": s.operation,
                "points": points,
                "total": point(start, &s.total(), (end - start) as f64 / 1e9),
            })
        })
        .collect();
    Ok(Json(json!({"start": start.to_string(), "end": end.to_string(), "step": step.to_string(), "series": series})))
}

/// Jaeger SPM's query parameters.
#[derive(Debug)]
struct MonitorParams {
    services: Vec<String>,
    group_by_operation: bool,
    kinds: Vec<i32>,
    end_ms: u64,
    lookback_ms: u64,
    step_ms: u64,
    rate_per_ms: u64,
}

impl MonitorParams {
    fn parse(raw: &Option<String>) -> Result<Self, ApiError> {
        let p = pairs(raw);
        let services = all(&p, "service");
        if services.is_empty() {
            return Err(ApiError::bad_request(
                "unable to parse param 'service': please provide at least one service name",
            ));
        }
        let millis = |key: &str, default: u64| -> Result<u64, ApiError> {
            one(&p, key).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| ApiError::bad_request(format!("unable to parse param '{key}': {v:?} is not a number")))
            })
        };
        let kinds = all(&p, "spanKind");
        let kinds = if kinds.is_empty() {
            vec![2]
        } else {
            kinds.iter().map(|k| jaeger_kind(k)).collect::<Result<Vec<_>, _>>()?
        };
        let params = Self {
            services,
            group_by_operation: bool_param(&p, "groupByOperation")?,
            kinds,
            end_ms: millis("endTs", now_millis())?,
            lookback_ms: millis("lookback", 3_600_000)?,
            step_ms: millis("step", 5_000)?,
            rate_per_ms: millis("ratePer", 600_000)?,
        };
        if params.step_ms == 0 || params.rate_per_ms == 0 {
            return Err(ApiError::bad_request("step and ratePer must be positive"));
        }
        let buckets = (params.lookback_ms + params.rate_per_ms) / params.step_ms;
        if buckets > MAX_BUCKETS {
            return Err(ApiError::bad_request(format!("lookback / step gives more than {MAX_BUCKETS} points")));
        }
        Ok(params)
    }
}

fn jaeger_kind(kind: &str) -> Result<i32, ApiError> {
    Ok(match kind {
        "unspecified" => 0,
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        _ => {
            return Err(ApiError::bad_request(format!(
                "unable to parse param 'spanKind': unsupported span kind: '{kind}'"
            )));
        }
    })
}

/// Which value a monitor endpoint reports from a window of buckets.
enum Measure {
    Latency(f64),
    Calls,
    Errors,
}

async fn monitor(
    query: &Query,
    headers: &HeaderMap,
    raw: &Option<String>,
    measure: Measure,
) -> Result<Json<Value>, ApiError> {
    let p = MonitorParams::parse(raw)?;
    // Points at end, end − step, … back to end − lookback; each covers the ratePer window ending at it.
    let points = p.lookback_ms / p.step_ms + 1;
    let window = p.rate_per_ms.div_ceil(p.step_ms);
    let first_point = p.end_ms.saturating_sub((points - 1) * p.step_ms);
    let start_ms = first_point.saturating_sub(window * p.step_ms);
    let request = RedRequest {
        start_unix_nano: start_ms * MS,
        end_unix_nano: p.end_ms * MS,
        step_nanos: p.step_ms * MS,
        services: p.services.clone(),
        operation: None,
        kinds: p.kinds.clone(),
        group_by_operation: p.group_by_operation,
    };
    let series = compute(query, headers, request).await?;
    let (base, help) = match &measure {
        Measure::Latency(q) => ("latencies", format!("{q}th quantile latency")),
        Measure::Calls => ("call_rate", "calls/sec".to_string()),
        Measure::Errors => {
            ("error_rate", "error rate, computed as a fraction of errors/sec over calls/sec".to_string())
        }
    };
    let grouping = if p.group_by_operation { "service & operation" } else { "service" };
    let name = if p.group_by_operation { format!("service_operation_{base}") } else { format!("service_{base}") };
    let metrics: Vec<Value> = series
        .iter()
        .map(|s| {
            let mut labels = vec![json!({"name": "service_name", "value": s.service})];
            if let Some(op) = &s.operation {
                labels.push(json!({"name": "operation", "value": op}));
            }
            // The window of point j is buckets [j, j + window): slide it, adding the newest bucket and taking
            // out the oldest, so each point costs one bucket's work whatever the window.
            let window = window as usize;
            let mut merged = RedBucket::default();
            let mut metric_points = Vec::new();
            for (i, bucket) in s.buckets.iter().enumerate() {
                merged.calls += bucket.calls;
                merged.errors += bucket.errors;
                if matches!(measure, Measure::Latency(_)) {
                    merged.durations.merge(&bucket.durations);
                }
                if i + 1 > window {
                    let old = &s.buckets[i - window];
                    merged.calls -= old.calls;
                    merged.errors -= old.errors;
                    if matches!(measure, Measure::Latency(_)) {
                        merged.durations.subtract(&old.durations);
                    }
                }
                let Some(j) = (i + 1).checked_sub(window) else { continue };
                let value = match &measure {
                    Measure::Latency(q) => merged.durations.quantile(*q).map(|v| v * 1000.0),
                    Measure::Calls => Some(merged.calls as f64 / (window as u64 * p.step_ms) as f64 * 1000.0),
                    Measure::Errors => merged.error_ratio(),
                };
                if let Some(value) = value {
                    let timestamp = (first_point + j as u64 * p.step_ms) * MS;
                    metric_points.push(json!({"gaugeValue": {"doubleValue": value}, "timestamp": rfc3339(timestamp)}));
                }
            }
            json!({"labels": labels, "metricPoints": metric_points})
        })
        .collect();
    Ok(Json(
        json!({"name": name, "type": "GAUGE", "help": format!("{help}, grouped by {grouping}"), "metrics": metrics}),
    ))
}

async fn latencies(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let p = pairs(&raw);
    let q = one(&p, "quantile").ok_or_else(|| ApiError::bad_request("unable to parse param 'quantile': missing"))?;
    let q: f64 = q.parse().ok().filter(|q: &f64| (0.0..=1.0).contains(q)).ok_or_else(|| {
        ApiError::bad_request(format!("unable to parse param 'quantile': {q:?} is not a number in [0, 1]"))
    })?;
    monitor(&query, &headers, &raw, Measure::Latency(q)).await
}

async fn calls(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    monitor(&query, &headers, &raw, Measure::Calls).await
}

async fn errors(
    State(query): State<Query>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    monitor(&query, &headers, &raw, Measure::Errors).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<MonitorParams, ApiError> {
        MonitorParams::parse(&Some(query.to_string()))
    }

    #[test]
    fn monitor_parameters_follow_jaeger() {
        let p =
            parse("service=a&service=b&endTs=1000000&groupByOperation=true&spanKind=client&spanKind=consumer").unwrap();
        assert_eq!(p.services, vec!["a", "b"]);
        assert!(p.group_by_operation);
        assert_eq!(p.kinds, vec![3, 5]);
        assert_eq!((p.end_ms, p.lookback_ms, p.step_ms, p.rate_per_ms), (1_000_000, 3_600_000, 5_000, 600_000));
        assert_eq!(parse("service=a").unwrap().kinds, vec![2], "server spans by default");
        assert!(parse("endTs=1").unwrap_err().message.contains("service"));
        assert!(parse("service=a&spanKind=up").unwrap_err().message.contains("'up'"));
        assert!(parse("service=a&step=0").is_err());
        assert!(parse("service=a&lookback=x").unwrap_err().message.contains("lookback"));
        assert!(parse("service=a&lookback=86400000&step=1").unwrap_err().message.contains("points"));
        assert!(parse("service=a&groupByOperation=maybe").is_err());
    }
}
