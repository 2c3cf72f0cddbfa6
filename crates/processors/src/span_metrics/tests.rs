use std::sync::Arc;
use std::time::Duration;

use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, Status, any_value::Value};
use clew_model::{Accepted, SinkError, SpanBatch, SpanSink, Tenant};
use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::*;

/// Records what reaches it, so tests can check batches pass through unchanged.
#[derive(Default)]
struct Recorder(Mutex<Vec<SpanBatch>>);

impl SpanSink for Recorder {
    fn consume(&self, batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>> {
        self.0.lock().push(batch);
        Box::pin(async { Ok(Accepted::all()) })
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

struct SpanSpec<'a> {
    service: &'a str,
    name: &'a str,
    kind: i32,
    id: u8,
    parent: u8,
    millis: u64,
    error: bool,
    attrs: Vec<KeyValue>,
}

fn spec(service: &str, name: &str, kind: i32, id: u8, parent: u8, millis: u64) -> SpanSpec<'static> {
    SpanSpec {
        service: Box::leak(service.to_string().into_boxed_str()),
        name: Box::leak(name.to_string().into_boxed_str()),
        kind,
        id,
        parent,
        millis,
        error: false,
        attrs: Vec::new(),
    }
}

/// One resource per span, all in one trace `trace`.
fn batch(trace: u8, specs: Vec<SpanSpec>) -> SpanBatch {
    let start = 1_700_000_000_000_000_000u64;
    let resource_spans = specs
        .into_iter()
        .map(|s| ResourceSpans {
            resource: Some(Resource { attributes: vec![text("service.name", s.service)], ..Resource::default() }),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![trace; 16],
                    span_id: vec![s.id; 8],
                    parent_span_id: if s.parent == 0 { Vec::new() } else { vec![s.parent; 8] },
                    name: s.name.into(),
                    kind: s.kind,
                    start_time_unix_nano: start,
                    end_time_unix_nano: start + s.millis * 1_000_000,
                    attributes: s.attrs,
                    status: s.error.then(|| Status { code: 2, message: "boom".into() }),
                    ..Span::default()
                }],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        })
        .collect();
    SpanBatch::from_resource_spans(Tenant::default(), resource_spans).unwrap()
}

/// The value of the sample written exactly as `series` (name and labels), exemplar ignored.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split(' ').next()?.parse().ok()
    })
}

fn stage(config: SpanMetricsConfig) -> (SpanMetrics, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    (SpanMetrics::new(config, recorder.clone()).unwrap(), recorder)
}

#[tokio::test]
async fn counts_calls_and_places_durations_in_buckets() {
    let (metrics, recorder) = stage(SpanMetricsConfig {
        service_graph: ServiceGraphConfig { enabled: false, ..Default::default() },
        ..Default::default()
    });
    let mut failing = spec("api", "GET /x", 2, 3, 0, 50);
    failing.error = true;
    let sent = batch(1, vec![spec("api", "GET /x", 2, 1, 0, 3), spec("api", "GET /x", 2, 2, 0, 10), failing]);
    metrics.consume(sent.clone()).await.unwrap();
    assert_eq!(recorder.0.lock().as_slice(), &[sent], "the batch passes through unchanged");

    let mut out = String::new();
    metrics.handle().encode(&mut out);
    let ok = r#"service_name="api",span_name="GET /x",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET""#;
    let err = r#"service_name="api",span_name="GET /x",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR""#;
    assert_eq!(sample(&out, &format!("traces_span_metrics_calls_total{{{ok}}}")), Some(2.0));
    assert_eq!(sample(&out, &format!("traces_span_metrics_calls_total{{{err}}}")), Some(1.0));
    // 3 ms falls in (2 ms, 4 ms]; 10 ms is exactly the 0.01 s bound, which is inclusive.
    let bucket = |labels: &str, le: &str| {
        sample(&out, &format!("traces_span_metrics_duration_seconds_bucket{{{labels},le=\"{le}\"}}"))
    };
    assert_eq!(bucket(ok, "0.002"), Some(0.0));
    assert_eq!(bucket(ok, "0.004"), Some(1.0));
    assert_eq!(bucket(ok, "0.008"), Some(1.0));
    assert_eq!(bucket(ok, "0.01"), Some(2.0));
    assert_eq!(bucket(ok, "+Inf"), Some(2.0));
    assert_eq!(bucket(err, "0.01"), Some(0.0));
    assert_eq!(bucket(err, "0.05"), Some(1.0));
    assert_eq!(sample(&out, &format!("traces_span_metrics_duration_seconds_count{{{ok}}}")), Some(2.0));
    let sum = sample(&out, &format!("traces_span_metrics_duration_seconds_sum{{{ok}}}")).unwrap();
    assert!((sum - 0.013).abs() < 1e-12, "{sum}");
    // Exemplars: the bucket's own span, with its duration.
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("traces_span_metrics_duration_seconds_bucket{{{err},le=\"0.05\"}}")))
        .unwrap();
    assert!(
        line.ends_with(&format!(
            "# {{trace_id=\"{}\",span_id=\"{}\"}} 0.05 1700000000.050",
            "01".repeat(16),
            "03".repeat(8)
        )),
        "{line}"
    );
    assert!(out.contains("# UNIT traces_span_metrics_duration_seconds seconds"));
}

