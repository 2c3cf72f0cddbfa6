//! The engine end to end in-process: spans through the real span-metrics stage, rules evaluated at chosen instants.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, Status, any_value::Value};
use clew_model::{Accepted, SinkError, SpanBatch, SpanSink, Tenant};
use futures::future::BoxFuture;
use prometheus_client::registry::Registry;

use super::*;
use crate::span_metrics::{SpanMetrics, SpanMetricsConfig};

struct Discard;

impl SpanSink for Discard {
    fn consume(&self, _: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
        Box::pin(async { Ok(Accepted::all()) })
    }
}

/// `count` server spans of `checkout` `POST /pay` taking `millis`, in traces numbered from `first`.
fn payments(first: u8, count: u8, millis: u64, failing: bool) -> SpanBatch {
    spans_of_kind(2, first, count, millis, failing)
}

fn spans_of_kind(kind: i32, first: u8, count: u8, millis: u64, failing: bool) -> SpanBatch {
    let start = 1_700_000_000_000_000_000u64;
    let spans = (first..first + count)
        .map(|id| Span {
            trace_id: vec![id; 16],
            span_id: vec![id; 8],
            name: "POST /pay".into(),
            kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start + millis * 1_000_000,
            status: failing.then(|| Status { code: 2, message: "declined".into() }),
            ..Span::default()
        })
        .collect();
    let service = KeyValue {
        key: "service.name".into(),
        value: Some(AnyValue { value: Some(Value::StringValue("checkout".into())) }),
        ..KeyValue::default()
    };
    let resource_spans = vec![ResourceSpans {
        resource: Some(Resource { attributes: vec![service], ..Resource::default() }),
        scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
        ..ResourceSpans::default()
    }];
    SpanBatch::from_resource_spans(Tenant::default(), resource_spans).unwrap()
}

fn config(rules: &str) -> AlertsConfig {
    toml::from_str(&format!("evaluation_interval = \"1s\"\n{rules}")).unwrap()
}

const SLOW_RULE: &str = "[[rules]]\nname = \"slow\"\nservice = \"checkout\"\noperation = \"POST /pay\"\n\
                         kind = \"server\"\ncondition = \"p99 > 500ms\"\nwindow = \"10s\"\nfor = \"2s\"\n";

fn rule_state(alerts: &Alerts, name: &str) -> serde_json::Value {
    alerts.overview()["rules"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap().clone()
}

fn metrics_text(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

#[test]
fn slow_spans_make_the_rule_pending_then_firing_then_resolved() {
    let metrics = SpanMetrics::new(SpanMetricsConfig::default(), Arc::new(Discard)).unwrap();
    let mut registry = Registry::default();
    let alerts = Alerts::new(config(SLOW_RULE), Some(metrics.handle()), &mut registry).unwrap();
    let (t0, w0) = (Instant::now(), SystemTime::now());
    let at = |s: u64| (t0 + Duration::from_secs(s), w0 + Duration::from_secs(s));

    alerts.evaluate(at(1).0, at(1).1);
    assert_eq!(rule_state(&alerts, "slow")["state"], "inactive");
    assert_eq!(rule_state(&alerts, "slow")["value"], serde_json::Value::Null, "no spans, no p99");

    metrics.observe(&payments(1, 10, 900, false));
    alerts.evaluate(at(2).0, at(2).1);
    let rule = rule_state(&alerts, "slow");
    assert_eq!(rule["state"], "pending");
    assert!(rule["value"].as_f64().unwrap() > 0.8, "{rule}");
    assert_eq!(rule["calls"], 10);
    assert_eq!(rule["exampleTraces"][0]["url"], format!("{DEFAULT_EXTERNAL_URL}/trace/{}", "0a".repeat(16)));
    assert!(metrics_text(&registry).contains("clew_alert_pending{rule=\"slow\"} 1"));

    alerts.evaluate(at(4).0, at(4).1);
    assert_eq!(rule_state(&alerts, "slow")["state"], "firing");
    let text = metrics_text(&registry);
    assert!(text.contains("clew_alert_firing{rule=\"slow\"} 1"), "{text}");
    assert!(text.contains("clew_alert_threshold{rule=\"slow\"} 0.5"), "{text}");

    // Fast spans only, and the slow ones out of the 10s window: resolved.
    metrics.observe(&payments(100, 50, 5, false));
    alerts.evaluate(at(13).0, at(13).1);
    let rule = rule_state(&alerts, "slow");
    assert_eq!(rule["state"], "inactive", "{rule}");
    assert!(rule["value"].as_f64().unwrap() < 0.01);
    assert!(rule["resolvedAt"].is_string() && rule["firedAt"].is_string());
    assert!(metrics_text(&registry).contains("clew_alert_firing{rule=\"slow\"} 0"));
}

#[test]
fn spans_of_other_operations_and_kinds_do_not_count() {
    let metrics = SpanMetrics::new(SpanMetricsConfig::default(), Arc::new(Discard)).unwrap();
    let alerts = Alerts::new(config(SLOW_RULE), Some(metrics.handle()), &mut Registry::default()).unwrap();
    metrics.observe(&spans_of_kind(3, 1, 5, 900, true));
    alerts.evaluate(Instant::now() + Duration::from_secs(1), SystemTime::now());
    let rule = rule_state(&alerts, "slow");
    assert_eq!((rule["calls"].as_u64(), rule["state"].as_str()), (Some(0), Some("inactive")));
}

#[test]
fn rules_need_span_metrics_and_their_dimensions() {
    let err = Alerts::new(config(SLOW_RULE), None, &mut Registry::default()).err().unwrap();
    assert!(err.contains("enable [span_metrics]"), "{err}");
    let without_names =
        SpanMetricsConfig { exclude_dimensions: vec!["span.name".into()], ..SpanMetricsConfig::default() };
    let metrics = SpanMetrics::new(without_names, Arc::new(Discard)).unwrap();
    let err = Alerts::new(config(SLOW_RULE), Some(metrics.handle()), &mut Registry::default()).err().unwrap();
    assert!(err.contains("\"span.name\""), "{err}");
    // Without rules, nothing is needed.
    assert!(Alerts::new(AlertsConfig::default(), None, &mut Registry::default()).is_ok());
}
