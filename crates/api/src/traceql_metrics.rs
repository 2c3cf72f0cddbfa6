//! Tempo's TraceQL metrics endpoint on the Tempo port: `GET /api/metrics/query_range?q=&start=&end=&step=`, for
//! `{ spanset } | rate()`, `count_over_time()`, `min|max|avg|sum_over_time(duration)` and
//! `quantile_over_time(duration, q…)`, each optionally `by(attribute, …)`. Matching spans (of every trace with
//! activity in the range, read whole and evaluated by the TraceQL engine) are placed in `step` buckets by their
//! start. The answer is Tempo's `{"series": [{"labels", "promLabels", "samples": [{"timestampMs", "value"}]}]}`.

use std::collections::{BTreeMap, HashSet};

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clew_analysis::sketch::Sketch;
use clew_model::otlp::{KeyValue, Resource, Span, any_value::Value as Any};
use clew_query::Query;
use clew_query::search::{SpanFilter, parse_duration, parse_time};
use serde_json::{Value, json};

use crate::ApiError;
use crate::native::tenant;
use crate::trace_scan::{for_each_trace, now_millis};

const MS: u64 = 1_000_000;
const MAX_BUCKETS: u64 = 11_000;
const FUNCTIONS: [&str; 7] = [
    "rate",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "sum_over_time",
    "quantile_over_time",
];

pub(crate) fn router() -> Router<Query> {
    Router::new().route("/api/metrics/query_range", get(query_range))
}

#[derive(Debug, Clone, PartialEq)]
enum Function {
    Rate,
    Count,
    Min,
    Max,
    Avg,
    Sum,
    Quantiles(Vec<f64>),
}

#[derive(Debug, PartialEq)]
struct MetricsQuery {
    spanset: String,
    function: Function,
    by: Vec<String>,
}

/// Splits `{…} | fn(args) by(a, b)` at the last `|` that starts a metrics function.
fn parse_metrics(q: &str) -> Result<MetricsQuery, String> {
    let bytes = q.as_bytes();
    let stage = (0..bytes.len())
        .rev()
        .filter(|&i| bytes[i] == b'|' && bytes.get(i + 1) != Some(&b'|') && (i == 0 || bytes[i - 1] != b'|'))
        .find(|&i| FUNCTIONS.iter().any(|f| q[i + 1..].trim_start().starts_with(&format!("{f}("))))
        .ok_or("a TraceQL metrics query ends with `| rate()`, `| count_over_time()`, … (none found)")?;
    let (spanset, tail) = (q[..stage].trim(), q[stage + 1..].trim());
    let open = tail.find('(').expect("checked");
    let name = tail[..open].trim();
    let close = tail.find(')').ok_or("missing `)`")?;
    let args: Vec<&str> = tail[open + 1..close].split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
    let rest = tail[close + 1..].trim();
    let by = if rest.is_empty() {
        Vec::new()
    } else {
        let inner = rest
            .strip_prefix("by")
            .map(str::trim_start)
            .and_then(|r| r.strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| format!("unexpected {rest:?} after {name}(); only `by(…)` may follow"))?;
        inner.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect()
    };
    let over_duration = |args: &[&str]| -> Result<(), String> {
        if args.first() != Some(&"duration") {
            return Err(format!("{name}() is supported over `duration` only"));
        }
        Ok(())
    };
    let function = match name {
        "rate" | "count_over_time" if !args.is_empty() => return Err(format!("{name}() takes no arguments")),
        "rate" => Function::Rate,
        "count_over_time" => Function::Count,
        "quantile_over_time" => {
            over_duration(&args)?;
            let qs: Result<Vec<f64>, _> = args[1..].iter().map(|a| a.parse::<f64>()).collect();
            let qs = qs.map_err(|_| "quantile_over_time(duration, q…): q must be numbers".to_string())?;
            if qs.is_empty() || qs.iter().any(|q| !(0.0..=1.0).contains(q)) {
                return Err("quantile_over_time(duration, q…) needs quantiles between 0 and 1".into());
            }
            Function::Quantiles(qs)
        }
        other => {
            over_duration(&args)?;
            match other {
                "min_over_time" => Function::Min,
                "max_over_time" => Function::Max,
                "avg_over_time" => Function::Avg,
                _ => Function::Sum,
            }
        }
    };
    Ok(MetricsQuery { spanset: spanset.to_string(), function, by })
}

