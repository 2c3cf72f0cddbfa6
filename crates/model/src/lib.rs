//! Clew's shared vocabulary.
//!
//! Every stage of the write path (receivers → processors → store) speaks in [`SpanBatch`]es and hands them to
//! the next stage through a [`SpanSink`]; no stage knows who feeds it or whom it feeds. Spans are kept in the
//! OpenTelemetry protobuf types themselves, so nothing a client sends is lost on the way through.

mod ids;
mod sink;
mod tenant;

pub use ids::{SpanId, TraceId, TraceIdError};
pub use sink::{Accepted, SinkError, SpanSink};
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

/// A group of spans from one request, for one tenant, in OTLP's resource → scope → span nesting.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanBatch {
    pub tenant: Tenant,
    pub resource_spans: Vec<otlp::ResourceSpans>,
}

impl SpanBatch {
    pub fn new(tenant: Tenant, resource_spans: Vec<otlp::ResourceSpans>) -> Self {
        Self { tenant, resource_spans }
    }

    /// Number of spans in the batch.
    pub fn span_count(&self) -> usize {
        self.resource_spans.iter().flat_map(|rs| &rs.scope_spans).map(|ss| ss.spans.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.span_count() == 0
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