#[tokio::test]
async fn dimensions_are_configurable_and_series_bounded() {
    let config = SpanMetricsConfig {
        exclude_dimensions: vec!["span.kind".into(), "status.code".into()],
        dimensions: vec![
            DimensionConfig { name: "http.method".into(), default: None },
            DimensionConfig { name: "env".into(), default: Some("none".into()) },
        ],
        max_series: 2,
        exemplars: false,
        // Without the graph the span's attributes are read only for the dimensions.
        service_graph: ServiceGraphConfig { enabled: false, ..Default::default() },
        ..SpanMetricsConfig::default()
    };
    let (metrics, _) = stage(config);
    let mut get = spec("api", "a", 2, 1, 0, 1);
    get.attrs = vec![text("http.method", "GET")];
    metrics
        .consume(batch(
            1,
            vec![get, spec("api", "b", 2, 2, 0, 1), spec("api", "c", 2, 3, 0, 1), spec("api", "d", 2, 4, 0, 1)],
        ))
        .await
        .unwrap();
    let mut out = String::new();
    metrics.handle().encode(&mut out);
    assert_eq!(
        sample(
            &out,
            r#"traces_span_metrics_calls_total{service_name="api",span_name="a",http_method="GET",env="none"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&out, r#"traces_span_metrics_calls_total{service_name="api",span_name="b",env="none"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&out, r#"traces_span_metrics_calls_total{otel_metric_overflow="true"}"#), Some(2.0));
    assert!(!out.contains(" # {"), "exemplars are off");
}

#[test]
fn bad_configuration_is_refused() {
    let next: Arc<dyn SpanSink> = Arc::new(Recorder::default());
    let bad = SpanMetricsConfig { buckets: vec![1.0, 0.5], ..Default::default() };
    assert!(SpanMetrics::new(bad, next.clone()).is_err());
    let bad = SpanMetricsConfig { exclude_dimensions: vec!["nope".into()], ..Default::default() };
    assert!(SpanMetrics::new(bad, next).err().unwrap().contains("nope"));
}

#[tokio::test]
async fn service_graph_pairs_calls_and_finds_queue_database_and_external_nodes() {
    let config = SpanMetricsConfig {
        service_graph: ServiceGraphConfig { wait: Duration::ZERO, ..Default::default() },
        ..SpanMetricsConfig::default()
    };
    let (metrics, _) = stage(config);
    for trace in 1..=3u8 {
        let mut db = spec("api", "SELECT orders", 3, 5, 3, 4);
        db.attrs = vec![text("db.system.name", "postgresql"), text("db.namespace", "orders")];
        let mut pay = spec("api", "POST /charge", 3, 6, 3, 30);
        pay.attrs = vec![text("server.address", "payments.example.com")];
        pay.error = trace == 2;
        let mut api_server = spec("api", "GET /api", 2, 3, 2, 40);
        api_server.error = trace == 3;
        // The server side arrives in a later batch than its client: pairing spans batches.
        metrics
            .consume(batch(trace, vec![spec("web", "GET /", 2, 1, 0, 50), spec("web", "GET /api", 3, 2, 1, 45)]))
            .await
            .unwrap();
        metrics
            .consume(batch(
                trace,
                vec![api_server, db, pay, spec("api", "publish", 4, 7, 3, 1), spec("worker", "process", 5, 8, 7, 20)],
            ))
            .await
            .unwrap();
    }
    let mut out = String::new();
    metrics.handle().encode(&mut out);
    let total = |labels: &str| sample(&out, &format!("traces_service_graph_request_total{{{labels}}}"));
    let failed = |labels: &str| sample(&out, &format!("traces_service_graph_request_failed_total{{{labels}}}"));
    assert_eq!(total(r#"client="web",server="api""#), Some(3.0));
    assert_eq!(failed(r#"client="web",server="api""#), Some(1.0));
    assert_eq!(total(r#"client="api",server="worker",connection_type="messaging_system""#), Some(3.0));
    assert_eq!(total(r#"client="api",server="orders",connection_type="database""#), Some(3.0));
    assert_eq!(total(r#"client="api",server="payments.example.com",connection_type="virtual_node""#), Some(3.0));
    assert_eq!(failed(r#"client="api",server="payments.example.com",connection_type="virtual_node""#), Some(1.0));
    assert_eq!(out.lines().filter(|l| l.starts_with("traces_service_graph_request_total{")).count(), 4, "{out}");
    // Server side 40 ms and client side 45 ms of web → api.
    let bucket = |side: &str, le: &str| {
        sample(
            &out,
            &format!("traces_service_graph_request_{side}_seconds_bucket{{client=\"web\",server=\"api\",le=\"{le}\"}}"),
        )
    };
    assert_eq!((bucket("server", "0.01"), bucket("server", "0.05")), (Some(0.0), Some(3.0)));
    assert_eq!((bucket("client", "0.01"), bucket("client", "0.05")), (Some(0.0), Some(3.0)));
    assert_eq!(sample(&out, "traces_service_graph_unpaired_spans_total"), Some(0.0));
}

#[tokio::test]
async fn a_server_span_without_its_client_counts_as_unpaired() {
    let config = SpanMetricsConfig {
        service_graph: ServiceGraphConfig { wait: Duration::ZERO, ..Default::default() },
        ..SpanMetricsConfig::default()
    };
    let (metrics, _) = stage(config);
    metrics.consume(batch(9, vec![spec("api", "GET /api", 2, 3, 2, 40)])).await.unwrap();
    let mut out = String::new();
    metrics.handle().encode(&mut out);
    assert_eq!(sample(&out, "traces_service_graph_unpaired_spans_total"), Some(1.0));
    assert!(!out.contains("traces_service_graph_request_total{"));
}