/// A `by()` attribute of a span: `resource.x`, `span.x`, `.x` (span, then resource), or `name`, `status`, `kind`.
fn group_value(span: &Span, resource: Option<&Resource>, attribute: &str) -> Option<String> {
    let find = |attrs: &[KeyValue], key: &str| -> Option<String> {
        let value = attrs.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
        Some(match value {
            Any::StringValue(s) => s.clone(),
            Any::IntValue(i) => i.to_string(),
            Any::DoubleValue(d) => d.to_string(),
            Any::BoolValue(b) => b.to_string(),
            _ => return None,
        })
    };
    let resource_attrs = resource.map_or(&[][..], |r| &r.attributes[..]);
    if let Some(key) = attribute.strip_prefix("resource.") {
        return find(resource_attrs, key);
    }
    if let Some(key) = attribute.strip_prefix("span.") {
        return find(&span.attributes, key);
    }
    if let Some(key) = attribute.strip_prefix('.') {
        return find(&span.attributes, key).or_else(|| find(resource_attrs, key));
    }
    match attribute {
        "name" => Some(span.name.clone()),
        "status" => {
            Some(["unset", "ok", "error"].get(span.status.as_ref().map_or(0, |s| s.code) as usize)?.to_string())
        }
        "kind" => Some(
            ["unspecified", "internal", "server", "client", "producer", "consumer"]
                .get(span.kind as usize)?
                .to_string(),
        ),
        _ => None,
    }
}

#[derive(Default)]
struct Bucket {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    durations: Sketch,
}

async fn query_range(State(query): State<Query>, RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    match run(&query, &raw, &headers).await {
        Ok(body) => Json(body).into_response(),
        // Tempo answers errors in plain text.
        Err(err) => (err.status, err.message).into_response(),
    }
}

