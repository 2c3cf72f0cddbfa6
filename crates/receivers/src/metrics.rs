use std::time::Duration;

use clew_model::SinkError;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::IngestError;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Protocol {
    OtlpGrpc,
    OtlpHttp,
    Zipkin,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "otlp_grpc",
            Protocol::OtlpHttp => "otlp_http",
            Protocol::Zipkin => "zipkin",
        }
    }
}

impl EncodeLabelValue for Protocol {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: Protocol,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabel {
    protocol: Protocol,
    reason: &'static str,
}

pub(crate) struct ReceiverMetrics {
    spans_received: Family<ProtocolLabel, Counter>,
    spans_accepted: Family<ProtocolLabel, Counter>,
    requests_failed: Family<FailureLabel, Counter>,
    request_duration: Family<ProtocolLabel, Histogram>,
}

impl ReceiverMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            spans_received: Family::default(),
            spans_accepted: Family::default(),
            requests_failed: Family::default(),
            request_duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 14))),
        };
        registry.register("clew_spans_received", "Spans decoded from requests", metrics.spans_received.clone());
        registry.register("clew_spans_accepted", "Spans made durable and acknowledged", metrics.spans_accepted.clone());
        registry.register(
            "clew_requests_failed",
            "Requests refused as a whole, by reason",
            metrics.requests_failed.clone(),
        );
        registry.register(
            "clew_request_duration_seconds",
            "Time from decoded request to acknowledgement",
            metrics.request_duration.clone(),
        );
        metrics
    }

    pub(crate) fn received(&self, protocol: Protocol, spans: u64) {
        self.spans_received.get_or_create(&ProtocolLabel { protocol }).inc_by(spans);
    }

    pub(crate) fn accepted(&self, protocol: Protocol, spans: u64) {
        self.spans_accepted.get_or_create(&ProtocolLabel { protocol }).inc_by(spans);
    }

    pub(crate) fn refused(&self, protocol: Protocol, err: &SinkError) {
        let reason = match err {
            SinkError::Overloaded { .. } => "overloaded",
            SinkError::Exhausted(_) => "exhausted",
            SinkError::Invalid(_) => "invalid",
            SinkError::Internal(_) => "internal",
        };
        self.requests_failed.get_or_create(&FailureLabel { protocol, reason }).inc();
    }

    pub(crate) fn failed(&self, protocol: Protocol, err: &IngestError) {
        self.requests_failed.get_or_create(&FailureLabel { protocol, reason: err.reason() }).inc();
    }

    pub(crate) fn request_done(&self, protocol: Protocol, elapsed: Duration) {
        self.request_duration.get_or_create(&ProtocolLabel { protocol }).observe(elapsed.as_secs_f64());
    }
}
