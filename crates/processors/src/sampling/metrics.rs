//! Tail sampling counters on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabel {
    pub policy: String,
    pub decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabel {
    pub decision: &'static str,
}

#[derive(Clone, Default)]
pub struct SamplingMetrics {
    /// Every policy's vote on every decided trace.
    pub policy_votes: Family<PolicyLabel, Counter>,
    /// Final decisions, by the policy that kept (or dropped) the trace; `none` when no policy decided.
    pub traces_decided: Family<PolicyLabel, Counter>,
    pub late_spans: Family<DecisionLabel, Counter>,
    pub evictions: Counter,
    pub traces_waiting: Gauge,
}

impl SamplingMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "clew_sampling_policy_votes",
            "Tail sampling: each policy's vote on each decided trace",
            metrics.policy_votes.clone(),
        );
        registry.register(
            "clew_sampling_traces",
            "Tail sampling: traces decided, by deciding policy and decision",
            metrics.traces_decided.clone(),
        );
        registry.register(
            "clew_sampling_late_spans",
            "Tail sampling: spans that arrived after their trace was decided, by that decision",
            metrics.late_spans.clone(),
        );
        registry.register(
            "clew_sampling_evictions",
            "Tail sampling: traces evicted from a full buffer before their decision window ended",
            metrics.evictions.clone(),
        );
        registry.register(
            "clew_sampling_traces_waiting",
            "Tail sampling: traces waiting for a decision",
            metrics.traces_waiting.clone(),
        );
        metrics
    }
}
