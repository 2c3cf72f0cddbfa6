//! Clew's ingest endpoints. Each protocol decodes requests into [`SpanBatch`](clew_model::SpanBatch)es and
//! hands them to the next stage's [`SpanSink`]; a request is acknowledged only once the sink says the spans are
//! durable.
//!
//! - OTLP/gRPC (`otlp_grpc`): `TraceService/Export`, served by a small hand-written unary handler so that bad
//!   input maps onto OTLP's status codes (INVALID_ARGUMENT, RESOURCE_EXHAUSTED with retry info…).
//! - OTLP/HTTP (`otlp_http`): `POST /v1/traces`, protobuf and JSON, gzip.
//! - Zipkin v2 (`zipkin_http`): `POST /api/v2/spans`, JSON and protobuf.

mod body;
mod error;
mod metrics;
mod otlp_codec;
mod otlp_grpc;
mod otlp_http;
mod rpc_status;
pub mod zipkin;
mod zipkin_http;

use std::sync::Arc;
use std::time::Instant;

use clew_model::{Accepted, SinkError, SpanBatch, SpanSink};
use prometheus_client::registry::Registry;

pub use error::IngestError;
pub use metrics::Protocol;

/// Settings shared by every receiver.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Largest accepted request body, after decompression.
    pub max_request_bytes: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self { max_request_bytes: 64 * 1024 * 1024 }
    }
}

/// What every receiver needs: its limits, the next stage, and the ingest metrics.
pub struct Receivers {
    config: ReceiverConfig,
    sink: Arc<dyn SpanSink>,
    metrics: metrics::ReceiverMetrics,
}

impl Receivers {
    pub fn new(config: ReceiverConfig, sink: Arc<dyn SpanSink>, registry: &mut Registry) -> Arc<Self> {
        Arc::new(Self { config, sink, metrics: metrics::ReceiverMetrics::register(registry) })
    }

    /// OTLP/gRPC routes (serve on the gRPC port; HTTP/2 without TLS).
    pub fn otlp_grpc_router(self: &Arc<Self>) -> axum::Router {
        otlp_grpc::router(self.clone())
    }

    /// OTLP/HTTP routes (`/v1/traces`).
    pub fn otlp_http_router(self: &Arc<Self>) -> axum::Router {
        otlp_http::router(self.clone())
    }

    /// Zipkin v2 ingest routes (`/api/v2/spans`).
    pub fn zipkin_router(self: &Arc<Self>) -> axum::Router {
        zipkin_http::router(self.clone())
    }

    /// Hands decoded spans to the sink, counting and timing the request.
    async fn ingest(&self, protocol: Protocol, batch: SpanBatch) -> Result<Accepted, SinkError> {
        let started = Instant::now();
        let received = batch.span_count() as u64;
        self.metrics.received(protocol, received);
        let result = self.sink.consume(batch).await;
        match &result {
            Ok(accepted) => self.metrics.accepted(protocol, received.saturating_sub(accepted.rejected_spans)),
            Err(err) => self.metrics.refused(protocol, err),
        }
        self.metrics.request_done(protocol, started.elapsed());
        result
    }

    fn failed(&self, protocol: Protocol, err: &IngestError) {
        self.metrics.failed(protocol, err);
    }
}
