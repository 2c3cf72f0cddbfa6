//! Tempo's TraceQL metrics endpoints on the Tempo port:
//!
//! - `GET /api/metrics/query_range?q=&start=&end=&since=&step=&exemplars=`: a series per group, a sample per step;
//! - `GET /api/metrics/query?q=&start=&end=&since=`: one value per series over the whole range.
//!
//! `q` is any TraceQL search followed by a metrics function (`rate()`, `count_over_time()`,
//! `min|max|avg|sum_over_time(f)`, `quantile_over_time(f, q…)`, `histogram_over_time(f)`, each with an optional
//! `by(…)`), then optionally `topk(n)` or `bottomk(n)`. Every trace with activity in the range that has a span
//! the query's plan requires is read whole and evaluated by the TraceQL engine; [`clew_traceql::metrics`] turns the matched spans into series. The answers
//! are Tempo's JSON (`QueryRangeResponse`, `QueryInstantResponse`); errors are plain text, as Tempo's.

use std::collections::HashSet;

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clew_query::Query;
use clew_query::search::{parse_duration, parse_time};
use clew_traceql::ast::{Field, Static};
use clew_traceql::metrics::{MetricsAggregator, SpanSample, StepRange, TimeSeries};
use clew_traceql::{Evaluator, Value};
use serde_json::{Value as JsonValue, json};

use crate::ApiError;
use crate::native::tenant;
use crate::trace_scan::{for_each_trace, now_millis};

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000_000_000;
const MAX_STEPS: u64 = 11_000;
/// Exemplars per answer at most (Tempo's default `max_exemplars`); `with(exemplars=true)` asks for this many.
const MAX_EXEMPLARS: usize = 100;

pub(crate) fn router() -> Router<Query> {
    Router::new().route("/api/metrics/query_range", get(query_range)).route("/api/metrics/query", get(query_instant))
}

async fn query_range(State(query): State<Query>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    respond(run(&query, &raw, &headers, false).await)
}

async fn query_instant(State(query): State<Query>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    respond(run(&query, &raw, &headers, true).await)
}

fn respond(result: Result<JsonValue, ApiError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        // Tempo answers errors in plain text.
        Err(err) => (err.status, err.message).into_response(),
    }
}

/// A request's parameters, checked.
struct Request {
    query: clew_traceql::Query,
    range: StepRange,
    exemplars: usize,
}

fn parse_request(raw: &Option<String>, instant: bool) -> Result<Request, ApiError> {
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()).into_owned().collect();
    let get =
        |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).filter(|v| !v.trim().is_empty());
    let bad = |name: &'static str| move |e: String| ApiError::bad_request(format!("{name}: {e}"));
    let q = get("q").or(get("query")).ok_or_else(|| ApiError::bad_request("q is required"))?;
    let query = clew_traceql::parse(q).map_err(|e| ApiError::bad_request(format!("invalid TraceQL query: {e}")))?;
    if query.metrics.is_none() {
        return Err(ApiError::bad_request(
            "not a metrics query: end it with a metrics function, as in { } | rate() or { } | count_over_time()",
        ));
    }
    let end = get("end").map(parse_metrics_time).transpose().map_err(bad("end"))?.unwrap_or(now_millis() * MS);
    let start = match (get("start"), get("since")) {
        (Some(s), _) => parse_metrics_time(s).map_err(bad("start"))?,
        (None, Some(since)) => end.saturating_sub(parse_duration(since).map_err(bad("since"))?),
        (None, None) => end.saturating_sub(3600 * SECOND),
    };
    if start >= end {
        return Err(ApiError::bad_request("start must be before end"));
    }
    let range = if instant {
        StepRange::instant(start, end)
    } else {
        let step = match get("step") {
            Some(s) => parse_step(s).map_err(bad("step"))?,
            None => default_step(start, end),
        };
        if step == 0 || (end - start).div_ceil(step) > MAX_STEPS {
            return Err(ApiError::bad_request(format!("step must be positive and give at most {MAX_STEPS} points")));
        }
        StepRange::aligned(start, end, step)
    };
    let mut exemplars = match get("exemplars") {
        Some(n) => n.trim().parse::<usize>().map_err(|_| bad("exemplars")(format!("{n:?} is not a count")))?,
        None => 0,
    };
    // The query's own hint wins, as in Tempo: with(exemplars=N), with(exemplars=true|false).
    match query.hints.iter().rev().find(|h| h.key == "exemplars").map(|h| &h.value) {
        Some(Static::Int(n)) => exemplars = usize::try_from(*n).unwrap_or(0),
        Some(Static::Bool(false)) => exemplars = 0,
        Some(Static::Bool(true)) if exemplars == 0 => exemplars = MAX_EXEMPLARS,
        _ => {}
    }
    // Instant answers carry no exemplars, as Tempo's.
    let exemplars = if instant { 0 } else { exemplars.min(MAX_EXEMPLARS) };
    Ok(Request { query, range, exemplars })
}

