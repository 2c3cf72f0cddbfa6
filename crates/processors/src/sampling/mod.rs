//! Tail sampling: keep whole traces chosen by the OpenTelemetry collector's `tail_sampling` policies, decided
//! after each trace had time to complete. See [`TailSampler`] for when a trace is decided and how the write
//! path stays durable.

pub mod api;
mod cache;
mod config;
pub mod consistent;
mod counts;
pub mod duration;
mod engine;
mod limiter;
mod matcher;
mod metrics;
mod policy;
mod span_scan;

#[cfg(test)]
mod tests;

pub use config::{
    AndConfig, BooleanAttributeConfig, BytesLimitingConfig, CompositeConfig, DecisionCacheConfig, DropConfig,
    EvictionMode, LatencyConfig, NotConfig, NumericAttributeConfig, PolicyConfig, PolicyType, ProbabilisticConfig,
    ProbabilisticMode, RateAllocation, RateLimitingConfig, SpanCountConfig, StatusCodeConfig, StringAttributeConfig,
    TailSamplingConfig, TraceStateConfig,
};
pub use counts::{LateSpans, NamedCounts, PolicySnapshot, SamplingCounts, VoteSnapshot};
pub use engine::{Decision, TailSampler};
pub use policy::{hash_threshold, hash_trace_id};
