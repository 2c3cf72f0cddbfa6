//! Contract tests: the exact JSON Jaeger's endpoint returns, through the HTTP router.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use clew_model::SpanBatch;
use clew_model::otlp::{AnyValue, KeyValue, Resource, ResourceSpans, ScopeSpans, Span, any_value::Value};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

async fn get(sampling: &Arc<RemoteSampling>, uri: &str) -> (StatusCode, String, String) {
    let response = router(Arc::clone(sampling)).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, String::from_utf8(body.to_vec()).unwrap())
}

fn from_toml(text: &str) -> Arc<RemoteSampling> {
    RemoteSampling::new(toml::from_str(text).unwrap()).unwrap()
}

#[tokio::test]
async fn service_must_be_given_exactly_once() {
    let sampling = RemoteSampling::new(RemoteSamplingConfig::default()).unwrap();
    for uri in ["/sampling", "/sampling?service=a&service=b", "/api/sampling?other=x"] {
        let (status, content_type, body) = get(&sampling, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(content_type.starts_with("text/plain"));
        assert_eq!(body, "'service' parameter must be provided once\n");
    }
}

#[tokio::test]
async fn default_strategy_is_jaegers() {
    let sampling = RemoteSampling::new(RemoteSamplingConfig::default()).unwrap();
    for uri in ["/sampling?service=anything", "/api/sampling?service=anything"] {
        let (status, content_type, body) = get(&sampling, uri).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "application/json");
        assert_eq!(body, r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.001}}"#);
    }
}

#[tokio::test]
async fn configured_strategies_render_exactly() {
    let sampling = from_toml(
        r#"
        default_strategy = { type = "probabilistic", param = 0.5, operation_strategies = [
            { operation = "/health", type = "probabilistic", param = 0.0 },
        ] }
        [[service_strategies]]
        service = "limited"
        type = "ratelimiting"
        param = 42
        [[service_strategies]]
        service = "shop"
        type = "probabilistic"
        param = 0.8
        operation_strategies = [
            { operation = "GET /x", type = "probabilistic", param = 0.05 },
            { operation = "POST /pay", type = "probabilistic", param = 1 },
        ]
        [[service_strategies]]
        service = "plain"
        type = "probabilistic"
        param = 0.25
        "#,
    );
    let body = |service: &str| {
        let sampling = Arc::clone(&sampling);
        let uri = format!("/sampling?service={service}");
        async move { get(&sampling, &uri).await.2 }
    };
    assert_eq!(
        body("limited").await,
        concat!(
            r#"{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":42},"#,
            r#""operationSampling":{"defaultSamplingProbability":0.5,"defaultLowerBoundTracesPerSecond":0,"#,
            r#""perOperationStrategies":[{"operation":"/health","probabilisticSampling":{"samplingRate":0}}],"#,
            r#""defaultUpperBoundTracesPerSecond":0}}"#
        )
    );
    // The service's own operation rules, then the default's it does not override.
    assert_eq!(
        body("shop").await,
        concat!(
            r#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.8},"#,
            r#""operationSampling":{"defaultSamplingProbability":0.8,"defaultLowerBoundTracesPerSecond":0,"#,
            r#""perOperationStrategies":[{"operation":"GET /x","probabilisticSampling":{"samplingRate":0.05}},"#,
            r#"{"operation":"POST /pay","probabilisticSampling":{"samplingRate":1}},"#,
            r#"{"operation":"/health","probabilisticSampling":{"samplingRate":0}}],"#,
            r#""defaultUpperBoundTracesPerSecond":0}}"#
        )
    );
    // Inheriting the default's operation rules with its own probability as the default.
    let plain: SamplingStrategyResponse = serde_json::from_str(&body("plain").await).unwrap();
    assert_eq!(plain.operation_sampling.unwrap().default_sampling_probability, 0.25);
    // Unknown services get the default strategy.
    let unknown: SamplingStrategyResponse = serde_json::from_str(&body("unknown").await).unwrap();
    assert_eq!(unknown.probabilistic_sampling.unwrap().sampling_rate, 0.5);
}