async fn run(query: &Query, raw: &Option<String>, headers: &HeaderMap, instant: bool) -> Result<JsonValue, ApiError> {
    let request = parse_request(raw, instant)?;
    let tenant = tenant(headers)?;
    let metrics = request.query.metrics.clone().expect("checked by parse_request");
    let fields = metrics.fields();
    let by_count = metrics.by.len();
    // Only traces with a span the query's plan requires can match: the store skips the rest.
    let filter = clew_query::traceql::pushdown(&request.query);
    let evaluator = Evaluator::new(request.query);
    let mut aggregator = MetricsAggregator::new(metrics, request.range, request.exemplars);
    let (start, end) = (request.range.start, request.range.end);
    for_each_trace(query, &tenant, filter, start, end, |trace| {
        let Some(matched) = evaluator.evaluate(trace) else { return };
        let mut seen = HashSet::new();
        for span in matched.spansets.iter().flat_map(|s| &s.spans) {
            if !seen.insert(span.order) {
                continue;
            }
            let value_of =
                |f: &Field| span.attributes.iter().find(|(g, _)| g == f).map_or(Value::Nil, |(_, v)| v.clone());
            // `fields()` lists the function's field first, when it has one, then the groups.
            let has_value = fields.len() > by_count;
            aggregator.observe(SpanSample {
                start_unix_nano: span.start_time_unix_nano,
                by: fields[fields.len() - by_count..].iter().map(value_of).collect(),
                value: if has_value { value_of(&fields[0]) } else { Value::Nil },
                trace_id: matched.trace_id.clone(),
                span_id: hex(&span.span_id),
            });
        }
    })
    .await?;
    let series = aggregator.finish();
    let out: Vec<JsonValue> = if instant {
        series
            .iter()
            .filter_map(|s| {
                let (_, value) = s.samples.first()?;
                Some(json!({"labels": labels_json(&s.labels), "promLabels": prom_labels(&s.labels), "value": value}))
            })
            .collect()
    } else {
        series.iter().map(series_json).collect()
    };
    Ok(json!({ "series": out, "metrics": {} }))
}

fn series_json(s: &TimeSeries) -> JsonValue {
    let samples: Vec<JsonValue> =
        s.samples.iter().map(|(ts, v)| json!({"timestampMs": ts.to_string(), "value": v})).collect();
    let mut out = json!({"labels": labels_json(&s.labels), "promLabels": prom_labels(&s.labels), "samples": samples});
    if !s.exemplars.is_empty() {
        out["exemplars"] = s
            .exemplars
            .iter()
            .map(|e| {
                json!({
                    "labels": [
                        {"key": "trace:id", "value": {"stringValue": e.trace_id}},
                        {"key": "span:id", "value": {"stringValue": e.span_id}},
                    ],
                    "value": e.value,
                    "timestampMs": e.timestamp_ms.to_string(),
                })
            })
            .collect();
    }
    out
}

/// Labels as OTLP `KeyValue`s in protobuf JSON (64-bit integers as strings).
fn labels_json(labels: &[(String, Value)]) -> Vec<JsonValue> {
    labels
        .iter()
        .map(|(k, v)| {
            let value = match v {
                Value::Int(i) => json!({"intValue": i.to_string()}),
                Value::Float(f) => json!({"doubleValue": f}),
                Value::Bool(b) => json!({"boolValue": b}),
                other => json!({"stringValue": other.to_string()}),
            };
            json!({"key": k, "value": value})
        })
        .collect()
}

/// The Prometheus form of the labels, sorted by name: `{name="GET /", p="0.9"}`.
fn prom_labels(labels: &[(String, Value)]) -> String {
    let mut sorted: Vec<&(String, Value)> = labels.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let parts: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.to_string().replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unix seconds, Unix nanoseconds (as Tempo accepts both: integers of 16 digits and more are nanoseconds) or
/// RFC 3339.
fn parse_metrics_time(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1_000_000_000_000_000 => Ok(n),
        _ => parse_time(s),
    }
}

