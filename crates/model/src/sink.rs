use std::time::Duration;

use futures::future::BoxFuture;

use crate::SpanBatch;

/// What a sink did with a batch it took: how many spans it refused and why (OTLP's partial success).
/// The rest is durable by the time this is returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    pub rejected_spans: u64,
    /// Names the first problem when some spans were rejected.
    pub message: String,
}

impl Accepted {
    pub fn all() -> Self {
        Self::default()
    }
}

/// Why a sink took nothing from a batch. Receivers map these onto their protocol's status codes.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Temporarily overloaded: the client should retry after the hint (gRPC UNAVAILABLE, HTTP 503/429).
    #[error("overloaded, retry after {retry_after:?}: {reason}")]
    Overloaded { retry_after: Duration, reason: String },
    /// A configured capacity or limit is reached (gRPC RESOURCE_EXHAUSTED, HTTP 429).
    #[error("capacity exhausted: {0}")]
    Exhausted(String),
    /// The batch as a whole is invalid (gRPC INVALID_ARGUMENT, HTTP 400).
    #[error("invalid data: {0}")]
    Invalid(String),
    /// Something broke on our side (gRPC INTERNAL, HTTP 500); nothing was acknowledged.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The next stage of the write path. `consume` resolves only once the spans it accepts are durable,
/// so a receiver may acknowledge its client the moment it returns `Ok`.
pub trait SpanSink: Send + Sync + 'static {
    fn consume(&self, batch: SpanBatch) -> BoxFuture<'_, Result<Accepted, SinkError>>;
}

/// Tells the store what tail sampling decided. Spans reach the store before their trace is decided (so
/// acknowledgement stays honest); this is how the decision catches up with them. Implementations must be
/// idempotent: late spans of a decided trace are reported again through the same calls.
pub trait TraceDropper: Send + Sync {
    /// Removes whole traces that sampling decided not to keep.
    fn drop_traces(&self, tenant: &crate::Tenant, trace_ids: &[crate::TraceId]);

    /// Records why traces were kept (policy, weight, threshold), durably with their spans. The default
    /// forgets it: the decision then lives only in the sampler's memory.
    fn keep_traces(&self, tenant: &crate::Tenant, kept: &[(crate::TraceId, crate::SamplingDecision)]) {
        let _ = (tenant, kept);
    }
}
