//! Clew's shared vocabulary.
//!
//! Every stage of the write path (receivers → processors → store) speaks in [`SpanBatch`]es and hands them to
//! the next stage through a [`SpanSink`]; no stage knows who feeds it or whom it feeds. A batch is the encoded
//! OTLP request itself plus an index of its spans ([`wire`]), so nothing a client sends is lost on the way
//! through and the hot path never decodes spans into structs.

mod graph;
mod ids;
pub mod latency_buckets;
pub mod proto;
pub mod sampling;
mod sink;
mod tenant;
pub mod wire;

pub use graph::Connection;
pub use ids::{SpanId, TraceId, TraceIdError};
pub use sampling::SamplingDecision;
pub use sink::{Accepted, SinkError, SpanSink, TraceDropper};
pub use tenant::{DEFAULT_TENANT, Tenant, TenantError};

/// The OTLP protobuf types Clew uses as its span model.
pub mod otlp {
    pub use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    pub use opentelemetry_proto::tonic::common::v1::{
        AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
    };
    pub use opentelemetry_proto::tonic::resource::v1::Resource;
    pub use opentelemetry_proto::tonic::trace::v1::{
        ResourceSpans, ScopeSpans, Span, Status, TracesData, span, status,
    };
}

/// The spans of one request for one tenant: an encoded OTLP `ExportTraceServiceRequest` and the index of
/// where each span, resource and scope is in it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanBatch {
    pub tenant: Tenant,
    request: bytes::Bytes,
    index: wire::RequestIndex,
}

impl SpanBatch {
    /// Takes a request as received in protobuf, checking it is well formed.
    pub fn from_protobuf(tenant: Tenant, request: bytes::Bytes) -> Result<Self, wire::ScanError> {
        let index = wire::scan(&request)?;
        Ok(Self { tenant, request, index })
    }

    /// Encodes decoded spans (from JSON or Zipkin) into a batch.
    pub fn from_resource_spans(
        tenant: Tenant,
        resource_spans: Vec<otlp::ResourceSpans>,
    ) -> Result<Self, wire::ScanError> {
        use prost::Message;
        let request = otlp::ExportTraceServiceRequest { resource_spans }.encode_to_vec();
        Self::from_protobuf(tenant, request.into())
    }

    /// The encoded `ExportTraceServiceRequest`.
    pub fn request(&self) -> &bytes::Bytes {
        &self.request
    }

    pub fn index(&self) -> &wire::RequestIndex {
        &self.index
    }

    /// Decodes the whole batch into prost structs (slow; for paths that must edit or show spans).
    pub fn decode(&self) -> Result<Vec<otlp::ResourceSpans>, prost::DecodeError> {
        use prost::Message;
        otlp::ExportTraceServiceRequest::decode(&self.request[..]).map(|r| r.resource_spans)
    }

    /// Number of spans in the batch.
    pub fn span_count(&self) -> usize {
        self.index.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.spans.is_empty()
    }

    /// Splits the batch into its parts.
    pub fn into_parts(self) -> (Tenant, bytes::Bytes, wire::RequestIndex) {
        (self.tenant, self.request, self.index)
    }
}

/// The value of the resource attribute `service.name`, if the resource has one as a string.
pub fn service_name(resource: Option<&otlp::Resource>) -> Option<&str> {
    resource?.attributes.iter().find(|kv| kv.key == "service.name").and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            otlp::any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}