/// A step as a duration (`30s`, `1m`) or plain seconds (`30`, `0.5`).
fn parse_step(s: &str) -> Result<u64, String> {
    match s.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok((secs * 1e9).round() as u64),
        _ => parse_duration(s),
    }
}

/// Tempo's default step: about 240 points, rounded down to 5 s (or to 1 s below that), at least 1 s.
fn default_step(start: u64, end: u64) -> u64 {
    let baseline = (end - start) / 240;
    let by_five = baseline / (5 * SECOND) * (5 * SECOND);
    if by_five >= 5 * SECOND {
        return by_five;
    }
    (baseline / SECOND * SECOND).max(SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(q: &str) -> Option<String> {
        Some(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q.split('&').map(|p| p.split_once('=').unwrap()))
                .finish(),
        )
    }

    #[test]
    fn parameters_as_tempo_takes_them() {
        let r = parse_request(&raw("q={ } | rate()&start=1700000000&end=1700000600&step=60s"), false).unwrap();
        assert_eq!(r.range, StepRange::aligned(1_700_000_000 * SECOND, 1_700_000_600 * SECOND, 60 * SECOND));
        let ns = parse_request(&raw("q={ } | rate()&start=1700000000000000000&end=1700000600000000000&step=60"), false);
        assert_eq!(ns.unwrap().range, r.range);
        let rfc =
            parse_request(&raw("q={ } | rate()&start=2023-11-14T22:13:20Z&end=2023-11-14T22:23:20Z&step=1m"), false);
        assert_eq!(rfc.unwrap().range, r.range);
        let since = parse_request(&raw("q={ } | rate()&end=1700000600&since=10m&step=1m"), false).unwrap();
        assert_eq!(since.range, r.range);
        let instant = parse_request(&raw("q={ } | rate()&start=1700000000&end=1700000600"), true).unwrap();
        assert_eq!(instant.range, StepRange::instant(1_700_000_000 * SECOND, 1_700_000_600 * SECOND));
        let ex = |q: &str| parse_request(&raw(q), false).unwrap().exemplars;
        assert_eq!(ex("q={ } | rate()"), 0);
        assert_eq!(ex("q={ } | rate()&exemplars=7"), 7);
        assert_eq!(ex("q={ } | rate()&exemplars=1000"), MAX_EXEMPLARS);
        assert_eq!(ex("q={ } | rate() with(exemplars=true)"), MAX_EXEMPLARS);
        assert_eq!(ex("q={ } | rate() with(exemplars=3)&exemplars=50"), 3);
        assert_eq!(ex("q={ } | rate() with(exemplars=false)&exemplars=50"), 0);
        for (q, message) in [
            ("start=1", "q is required"),
            ("q={ }", "not a metrics query"),
            ("q={ } | rate(duration)", "rate() takes no arguments"),
            ("q={ } | rate()&start=1700000600&end=1700000000", "start must be before end"),
            ("q={ } | rate()&start=x", "start:"),
            ("q={ } | rate()&step=0s", "step must be positive"),
            ("q={ } | rate()&exemplars=-1", "exemplars:"),
        ] {
            let err = parse_request(&raw(q), false).err().unwrap_or_else(|| panic!("{q} passed"));
            assert!(err.message.contains(message), "{q}: {}", err.message);
        }
    }

    #[test]
    fn default_step_follows_tempo() {
        assert_eq!(default_step(0, 3600 * SECOND), 15 * SECOND);
        assert_eq!(default_step(0, 600 * SECOND), 2 * SECOND);
        assert_eq!(default_step(0, 60 * SECOND), SECOND);
        assert_eq!(default_step(0, 6 * 3600 * SECOND), 90 * SECOND);
    }

    #[test]
    fn labels_in_protobuf_json_and_prometheus_form() {
        let labels = vec![
            ("resource.service.name".to_string(), Value::String("a\"b".into())),
            ("span.code".to_string(), Value::Int(200)),
            ("__bucket".to_string(), Value::Float(0.5)),
        ];
        assert_eq!(
            json!(labels_json(&labels)),
            json!([
                {"key": "resource.service.name", "value": {"stringValue": "a\"b"}},
                {"key": "span.code", "value": {"intValue": "200"}},
                {"key": "__bucket", "value": {"doubleValue": 0.5}},
            ])
        );
        assert_eq!(prom_labels(&labels), r#"{__bucket="0.5", resource.service.name="a\"b", span.code="200"}"#);
    }
}
