//! Clew's own telemetry port: Prometheus/OpenMetrics `/metrics`, and `/health` and `/ready` for orchestrators.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clew_processors::span_metrics::SpanMetricsHandle;
use prometheus_client::registry::Registry;

#[derive(Clone)]
struct Telemetry {
    registry: Arc<Registry>,
    /// Span-derived metrics, written by their own encoder (they carry exemplars) before the final `# EOF`.
    span_metrics: Option<SpanMetricsHandle>,
    ready: Arc<AtomicBool>,
}

pub fn router(registry: Arc<Registry>, span_metrics: Option<SpanMetricsHandle>, ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(readiness))
        .with_state(Telemetry { registry, span_metrics, ready })
}

async fn metrics(State(telemetry): State<Telemetry>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &telemetry.registry) {
        Ok(()) => {
            if let Some(span_metrics) = &telemetry.span_metrics {
                let body_end = text.strip_suffix("# EOF\n").map_or(text.len(), str::len);
                text.truncate(body_end);
                span_metrics.encode(&mut text);
                text.push_str("# EOF\n");
            }
            ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
                .into_response()
        }
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics failed: {err}")).into_response(),
    }
}

async fn readiness(State(telemetry): State<Telemetry>) -> Response {
    if telemetry.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