async fn run(query: &Query, raw: &Option<String>, headers: &HeaderMap) -> Result<Value, ApiError> {
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()).into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let q = get("q").or(get("query")).ok_or_else(|| ApiError::bad_request("q is required"))?;
    let metrics = parse_metrics(q).map_err(ApiError::bad_request)?;
    let spanset = clew_traceql::parse(&metrics.spanset).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let bad = |name: &'static str| move |e: String| ApiError::bad_request(format!("{name}: {e}"));
    let end = get("end").map(parse_time).transpose().map_err(bad("end"))?.unwrap_or(now_millis() * MS);
    let start =
        get("start").map(parse_time).transpose().map_err(bad("start"))?.unwrap_or(end.saturating_sub(3_600_000 * MS));
    if start >= end {
        return Err(ApiError::bad_request("start must be before end"));
    }
    let step = match get("step") {
        Some(s) => parse_duration(s).map_err(bad("step"))?,
        None => ((end - start) / 100).max(1_000 * MS),
    };
    if step == 0 || (end - start).div_ceil(step) > MAX_BUCKETS {
        return Err(ApiError::bad_request(format!("step must be positive and give at most {MAX_BUCKETS} points")));
    }
    let tenant = tenant(headers)?;
    let evaluator = clew_traceql::Evaluator::new(spanset);
    let buckets = (end - start).div_ceil(step) as usize;
    let mut series: BTreeMap<Vec<(String, Option<String>)>, Vec<Bucket>> = BTreeMap::new();
    for_each_trace(query, &tenant, SpanFilter::default(), start, end, |trace| {
        let Some(matched) = evaluator.evaluate(trace) else { return };
        let ids: HashSet<Vec<u8>> = matched.span_ids().into_iter().collect();
        let mut seen = HashSet::new();
        for rs in trace {
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                let t = span.start_time_unix_nano;
                if t < start || t >= end || !ids.contains(&span.span_id) || !seen.insert(span.span_id.clone()) {
                    continue;
                }
                let labels: Vec<(String, Option<String>)> =
                    metrics.by.iter().map(|a| (a.clone(), group_value(span, rs.resource.as_ref(), a))).collect();
                let row = series.entry(labels).or_insert_with(|| (0..buckets).map(|_| Bucket::default()).collect());
                let b = &mut row[((t - start) / step) as usize];
                let seconds = span.end_time_unix_nano.saturating_sub(t) as f64 / 1e9;
                b.min = if b.count == 0 { seconds } else { b.min.min(seconds) };
                b.max = if b.count == 0 { seconds } else { b.max.max(seconds) };
                b.count += 1;
                b.sum += seconds;
                b.durations.add(seconds);
            }
        }
    })
    .await?;
    let step_secs = step as f64 / 1e9;
    let mut out = Vec::new();
    for (labels, row) in &series {
        let quantiles: Vec<Option<f64>> = match &metrics.function {
            Function::Quantiles(qs) => qs.iter().map(|q| Some(*q)).collect(),
            _ => vec![None],
        };
        for q in quantiles {
            let mut label_json: Vec<Value> = labels
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => json!({"key": k, "value": {"stringValue": v}}),
                    None => json!({"key": k, "value": {}}),
                })
                .collect();
            let mut prom: Vec<String> =
                labels.iter().map(|(k, v)| format!("{k}=\"{}\"", v.as_deref().unwrap_or("nil"))).collect();
            if let Some(q) = q {
                label_json.push(json!({"key": "p", "value": {"doubleValue": q}}));
                prom.push(format!("p=\"{q}\""));
            }
            let samples: Vec<Value> = row
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let value = match (&metrics.function, q) {
                        (Function::Rate, _) => b.count as f64 / step_secs,
                        (Function::Count, _) => b.count as f64,
                        _ if b.count == 0 => return None,
                        (Function::Min, _) => b.min,
                        (Function::Max, _) => b.max,
                        (Function::Avg, _) => b.sum / b.count as f64,
                        (Function::Sum, _) => b.sum,
                        (Function::Quantiles(_), q) => b.durations.quantile(q.unwrap_or(0.5))?,
                    };
                    let timestamp_ms = (start + i as u64 * step) / MS;
                    Some(json!({"timestampMs": timestamp_ms.to_string(), "value": value}))
                })
                .collect();
            out.push(json!({
                "labels": label_json,
                "promLabels": format!("{{{}}}", prom.join(", ")),
                "samples": samples,
            }));
        }
    }
    Ok(json!({ "series": out, "metrics": {} }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_metrics_stage_from_the_spanset() {
        let q = parse_metrics(r#"{ .a = "x|y" || kind = server } | rate() by (resource.service.name, name)"#).unwrap();
        assert_eq!(q.spanset, r#"{ .a = "x|y" || kind = server }"#);
        assert_eq!(q.function, Function::Rate);
        assert_eq!(q.by, vec!["resource.service.name", "name"]);
        let q = parse_metrics("{ } | quantile_over_time(duration, .5, 0.99)").unwrap();
        assert_eq!(q.function, Function::Quantiles(vec![0.5, 0.99]));
        assert!(parse_metrics("{ }").is_err());
        assert!(parse_metrics("{ } | rate(duration)").is_err());
        assert!(parse_metrics("{ } | avg_over_time(span.size)").unwrap_err().contains("duration"));
        assert!(parse_metrics("{ } | quantile_over_time(duration, 2)").is_err());
        assert!(parse_metrics("{ } | rate() with (x)").is_err());
    }
}