#[test]
fn reads_and_reloads_jaegers_strategies_file() {
    let dir = std::env::temp_dir().join(format!("clew-sampling-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sampling_strategies.json");
    let write = |rate: f64| {
        let file = format!(
            r#"{{"service_strategies":[{{"service":"foo","type":"probabilistic","param":{rate}}}],
               "default_strategy":{{"type":"probabilistic","param":0.5}}}}"#
        );
        std::fs::write(&path, file).unwrap();
    };
    write(0.8);
    let config = RemoteSamplingConfig { strategies_file: Some(path.clone()), ..RemoteSamplingConfig::default() };
    let sampling = RemoteSampling::new(config).unwrap();
    assert_eq!(sampling.strategy("foo"), SamplingStrategyResponse::probabilistic(0.8));
    write(0.1);
    sampling.reload().unwrap();
    assert_eq!(sampling.strategy("foo"), SamplingStrategyResponse::probabilistic(0.1));
    // A broken file keeps the previous strategies.
    std::fs::write(&path, "{not json").unwrap();
    assert!(sampling.reload().unwrap_err().contains("invalid sampling strategies file"));
    assert_eq!(sampling.strategy("foo"), SamplingStrategyResponse::probabilistic(0.1));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_strategies_are_refused_with_their_name() {
    let err = |text: &str| RemoteSampling::new(toml::from_str(text).unwrap()).err().unwrap();
    assert!(err("default_strategy = { type = \"probabilistic\", param = 1.5 }").contains("default_strategy"));
    let op_rate_limit = r#"
        [[service_strategies]]
        service = "a"
        type = "probabilistic"
        param = 0.1
        operation_strategies = [{ operation = "x", type = "ratelimiting", param = 3 }]
    "#;
    assert!(err(op_rate_limit).contains("can only be probabilistic"));
    let missing = RemoteSamplingConfig { strategies_file: Some("/nonexistent/s.json".into()), ..Default::default() };
    assert!(RemoteSampling::new(missing).err().unwrap().contains("cannot read"));
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

fn batch(service: &str, roots: usize) -> SpanBatch {
    let mut spans = Vec::new();
    for i in 0..roots {
        let trace = (i as u128 + 1).to_be_bytes().to_vec();
        spans.push(Span { trace_id: trace.clone(), span_id: vec![1; 8], name: "GET /items".into(), ..Span::default() });
        spans.push(Span {
            trace_id: trace,
            span_id: vec![2; 8],
            parent_span_id: vec![1; 8],
            name: "SELECT".into(),
            ..Span::default()
        });
    }
    let rs = ResourceSpans {
        resource: Some(Resource { attributes: vec![kv("service.name", service)], ..Resource::default() }),
        scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
        ..ResourceSpans::default()
    };
    SpanBatch::from_resource_spans(clew_model::Tenant::default_tenant(), vec![rs]).unwrap()
}

#[tokio::test]
async fn adaptive_strategies_follow_observed_root_spans() {
    let sampling = from_toml(
        r#"
        [[service_strategies]]
        service = "pinned"
        type = "probabilistic"
        param = 0.3
        [adaptive]
        enabled = true
        calculation_interval = "1m"
        "#,
    );
    let adaptive = sampling.adaptive().unwrap();
    // 600 sampled roots in a minute: 10/s against a target of 1/s → the probability drops tenfold.
    RootObserver::observe(adaptive, &batch("shop", 600));
    adaptive.calculate(Duration::from_secs(60));
    let (_, _, body) = get(&sampling, "/sampling?service=shop").await;
    let strategy: SamplingStrategyResponse = serde_json::from_str(&body).unwrap();
    let ops = strategy.operation_sampling.unwrap();
    assert_eq!(ops.per_operation_strategies.len(), 1, "child spans are not counted: {body}");
    assert_eq!(ops.per_operation_strategies[0].operation, "GET /items");
    assert!((ops.per_operation_strategies[0].probabilistic_sampling.sampling_rate - 0.0001).abs() < 1e-12);
    assert_eq!(ops.default_sampling_probability, 0.001);
    // A configured service keeps its own strategy.
    assert_eq!(sampling.strategy("pinned"), SamplingStrategyResponse::probabilistic(0.3));
}
